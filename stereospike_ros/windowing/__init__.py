"""Events -> time windows -> count tensors: the reference (offline) window grid, the live stereo
windower (it only cuts) and the one rectify-and-bin implementation. No rclpy, no torch."""
