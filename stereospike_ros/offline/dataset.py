"""Torch dataset over one tensors file: lazy h5py reads, one file handle per worker process."""
from __future__ import annotations

import os
from typing import Sequence

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

from stereospike_ros.io.tensors import TensorsError, TensorsFile


class TensorsDataset(Dataset):
    """Samples ``(inputs float32 (4, H, W), depth float32 (H, W))`` of rows ``indices`` of a file.

    The file is validated once here; reads open it lazily in each process (DataLoader workers
    fork or spawn safely: the handle is never pickled).
    """

    def __init__(self, path: str | os.PathLike, indices: Sequence[int] | None = None) -> None:
        self.path = os.fspath(path)
        with TensorsFile(self.path) as tf:
            n = len(tf)
            self.height, self.width = tf.height, tf.width
        if indices is None:
            rows = np.arange(n, dtype=np.int64)
        else:
            rows = np.asarray(indices, dtype=np.int64).reshape(-1)
            if len(rows) and (rows.min() < 0 or rows.max() >= n):
                raise TensorsError(f'{self.path}: sample rows outside [0, {n})')
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

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not -len(self.rows) <= i < len(self.rows):
            raise IndexError(f'sample {i} out of range for {len(self.rows)} samples')
        row = int(self.rows[i])
        f = self._handle()
        inputs = torch.from_numpy(f['inputs'][row].astype(np.float32))
        depth = torch.from_numpy(np.asarray(f['depth'][row], dtype=np.float32))
        return inputs, depth

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
