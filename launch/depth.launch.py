"""Launch the stereospike depth node (events of two DAVIS cameras in, dense metric depth out).

    ros2 launch stereospike depth.launch.py checkpoint:=/path/model.pt [device:=cuda]
        [namespace:=davis] [params_file:=/path/depth.yaml] [use_sim_time:=true]

Topics (relative to ``namespace``, default ``davis``): ``left/events``, ``right/events`` in;
``depth/image``, ``depth/camera_info``, ``right/camera_info``, ``depth/disparity`` (and
``depth/points``, ``depth/colorized``) out. ``checkpoint`` and ``device`` override the parameters
file only when given.
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

PACKAGE = 'stereospike'


def _node(context, *args, **kwargs):
    """Build the node with the arguments' values (empty overrides are left out)."""
    overrides = {}
    for name in ('checkpoint', 'device'):
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
    """Arguments: params_file, checkpoint, device, namespace, use_sim_time."""
    default_params = os.path.join(get_package_share_directory(PACKAGE), 'config', 'depth.yaml')
    return LaunchDescription([
        DeclareLaunchArgument('params_file', default_value=default_params,
                              description='Parameters file of the depth node'),
        DeclareLaunchArgument('checkpoint', default_value='',
                              description='Model checkpoint (.pt); empty = the params file / '
                                          'the shipped demo checkpoint'),
        DeclareLaunchArgument('device', default_value='',
                              description="Torch device ('auto', 'cpu', 'cuda', 'cuda:N'); "
                                          'empty = the params file (auto)'),
        DeclareLaunchArgument('namespace', default_value='davis',
                              description='Namespace of the node and its topics'),
        DeclareLaunchArgument('use_sim_time', default_value='false',
                              description='Use /clock (bag playback)'),
        OpaqueFunction(function=_node),
    ])
