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


def test_folder_moved_into_place_replaces_the_old_folder_whole(tmp_path):
    old = tmp_path / 'bag'
    old.mkdir()
    (old / 'stale.db3').write_bytes(b'old')
    new = tmp_path / '.staging'
    (new / 'sub').mkdir(parents=True)
    (new / 'sub' / 'data.db3').write_bytes(b'new')
    atomic.move_into_place(new, old)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['bag']       # nothing left behind
    assert [p.name for p in old.iterdir()] == ['sub']
    assert (old / 'sub' / 'data.db3').read_bytes() == b'new'


def test_atomic_file_commit_and_abort(tmp_path):
    target = tmp_path / 'out.h5'
    pending = atomic.AtomicFile(target)
    pending.tmp.write_bytes(b'data')
    assert not target.exists()
    pending.commit()
    assert target.read_bytes() == b'data' and os.listdir(tmp_path) == ['out.h5']
    dropped = atomic.AtomicFile(target)
    dropped.tmp.write_bytes(b'other')
    dropped.abort()
    assert target.read_bytes() == b'data' and os.listdir(tmp_path) == ['out.h5']
