"""The reference windowing of StereoSpike, computed streaming per chunk of events (offline).

Reference mode (default, bit for bit the reference's rule): with ``ts`` the (already cropped) LEFT
depth timestamps and ``L`` the window length (50 ms),

1. keep events of both cameras with ``ts[0] - L < t < ts[-1]`` (strict, float64 seconds);
2. rectify and drop out-of-range events (:mod:`encoding`);
3. per camera ``t0`` = its own first remaining event; window ``k`` holds ``k*L < t - t0 < (k+1)*L``
   (strict both sides; ``k*L`` computed as ``k * window_ms / 1000``, which equals ``k / 20`` for
   50 ms), so events exactly on a boundary, ``t0`` included, are lost (counted ``window_edges``);
4. window ``k`` pairs with depth frame ``k`` by index; ``len(ts)`` windows per camera.

Depth-aligned mode (option): window ``k`` is ``(ts[k] - L, ts[k]]``, common to both cameras;
events in gaps between windows are counted ``outside_windows``; overlapping windows share events.

Events must arrive in time order per camera; the policy is :mod:`events`'s
(``unsorted='error'`` raises :class:`WindowError`, ``'drop'`` drops and counts every event earlier
than one already seen). Only the open windows and one chunk are held in memory, as uint16
counts, binned by :func:`encoding.bin_codes` (the same binning as the live node's).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator

import numpy as np

from stereospike_ros.io.errors import InputError
from stereospike_ros.io.events import UNSORTED_POLICIES, EventOrderError, apply_order_policy
from stereospike_ros.windowing.encoding import Rectifier, bin_codes, drop_stats

REFERENCE = 'reference'
DEPTH_ALIGNED = 'depth-aligned'
WINDOW_MODES = (REFERENCE, DEPTH_ALIGNED)

#: Per-camera event accounting. ``read`` = events handed in; every one ends in exactly one of
#: non_finite, unsorted, outside_span, beyond_sensor, out_of_range, window_edges,
#: outside_windows, kept (``rect_edge`` is the part of ``out_of_range`` rectified onto column W /
#: row H; ``saturated`` counts increments clipped at 65535).
STAT_KEYS = ('read', 'non_finite', 'unsorted', 'outside_span', 'beyond_sensor', 'out_of_range',
             'rect_edge', 'window_edges', 'outside_windows', 'kept', 'saturated')
PARTITION_KEYS = ('non_finite', 'unsorted', 'outside_span', 'beyond_sensor', 'out_of_range',
                  'window_edges', 'outside_windows', 'kept')


class WindowError(InputError):
    """Bad window definition or events that violate the windowing preconditions."""


@dataclass(frozen=True)
class WindowGrid:
    """Window definition of a sequence: bounds per window in each camera's time base, the span."""

    mode: str
    window_ms: float
    depth_ts: np.ndarray   # float64 s, the cropped left depth timestamps
    starts: np.ndarray     # float64, exclusive lower bound of window k
    ends: np.ndarray       # float64, upper bound (exclusive in reference mode, else inclusive)
    span_lo: float         # exclusive
    span_hi: float         # exclusive in reference mode, inclusive otherwise

    @classmethod
    def make(cls, depth_ts: np.ndarray, mode: str = REFERENCE,
             window_ms: float = 50.0) -> 'WindowGrid':
        """Build the grid for the cropped left depth timestamps ``depth_ts`` (float64 seconds)."""
        if mode not in WINDOW_MODES:
            raise WindowError(f'window mode must be one of {WINDOW_MODES}, not {mode!r}')
        window_ms = float(window_ms)
        if not np.isfinite(window_ms) or window_ms <= 0:
            raise WindowError(f'window length must be positive, not {window_ms} ms')
        ts = np.asarray(depth_ts, dtype=np.float64)
        if ts.ndim != 1 or len(ts) == 0:
            raise WindowError('no depth timestamps to window (empty crop?)')
        if not np.all(np.isfinite(ts)):
            raise WindowError('depth timestamps contain NaN or infinite values')
        if len(ts) > 1 and not np.all(ts[1:] > ts[:-1]):
            i = int(np.flatnonzero(ts[1:] <= ts[:-1])[0]) + 1
            raise WindowError(f'depth timestamps not strictly increasing at frame {i} '
                              f'({ts[i - 1]!r} -> {ts[i]!r})')
        length = window_ms / 1000.0
        span_lo = float(ts[0] - length)
        if mode == REFERENCE:
            k = np.arange(len(ts) + 1, dtype=np.float64)
            bounds = k * window_ms / 1000.0
            starts, ends = bounds[:-1], bounds[1:]
        else:
            starts, ends = ts - length, ts.copy()
        return cls(mode, window_ms, ts, starts, ends, span_lo, float(ts[-1]))

    def __len__(self) -> int:
        return len(self.depth_ts)

    @property
    def reference(self) -> bool:
        """True for the reference per-camera grid."""
        return self.mode == REFERENCE


class CameraWindower:
    """Streaming per-camera windowing: feed time-ordered chunks, get completed windows in order.

    Completed windows come back as ``(k, counts)`` with ``counts`` uint16 ``(2, H, W)`` (ON,
    OFF) or ``None`` for a window without events; ``stats`` holds the accounting
    (:data:`STAT_KEYS`).
    """

    def __init__(self, grid: WindowGrid, rectifier: Rectifier, name: str = 'camera',
                 unsorted: str = 'error', check_order: bool = True) -> None:
        if unsorted not in UNSORTED_POLICIES:
            raise WindowError(f'unsorted policy must be one of {UNSORTED_POLICIES}')
        self.grid, self.rect, self.name, self.unsorted = grid, rectifier, name, unsorted
        self.check_order = check_order  # False only for sources that already enforce it
        self.stats = dict.fromkeys(STAT_KEYS, 0)
        self.t0: float | None = None
        self.next_k = 0
        self._open: dict[int, np.ndarray] = {}
        self._last = -np.inf
        if grid.reference:
            self._lo_side, self._hi_side = 'right', 'left'
            self._seg_lo, self._seg_hi = grid.starts, grid.ends
        else:
            self._lo_side, self._hi_side = 'right', 'right'
            # Union of the (start, end] windows: a new segment begins where a window starts
            # after the previous one ended.
            new = np.ones(len(grid), bool)
            new[1:] = grid.starts[1:] > grid.ends[:-1]
            first = np.flatnonzero(new)
            last = np.append(first[1:] - 1, len(grid) - 1)
            self._seg_lo, self._seg_hi = grid.starts[first], grid.ends[last]

    def feed(self, x: np.ndarray, y: np.ndarray, seconds: np.ndarray,
             on: np.ndarray) -> list[tuple[int, np.ndarray | None]]:
        """Add one chunk (raw integer ``x, y``, float64 ``seconds``, ON flags) in time order."""
        seconds = np.asarray(seconds, dtype=np.float64)
        n = len(seconds)
        st = self.stats
        st['read'] += n
        if n == 0:
            return []
        keep = None
        if self.check_order:
            try:
                keep, self._last, non_finite, unsorted = apply_order_policy(
                    seconds, self._last, self.unsorted)
            except EventOrderError as err:
                raise WindowError(
                    f'{self.name}: event times not in order at event '
                    f'{st["read"] - n + err.index} ({err.before!r} -> {err.after!r}); '
                    f'--unsorted drop drops and counts such events') from None
        else:
            self._last = float(seconds[-1])
        if keep is not None:
            st['non_finite'] += non_finite
            st['unsorted'] += unsorted
            x, y, seconds, on = x[keep], y[keep], seconds[keep], on[keep]
        if len(seconds):
            g = self.grid
            i0 = int(np.searchsorted(seconds, g.span_lo, 'right'))
            i1 = int(np.searchsorted(seconds, g.span_hi, 'left' if g.reference else 'right'))
            i1 = max(i0, i1)
            st['outside_span'] += len(seconds) - (i1 - i0)
            if i1 - i0 != len(seconds):
                x, y, seconds, on = x[i0:i1], y[i0:i1], seconds[i0:i1], on[i0:i1]
        if len(seconds):
            codes = self.rect.lookup(x, y, on)
            trash = self.rect.trash
            dropped = codes >= trash
            n_drop = int(np.count_nonzero(dropped))
            if n_drop:
                for key, value in drop_stats(np.bincount(codes[dropped] - trash,
                                                         minlength=3)).items():
                    st[key] += value
            if n_drop < len(codes):
                self._bin(codes, seconds, len(codes) - n_drop, dropped if n_drop else None)
        return self._complete(self._last)

    def _bin(self, codes: np.ndarray, seconds: np.ndarray, n_valid: int,
             dropped: np.ndarray | None) -> None:
        """Bin a chunk's codes (drops in the drop bins) into its windows; do the accounting."""
        g, st = self.grid, self.stats
        if g.reference:
            if self.t0 is None:
                first = 0 if dropped is None else int(np.argmin(dropped))
                self.t0 = float(seconds[first])
            v = seconds - self.t0
        else:
            v = seconds
        lo = np.searchsorted(v, g.starts, self._lo_side)
        hi = np.searchsorted(v, g.ends, self._hi_side)
        w, h = self.rect.width, self.rect.height
        covered = 0
        for k in np.flatnonzero(hi > lo):
            k = int(k)
            if k < self.next_k:  # cannot happen for time-ordered input
                raise WindowError(f'{self.name}: events for window {k} after it was completed')
            acc = self._open.get(k)
            if acc is None:
                acc = self._open[k] = np.zeros((2, h, w), np.uint16)
            clipped, drops = bin_codes(codes[lo[k]:hi[k]], acc)
            st['saturated'] += clipped
            covered += int(hi[k] - lo[k]) - int(drops.sum())
        if g.reference:
            a = int(np.searchsorted(v, g.ends[-1], 'right'))
            after = len(v) - a
            if after and dropped is not None:
                after -= int(np.count_nonzero(dropped[a:]))
            st['kept'] += covered
            st['outside_windows'] += after
            st['window_edges'] += n_valid - covered - after
        else:  # windows may overlap: count events in their union once
            seg_lo = np.searchsorted(v, self._seg_lo, self._lo_side)
            seg_hi = np.searchsorted(v, self._seg_hi, self._hi_side)
            union = 0
            for a, b in zip(seg_lo.tolist(), seg_hi.tolist()):
                if b > a:
                    union += b - a
                    if dropped is not None:
                        union -= int(np.count_nonzero(dropped[a:b]))
            st['kept'] += union
            st['outside_windows'] += n_valid - union

    def _complete(self, last_seconds: float) -> list[tuple[int, np.ndarray | None]]:
        """Pop every window that no event at or after ``last_seconds`` can still fall into."""
        g = self.grid
        if g.reference:
            if self.t0 is None:
                return []
            done = int(np.searchsorted(g.ends, last_seconds - self.t0, 'right'))
        else:
            done = int(np.searchsorted(g.ends, last_seconds, 'left'))
        return self._emit(done)

    def _emit(self, done: int) -> list[tuple[int, np.ndarray | None]]:
        out = [(k, self._open.pop(k, None)) for k in range(self.next_k, done)]
        self.next_k = max(self.next_k, done)
        return out

    def finish(self) -> list[tuple[int, np.ndarray | None]]:
        """Complete every remaining window (end of the event stream)."""
        return self._emit(len(self.grid))


ChunkSource = Iterable[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]


def _camera_stream(windower: CameraWindower, chunks: ChunkSource) -> Iterator[tuple]:
    for x, y, seconds, on in chunks:
        yield from windower.feed(x, y, seconds, on)
    yield from windower.finish()


def iter_stereo_windows(left: ChunkSource, right: ChunkSource, grid: WindowGrid,
                        rect_left: Rectifier, rect_right: Rectifier, unsorted: str = 'error',
                        stats: dict | None = None, check_order: bool = True
                        ) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(k, counts)``, k = 0..N-1, counts uint16 ``(4, H, W)`` [L_ON, L_OFF, R_ON, R_OFF].

    ``left`` / ``right`` are time-ordered ``(x, y, seconds, on)`` chunks; the yielded array is a
    reused buffer (copy it to keep it). ``stats`` (if given) receives ``{'left': {...},
    'right': {...}}`` accounting dicts, final once the iterator is exhausted. ``check_order``
    False skips the time-order check for sources that enforce it themselves (MvsecData).
    """
    w, h = rect_left.width, rect_left.height
    if (rect_right.width, rect_right.height) != (w, h):
        raise WindowError('left and right rectifiers have different sensor sizes')
    wl = CameraWindower(grid, rect_left, 'left', unsorted, check_order)
    wr = CameraWindower(grid, rect_right, 'right', unsorted, check_order)
    if stats is not None:
        stats['left'], stats['right'] = wl.stats, wr.stats
    buf = np.zeros((4, h, w), np.uint16)
    for (kl, cl), (kr, cr) in zip(_camera_stream(wl, left), _camera_stream(wr, right)):
        if kl != kr:  # both streams emit every k in order
            raise WindowError(f'internal: left window {kl} paired with right window {kr}')
        for i, c in ((0, cl), (2, cr)):
            if c is None:
                buf[i:i + 2] = 0
            else:
                buf[i:i + 2] = c
        yield kl, buf
