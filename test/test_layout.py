"""The package layout holds: the data flows one way between subpackages, only ros/ talks to ROS,
the byte codecs and the event type need neither rclpy nor torch, and every public function is
annotated and documented. Checked on the source with ast (no module is imported)."""
import ast
from pathlib import Path

import pytest

from support import ROOT

PACKAGE = ROOT / 'stereospike_ros'
#: Subpackage -> the subpackages it may import (the data flow of docs/architecture.md).
ALLOWED = {'io': set(), 'windowing': {'io'}, 'nn': {'io'},
           'offline': {'io', 'windowing', 'nn'}, 'ros': {'io', 'windowing', 'nn', 'offline'}}
#: Top-level modules of ROS itself (rosbags, a pure-Python bag library, is not one of them).
ROS_MODULES = {'rclpy', 'rcl', 'rcl_interfaces', 'builtin_interfaces', 'cv_bridge', 'launch',
               'launch_ros', 'ament_index_python', 'message_filters', 'rosbag2_py', 'tf2_ros'}


def is_ros(module: str) -> bool:
    """True for ROS client libraries and message packages (``*_msgs``, ``*_interfaces``)."""
    top = module.split('.')[0]
    return top in ROS_MODULES or top.endswith(('_msgs', '_interfaces')) or \
        top.startswith('rosidl')


def imports(path: Path, module_level_only: bool = False) -> list[str]:
    """Absolute module names a source file imports (lazy imports inside functions included
    unless ``module_level_only``)."""
    tree = ast.parse(path.read_text(), str(path))
    nodes = tree.body if module_level_only else ast.walk(tree)
    out = []
    for node in nodes:
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f'{path}: use absolute imports'
            out.append(node.module)
    return out


def sources(*parts: str) -> list[Path]:
    """The Python files of a subpackage (or of the whole package)."""
    files = sorted(PACKAGE.joinpath(*parts).rglob('*.py'))
    assert files, parts
    return files


def test_every_module_is_in_a_known_subpackage():
    for path in sources():
        rel = path.relative_to(PACKAGE).parts
        assert len(rel) == 1 or rel[0] in ALLOWED, f'{path}: subpackage not in the layout'


def test_subpackages_import_only_upstream_of_the_data_flow():
    for sub, allowed in ALLOWED.items():
        for path in sources(sub):
            for name in imports(path):
                parts = name.split('.')
                if parts[0] == 'stereospike_ros' and len(parts) > 1 and parts[1] != sub:
                    assert parts[1] in allowed, f'{path} imports {name} ({sub} -> {parts[1]})'


def test_only_the_ros_subpackage_imports_ros():
    for path in sources():
        if path.relative_to(PACKAGE).parts[0] == 'ros':
            continue
        ros = [name for name in imports(path) if is_ros(name)]
        assert not ros, f'{path} imports {ros}: only stereospike_ros/ros/ may talk to ROS'


@pytest.mark.parametrize('sub', ['io', 'windowing'])
def test_codecs_event_type_and_windowing_import_neither_rclpy_nor_torch(sub):
    for path in sources(sub):
        bad = [n for n in imports(path) if is_ros(n) or n.split('.')[0] == 'torch']
        assert not bad, f'{path} imports {bad}'


def test_depth_rule_metrics_and_geometry_are_numpy_only():
    for path in (PACKAGE / 'nn' / name for name in ('depth.py', 'metrics.py', 'geometry.py')):
        assert 'torch' not in {n.split('.')[0] for n in imports(path)}, path


def test_the_checks_see_lazy_imports(tmp_path):
    """The walker sees an import hidden in a function (a check that cannot fail proves nothing)."""
    probe = tmp_path / 'probe.py'
    probe.write_text('import numpy\n\n\ndef f():\n    from sensor_msgs.msg import Image\n'
                     '    import torch.nn\n')
    assert imports(probe) == ['numpy', 'sensor_msgs.msg', 'torch.nn']
    assert imports(probe, module_level_only=True) == ['numpy']
    assert is_ros('sensor_msgs.msg') and is_ros('rclpy.node') and not is_ros('rosbags.highlevel')


def undocumented(path: Path) -> list[str]:
    """Public functions and methods of a file lacking annotations or a docstring."""
    tree = ast.parse(path.read_text(), str(path))
    problems = [] if ast.get_docstring(tree) else [f'{path}: no module docstring']

    def check(fn: ast.FunctionDef, owner: str) -> None:
        where = f'{path}:{fn.lineno} {owner}{fn.name}'
        args = fn.args
        params = args.posonlyargs + args.args + args.kwonlyargs
        if owner and params and params[0].arg in ('self', 'cls') and \
                not any(getattr(d, 'id', '') == 'staticmethod' for d in fn.decorator_list):
            params = params[1:]
        params += [a for a in (args.vararg, args.kwarg) if a is not None]
        missing = [a.arg for a in params if a.annotation is None]
        if missing:
            problems.append(f'{where}: parameters {missing} not annotated')
        if fn.returns is None:
            problems.append(f'{where}: no return annotation')
        if not fn.name.startswith('__') and not ast.get_docstring(fn):
            problems.append(f'{where}: no docstring')

    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and \
                not node.name.startswith('_'):
            check(node, '')
        elif isinstance(node, ast.ClassDef) and not node.name.startswith('_'):
            if not ast.get_docstring(node):
                problems.append(f'{path}:{node.lineno} class {node.name}: no docstring')
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and \
                        (not item.name.startswith('_') or item.name in ('__init__', '__call__')):
                    check(item, f'{node.name}.')
    return problems


def test_every_public_function_is_annotated_and_documented():
    files = sources() + sorted((ROOT / 'train').glob('*.py')) + \
        sorted((ROOT / 'scripts').glob('*.py')) + sorted((ROOT / 'bench').glob('*.py'))
    problems = [p for path in files for p in undocumented(path)]
    assert not problems, '\n'.join(problems)


def test_the_annotation_check_finds_gaps(tmp_path):
    probe = tmp_path / 'probe.py'
    probe.write_text('"""m"""\n\n\ndef f(a, b: int):\n    return a\n\n\nclass C:\n'
                     '    """c"""\n\n    def g(self, x: int) -> int:\n        return x\n\n'
                     '    def _private(self, y):\n        return y\n')
    found = undocumented(probe)
    assert len(found) == 4, found       # f: parameter a, return, docstring; C.g: docstring
