"""Launch files and the parameters file: checked statically, and run for real.

Statically: the launch file must start the installed ``depth_node`` of package ``stereospike``
with the installed ``config/depth.yaml`` and declare the documented arguments; the parameters
file must set every node parameter (typed like its default) under ``/**: ros__parameters``.
For real: ROS 2's launch and launch_ros have no wheel; where their sources are in
``../shared/vendor`` (see its README) the tests build the install prefix colcon would make from
setup.py and run the launch files through LaunchService as ``ros2 launch`` does. They skip,
saying why, where those sources or composition_interfaces (built by scripts/setup.sh when the
vendor folder exists) are missing; the product never needs them.
"""
import ast
import importlib
import os
import re
import runpy
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from stereospike_ros.ros.dds import PROFILE_ENV, PROFILE_NAME
from stereospike_ros.ros.depth_node import PARAMETERS
from support import ROOT, SHARED

LAUNCH = ROOT / 'launch' / 'depth.launch.py'
CONFIG = ROOT / 'config' / 'depth.yaml'


def _calls(tree, name):
    """Every call of a function or class called ``name`` (plain or attribute)."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            called = func.id if isinstance(func, ast.Name) else getattr(func, 'attr', None)
            if called == name:
                out.append(node)
    return out


def _kw(call, key):
    return next((k.value for k in call.keywords if k.arg == key), None)


def test_launch_file_declares_arguments_and_starts_the_installed_node():
    tree = ast.parse(LAUNCH.read_text(), str(LAUNCH))
    assert ast.get_docstring(tree)
    functions = {f.name for f in tree.body if isinstance(f, ast.FunctionDef)}
    assert 'generate_launch_description' in functions
    args = {}
    for call in _calls(tree, 'DeclareLaunchArgument'):
        name = ast.literal_eval(call.args[0])
        default = _kw(call, 'default_value')
        args[name] = default
        assert _kw(call, 'description') is not None, f'argument {name} has no description'
    assert set(args) == {'params_file', 'checkpoint', 'device', 'calibration', 'namespace',
                         'use_sim_time', 'fastdds_profile'}
    assert ast.literal_eval(args['namespace']) == 'davis'
    assert ast.literal_eval(args['use_sim_time']) == 'false'
    assert isinstance(args['params_file'], ast.Name)         # the installed share path
    # params_file default: share/stereospike/config/depth.yaml via the ament index.
    share = _calls(tree, 'get_package_share_directory')
    assert share, 'params_file must default to the installed config'
    consts = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)}
    package = {n.targets[0].id: n.value.value for n in tree.body
               if isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant)}
    resolve = {**package, **{c: c for c in consts if isinstance(c, str)}}

    def value(node):
        return resolve[node.id] if isinstance(node, ast.Name) else ast.literal_eval(node)

    assert value(share[0].args[0]) == 'stereospike'
    join = _calls(tree, 'join')
    assert any([value(a) for a in j.args[1:]] == ['config', 'depth.yaml'] for j in join)
    nodes = _calls(tree, 'Node')
    assert len(nodes) == 1
    assert value(_kw(nodes[0], 'package')) == 'stereospike'
    assert value(_kw(nodes[0], 'executable')) == 'depth_node'
    assert value(_kw(nodes[0], 'name')) == 'stereospike_depth'
    assert _kw(nodes[0], 'namespace') is not None and _kw(nodes[0], 'parameters') is not None


def test_params_file_sets_and_documents_every_parameter():
    text = CONFIG.read_text()
    data = yaml.safe_load(text)
    assert list(data) == ['/**']
    params = data['/**']['ros__parameters']
    assert set(params) == set(PARAMETERS)
    for name, spec in PARAMETERS.items():
        assert type(params[name]) is type(spec.default), name
        assert params[name] == spec.default, name
        if spec.low is not None:
            assert spec.low <= params[name] <= spec.high, name
        if spec.choices:
            assert params[name] in spec.choices, name
    # Every parameter line follows a comment line (or another documented parameter of a pair).
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r'^    (\w+):', line)
        if m:
            j = i - 1
            while re.match(r'^    \w+:', lines[j]):
                j -= 1
            assert lines[j].strip().startswith('#'), f'{m.group(1)} is not documented'


# ------------------------------------------------------------------ launch files run for real
@pytest.fixture(scope='module')
def install_prefix(tmp_path_factory):
    """The install prefix colcon makes from setup.py: data_files and console scripts."""
    captured = {}
    import setuptools
    real, cwd = setuptools.setup, os.getcwd()
    setuptools.setup = lambda **kwargs: captured.update(kwargs)
    try:
        os.chdir(ROOT)                          # setup.py globs relative paths
        runpy.run_path(str(ROOT / 'setup.py'), run_name='__main__')
    finally:
        setuptools.setup, _ = real, os.chdir(cwd)
    prefix = tmp_path_factory.mktemp('install')
    for dest, files in captured['data_files']:
        (prefix / dest).mkdir(parents=True, exist_ok=True)
        for name in files:
            shutil.copy(ROOT / name, prefix / dest / Path(name).name)
    scripts = prefix / 'lib' / captured['name']       # setup.cfg: install_scripts
    scripts.mkdir(parents=True)
    for line in captured['entry_points']['console_scripts']:
        name, target = (part.strip() for part in line.split('='))
        module, func = target.split(':')
        script = scripts / name
        script.write_text(f'#!{sys.executable}\nimport sys\nfrom {module} import {func}\n'
                          f'sys.exit({func}())\n')
        script.chmod(0o755)
    return prefix


@pytest.fixture(scope='module')
def launch_env(install_prefix, tmp_path_factory):
    """Environment of a launch process: vendored launch on PYTHONPATH, the prefix indexed."""
    vendor = SHARED / 'vendor'
    if not (vendor / 'launch' / 'launch').is_dir() or not (vendor / 'launch_ros').is_dir():
        pytest.skip(f'ROS 2 launch sources not found in {vendor}: the launch files are only '
                    'checked statically')
    for module, why in (('osrf_pycommon', 'osrf-pycommon is not installed (requirements.txt)'),
                        ('composition_interfaces.srv', 'composition_interfaces is not built '
                         'into the venv (scripts/setup.sh builds it when ../shared/vendor '
                         'exists)')):
        try:
            importlib.import_module(module)
        except ImportError:
            pytest.skip(why)
    env = dict(os.environ)
    env.pop(PROFILE_ENV, None)          # what the launch files set must reach the processes
    env['PYTHONPATH'] = os.pathsep.join(
        [str(vendor / 'launch'), str(vendor / 'launch_ros')]
        + ([env['PYTHONPATH']] if env.get('PYTHONPATH') else []))
    env['AMENT_PREFIX_PATH'] = os.pathsep.join([str(install_prefix), sys.prefix])
    env['ROS_HOME'] = str(tmp_path_factory.mktemp('ros_home'))     # launch's log files
    return env


def _terminal_like() -> None:
    """In the launch process before exec: its own process group (a terminal's foreground
    job) and SIGINT delivered (pytest may run with SIGINT ignored, which would be inherited)."""
    os.setpgrp()
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class LaunchProcess:
    """``test/launch_runner.py`` running one installed launch file; output in a log file."""

    def __init__(self, env, launch_file, log_path, *arguments, timeout=150.0):
        self.log_path = log_path
        self._log = open(log_path, 'w')
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / 'test' / 'support' / 'launch_runner.py'), str(launch_file),
             *arguments, '--timeout', str(timeout)],
            env=env, stdout=self._log, stderr=subprocess.STDOUT, cwd=ROOT,
            preexec_fn=_terminal_like)

    def log(self):
        return self.log_path.read_text()

    def stop(self, timeout=30.0):
        """Ctrl-C: SIGINT to the whole process group, as a terminal sends it (launch then waits
        for its processes to end and escalates after 5 s); the exit status."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()
        return self.proc.returncode


@pytest.mark.ros
@pytest.mark.slow
def test_depth_launch_starts_the_node_with_the_profile_and_it_publishes_depth(
        launch_env, install_prefix, tmp_path, tiny_checkpoint):
    from stereospike_ros.ros import ros_images
    from support.data import MS, T0, make_events
    from support.ros import Harness
    ns = f'/t{os.getpid()}launch'
    share = install_prefix / 'share' / 'stereospike'
    run = LaunchProcess(launch_env, share / 'launch' / 'depth.launch.py', tmp_path / 'l.log',
                        f'namespace:={ns}', 'device:=cpu', f'checkpoint:={tiny_checkpoint}')
    ros = None
    try:
        deadline = time.monotonic() + 120
        while 'ready:' not in run.log():
            assert run.proc.poll() is None and time.monotonic() < deadline, run.log()
            time.sleep(0.2)
        ros = Harness(ns)
        ros.wait_subscribed()
        t_stop = T0 + 1000 * MS
        ros.stream({s: make_events(T0, t_stop, 20_000, i) for i, s in enumerate(('left',
                                                                                 'right'))},
                   T0, t_stop)
        ros.wait(lambda: len(ros.depth) >= 3, 30.0, 'depth from the launched node')
        assert all(ros_images.time_to_ns(m.header.stamp) <= t_stop for m in ros.depth)
    finally:
        if ros is not None:
            ros.close()
        status = run.stop()
    log = run.log()
    # The node is the installed executable, with the installed parameters file and the
    # profile the launch file set for it (not the checkout's one the node would pick itself).
    assert f'Fast DDS profile {share / "config" / PROFILE_NAME}' in log, log
    assert f'{ns}/left/events' in log and 'Traceback' not in log, log
    assert status == 0 and 'failed to terminate' not in log, log      # Ctrl-C stops it cleanly


@pytest.fixture(scope='module')
def driver_prefix(tmp_path_factory):
    """An install prefix with libcaer_driver's ``driver_node``: the stand-in of test/support."""
    prefix = tmp_path_factory.mktemp('drivers')
    index = prefix / 'share' / 'ament_index' / 'resource_index' / 'packages'
    index.mkdir(parents=True)
    (index / 'libcaer_driver').write_text('')
    exe = prefix / 'lib' / 'libcaer_driver' / 'driver_node'
    exe.parent.mkdir(parents=True)
    exe.write_text(f'#!{sys.executable}\n'
                   + (ROOT / 'test' / 'support' / 'standin_libcaer_driver.py').read_text())
    exe.chmod(0o755)
    return prefix


@pytest.mark.ros
@pytest.mark.slow
def test_stereo_launch_wires_master_and_slave_drivers_into_the_node(
        launch_env, install_prefix, driver_prefix, tmp_path, tiny_checkpoint):
    import json

    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import Image

    from stereospike_ros.ros import ros_images
    from support.ros import SpinningNode
    env = dict(launch_env, STANDIN_REPORT_DIR=str(tmp_path))
    env['AMENT_PREFIX_PATH'] = os.pathsep.join([str(driver_prefix), env['AMENT_PREFIX_PATH']])
    ns = f'/t{os.getpid()}rig'
    share = install_prefix / 'share' / 'stereospike'
    run = LaunchProcess(env, share / 'launch' / 'stereo_davis.launch.py', tmp_path / 'rig.log',
                        'left_serial:=00000123', 'right_serial:=00000456', f'namespace:={ns}',
                        'device:=cpu', f'checkpoint:={tiny_checkpoint}')
    seen = SpinningNode('rig_listener')
    depth, inputs = [], {}

    def on_diag(msg):
        for status in msg.status:
            if status.name == f'{ns}/stereospike_depth: pipeline':
                inputs.update({kv.key: kv.value for kv in status.values
                               if kv.key.startswith('input_')})
    seen.node.create_subscription(Image, f'{ns}/depth/image', depth.append, 10)
    seen.node.create_subscription(DiagnosticArray, '/diagnostics', on_diag, 10)
    seen.start()
    try:
        deadline = time.monotonic() + 150
        while len(depth) < 3 or 'EventPacket' not in inputs.get('input_right', ''):
            assert run.proc.poll() is None and time.monotonic() < deadline, (inputs, run.log())
            time.sleep(0.2)
    finally:
        seen.close()
        status = run.stop()
    log = run.log()
    assert status == 0 and 'Traceback' not in log and 'failed to terminate' not in log, log
    left, right = (json.loads((tmp_path / f'davis_{s}.json').read_text())
                   for s in ('left', 'right'))
    assert left['name'] == f'{ns}/davis_left' and right['name'] == f'{ns}/davis_right'
    assert left['parameters'] == {'device_type': 'davis', 'serial': '00000123', 'master': True,
                                  'camera_frame_id': 'davis_left_optical_frame'}
    assert right['parameters']['serial'] == '00000456' and right['parameters']['master'] is False
    assert (left['events_topic'], right['events_topic']) == (f'{ns}/left/events',
                                                             f'{ns}/right/events')
    # The slave listens where the master announces its clock reset, and counted from it.
    assert right['reset_topic'] == left['reset_topic'] == f'{ns}/davis_left/reset_timestamps'
    assert right['reset_received'] and right['packets'] > 0 and left['packets'] > 0
    profile = str(share / 'config' / PROFILE_NAME)
    assert left['fastdds_profile'] == right['fastdds_profile'] == profile
    assert f'Fast DDS profile {profile}' in log
    assert inputs['input_left'] == inputs['input_right'] == \
        'event_camera_msgs/msg/EventPacket best_effort', inputs
    # Windows in the drivers' shared sensor time: stamps near the master's reset (host time).
    stamps = [ros_images.time_to_ns(m.header.stamp) for m in depth]
    assert all(abs(s - time.time_ns()) < 300 * 10 ** 9 for s in stamps), stamps


@pytest.mark.ros
@pytest.mark.slow
def test_stereo_launch_without_the_drivers_names_them_and_starts_nothing(
        launch_env, install_prefix, tmp_path):
    share = install_prefix / 'share' / 'stereospike'
    run = LaunchProcess(launch_env, share / 'launch' / 'stereo_davis.launch.py',
                        tmp_path / 's.log', 'left_serial:=00000123', 'right_serial:=00000456',
                        f'namespace:=/t{os.getpid()}stereo', 'device:=cpu')
    try:
        status = run.proc.wait(timeout=60)
    finally:
        run.stop()
    log = run.log()
    assert status != 0, log
    assert 'driver_node' in log and 'libcaer_driver' in log, log
    assert '00000123' in log and '00000456' in log, log
    assert 'Traceback' not in log and 'ready:' not in log, log
