"""Atomic output files: complete or absent, with ordinary permissions."""
import os
import stat

import pytest

from stereospike_ros.io import atomic


def test_write_replaces_in_one_step_with_umask_permissions(tmp_path):
    target = tmp_path / 'sub' / 'out.txt'
    atomic.write_text(target, 'first\n')
    atomic.write_text(target, 'second\n')
    assert target.read_text() == 'second\n'
    mode = stat.S_IMODE(target.stat().st_mode)
    assert mode == atomic.default_mode() and mode != 0o600
    assert [p.name for p in target.parent.iterdir()] == ['out.txt']


def test_error_leaves_no_partial_file_and_keeps_the_old_one(tmp_path):
    target = tmp_path / 'out.bin'
    atomic.write_bytes(target, b'old')
    with pytest.raises(RuntimeError):
        with atomic.atomic_path(target) as tmp:
            tmp.write_bytes(b'half-written')
            raise RuntimeError('writer failed')
    assert target.read_bytes() == b'old'
    assert os.listdir(tmp_path) == ['out.bin']


def test_directory_target_is_refused(tmp_path):
    with pytest.raises(IsADirectoryError):
        atomic.write_text(tmp_path, 'x')
