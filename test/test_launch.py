"""Launch file and parameters file, checked statically (launch / launch_ros are not installable).

The launch file must start the installed ``depth_node`` of package ``stereospike`` with the
installed ``config/depth.yaml`` and declare the documented arguments; the parameters file must
set every node parameter (typed like its default) under ``/**: ros__parameters`` with a comment.
"""
import ast
import re

import yaml

from stereospike_ros.ros.depth_node import PARAMETERS
from support import ROOT

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
    assert set(args) == {'params_file', 'checkpoint', 'device', 'namespace', 'use_sim_time'}
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
