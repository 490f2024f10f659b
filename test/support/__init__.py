"""Helpers shared by the tests (not test files themselves): data builders, ROS plumbing, scripts.

``test/`` is on ``sys.path`` when pytest runs (rootdir-relative test modules), so tests import
``support.data`` / ``support.ros``; conftest.py turns the common ones into fixtures.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def train_script(name: str) -> ModuleType:
    """Import ``train/<name>.py`` (command-line tools, not a package) as a module."""
    path = ROOT / 'train' / f'{name}.py'
    spec = importlib.util.spec_from_file_location(f'_stereospike_train_{name}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
