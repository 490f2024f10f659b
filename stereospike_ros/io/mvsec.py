"""MVSEC: its constants (HDF5 layout, bag topics, f*B) and HDF5 readers with bounded memory.

Events are read in row chunks with h5py; a time range is located by binary search on the time
column (a few dozen single-row reads, never the whole column). Rows with NaN/infinite or
beyond-sensor coordinates are dropped and counted. Times must not decrease:
``unsorted='error'`` (default) raises :class:`MvsecError` naming the file and row;
``unsorted='drop'`` drops and counts every event earlier than one already read (and non-finite
times). The binary search assumes sorted times.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterator

import h5py
import numpy as np

from stereospike_ros.io.errors import InputError
from stereospike_ros.io.events import (SENSOR_HEIGHT, SENSOR_WIDTH, UNSORTED_POLICIES,
                                       EventOrderError, Events, apply_order_policy,
                                       seconds_to_ns)

SIDES = ('left', 'right')
#: HDF5 datasets of ``NAME_data.hdf5`` (events ``[x, y, t, p]`` rows) and ``NAME_gt.hdf5``.
EVENTS_KEY = 'davis/{side}/events'
DEPTH_KEY = 'davis/left/depth_image_rect'
DEPTH_TS_KEY = 'davis/left/depth_image_rect_ts'
#: Topics of MVSEC's ROS bags (and of our synthetic bags and the player's defaults).
MVSEC_TOPICS = {'left_events': '/davis/left/events', 'right_events': '/davis/right/events',
                'left_depth': '/davis/left/depth_image_rect'}
#: Rectified focal length times baseline of MVSEC indoor_flying (px * m): disparity = f*B / depth.
MVSEC_FOCAL_BASELINE = 19.941772
#: Rows per chunk of :meth:`MvsecData.chunks`: 2**18 rows (8 MiB) keep a chunk's passes in cache
#: (measured ~10 % faster than 1 M rows, bench/bench_convert.py).
DEFAULT_CHUNK = 262_144


class MvsecError(InputError):
    """A missing, unreadable or malformed MVSEC file; the message names the file and problem."""


def _open(path: str | os.PathLike, what: str) -> tuple[str, h5py.File]:
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise MvsecError(f'{path}: {what} file not found')
    try:
        return path, h5py.File(path, 'r')
    except (OSError, ValueError) as exc:
        raise MvsecError(f'{path}: not a readable HDF5 file ({exc})') from None


def _dataset(path: str, f: h5py.File, key: str) -> h5py.Dataset:
    try:
        obj = f[key]
    except KeyError:
        raise MvsecError(f'{path}: missing dataset {key!r}') from None
    except Exception as exc:  # h5py raises various errors on corrupt metadata
        raise MvsecError(f'{path}: cannot read dataset {key!r} ({exc})') from None
    if not isinstance(obj, h5py.Dataset):
        raise MvsecError(f'{path}: {key!r} is not a dataset')
    return obj


@dataclass
class MvsecChunk:
    """One chunk of valid events: raw ``x, y`` uint16, float64 ``seconds``, ``on`` bool."""

    x: np.ndarray
    y: np.ndarray
    seconds: np.ndarray
    on: np.ndarray
    drops: dict

    def to_events(self) -> Events:
        """As :class:`Events` (times converted to int64 ns)."""
        return Events(self.x, self.y, seconds_to_ns(self.seconds), self.on)


class MvsecData:
    """Reader of the left/right event streams (``[x, y, t, p]`` rows) of ``NAME_data.hdf5``."""

    def __init__(self, path: str | os.PathLike, width: int = SENSOR_WIDTH,
                 height: int = SENSOR_HEIGHT,
                 unsorted: str = 'error') -> None:
        if unsorted not in UNSORTED_POLICIES:
            raise ValueError(f'unsorted policy must be one of {UNSORTED_POLICIES}')
        self.path, self._file = _open(path, 'MVSEC data')
        self.width, self.height, self.unsorted = int(width), int(height), unsorted
        self._ds: dict[str, h5py.Dataset] = {}
        try:
            for side in SIDES:
                key = EVENTS_KEY.format(side=side)
                ds = _dataset(self.path, self._file, key)
                if ds.ndim != 2 or ds.shape[1] != 4:
                    raise MvsecError(f'{self.path}: {key} has shape {ds.shape}, expected (N, 4)')
                if ds.dtype.kind != 'f':
                    raise MvsecError(f'{self.path}: {key} has dtype {ds.dtype}, expected float')
                self._ds[side] = ds
        except Exception:
            self._file.close()
            raise

    def close(self) -> None:
        """Close the HDF5 file."""
        self._file.close()

    def __enter__(self) -> 'MvsecData':
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _side(self, side: str) -> h5py.Dataset:
        if side not in self._ds:
            raise ValueError(f'side must be one of {SIDES}, not {side!r}')
        return self._ds[side]

    def num_events(self, side: str) -> int:
        """Number of event rows of one camera."""
        return int(self._side(side).shape[0])

    def _read(self, ds: h5py.Dataset, sel) -> np.ndarray:
        try:
            return ds[sel]
        except Exception as exc:  # corrupt or truncated data blocks
            raise MvsecError(f'{self.path}: cannot read {ds.name} rows ({exc})') from None

    def search(self, side: str, t: float, side_rule: str = 'left') -> int:
        """Row where time ``t`` would be inserted (``np.searchsorted`` rules), by bisection."""
        ds = self._side(side)
        lo, hi = 0, ds.shape[0]
        while lo < hi:
            mid = (lo + hi) // 2
            v = float(self._read(ds, (mid, 2)))
            if v < t or (side_rule == 'right' and v == t):
                lo = mid + 1
            else:
                hi = mid
        return lo

    def row_range(self, side: str, start_s: float | None = None,
                  stop_s: float | None = None) -> tuple[int, int]:
        """Rows ``[a, b)`` with ``start_s <= t < stop_s`` (``None``: open end); sorted times."""
        a = 0 if start_s is None else self.search(side, start_s, 'left')
        b = self.num_events(side) if stop_s is None else self.search(side, stop_s, 'left')
        return a, max(a, b)

    def chunks(self, side: str, start_s: float | None = None, stop_s: float | None = None,
               chunk: int = DEFAULT_CHUNK) -> Iterator[MvsecChunk]:
        """Valid events with ``start_s <= t < stop_s`` as :class:`MvsecChunk` s, in file order.

        Each chunk's ``drops`` counts ``read`` rows and ``non_finite``, ``beyond_sensor``,
        ``unsorted`` drops.
        """
        ds = self._side(side)
        chunk = max(1, int(chunk))
        a, b = self.row_range(side, start_s, stop_s)
        last = -np.inf
        w, h = self.width, self.height
        size = min(chunk, max(b - a, 1))
        buf = np.empty((size, 4), ds.dtype)      # both buffers reused: no page faults per chunk
        cols = np.empty((4, size), ds.dtype)
        for r0 in range(a, b, chunk):
            r1 = min(b, r0 + chunk)
            n = r1 - r0
            rows = buf[:n]
            try:
                ds.read_direct(rows, np.s_[r0:r1], np.s_[0:n])
            except Exception as exc:
                raise MvsecError(f'{self.path}: cannot read {ds.name} rows {r0}:{r1} '
                                 f'({exc})') from None
            np.copyto(cols[:, :n], rows.T)
            x, y, t, p = cols[:, :n]
            try:
                keep, last, non_finite, unsorted = apply_order_policy(t, last, self.unsorted)
            except EventOrderError as err:
                raise MvsecError(f'{self.path}: {ds.name}: {err.what} at row {r0 + err.index} '
                                 f'({err.before!r} -> {err.after!r}); --unsorted drop drops '
                                 f'and counts such events') from None
            drops = {'read': n, 'non_finite': non_finite, 'beyond_sensor': 0,
                     'unsorted': unsorted}
            # min/max propagate NaN and NaN fails every comparison, so non-finite coordinates
            # always take the checking path.
            if keep is not None or not (x.min() >= 0 and x.max() < w and
                                        y.min() >= 0 and y.max() < h):
                valid = (x >= 0) & (x < w) & (y >= 0) & (y < h)
                if keep is not None:
                    valid &= keep
                rejected = ~valid if keep is None else ~valid & keep
                xr, yr = x[rejected], y[rejected]
                nonfin = int(np.count_nonzero(~(np.isfinite(xr) & np.isfinite(yr))))
                drops['non_finite'] += nonfin
                drops['beyond_sensor'] += len(xr) - nonfin
                x, y, t, p = x[valid], y[valid], t[valid], p[valid]
            # every yielded array is new: nothing aliases the reused buffers
            yield MvsecChunk(x.astype(np.uint16), y.astype(np.uint16), t.copy(), p == 1, drops)


class MvsecGroundTruth:
    """Reader of an MVSEC ``NAME_gt.hdf5`` file's left rectified depth (float32 m, NaN unknown)."""

    def __init__(self, path: str | os.PathLike, width: int = SENSOR_WIDTH,
                 height: int = SENSOR_HEIGHT) -> None:
        self.path, self._file = _open(path, 'MVSEC ground-truth')
        try:
            self._depth = _dataset(self.path, self._file, DEPTH_KEY)
            ts = _dataset(self.path, self._file, DEPTH_TS_KEY)
            if self._depth.ndim != 3 or self._depth.shape[1:] != (height, width):
                raise MvsecError(f'{self.path}: {DEPTH_KEY} has shape {self._depth.shape}, '
                                 f'expected (N, {height}, {width})')
            if self._depth.dtype.kind != 'f':
                raise MvsecError(f'{self.path}: {DEPTH_KEY} has dtype {self._depth.dtype}, '
                                 f'expected float')
            if ts.ndim != 1 or ts.shape[0] != self._depth.shape[0]:
                raise MvsecError(f'{self.path}: {DEPTH_TS_KEY} has shape {ts.shape}, expected '
                                 f'({self._depth.shape[0]},) like {DEPTH_KEY}')
            try:
                self.timestamps = np.asarray(ts[()], dtype=np.float64)
            except Exception as exc:
                raise MvsecError(f'{self.path}: cannot read {DEPTH_TS_KEY} ({exc})') from None
            if not np.all(np.isfinite(self.timestamps)):
                raise MvsecError(f'{self.path}: {DEPTH_TS_KEY} contains NaN or infinite values')
        except Exception:
            self._file.close()
            raise

    def __len__(self) -> int:
        return len(self.timestamps)

    def depth(self, index: int | slice) -> np.ndarray:
        """Depth frame(s) as float32 metres, NaN unknown."""
        try:
            return np.asarray(self._depth[index], dtype=np.float32)
        except (IndexError, TypeError):
            raise
        except Exception as exc:
            raise MvsecError(f'{self.path}: cannot read {DEPTH_KEY}[{index}] ({exc})') from None

    def close(self) -> None:
        """Close the HDF5 file."""
        self._file.close()

    def __enter__(self) -> 'MvsecGroundTruth':
        return self

    def __exit__(self, *exc) -> None:
        self.close()
