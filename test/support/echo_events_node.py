"""Test helper run as a subprocess: echoes dvs_msgs/EventArray from `echo/in` to `echo/out`.

The echo shifts every event's x by one so the test can tell the reply was produced by this process.
"""
import sys

import rclpy
from dvs_msgs.msg import EventArray
from rclpy.node import Node


def main() -> None:
    """Run the echo node until shut down."""
    rclpy.init(args=sys.argv)
    node = Node('stereospike_echo')
    pub = node.create_publisher(EventArray, 'echo/out', 10)

    def on_events(msg: EventArray) -> None:
        for event in msg.events:
            event.x += 1
        pub.publish(msg)

    node.create_subscription(EventArray, 'echo/in', on_events, 10)
    print('echo ready', flush=True)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    main()
