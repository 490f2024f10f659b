"""Builders of test data: random event streams, tiny MVSEC HDF5 files and tensors files, and the
shared EventPacket recording."""
from __future__ import annotations

import h5py
import numpy as np

from stereospike_ros.io.events import NS_PER_S, SENSOR_HEIGHT, SENSOR_WIDTH, Events, ns_to_seconds
from stereospike_ros.io.mvsec import DEPTH_KEY, DEPTH_TS_KEY, EVENTS_KEY
from stereospike_ros.io.tensors import TensorsWriter
from support import SHARED

MS = 1_000_000
#: An MVSEC-like absolute time (ns), off the 50 ms grid.
T0 = 1_500_000_000 * NS_PER_S + 7 * MS


def make_events(t_start: int, t_stop: int, rate_per_s: float, seed: int, beyond: int = 0,
                width: int = SENSOR_WIDTH, height: int = SENSOR_HEIGHT) -> Events:
    """Uniformly timed random events in ``[t_start, t_stop)`` ns; ``beyond`` of them outside
    the sensor."""
    rng = np.random.default_rng(seed)
    n = int((t_stop - t_start) / 1e9 * rate_per_s)
    t = np.sort(rng.integers(t_start, t_stop, n)).astype(np.int64)
    x = rng.integers(0, width, n).astype(np.uint16)
    y = rng.integers(0, height, n).astype(np.uint16)
    if beyond:
        idx = rng.choice(n, min(beyond, n), replace=False)
        x[idx] = width + 20
        y[idx[::2]] = height + 5
    return Events(x, y, t, rng.random(n) < 0.5)


def rows(x, y, t, p) -> np.ndarray:
    """MVSEC event rows ``[x, y, t, p]`` float64."""
    return np.stack([np.asarray(v, np.float64) for v in (x, y, t, p)], axis=1)


def random_rows(rng: np.random.Generator, n: int, t0: float, t1: float,
                width: int = SENSOR_WIDTH, height: int = SENSOR_HEIGHT) -> np.ndarray:
    """Sorted random events (times as MVSEC's ``to_sec()`` of int64 ns)."""
    t_ns = np.sort(rng.integers(int(t0 * 1e9), int(t1 * 1e9), n))
    return rows(rng.integers(0, width, n), rng.integers(0, height, n), ns_to_seconds(t_ns),
                rng.choice([-1.0, 1.0], n))


def write_data(path, left: np.ndarray, right: np.ndarray, chunks=None) -> str:
    """Write an MVSEC-layout ``NAME_data.hdf5`` with the given event rows."""
    with h5py.File(path, 'w') as f:
        f.create_dataset(EVENTS_KEY.format(side='left'), data=left, chunks=chunks)
        f.create_dataset(EVENTS_KEY.format(side='right'), data=right, chunks=chunks)
    return str(path)


def write_gt(path, depth: np.ndarray, ts: np.ndarray) -> str:
    """Write an MVSEC-layout ``NAME_gt.hdf5`` with left rectified depth and its timestamps."""
    with h5py.File(path, 'w') as f:
        f[DEPTH_KEY] = np.asarray(depth, np.float32)
        f[DEPTH_TS_KEY] = np.asarray(ts, np.float64)
    return str(path)


def write_tensors(path, n: int = 3, h: int = 2, w: int = 3, attrs: dict | None = None):
    """A valid tiny tensors file with recognisable contents."""
    with TensorsWriter(path, n, h, w) as tw:
        tw.inputs[:] = np.arange(n * 4 * h * w, dtype=np.uint16).reshape(n, 4, h, w)
        tw.depth[:] = np.linspace(1, 2, n * h * w, dtype=np.float32).reshape(n, h, w)
        tw.timestamps[:] = 10.0 + 0.05 * np.arange(n)
        tw.frame_indices[:] = np.arange(n) + 5
        tw.set_attrs({'sequence': 'x', 'crop_requested': [5, 5 + n], 'note': None,
                      **(attrs or {})})
        tw.commit()
    return path


def write_synthetic(path, n, h=24, w=32, seed=0, nan_frac=0.1):
    """Near discs (1.5 m, events ~ Poisson(2)) before a far tilted wall (5-5.5 m, almost none)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    inputs = np.zeros((n, 4, h, w), np.uint16)
    depth = np.zeros((n, h, w), np.float32)
    for i in range(n):
        near = np.zeros((h, w), bool)
        for _ in range(rng.integers(1, 4)):
            cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(h / 8, h / 3)
            near |= (yy - cy) ** 2 + (xx - cx) ** 2 < r ** 2
        d = np.where(near, 1.5, 5.0) + 0.5 * xx / w
        for c in range(4):
            inputs[i, c] = rng.poisson(np.where(near, 2.0, 0.05))
        d[rng.random((h, w)) < nan_frac] = np.nan
        depth[i] = d
    with TensorsWriter(path, n, h, w, compression='none') as wr:
        wr.inputs[...] = inputs
        wr.depth[...] = depth
        wr.timestamps[...] = np.arange(n) * 0.05
        wr.frame_indices[...] = np.arange(n) + 100
        wr.commit()
    return inputs, depth


#: The real EventPacket recording (event_camera_codecs' test_data_mono_cd, encoding ``mono``)
#: in the project's shared folder (``support.SHARED``).
MONO_BAG = SHARED / 'data' / 'event_packet_mono'
MONO_TOPIC = '/event_camera/events'
#: Its published checksums over all events (event_camera_codecs' own decoder test).
MONO_SUMS = {'t': 4_950_000, 'x': 34_450, 'y': 26_450, 'p': 50}


def burst_events(n: int, seed: int, width: int = SENSOR_WIDTH, height: int = SENSOR_HEIGHT,
                 by_row: bool = False) -> Events:
    """Sensor-like bursts of 1-8 events at one time (us), one column (one row with ``by_row``,
    as Prophesee sensors read out), nearby other coordinates and one polarity: the streams the
    vector words of libcaer_cmp and evt3 compress. At least ``n`` events, times from 0."""
    rng = np.random.default_rng(seed)
    out, us, total = [], 0, 0
    while total < n:
        us += int(rng.integers(0, 3))
        fixed = int(rng.integers(0, height if by_row else width))
        span = (width if by_row else height) - 20
        vary = np.unique(rng.integers(0, 20, int(rng.integers(1, 9)))) + \
            int(rng.integers(0, span))
        const = np.full(len(vary), fixed)
        xs, ys = (vary, const) if by_row else (const, vary)
        out.append(Events(xs.astype(np.uint16), ys.astype(np.uint16),
                          np.full(len(vary), us * 1000, np.int64),
                          np.full(len(vary), bool(rng.random() < 0.5))))
        total += len(vary)
    return Events.concatenate(out)
