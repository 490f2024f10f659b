"""Helpers shared by the tests (not test files themselves): data builders, ROS plumbing, scripts.

``test/`` is on ``sys.path`` when pytest runs (rootdir-relative test modules), so tests import
``support.data`` / ``support.ros``; conftest.py turns the common ones into fixtures.
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def shared_dir() -> Path:
    """The project's shared folder (recordings, vendored ROS 2 launch): STEREOSPIKE_SHARED if
    set, else ``../shared`` beside this checkout, or beside the main checkout of a git worktree
    (where a worktree's own ``../shared`` does not exist)."""
    if os.environ.get('STEREOSPIKE_SHARED'):
        return Path(os.environ['STEREOSPIKE_SHARED'])
    here = ROOT.parent / 'shared'
    git = ROOT / '.git'
    if not here.is_dir() and git.is_file() and git.read_text().startswith('gitdir:'):
        main_checkout = Path(git.read_text().split(':', 1)[1].strip()).parents[2]
        return main_checkout.parent / 'shared'       # <main>/.git/worktrees/<name>
    return here


SHARED = shared_dir()


def train_script(name: str) -> ModuleType:
    """Import ``train/<name>.py`` (command-line tools, not a package) as a module."""
    path = ROOT / 'train' / f'{name}.py'
    spec = importlib.util.spec_from_file_location(f'_stereospike_train_{name}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
