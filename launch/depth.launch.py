"""Launch the stereospike depth node (events of two DAVIS cameras in, dense metric depth out).

    ros2 launch stereospike depth.launch.py checkpoint:=/path/model.pt [device:=cuda]
        [namespace:=davis] [params_file:=/path/depth.yaml] [calibration:=/path/camchain.yaml]
        [use_sim_time:=true] [fastdds_profile:=/path/profile.xml]

Topics (relative to ``namespace``, default ``davis``): ``left/events``, ``right/events`` in;
``depth/image``, ``depth/camera_info``, ``right/camera_info``, ``depth/disparity`` (and
``depth/points``, ``depth/colorized``) out. ``checkpoint``, ``device`` and ``calibration``
override the parameters file only when given. Every process started here gets
``FASTDDS_DEFAULT_PROFILES_FILE`` = ``fastdds_profile`` (default: the variable's value if set,
else the installed ``config/fastdds_large_data.xml``; see README, "Large event messages").
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
from launch.substitutions import EnvironmentVariable, LaunchConfiguration
from launch_ros.actions import Node

from stereospike_ros.ros.dds import PROFILE_ENV, PROFILE_NAME

PACKAGE = 'stereospike'
OVERRIDES = ('checkpoint', 'device', 'calibration')


def _profile(context, *args, **kwargs):
    """Set the Fast DDS profile for every process started after this (empty: leave as is)."""
    value = LaunchConfiguration('fastdds_profile').perform(context)
    return [SetEnvironmentVariable(PROFILE_ENV, value)] if value else []


def _node(context, *args, **kwargs):
    """Build the node with the arguments' values (empty overrides are left out)."""
    overrides = {}
    for name in OVERRIDES:
        value = LaunchConfiguration(name).perform(context)
        if value:
            overrides[name] = value
    sim_time = LaunchConfiguration('use_sim_time').perform(context).lower()
    overrides['use_sim_time'] = sim_time in ('true', '1', 'yes')
    return [Node(
        package=PACKAGE,
        executable='depth_node',
        name='stereospike_depth',
        namespace=LaunchConfiguration('namespace'),
        parameters=[LaunchConfiguration('params_file'), overrides],
        output='screen',
        emulate_tty=True,
    )]


def generate_launch_description():
    """Arguments: params_file, checkpoint, device, calibration, namespace, use_sim_time,
    fastdds_profile."""
    share = get_package_share_directory(PACKAGE)
    default_params = os.path.join(share, 'config', 'depth.yaml')
    default_profile = os.path.join(share, 'config', PROFILE_NAME)
    return LaunchDescription([
        DeclareLaunchArgument('params_file', default_value=default_params,
                              description='Parameters file of the depth node'),
        DeclareLaunchArgument('checkpoint', default_value='',
                              description='Model checkpoint (.pt); empty = the params file / '
                                          'the shipped demo checkpoint'),
        DeclareLaunchArgument('device', default_value='',
                              description="Torch device ('auto', 'cpu', 'cuda', 'cuda:N'); "
                                          'empty = the params file (auto)'),
        DeclareLaunchArgument('calibration', default_value='',
                              description='MVSEC calibration folder or Kalibr camchain yaml; '
                                          'empty = the params file (none: events already '
                                          'rectified)'),
        DeclareLaunchArgument('namespace', default_value='davis',
                              description='Namespace of the node and its topics'),
        DeclareLaunchArgument('use_sim_time', default_value='false',
                              description='Use /clock (bag playback)'),
        DeclareLaunchArgument('fastdds_profile',
                              default_value=EnvironmentVariable(PROFILE_ENV,
                                                                default_value=default_profile),
                              description='Fast DDS profile for every process started (large '
                                          'shared-memory segment: no lost event messages); '
                                          'empty = leave the environment as it is'),
        OpaqueFunction(function=_profile),
        OpaqueFunction(function=_node),
    ])
