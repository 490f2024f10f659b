"""Live stereo windower of the depth node: bounded per-camera buffers in sensor time -> windows.

Plain Python (no ROS): the node's callbacks :meth:`StereoWindower.add` decoded events, a worker
thread calls :meth:`StereoWindower.pop_ready` and bins each :class:`Window`'s events with
``encoding.encode_window`` (the one binning; this module only cuts). Windows are
``[end - window, end)`` in int64 ns, ``end`` on the grid of multiples of ``1 / rate_hz`` (anchored
at time 0: every run and both cameras share it).
"""
from __future__ import annotations

import bisect
import contextlib
import math
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from stereospike_ros.io.errors import InputError
from stereospike_ros.io.events import NS_PER_S, Events

SIDES = ('left', 'right')


class StreamConfigError(InputError):
    """An invalid windowing parameter (the message names it)."""


@dataclass(frozen=True)
class StreamConfig:
    """Windowing parameters of the live node (times in milliseconds of sensor time)."""

    window_ms: float = 50.0
    rate_hz: float = 20.0
    max_wait_ms: float = 100.0
    max_events_per_window: int = 500_000
    time_jump_back_ms: float = 100.0
    stale_reset_wait_ms: float = 1000.0

    def __post_init__(self) -> None:
        checks = (
            ('window_ms', self.window_ms, 0.0, 60_000.0),
            ('rate_hz', self.rate_hz, 0.0, 10_000.0),
            ('max_wait_ms', self.max_wait_ms, -1.0, 60_000.0),
            ('max_events_per_window', self.max_events_per_window, 0, 1e9),
            ('time_jump_back_ms', self.time_jump_back_ms, 0.0, 3.6e6),
            ('stale_reset_wait_ms', self.stale_reset_wait_ms, -1.0, 3.6e6),
        )
        for name, value, low, high in checks:
            if not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or not low < value <= high:
                raise StreamConfigError(
                    f'{name} must be a number in ({low:g}, {high:g}], got {value!r}')
        if self.period_ns < 1:
            raise StreamConfigError(f'rate_hz {self.rate_hz!r} is too high (period below 1 ns)')

    @property
    def window_ns(self) -> int:
        """Window length in ns."""
        return int(round(self.window_ms * 1e6))

    @property
    def period_ns(self) -> int:
        """Grid step between window ends in ns."""
        return int(round(NS_PER_S / self.rate_hz))

    @property
    def horizon_ns(self) -> int:
        """How far behind the newest camera time a window may still be emitted."""
        return self.window_ns + self.period_ns + int(round(self.max_wait_ms * 1e6))

    @property
    def buffer_capacity(self) -> int:
        """Most events one camera buffer holds (excess incoming events are dropped, counted)."""
        windows = -(-self.horizon_ns // min(self.window_ns, self.period_ns)) + 1
        return int(self.max_events_per_window) * int(windows)


@dataclass
class Window:
    """One stereo window: the events of both cameras in ``[start_ns, end_ns)`` and its context.

    ``generation`` is the windower's reset counter when the window was cut: a consumer must not
    publish a window whose generation is older than the windower's current one. ``ready_wall``
    is the wall-clock (``clock``) time at which the last message the window needed arrived.
    ``silent`` names cameras that had not reached ``end_ns`` when ``max_wait_ms`` ran out.
    """

    generation: int
    start_ns: int
    end_ns: int
    left: Events
    right: Events
    ready_wall: float
    silent: tuple = ()


class _Camera:
    """Buffer and clock of one camera (internal)."""

    def __init__(self) -> None:
        self.chunks: list[Events] = []
        self.n = 0
        self.now = -1               # newest sensor time seen (stamp or event), -1 = nothing yet
        self.first = -1             # first event time after the last reset (coverage start)
        self.first_wall = 0.0
        self.unsorted = False
        self.last_t = -1            # newest event time appended
        self.marks: list[tuple[int, float]] = []   # (now after a message, wall time)
        self.stale_above = None     # after a reset caused by the other camera: old timeline
        self.stale_since = 0.0

    def consolidate(self) -> Events:
        """Join the chunks into one time-sorted array (stable sort only when needed)."""
        if len(self.chunks) != 1 or self.unsorted:
            ev = Events.concatenate(self.chunks)
            if self.unsorted:
                order = np.argsort(ev.t, kind='stable')
                ev = ev[order]
                self.unsorted = False
            self.chunks = [ev] if len(ev) else []
        return self.chunks[0] if self.chunks else Events.empty()

    def trim(self, floor_ns: int) -> int:
        """Forget events older than ``floor_ns``; returns how many were forgotten."""
        ev = self.consolidate()
        lo = int(np.searchsorted(ev.t, floor_ns, side='left'))
        if lo:
            ev = ev[lo:]
            self.chunks = [ev] if len(ev) else []
        self.n = len(ev)
        keep = bisect.bisect_left(self.marks, floor_ns, key=lambda m: m[0])
        if keep > 1:
            del self.marks[:keep - 1]
        return lo

    def wall_reaching(self, end_ns: int) -> float:
        """Wall time of the first message after which this camera's time reached ``end_ns``."""
        i = bisect.bisect_left(self.marks, end_ns, key=lambda m: m[0])
        return self.marks[min(i, len(self.marks) - 1)][1] if self.marks else 0.0


class StereoWindower:
    """Cuts time-aligned stereo windows from two live event streams (thread-safe).

    A window is emitted once both cameras' sensor time (newest header stamp or event time) has
    reached its end, or ``max_wait_ms`` of wall time after one camera reached it while the other
    stayed silent (counted per silent camera). Time going back by more than ``time_jump_back_ms``
    in either camera resets both buffers and increments :attr:`generation`. Events older than
    the next window arrive too late for it (``dropped_late_*``), unless they lie in the gap that
    windows shorter than the period leave (``between_windows_*``: unused by design).
    """

    def __init__(self, config: StreamConfig | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 log: Callable[[str], None] | None = None) -> None:
        self.config = config or StreamConfig()
        self._clock = clock
        self._log = log or (lambda message: None)
        self._lock = threading.Lock()
        self.counters: Counter = Counter()
        self.generation = 0
        self._cams = {side: _Camera() for side in SIDES}
        self._next_end: int | None = None

    # ---------------------------------------------------------------- configuration
    def reconfigure(self, config: StreamConfig) -> None:
        """Switch to new windowing parameters (a reset: buffered events are dropped, counted)."""
        with self._lock:
            self.config = config
            self._reset_locked('parameters changed', None, None, 0.0)

    def _reset_locked(self, reason: str, cause: str | None, new_time: int | None,
                      wall: float) -> None:
        for side, cam in self._cams.items():
            if cam.n:
                self.counters[f'dropped_reset_{side}'] += cam.n
            fresh = _Camera()
            if cause is not None and side != cause and cam.now >= 0 and new_time is not None \
                    and cam.now > new_time:
                # The other camera is still on the old timeline: ignore it until it follows.
                fresh.stale_above = cam.now
                fresh.stale_since = wall
            self._cams[side] = fresh
        self._next_end = None
        self.generation += 1
        self.counters['resets'] += 1
        self._log(f'stream reset (generation {self.generation}): {reason}')

    # ---------------------------------------------------------------- input
    def add(self, side: str, events: Events, stamp_ns: int | None = None,
            wall: float | None = None) -> None:
        """Append one message's events of camera ``side`` ('left' or 'right')."""
        if side not in self._cams:
            raise ValueError(f'side must be left or right, got {side!r}')
        wall = self._clock() if wall is None else wall
        n = len(events)
        if n == 0 and stamp_ns is None:
            return
        t = events.t
        t_min = int(t.min()) if n else int(stamp_ns)
        t_max = int(t.max()) if n else int(stamp_ns)
        if stamp_ns is not None:
            t_max = max(t_max, int(stamp_ns))
        cfg = self.config
        jump_ns = int(round(cfg.time_jump_back_ms * 1e6))
        with self._lock:
            self.counters[f'messages_{side}'] += 1
            self.counters[f'events_{side}'] += n
            cam = self._cams[side]
            if cam.stale_above is not None:
                if t_min >= cam.stale_above - jump_ns:
                    if wall - cam.stale_since < cfg.stale_reset_wait_ms / 1000.0:
                        self.counters[f'dropped_pre_reset_{side}'] += n
                        return
                    self._reset_locked(f'{side} camera stayed on its old timeline', side,
                                       t_min, wall)
                    cam = self._cams[side]
                cam.stale_above = None
            elif cam.now >= 0 and t_min < cam.now - jump_ns:
                self._reset_locked(
                    f'{side} camera time went back by {(cam.now - t_min) / 1e6:.1f} ms',
                    side, t_min, wall)
                cam = self._cams[side]
            if n:
                floor = self._floor_locked()
                if floor is not None and t_min < floor:
                    keep = t >= floor
                    dropped = n - int(np.count_nonzero(keep))
                    gap = int(np.count_nonzero((t >= self._gap_start_locked()) & ~keep))
                    if gap:
                        self.counters[f'between_windows_{side}'] += gap
                    if dropped > gap:
                        self.counters[f'dropped_late_{side}'] += dropped - gap
                    events = events[keep]
                    n = len(events)
                    t = events.t
                room = cfg.buffer_capacity - cam.n
                if n > room and cam.n and floor is not None:
                    self._forget(side, cam, floor)      # before the next window: never needed
                    room = cfg.buffer_capacity - cam.n
                if n > room and cam.n:
                    # Events too old for any window that can still be emitted go next.
                    newest = max(c.now for c in self._cams.values())
                    self.counters[f'dropped_stale_{side}'] += cam.trim(newest - cfg.horizon_ns)
                    room = cfg.buffer_capacity - cam.n
                if n > room:
                    self.counters[f'dropped_buffer_full_{side}'] += n - max(room, 0)
                    events = events[:max(room, 0)]
                    n = len(events)
                    t = events.t
            if n:
                if t[0] < cam.last_t or (n > 1 and bool(np.any(t[1:] < t[:-1]))):
                    cam.unsorted = True
                    self.counters[f'reordered_messages_{side}'] += 1
                cam.last_t = max(cam.last_t, int(t.max()))
                cam.chunks.append(events)
                cam.n += n
                if cam.first < 0:
                    cam.first = int(t.min())
                    cam.first_wall = wall
            if t_max > cam.now:
                cam.now = t_max
                cam.marks.append((t_max, wall))

    def _floor_locked(self) -> int | None:
        """Oldest event time still needed (start of the next window), None before the grid."""
        if self._next_end is None:
            return None
        return self._next_end - self.config.window_ns

    # ---------------------------------------------------------------- output
    def pop_ready(self, wall: float | None = None) -> list[Window]:
        """Cut every window that is complete (or timed out) now, oldest first."""
        wall = self._clock() if wall is None else wall
        cfg = self.config
        window_ns, period_ns = cfg.window_ns, cfg.period_ns
        max_wait = cfg.max_wait_ms / 1000.0
        out: list[Window] = []
        with self._lock:
            cams = self._cams
            if self._next_end is None:
                firsts = [c.first for c in cams.values() if c.first >= 0]
                if not firsts:
                    return out
                started = [c for c in cams.values() if c.first >= 0]
                if len(started) < 2 and wall - started[0].first_wall < max_wait:
                    return out
                self._next_end = _ceil_grid(max(firsts) + window_ns, period_ns)
                for side, cam in cams.items():    # what came before the first window
                    self._forget(side, cam, self._next_end - window_ns, gap_from=-1)
            while True:
                end = self._next_end
                newest = max(c.now for c in cams.values())
                oldest_end = newest - cfg.horizon_ns
                if end < oldest_end:
                    new_end = _ceil_grid(oldest_end, period_ns)
                    self.counters['windows_stale'] += (new_end - end) // period_ns
                    self._next_end = end = new_end
                passed = {s: c.now >= end for s, c in cams.items()}
                if all(passed.values()):
                    ready = max(c.wall_reaching(end) for c in cams.values())
                    silent: tuple = ()
                elif any(passed.values()):
                    first_pass = min(c.wall_reaching(end) for s, c in cams.items() if passed[s])
                    if wall - first_pass < max_wait:
                        break
                    silent = tuple(s for s in SIDES if not passed[s])
                    for s in silent:
                        self.counters[f'windows_timeout_{s}_silent'] += 1
                    ready = wall
                else:
                    break
                parts = {}
                for side, cam in cams.items():
                    ev = cam.consolidate().time_slice(end - window_ns, end)
                    if len(ev) > cfg.max_events_per_window:
                        self.counters[f'dropped_window_overflow_{side}'] += \
                            len(ev) - cfg.max_events_per_window
                        ev = ev[:cfg.max_events_per_window]
                    parts[side] = ev
                out.append(Window(self.generation, end - window_ns, end, parts['left'],
                                  parts['right'], ready, silent))
                self.counters['windows_cut'] += 1
                self._next_end = end + period_ns
            if out:     # forget what no later window needs (one copy per cut, not per call)
                floor = self._next_end - window_ns
                for side, cam in cams.items():
                    self._forget(side, cam, floor)
        return out

    def _gap_start_locked(self) -> int:
        """End of the window before the next one: windows shorter than the period leave a gap
        from here to the next window's start that no window covers (unused by design)."""
        return self._next_end - self.config.period_ns

    def _forget(self, side: str, cam: _Camera, floor: int, gap_from: int | None = None) -> None:
        """Trim ``cam`` below ``floor``, counting the events in the gap before the next window
        (from ``gap_from``: by default :meth:`_gap_start_locked`)."""
        if gap_from is None:
            gap_from = self._gap_start_locked()
        if gap_from < floor:
            t = cam.consolidate().t
            gap = int(np.searchsorted(t, floor) - np.searchsorted(t, gap_from))
            if gap:
                self.counters[f'between_windows_{side}'] += gap
        cam.trim(floor)

    @contextlib.contextmanager
    def guard(self, generation: int) -> Iterator[bool]:
        """Hold off resets while publishing; yields whether ``generation`` is still current."""
        with self._lock:
            yield generation == self.generation

    def stats(self) -> dict:
        """A snapshot of the counters plus buffer sizes and the generation."""
        with self._lock:
            snap = dict(self.counters)
            for side, cam in self._cams.items():
                snap[f'buffered_{side}'] = cam.n
            snap['generation'] = self.generation
        return snap


def _ceil_grid(t_ns: int, period_ns: int) -> int:
    """Smallest multiple of ``period_ns`` that is >= ``t_ns``."""
    return -(-int(t_ns) // period_ns) * period_ns
