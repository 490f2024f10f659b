"""The ROS 2 shell: the depth node, the bag player and message conversion. The only
subpackage that imports rclpy."""
