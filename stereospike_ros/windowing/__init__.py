"""Events -> time windows -> count tensors: the time-order policy, the reference (offline)
window grid, the live stereo windower and the one rectify-and-bin implementation."""
