"""The offline tensors file (one HDF5 per converted sequence): atomic writer and validating reader.

Layout (format version 1): ``inputs`` (N, 4, H, W) uint16 event counts [L_ON, L_OFF, R_ON, R_OFF],
chunked per sample; ``depth`` (N, H, W) float32 metres, NaN invalid; ``timestamps`` (N,) float64 s
(left depth timestamps); ``frame_indices`` (N,) int64 (depth frame index in the source sequence);
attributes describe the source, options and event accounting. Optional: ``event_counts`` (N, 2)
int64, the events binned per window [left, right] (-1 = unknown; absent in older files), so
readers can leave out windows in which a camera saw nothing.
"""
from __future__ import annotations

import json
import os
from typing import Any

import h5py
import numpy as np

from stereospike_ros.io.errors import InputError
from stereospike_ros.io import atomic
from stereospike_ros.io.events import SENSOR_HEIGHT, SENSOR_WIDTH

FORMAT_VERSION = 1
COMPRESSIONS = ('gzip', 'lzf', 'none')
DATASETS = {'inputs': (np.uint16, 4), 'depth': (np.float32, 3), 'timestamps': (np.float64, 1),
            'frame_indices': (np.int64, 1)}


class TensorsError(InputError):
    """A missing or malformed tensors file; the message names the file and the problem."""


def _attr_value(value: Any) -> Any:
    """HDF5-storable form of an attribute (None -> '', dicts/lists of mixed types -> JSON)."""
    if value is None:
        return ''
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value)
    return value


class TensorsWriter:
    """Write a tensors file atomically: an :class:`atomic.AtomicFile` beside ``path``, committed.

    Use as a context manager; leaving the block with an exception (or without commit) deletes
    the temporary file, so no partial output ever appears at ``path``.
    """

    def __init__(self, path: str | os.PathLike, n: int, height: int = SENSOR_HEIGHT,
                 width: int = SENSOR_WIDTH,
                 compression: str = 'gzip') -> None:
        if compression not in COMPRESSIONS:
            raise ValueError(f'compression must be one of {COMPRESSIONS}, not {compression!r}')
        if n < 0:
            raise ValueError(f'negative number of samples {n}')
        self.path = os.fspath(path)
        folder = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(folder):
            raise TensorsError(f'{self.path}: output folder {folder} does not exist')
        if os.path.isdir(self.path):
            raise TensorsError(f'{self.path}: is a directory')
        self._out = atomic.AtomicFile(self.path)
        self.tmp_path = str(self._out.tmp)
        self.n, self.height, self.width = int(n), int(height), int(width)
        self._committed = False
        try:
            self.file = h5py.File(self.tmp_path, 'w')
            comp: dict[str, Any] = {}
            if compression == 'gzip':
                comp = {'compression': 'gzip', 'compression_opts': 1, 'shuffle': True}
            elif compression == 'lzf':
                comp = {'compression': 'lzf', 'shuffle': True}
            h, w = self.height, self.width
            chunks = n > 0
            self.inputs = self.file.create_dataset(
                'inputs', (n, 4, h, w), np.uint16, chunks=(1, 4, h, w) if chunks else None,
                **(comp if chunks else {}))
            self.depth = self.file.create_dataset(
                'depth', (n, h, w), np.float32, chunks=(1, h, w) if chunks else None,
                fillvalue=np.nan, **(comp if chunks else {}))
            self.timestamps = self.file.create_dataset('timestamps', (n,), np.float64)
            self.frame_indices = self.file.create_dataset('frame_indices', (n,), np.int64)
            self.event_counts = self.file.create_dataset('event_counts', (n, 2), np.int64,
                                                         fillvalue=-1)
            self.file.attrs['format_version'] = FORMAT_VERSION
            self.file.attrs['compression'] = compression
        except BaseException:
            self.abort()
            raise

    def set_attrs(self, attrs: dict) -> None:
        """Store attributes (``None`` as '', dicts and lists as JSON strings)."""
        for key, value in attrs.items():
            self.file.attrs[key] = _attr_value(value)

    def commit(self) -> None:
        """Flush, close and atomically (and durably: :mod:`atomic`) move the file into place."""
        self.file.close()
        self._out.commit()
        self._committed = True

    def abort(self) -> None:
        """Close and delete the temporary file."""
        try:
            if getattr(self, 'file', None) is not None and self.file.id.valid:
                self.file.close()
        finally:
            self._out.abort()

    def __enter__(self) -> 'TensorsWriter':
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None or not self._committed:
            self.abort()


class TensorsFile:
    """Open and validate a tensors file (datasets, dtypes, shapes, lengths) for reading."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = os.fspath(path)
        if not os.path.isfile(self.path):
            raise TensorsError(f'{self.path}: tensors file not found')
        try:
            self.file = h5py.File(self.path, 'r')
        except (OSError, ValueError) as exc:
            raise TensorsError(f'{self.path}: not a readable HDF5 file ({exc})') from None
        try:
            self._validate()
        except Exception:
            self.file.close()
            raise

    def _validate(self) -> None:
        f, p = self.file, self.path
        for name, (dtype, ndim) in DATASETS.items():
            if name not in f or not isinstance(f[name], h5py.Dataset):
                raise TensorsError(f'{p}: missing dataset {name!r}')
            ds = f[name]
            if ds.dtype != dtype or ds.ndim != ndim:
                raise TensorsError(f'{p}: dataset {name!r} is {ds.dtype} with {ds.ndim} dims, '
                                   f'expected {np.dtype(dtype)} with {ndim}')
        n, c, h, w = f['inputs'].shape
        if c != 4:
            raise TensorsError(f'{p}: inputs has {c} channels, expected 4')
        if f['depth'].shape != (n, h, w):
            raise TensorsError(f'{p}: depth has shape {f["depth"].shape}, expected {(n, h, w)}')
        for name in ('timestamps', 'frame_indices'):
            if f[name].shape != (n,):
                raise TensorsError(f'{p}: {name} has shape {f[name].shape}, expected ({n},)')
        version = f.attrs.get('format_version')
        if version != FORMAT_VERSION:
            raise TensorsError(f'{p}: format_version {version!r}, expected {FORMAT_VERSION}')
        self.n, self.height, self.width = int(n), int(h), int(w)

    def __len__(self) -> int:
        return self.n

    @property
    def attrs(self) -> dict:
        """All attributes as a plain dict (JSON strings left as stored)."""
        return {k: (v.item() if isinstance(v, np.generic) else v)
                for k, v in self.file.attrs.items()}

    def inputs(self, index: int | slice) -> np.ndarray:
        """Event counts uint16 ``(4, H, W)`` (or a batch for a slice)."""
        return self.file['inputs'][index]

    def depth(self, index: int | slice) -> np.ndarray:
        """Depth float32 metres, NaN invalid."""
        return self.file['depth'][index]

    @property
    def timestamps(self) -> np.ndarray:
        """Left depth timestamps (float64 s) of the samples."""
        return self.file['timestamps'][()]

    @property
    def frame_indices(self) -> np.ndarray:
        """Depth frame index of each sample in the source sequence."""
        return self.file['frame_indices'][()]

    @property
    def event_counts(self) -> np.ndarray:
        """Events binned per window, int64 (N, 2) [left, right]; -1 where unknown."""
        ds = self.file.get('event_counts')
        if isinstance(ds, h5py.Dataset) and ds.shape == (self.n, 2):
            return ds[()].astype(np.int64)
        return np.full((self.n, 2), -1, np.int64)

    def close(self) -> None:
        """Close the file."""
        self.file.close()

    def __enter__(self) -> 'TensorsFile':
        return self

    def __exit__(self, *exc) -> None:
        self.close()
