"""The event type shared by every step (numpy arrays in sensor time) and its time-order policy.

Times are int64 nanoseconds. MVSEC stores float64 seconds made as
``float(sec) + float(nsec) / 1e9``; :func:`seconds_to_ns` and :func:`ns_to_seconds` convert both
ways without changing a single float64, so windows computed in float64 seconds (the reference
rule) are identical for HDF5 and bag input.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NS_PER_S = 1_000_000_000
#: DAVIS346 sensor size (MVSEC's cameras): raw event coordinates are 0 <= x < 346, 0 <= y < 260.
SENSOR_WIDTH = 346
SENSOR_HEIGHT = 260


@dataclass(frozen=True)
class Events:
    """Events of one camera: raw pixel ``x``, ``y`` (uint16), time ``t`` (int64 ns), ON ``p``."""

    x: np.ndarray
    y: np.ndarray
    t: np.ndarray
    p: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.t)
        if not (len(self.x) == len(self.y) == len(self.p) == n):
            raise ValueError(
                f'event field lengths differ: x={len(self.x)} y={len(self.y)} '
                f't={n} p={len(self.p)}')

    @classmethod
    def empty(cls) -> 'Events':
        """Return an array of no events with the canonical dtypes."""
        return cls(np.empty(0, np.uint16), np.empty(0, np.uint16),
                   np.empty(0, np.int64), np.empty(0, bool))

    @classmethod
    def concatenate(cls, parts: 'list[Events]') -> 'Events':
        """Join event arrays in the given order (no sorting)."""
        parts = [e for e in parts if len(e)]
        if not parts:
            return cls.empty()
        if len(parts) == 1:
            return parts[0]
        return cls(np.concatenate([e.x for e in parts]), np.concatenate([e.y for e in parts]),
                   np.concatenate([e.t for e in parts]), np.concatenate([e.p for e in parts]))

    def __len__(self) -> int:
        return len(self.t)

    def __getitem__(self, index) -> 'Events':
        """Select events by slice, boolean mask or index array."""
        return Events(self.x[index], self.y[index], self.t[index], self.p[index])

    def time_slice(self, start_ns: int, stop_ns: int) -> 'Events':
        """Events with ``start_ns <= t < stop_ns``; times must be sorted (a view, no copy)."""
        lo, hi = np.searchsorted(self.t, [start_ns, stop_ns], side='left')
        return self[lo:hi]

    @property
    def seconds(self) -> np.ndarray:
        """Times as MVSEC's float64 seconds (exactly what ``to_sec()`` gave)."""
        return ns_to_seconds(self.t)


def ns_to_seconds(t_ns: np.ndarray) -> np.ndarray:
    """Int64 ns to float64 seconds computed like rospy's ``to_sec()``: ``sec + nsec / 1e9``."""
    t_ns = np.asarray(t_ns, dtype=np.int64)
    sec = np.floor_divide(t_ns, NS_PER_S)       # faster than np.divmod (one division, not two)
    out = np.subtract(t_ns, sec * NS_PER_S).astype(np.float64)
    out /= 1e9
    out += sec                                  # float64(sec) + nsec / 1e9, bit for bit
    return out


def seconds_to_ns(t_s: np.ndarray) -> np.ndarray:
    """Float64 seconds to int64 ns such that :func:`ns_to_seconds` returns the same floats.

    Inputs must be finite; ``float(sec) + float(nsec) / 1e9`` values round-trip bit for bit.
    """
    t_s = np.asarray(t_s, dtype=np.float64)
    sec = np.floor(t_s)
    nsec = np.rint((t_s - sec) * 1e9).astype(np.int64)
    sec = sec.astype(np.int64)
    carry = nsec >= NS_PER_S
    sec[carry] += 1
    nsec[carry] -= NS_PER_S
    return sec * NS_PER_S + nsec


# ---------------------------------------------------------------- the unsorted-time policy
#: What to do with events whose time goes backwards: stop with an error, or drop them (counted).
UNSORTED_POLICIES = ('error', 'drop')


class EventOrderError(ValueError):
    """An event time that is NaN or earlier than the one before it (``unsorted='error'``)."""

    def __init__(self, index: int, before: float, after: float) -> None:
        self.index, self.before, self.after = index, before, after
        self.what = 'non-finite time' if not np.isfinite(after) else 'times decrease'
        super().__init__(f'{self.what} at event {index} ({before!r} -> {after!r})')


def _monotonic_mask(t: np.ndarray, prev_max: float) -> tuple[np.ndarray, float]:
    """Mask of events not earlier than any before (NaN never kept) and the new running max."""
    t = np.asarray(t, dtype=np.float64)
    if not len(t):
        return np.zeros(0, bool), prev_max
    finite = np.isfinite(t)
    run = np.maximum.accumulate(np.where(finite, t, -np.inf))
    run = np.maximum(run, prev_max)
    prev = np.concatenate(([prev_max], run[:-1]))
    return finite & (t >= prev), float(run[-1])


def _first_unsorted(t: np.ndarray, prev: float) -> int:
    """Index of the first time that is NaN or below its predecessor (``prev`` before 0), or -1."""
    t = np.asarray(t, dtype=np.float64)
    if not len(t):
        return -1
    ok = np.empty(len(t), bool)
    ok[0] = t[0] >= prev
    np.greater_equal(t[1:], t[:-1], out=ok[1:])
    bad = np.flatnonzero(~ok)
    return int(bad[0]) if len(bad) else -1


def apply_order_policy(t: np.ndarray, last: float, policy: str
                       ) -> tuple[np.ndarray | None, float, int, int]:
    """Enforce time order on one chunk of float64 times that follows a chunk ending at ``last``.

    Returns ``(keep, new_last, non_finite, unsorted)``: ``keep`` is None when the chunk is in
    order (nothing dropped), else the mask of events to keep (``'drop'``: every event earlier
    than one already seen, and NaN times, are dropped and counted). ``'error'`` raises
    :class:`EventOrderError` at the first offending event.
    """
    if policy not in UNSORTED_POLICIES:
        raise ValueError(f'unsorted policy must be one of {UNSORTED_POLICIES}, not {policy!r}')
    t = np.asarray(t, dtype=np.float64)
    bad = _first_unsorted(t, last)
    if bad < 0:
        return None, (float(t[-1]) if len(t) else last), 0, 0
    if policy == 'error':
        raise EventOrderError(bad, float(t[bad - 1]) if bad else last, float(t[bad]))
    keep, new_last = _monotonic_mask(t, last)
    finite = np.isfinite(t)
    return (keep, new_last, int(len(t) - np.count_nonzero(finite)),
            int(np.count_nonzero(finite & ~keep)))
