"""Entry point kept for ``python -m stereospike_ros.play``; the player is ros/play.py."""
import sys

from stereospike_ros.ros.play import main

if __name__ == '__main__':
    sys.exit(main())
