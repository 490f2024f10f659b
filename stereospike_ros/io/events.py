"""The event array type shared by every step: a structure of numpy arrays in sensor time.

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

    def is_sorted(self) -> bool:
        """True when times never decrease."""
        return len(self.t) < 2 or bool(np.all(self.t[1:] >= self.t[:-1]))

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
