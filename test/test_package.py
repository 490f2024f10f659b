"""The repository is a well-formed ament_python ROS 2 package (its set-up step's idempotency is
checked by .ci/run, which runs scripts/setup.sh a second time)."""
import ast
import configparser
import xml.etree.ElementTree as ET

from support import ROOT


def test_package_xml_format_3_ament_python():
    root = ET.parse(ROOT / 'package.xml').getroot()
    assert root.tag == 'package' and root.get('format') == '3'
    assert root.findtext('name') == 'stereospike'
    assert root.find('export/build_type').text == 'ament_python'
    deps = {e.text for e in root if e.tag.endswith('depend')}
    for key in ('rclpy', 'sensor_msgs', 'std_msgs', 'diagnostic_msgs', 'dvs_msgs',
                'event_camera_msgs', 'cv_bridge', 'python3-numpy', 'python3-h5py'):
        assert key in deps, key


def test_setup_installs_launch_config_and_console_scripts():
    tree = ast.parse((ROOT / 'setup.py').read_text())
    text = ast.unparse(tree)
    assert "'share/' + package_name + '/launch'" in text and "glob('launch/*.launch.py')" in text
    assert "'share/' + package_name + '/config'" in text and "glob('config/*')" in text
    assert (ROOT / 'resource' / 'stereospike').is_file()
    for script in ('depth_node = stereospike_ros.depth_node:main',
                   'play_bag = stereospike_ros.play:main',
                   'export_events = stereospike_ros.export_events:main'):
        assert script in text
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / 'setup.cfg')
    assert cfg['develop']['script_dir'] == '$base/lib/stereospike'
    assert cfg['install']['install_scripts'] == '$base/lib/stereospike'


def test_dvs_msgs_matches_ros2_port_fields():
    from dvs_msgs.msg import Event, EventArray
    assert Event.get_fields_and_field_types() == {
        'x': 'uint16', 'y': 'uint16', 'ts': 'builtin_interfaces/Time', 'polarity': 'boolean'}
    assert EventArray.get_fields_and_field_types() == {
        'header': 'std_msgs/Header', 'height': 'uint32', 'width': 'uint32',
        'events': 'sequence<dvs_msgs/Event>'}


def test_event_camera_msgs_matches_upstream_fields():
    """The built EventPacket is ros-event-camera/event_camera_msgs' field for field; the copy
    in interfaces/ is ignored by colcon (a workspace builds the real package)."""
    from event_camera_msgs.msg import EventPacket
    assert EventPacket.get_fields_and_field_types() == {
        'header': 'std_msgs/Header', 'height': 'uint32', 'width': 'uint32', 'seq': 'uint64',
        'time_base': 'uint64', 'encoding': 'string', 'is_bigendian': 'boolean',
        'events': 'sequence<uint8>'}
    pkg = ROOT / 'interfaces' / 'event_camera_msgs'
    assert (pkg / 'COLCON_IGNORE').is_file()
    assert ET.parse(pkg / 'package.xml').getroot().findtext('name') == 'event_camera_msgs'
    assert 'build_interface event_camera_msgs' in (ROOT / 'scripts' / 'setup.sh').read_text()
