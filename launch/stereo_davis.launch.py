"""Launch a live stereo DAVIS346 rig: two libcaer_driver nodes and the stereospike depth node.

    ros2 launch stereospike stereo_davis.launch.py left_serial:=00000123 \\
        right_serial:=00000456 calibration:=/path/camchain.yaml [checkpoint:=/path/model.pt]
        [device:=cuda] [namespace:=davis] [fastdds_profile:=/path/profile.xml]

The cameras are joined by their sync cable. As libcaer_driver implements time sync, the left
driver is the master (``master: true``: it resets its camera clock at start and publishes the
host time of that reset on ``~/reset_timestamps``) and the right one the slave (``master:
false``, its ``~/reset_timestamps`` remapped to the master's), so both cameras' sensor times
count from the same host time. Each driver's ``~/events`` (event_camera_msgs/EventPacket, best
effort) is remapped to ``left/events`` / ``right/events`` in ``namespace``, where the depth node
(``depth.launch.py``, included: it takes the same arguments) subscribes; its ``event_type:
auto`` and ``input_reliability: auto`` match the drivers. Every process, the drivers included,
gets ``FASTDDS_DEFAULT_PROFILES_FILE`` = ``fastdds_profile``, set by depth.launch.py
(best-effort drivers lose large event messages without the large shared-memory segment; see
README, "Large event messages").
Without libcaer_driver installed, the launch stops before starting anything and says so.
"""
import os

from ament_index_python.packages import (PackageNotFoundError, get_package_prefix,
                                         get_package_share_directory)
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription, OpaqueFunction
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

PACKAGE = 'stereospike'
DRIVER_PACKAGE = 'libcaer_driver'
DRIVER_EXECUTABLE = 'driver_node'
SIDES = ('left', 'right')


class DriverMissing(RuntimeError):
    """libcaer_driver's executable is not installed (the message names it)."""


def _check_drivers(context, *args, **kwargs):
    """Refuse to start anything without the drivers' executable, naming it."""
    serials = {side: LaunchConfiguration(f'{side}_serial').perform(context) or 'any'
               for side in SIDES}
    try:
        prefix = get_package_prefix(DRIVER_PACKAGE)
    except PackageNotFoundError:
        prefix = None
    path = prefix and os.path.join(prefix, 'lib', DRIVER_PACKAGE, DRIVER_EXECUTABLE)
    if not path or not os.access(path, os.X_OK):
        where = f'not at {path}' if path else 'package not found in AMENT_PREFIX_PATH'
        raise DriverMissing(
            f'stereo_davis.launch.py: cannot start the left and right DAVIS346 drivers '
            f'(serials {serials["left"]}, {serials["right"]}): executable {DRIVER_EXECUTABLE} '
            f'of package {DRIVER_PACKAGE} is not installed ({where}). Install it (apt install '
            f'ros-$ROS_DISTRO-libcaer-driver, or build ros-event-camera/libcaer_driver in this '
            f'workspace) and source the workspace.')
    return []


def _driver(side: str, master: bool) -> Node:
    """One libcaer_driver node publishing ``<namespace>/<side>/events``."""
    remappings = [('~/events', f'{side}/events')]
    if not master:
        remappings.append(('~/reset_timestamps', 'davis_left/reset_timestamps'))
    return Node(
        package=DRIVER_PACKAGE,
        executable=DRIVER_EXECUTABLE,
        name=f'davis_{side}',
        namespace=LaunchConfiguration('namespace'),
        parameters=[{'device_type': 'davis',
                     # a string even when it looks like a number (00000123)
                     'serial': ParameterValue(LaunchConfiguration(f'{side}_serial'),
                                              value_type=str),
                     'master': master,
                     'camera_frame_id': f'davis_{side}_optical_frame'}],
        remappings=remappings,
        output='screen',
    )


def generate_launch_description():
    """Arguments: left_serial, right_serial, and those of depth.launch.py."""
    depth_launch = os.path.join(get_package_share_directory(PACKAGE), 'launch',
                                'depth.launch.py')
    return LaunchDescription([
        DeclareLaunchArgument('left_serial', default_value='',
                              description='Serial number of the left DAVIS346 (sync master); '
                                          'empty = the first camera found'),
        DeclareLaunchArgument('right_serial', default_value='',
                              description='Serial number of the right DAVIS346 (sync slave)'),
        OpaqueFunction(function=_check_drivers),
        # First: its arguments (namespace, fastdds_profile, ...) and the Fast DDS profile in
        # the environment of every process started after it, the drivers included.
        IncludeLaunchDescription(PythonLaunchDescriptionSource(depth_launch)),
        _driver('left', master=True),
        _driver('right', master=False),
    ])
