"""Test helper run as a subprocess: run a launch file through LaunchService, as ``ros2 launch``.

``python launch_runner.py LAUNCH_FILE [name:=value ...] [--timeout S]``: includes the file with
those launch arguments (what ``ros2 launch`` does), shuts down after S seconds at the latest,
exits with LaunchService's status. Needs ROS 2's launch and launch_ros on PYTHONPATH.
"""
import argparse
import sys

import launch
from launch.actions import IncludeLaunchDescription, Shutdown, TimerAction
from launch.launch_description_sources import PythonLaunchDescriptionSource


def main() -> int:
    """Run the launch file until it ends, is interrupted, or the timeout shuts it down."""
    ap = argparse.ArgumentParser()
    ap.add_argument('launch_file')
    ap.add_argument('arguments', nargs='*', help='launch arguments name:=value')
    ap.add_argument('--timeout', type=float, default=120.0)
    args = ap.parse_args()
    pairs = [tuple(a.split(':=', 1)) for a in args.arguments]
    service = launch.LaunchService(argv=args.arguments)
    service.include_launch_description(launch.LaunchDescription([
        IncludeLaunchDescription(PythonLaunchDescriptionSource(args.launch_file),
                                 launch_arguments=pairs),
        TimerAction(period=args.timeout, actions=[Shutdown(reason='launch_runner timeout')]),
    ]))
    return service.run()


if __name__ == '__main__':
    sys.exit(main())
