"""Atomic, durable output files and folders: write a temporary sibling, then move it into place.

Every output of the offline tools goes through here (tensors files, checkpoints, calibration
folders, synthetic sequences, bags, reports), with one durability policy: the new file (or every
file of a new folder) is fsynced, moved over the target with ``os.replace``, and the parent
folder is fsynced, so a crash or an error never leaves a partial output and a finished one
survives a power cut. Finished files get the usual permissions (``0666 & ~umask``), not
``mkstemp``'s ``0600``.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator


def default_mode() -> int:
    """Permissions a plain ``open(path, 'w')`` would give under the current umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _fsync(path: Path) -> None:
    """fsync one file or folder (folders: their entries, e.g. after a rename)."""
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def move_into_place(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Durably replace ``dst`` by the finished file or folder ``src`` (same file system).

    ``src`` (every file below it, for a folder) is fsynced first and the parent folder after
    the rename. A folder that exists at ``dst`` is swapped out first (a folder cannot be
    replaced in one step) and then removed.
    """
    src, dst = Path(src), Path(dst)
    if src.is_dir():
        for root, _, files in os.walk(src):
            for name in files:
                _fsync(Path(root) / name)
            _fsync(Path(root))
    else:
        _fsync(src)
    old = None
    if dst.is_dir() and not dst.is_symlink():
        old = Path(tempfile.mkdtemp(prefix=f'.{dst.name}.', suffix='.old', dir=dst.parent))
        os.replace(dst, old / dst.name)
    os.replace(src, dst)
    _fsync(dst.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


class AtomicFile:
    """A temporary sibling of ``path`` to write by name; :meth:`commit` moves it into place.

    :meth:`abort` (or never committing and calling it) removes it; ``path`` is untouched until
    the commit. The parent folder must exist.
    """

    def __init__(self, path: str | os.PathLike, suffix: str = '.tmp') -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise IsADirectoryError(f'{self.path}: is a directory, not a file')
        fd, tmp = tempfile.mkstemp(prefix=f'.{self.path.name}.', suffix=suffix,
                                   dir=self.path.parent)
        os.close(fd)
        self.tmp = Path(tmp)
        self.done = False

    def commit(self) -> None:
        """Give the file ordinary permissions and move it into place durably."""
        os.chmod(self.tmp, default_mode())
        move_into_place(self.tmp, self.path)
        self.done = True

    def abort(self) -> None:
        """Remove the temporary file (nothing happens after a commit)."""
        if not self.done:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.tmp)
            self.done = True


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = '.tmp') -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, else it is removed.

    The caller writes the temporary file by name (h5py, torch.save, PIL, ...); missing parent
    folders are created.
    """
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    out = AtomicFile(path, suffix)
    try:
        yield out.tmp
        out.commit()
    except BaseException:
        out.abort()
        raise


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8, newlines as given) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, 'w', encoding='utf-8', newline='') as f:
            f.write(text)
