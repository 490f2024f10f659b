"""``python -m stereospike_ros.export_events``: the entry point of offline/export_events.py."""
import sys

from stereospike_ros.offline.export_events import main

if __name__ == '__main__':
    sys.exit(main())
