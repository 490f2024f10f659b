"""Torch dataset over one tensors file: lazy h5py reads, one file handle per worker process.

Degenerate data (README, "Errors and safety"): a window in which a camera has no event (known
from the file's ``event_counts``) is left out and counted in ``empty_windows``; negative ground
truth is an error naming the file and row.
"""
from __future__ import annotations

import os
from typing import Sequence

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

from stereospike_ros.io.tensors import TensorsError, TensorsFile
from stereospike_ros.nn.depth import negative_depth


class TensorsDataset(Dataset):
    """Samples ``(inputs float32 (4, H, W), depth float32 (H, W))`` of rows ``indices`` of a file.

    The file is validated once here; reads open it lazily in each process (DataLoader workers
    fork or spawn safely: the handle is never pickled). ``skip_empty`` leaves out rows whose
    window has no event in a camera (their number is ``empty_windows``).
    """

    def __init__(self, path: str | os.PathLike, indices: Sequence[int] | None = None,
                 skip_empty: bool = True) -> None:
        self.path = os.fspath(path)
        with TensorsFile(self.path) as tf:
            n = len(tf)
            self.height, self.width = tf.height, tf.width
            counts = tf.event_counts
        if indices is None:
            rows = np.arange(n, dtype=np.int64)
        else:
            rows = np.asarray(indices, dtype=np.int64).reshape(-1)
            if len(rows) and (rows.min() < 0 or rows.max() >= n):
                raise TensorsError(f'{self.path}: sample rows outside [0, {n})')
        self.empty_windows = 0
        if skip_empty and len(rows):
            empty = (counts[rows] == 0).any(axis=1)
            self.empty_windows = int(np.count_nonzero(empty))
            rows = rows[~empty]
        self.rows = rows
        self._file: h5py.File | None = None
        self._pid: int | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def _handle(self) -> h5py.File:
        if self._file is None or self._pid != os.getpid():
            self._file = h5py.File(self.path, 'r')
            self._pid = os.getpid()
        return self._file

    def _row(self, i: int) -> int:
        if not -len(self.rows) <= i < len(self.rows):
            raise IndexError(f'sample {i} out of range for {len(self.rows)} samples')
        return int(self.rows[i])

    def depth(self, i: int) -> np.ndarray:
        """Ground truth of sample ``i`` (float32 metres, NaN unknown); negative is an error."""
        row = self._row(i)
        depth = np.asarray(self._handle()['depth'][row], dtype=np.float32)
        problem = negative_depth(depth)
        if problem:
            raise TensorsError(f'{self.path}: ground truth of row {row} {problem}')
        return depth

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        row = self._row(i)
        inputs = torch.from_numpy(self._handle()['inputs'][row].astype(np.float32))
        return inputs, torch.from_numpy(self.depth(i))

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state['_file'] = None
        state['_pid'] = None
        return state

    def close(self) -> None:
        """Close this process's file handle (reopened on the next read)."""
        if self._file is not None and self._pid == os.getpid():
            self._file.close()
        self._file = None


def left_out(dataset: Dataset) -> list[tuple[str, int]]:
    """``(path, windows)`` for every file of ``dataset`` (or a ConcatDataset of them) that had
    windows left out because a camera saw no event in them."""
    parts = getattr(dataset, 'datasets', [dataset])
    return [(d.path, d.empty_windows) for d in parts if getattr(d, 'empty_windows', 0)]


def left_out_warning(*datasets: Dataset, names: int = 3) -> str | None:
    """One warning line for the windows left out of ``datasets`` (None if none were): the file
    for one file, else the total, the file count and the first ``names`` files."""
    found = [item for d in datasets for item in left_out(d)]
    if not found:
        return None
    if len(found) == 1:
        path, k = found[0]
        return f'{path}: {k} window(s) with no event in a camera left out'
    listed = ', '.join(f'{os.path.basename(p)} ({k})' for p, k in found[:names])
    more = f' and {len(found) - names} more' if len(found) > names else ''
    return (f'{sum(k for _, k in found)} window(s) with no event in a camera left out of '
            f'{len(found)} files: {listed}{more}')
