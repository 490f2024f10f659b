"""The reference windowing on hand-built cases and against a literal per-window implementation."""
import numpy as np
import pytest

from stereospike_ros.windowing.encoding import Rectifier
from stereospike_ros.windowing.reference import (DEPTH_ALIGNED, PARTITION_KEYS, CameraWindower,
                                                 WindowError, WindowGrid, iter_stereo_windows)

W, H = 5, 3


def chunk(t, x=None, y=None, on=None):
    n = len(t)
    x = np.zeros(n, np.uint16) if x is None else np.asarray(x, np.uint16)
    y = np.zeros(n, np.uint16) if y is None else np.asarray(y, np.uint16)
    on = np.ones(n, bool) if on is None else np.asarray(on, bool)
    return x, y, np.asarray(t, np.float64), on


def run(left, right, ts, mode='reference', window_ms=50.0, rect=None, unsorted='error'):
    """Window single-chunk streams; returns (N, 4, H, W) counts and stats."""
    rect = rect or Rectifier(W, H)
    grid = WindowGrid.make(np.asarray(ts, np.float64), mode, window_ms)
    stats = {}
    out = [c.copy() for _, c in iter_stereo_windows([left], [right], grid, rect, rect,
                                                    unsorted, stats)]
    return np.array(out), stats


def per_window(counts):
    """Total events per window of the left camera."""
    return counts[:, :2].sum(axis=(1, 2, 3)).tolist()


def test_boundaries_and_t0_lost():
    ts = 0.04 + 0.05 * np.arange(4)          # span (-0.01, 0.19); t0 = 0.0 makes k/20 exact
    b = np.arange(5) / 20
    t = [0.0, 0.0, 0.01, b[1], np.nextafter(b[1], 1), np.nextafter(b[2], 0), b[2], 0.17]
    counts, stats = run(chunk(t), chunk([0.001]), ts)
    assert counts.shape == (4, 4, H, W)
    assert per_window(counts) == [1, 2, 0, 1]       # both t0 events and two boundary ones lost
    assert stats['left']['window_edges'] == 4
    assert stats['left']['kept'] == 4
    assert stats['right']['window_edges'] == 1      # the right camera's own t0
    assert counts[:, 2:].sum() == 0


def test_strict_time_span_and_per_camera_t0():
    ts = np.array([10.0, 10.05, 10.1])
    lo, hi = ts[0] - 0.05, ts[-1]
    left = chunk([lo, np.nextafter(lo, 11), 10.0, 10.02, np.nextafter(hi, 0), hi, 10.5])
    # right camera's first event comes 30 ms later: its grid starts there
    right = chunk([10.0 - 0.02, 10.0 - 0.015, 10.0 + 0.031, 10.0 + 0.04])
    counts, stats = run(left, right, ts)
    assert stats['left']['outside_span'] == 3       # == lo, == ts[-1], beyond
    # left t0 = nextafter(lo): 10.0 - t0 is just below 0.05 (window 0), 10.02 -> 0.07 (window 1),
    # nextafter(ts[-1]) - t0 just below 0.15 (window 2); t0 itself is lost
    assert per_window(counts) == [1, 1, 1]
    assert stats['left']['window_edges'] == 1
    # right t0 = 9.98 (30 ms after the left one): dt 0.005, 0.051, 0.06
    assert counts[:, 2:].sum(axis=(1, 2, 3)).tolist() == [1, 2, 0]
    for side in ('left', 'right'):
        s = stats[side]
        assert s['read'] == sum(s[k] for k in PARTITION_KEYS)


def test_rectification_drop_happens_before_t0():
    xm = np.tile(np.arange(W, dtype=np.float32), (H, 1))
    ym = np.tile(np.arange(H, dtype=np.float32)[:, None], (1, W))
    xm[0, 4] = -1.0                                  # raw pixel (4, 0) rectifies out of range
    rect = Rectifier(W, H, xm, ym)
    ts = 0.04 + 0.05 * np.arange(2)
    left = chunk([0.0, 0.05, 0.07], x=[4, 1, 1])    # first event dropped: t0 = 0.05
    counts, stats = run(left, chunk([0.0]), ts, rect=rect)
    assert stats['left']['out_of_range'] == 1
    assert stats['left']['window_edges'] == 1       # the event at t0 = 0.05
    assert per_window(counts) == [1, 0]             # 0.07 - 0.05 = 0.02 -> window 0


def test_depth_aligned_windows_overlap_and_gaps():
    ts = np.array([1.0, 1.05, 1.1])
    t = [0.95, np.nextafter(0.95, 1), 1.0, 1.03, 1.05, 1.1]
    counts, stats = run(chunk(t), chunk(t), ts, mode=DEPTH_ALIGNED)
    assert per_window(counts) == [2, 2, 1]          # (ts-L, ts]: ts included, ts-L excluded
    assert np.array_equal(counts[:, :2], counts[:, 2:])  # common to both cameras
    assert stats['left']['outside_span'] == 1
    long_, st2 = run(chunk(t), chunk(t), ts, mode=DEPTH_ALIGNED, window_ms=100.0)
    # overlapping windows share events; fl(1.05 - 0.1) == nextafter(0.95) is excluded
    assert per_window(long_) == [3, 3, 3]
    assert st2['left']['kept'] == 6 and st2['left']['outside_span'] == 0
    short, st3 = run(chunk(t), chunk(t), ts, mode=DEPTH_ALIGNED, window_ms=20.0)
    assert per_window(short) == [1, 1, 1]           # 1.03 falls between windows
    assert st3['left']['outside_windows'] == 1


def literal_reference(t, x, y, on, ts, window_ms, width, height):
    """The reference rule written out per window with boolean masks (an independent oracle)."""
    t = np.asarray(t)
    keep = (t > ts[0] - window_ms / 1000) & (t < ts[-1])
    t, x, y, on = t[keep], x[keep], y[keep], on[keep]
    out = np.zeros((len(ts), 2, height, width), np.int64)
    if not len(t):
        return out
    dt = t - t[0]
    for k in range(len(ts)):
        sel = (dt > k * window_ms / 1000) & (dt < (k + 1) * window_ms / 1000)
        np.add.at(out[k], ((~on[sel]).astype(int), y[sel].astype(int), x[sel].astype(int)), 1)
    return out


@pytest.mark.parametrize('chunk_size', [1, 7, 1000])
def test_streaming_matches_literal_rule(chunk_size):
    rng = np.random.default_rng(chunk_size)
    ts = 100.0 + 0.05 * np.arange(12) + np.cumsum(rng.uniform(-0.004, 0.004, 12))
    streams = []
    for n in (600, 450):
        t = np.sort(rng.uniform(ts[0] - 0.1, ts[-1] + 0.1, n))
        t[5:9] = t[5]                                # duplicate times
        streams.append((rng.integers(0, W, n).astype(np.uint16),
                        rng.integers(0, H, n).astype(np.uint16), t, rng.random(n) < 0.5))
    for window_ms in (50.0, 37.5):
        grid = WindowGrid.make(ts, 'reference', window_ms)
        rect = Rectifier(W, H)

        def chunks(s):
            return [tuple(a[i:i + chunk_size] for a in s) for i in range(0, len(s[2]), chunk_size)]
        got = np.array([c.copy() for _, c in iter_stereo_windows(
            chunks(streams[0]), chunks(streams[1]), grid, rect, rect)])
        for cam, s in enumerate(streams):
            want = literal_reference(s[2], s[0], s[1], s[3], ts, window_ms, W, H)
            np.testing.assert_array_equal(got[:, 2 * cam:2 * cam + 2], want)


def test_unsorted_events_error_or_drop():
    ts = np.array([1.0, 1.05])
    t = [0.96, 0.97, 0.965, 1.0, np.nan, 1.01]
    with pytest.raises(WindowError, match=r'left: event times not in order at event 2'):
        run(chunk(t), chunk([0.96]), ts)
    counts, stats = run(chunk(t), chunk([0.96]), ts, unsorted='drop')
    assert stats['left']['unsorted'] == 1 and stats['left']['non_finite'] == 1
    assert stats['left']['read'] == sum(stats['left'][k] for k in PARTITION_KEYS)


def test_empty_streams_give_zero_windows_and_bad_grids_fail():
    ts = np.array([1.0, 1.05, 1.1])
    counts, stats = run(chunk([]), chunk([5.0]), ts)
    assert counts.shape == (3, 4, H, W) and counts.sum() == 0
    assert stats['right']['outside_span'] == 1
    w = CameraWindower(WindowGrid.make(ts), Rectifier(W, H))
    assert w.feed(*chunk([])) == [] and len(w.finish()) == 3
    with pytest.raises(WindowError, match='not strictly increasing at frame 2'):
        WindowGrid.make([1.0, 1.1, 1.1])
    with pytest.raises(WindowError, match='no depth timestamps'):
        WindowGrid.make([])
    with pytest.raises(WindowError, match='window length'):
        WindowGrid.make([1.0], window_ms=0)
