"""Entry point for ``python -m stereospike_ros.export_events``; the tool is offline/export.py."""
import sys

from stereospike_ros.offline.export import main

if __name__ == '__main__':
    sys.exit(main())
