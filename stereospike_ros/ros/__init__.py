"""The ROS 2 shell: the depth node, its output messages, message conversion and the bag player.
The only subpackage that imports rclpy or ROS message packages."""
