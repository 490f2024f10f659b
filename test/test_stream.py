"""Live stereo windower: grid, waiting, silent camera, resets, reordering, bounds, binning."""
import numpy as np
import pytest

from stereospike_ros.io.events import ns_to_seconds
from stereospike_ros.windowing.encoding import Rectifier, encode_window
from stereospike_ros.windowing.reference import DEPTH_ALIGNED, WindowGrid, iter_stereo_windows
from stereospike_ros.windowing.stream import StereoWindower, StreamConfig, StreamConfigError
from support.data import MS, T0, make_events


class FakeClock:
    """Manually advanced wall clock (seconds)."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def messages(ev, t_start, t_stop, step_ns):
    """Split events into messages of ``step_ns``; stamp = end of each message's span."""
    for lo in range(t_start, t_stop, step_ns):
        yield ev.time_slice(lo, lo + step_ns), lo + step_ns


def feed(win, clock, streams, step_ns, t_start, t_stop, order=('left', 'right')):
    """Interleave messages of both cameras, advancing the clock 1 ms per message."""
    gens = {side: messages(streams[side], t_start, t_stop, step_ns) for side in order}
    out = []
    for _ in range((t_stop - t_start) // step_ns):
        for side in order:
            ev, stamp = next(gens[side])
            clock.now += 0.001
            win.add(side, ev, stamp)
        out.extend(win.pop_ready())
    return out


def test_windows_on_grid_match_slices_of_the_streams():
    clock = FakeClock()
    win = StereoWindower(StreamConfig(window_ms=50, rate_hz=20), clock=clock)
    streams = {'left': make_events(T0, T0 + 1000 * MS, 50_000, 1),
               'right': make_events(T0, T0 + 1000 * MS, 40_000, 2)}
    out = feed(win, clock, streams, 10 * MS, T0, T0 + 1000 * MS)
    ends = [w.end_ns for w in out]
    assert all(e % (50 * MS) == 0 for e in ends)
    assert np.all(np.diff(ends) == 50 * MS)
    assert ends[0] - 50 * MS >= T0 and ends[-1] <= T0 + 1000 * MS
    assert len(out) >= 18
    for w in out:
        assert w.generation == 0 and w.silent == ()
        for side in ('left', 'right'):
            ref = streams[side].time_slice(w.end_ns - 50 * MS, w.end_ns)
            got = getattr(w, side)
            np.testing.assert_array_equal(got.t, ref.t)
            np.testing.assert_array_equal(got.x, ref.x)
            np.testing.assert_array_equal(got.p, ref.p)
    # Buffers are trimmed: only the open window's events remain.
    assert win.stats()['buffered_left'] < len(streams['left']) // 5


def test_sliding_windows_overlap():
    clock = FakeClock()
    win = StereoWindower(StreamConfig(window_ms=50, rate_hz=100), clock=clock)
    streams = {s: make_events(T0, T0 + 300 * MS, 20_000, i)
               for i, s in enumerate(('left', 'right'))}
    out = feed(win, clock, streams, 5 * MS, T0, T0 + 300 * MS)
    assert np.all(np.diff([w.end_ns for w in out]) == 10 * MS)
    a, b = out[3], out[4]
    shared = a.left.time_slice(b.start_ns, b.end_ns)
    assert len(shared) > 0
    np.testing.assert_array_equal(shared.t, b.left.time_slice(b.start_ns, a.end_ns).t)


def test_waits_for_both_cameras_then_times_out_on_a_silent_one():
    clock = FakeClock()
    win = StereoWindower(StreamConfig(window_ms=50, rate_hz=20, max_wait_ms=100), clock=clock)
    left = make_events(T0, T0 + 400 * MS, 10_000, 3)
    right = make_events(T0, T0 + 100 * MS, 10_000, 4)
    win.add('right', right, T0 + 100 * MS)
    win.add('left', left.time_slice(T0, T0 + 100 * MS), T0 + 100 * MS)
    first = win.pop_ready()
    assert len(first) == 1 and first[0].silent == ()
    win.add('left', left.time_slice(T0 + 100 * MS, T0 + 400 * MS), T0 + 400 * MS)
    assert win.pop_ready() == []            # right has not reached the next end yet
    clock.now += 0.05
    assert win.pop_ready() == []            # still within max_wait
    clock.now += 0.06
    late = win.pop_ready()
    assert [w.silent for w in late] == [('right',)] * len(late) and len(late) >= 3
    stats = win.stats()
    assert stats['windows_timeout_right_silent'] == len(late)
    # Windows further back than the horizon behind the newest time are skipped, counted.
    assert len(late) + stats.get('windows_stale', 0) == 6
    assert all(len(w.right) == 0 and len(w.left) > 0 for w in late)


def test_one_camera_never_sends():
    clock = FakeClock()
    win = StereoWindower(StreamConfig(max_wait_ms=100), clock=clock)
    win.add('left', make_events(T0, T0 + 200 * MS, 10_000, 5), T0 + 200 * MS)
    assert win.pop_ready() == []
    clock.now += 0.2
    out = win.pop_ready()
    assert len(out) >= 2 and all(w.silent == ('right',) for w in out)


def test_time_going_back_resets_and_ignores_the_other_cameras_old_timeline():
    clock = FakeClock()
    win = StereoWindower(StreamConfig(), clock=clock)
    streams = {s: make_events(T0, T0 + 500 * MS, 10_000, i) for i, s in enumerate(('left',
                                                                                   'right'))}
    before = feed(win, clock, streams, 10 * MS, T0, T0 + 300 * MS)
    assert before and all(w.generation == 0 for w in before)
    # Left loops back to T0 (bag loop); right still sends two messages of its old timeline.
    win.add('left', streams['left'].time_slice(T0, T0 + 10 * MS), T0 + 10 * MS)
    assert win.generation == 1
    old = streams['right'].time_slice(T0 + 300 * MS, T0 + 320 * MS)
    win.add('right', old, T0 + 320 * MS)
    assert win.generation == 1
    stats = win.stats()
    assert stats['resets'] == 1 and stats['dropped_pre_reset_right'] == len(old)
    assert stats['buffered_right'] == 0
    win.add('right', streams['right'].time_slice(T0, T0 + 10 * MS), T0 + 10 * MS)
    after = feed(win, clock, streams, 10 * MS, T0 + 10 * MS, T0 + 300 * MS)
    assert after and all(w.generation == 1 for w in after)
    assert win.generation == 1
    for w in after:
        ref = streams['right'].time_slice(w.start_ns, w.end_ns)
        np.testing.assert_array_equal(w.right.t, ref.t)


def test_out_of_order_messages_are_sorted_and_late_ones_dropped():
    clock = FakeClock()
    win = StereoWindower(StreamConfig(), clock=clock)
    ev = make_events(T0, T0 + 200 * MS, 20_000, 7)
    right = make_events(T0, T0 + 200 * MS, 20_000, 8)
    chunks = list(messages(ev, T0, T0 + 200 * MS, 10 * MS))
    chunks[3], chunks[4] = chunks[4], chunks[3]
    win.add('right', right, T0 + 200 * MS)
    for e, stamp in chunks:
        win.add('left', e, stamp)
    out = win.pop_ready()
    for w in out:
        np.testing.assert_array_equal(w.left.t, ev.time_slice(w.start_ns, w.end_ns).t)
    assert win.stats()['reordered_messages_left'] == 1
    late = ev.time_slice(T0 + 150 * MS, T0 + 160 * MS)
    win.add('left', late, T0 + 160 * MS)
    assert win.generation == 0
    assert win.stats()['dropped_late_left'] == len(late)


def test_gaps_between_short_windows_are_not_counted_as_late():
    """window_ms < 1/rate_hz: events in the gaps are unused by design, not late arrivals."""
    clock = FakeClock()
    win = StereoWindower(StreamConfig(window_ms=50, rate_hz=10), clock=clock)
    streams = {s: make_events(T0, T0 + 500 * MS, 20_000, 21 + i)
               for i, s in enumerate(('left', 'right'))}
    out = feed(win, clock, streams, 10 * MS, T0, T0 + 500 * MS)
    assert [w.end_ns - w.start_ns for w in out] == [50 * MS] * len(out) and len(out) >= 4
    stats = win.stats()
    assert 'dropped_late_left' not in stats and 'dropped_late_right' not in stats
    # Every event is in a window or counted once (before the first and after the last too).
    for side in ('left', 'right'):
        t = streams[side].t
        covered = np.zeros(len(t), bool)
        for w in out:
            covered |= (t >= w.start_ns) & (t < w.end_ns)
        assert stats[f'between_windows_{side}'] == int(np.count_nonzero(~covered)) > 0
    late = streams['left'].time_slice(out[-1].end_ns - 30 * MS, out[-1].end_ns - 20 * MS)
    win.add('left', late, out[-1].end_ns - 20 * MS)
    assert win.stats()['dropped_late_left'] == len(late)


def test_storm_is_bounded_and_counted():
    clock = FakeClock()
    cfg = StreamConfig(max_events_per_window=1000, max_wait_ms=50)
    win = StereoWindower(cfg, clock=clock)
    streams = {'left': make_events(T0, T0 + 300 * MS, 2_000_000, 9),
               'right': make_events(T0, T0 + 300 * MS, 5_000, 10)}
    gens = {s: messages(streams[s], T0, T0 + 300 * MS, 10 * MS) for s in streams}
    out = []
    for _ in range(30):
        for side in ('left', 'right'):
            win.add(side, *next(gens[side]))
            assert win.stats()['buffered_left'] <= cfg.buffer_capacity
        out.extend(win.pop_ready())
    stats = win.stats()
    assert len(out) >= 4 and all(len(w.left) == 1000 for w in out)
    assert stats['dropped_buffer_full_left'] > 0 and stats['dropped_window_overflow_left'] > 0
    assert 'dropped_buffer_full_right' not in stats


def test_forward_jump_skips_stale_windows_instead_of_flooding():
    clock = FakeClock()
    win = StereoWindower(StreamConfig(), clock=clock)
    for side, seed in (('left', 1), ('right', 2)):
        win.add(side, make_events(T0, T0 + 100 * MS, 1000, seed), T0 + 100 * MS)
    assert win.pop_ready()
    later = T0 + 3600 * 1000 * MS
    for side, seed in (('left', 3), ('right', 4)):
        win.add(side, make_events(later, later + 100 * MS, 1000, seed), later + 100 * MS)
    out = win.pop_ready()
    assert 1 <= len(out) <= 5
    assert win.stats()['windows_stale'] > 70_000


@pytest.mark.parametrize('kwargs', [{'rate_hz': 0}, {'rate_hz': -5}, {'window_ms': 0},
                                    {'window_ms': float('nan')}, {'max_events_per_window': 0}])
def test_invalid_config_is_refused(kwargs):
    with pytest.raises(StreamConfigError):
        StreamConfig(**kwargs)


def test_cut_windows_bin_like_the_offline_reference_windows():
    """Live and offline share one binning: a live window's counts equal the depth-aligned
    reference window ending at the same time (``(end - L, end]`` in float64 seconds there,
    ``[end - L, end)`` in int64 ns here: no event of this stream lies within 1 us of a bound)."""
    clock = FakeClock()
    rng = np.random.default_rng(0)
    xm = (np.arange(346, dtype=np.float32)[None, :] * 0.98 + 2).repeat(260, 0)
    ym = (np.arange(260, dtype=np.float32)[:, None] * 1.01 - 1).repeat(346, 1)
    rect_l = Rectifier(346, 260, xm, ym)
    rect_r = Rectifier(346, 260, xm + rng.random(xm.shape, np.float32), ym)
    win = StereoWindower(StreamConfig(), clock=clock)
    streams = {s: make_events(T0, T0 + 200 * MS, 50_000, i) for i, s in enumerate(('left',
                                                                                   'right'))}
    out = feed(win, clock, streams, 10 * MS, T0, T0 + 200 * MS)
    assert out
    ends = ns_to_seconds(np.array([w.end_ns for w in out]))
    phase = np.concatenate([streams[s].t for s in streams]) % (50 * MS)
    assert np.minimum(phase, 50 * MS - phase).min() > 1000
    grid = WindowGrid.make(ends, DEPTH_ALIGNED, 50.0)
    chunks = [[(e.x, e.y, e.seconds, e.p)] for e in streams.values()]
    offline = [c.copy() for _, c in iter_stereo_windows(*chunks, grid, rect_l, rect_r)]
    for w, ref in zip(out, offline, strict=True):
        live, stats = encode_window(w.left, w.right, rect_l, rect_r)
        assert live.dtype == ref.dtype and live.shape == (4, 260, 346)
        assert live.tobytes() == ref.tobytes() and stats['out_of_range'] > 0
