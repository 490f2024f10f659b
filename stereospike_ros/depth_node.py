"""Entry point kept for ``python -m stereospike_ros.depth_node``; the node is ros/depth_node.py."""
import sys

from stereospike_ros.ros.depth_node import main

if __name__ == '__main__':
    sys.exit(main())
