"""The one depth-validity rule: valid depth is finite, positive and inside an optional range.

Invalid depth is NaN everywhere it leaves the model: ``train/evaluate.py``'s predictions and the
demo apply :func:`mask_invalid`; the node's outputs apply :func:`range_coded` (the same rule, with
depths outside its ``depth_min_m``..``depth_max_m`` range as -Inf / +Inf, REP 117 and 118); the
metrics score only pixels where both prediction and ground truth pass :func:`valid_mask` (the
share of ground-truth pixels without a valid prediction is reported as ``1 - coverage``).
numpy only.
"""
from __future__ import annotations

from typing import Optional

import numpy as np


def valid_mask(depth: np.ndarray, min_m: Optional[float] = None,
               max_m: Optional[float] = None) -> np.ndarray:
    """Boolean mask of valid depth: finite, ``> 0``, and ``min_m <= d <= max_m`` when given."""
    d = np.asarray(depth)
    with np.errstate(invalid='ignore'):
        ok = np.isfinite(d) & (d > 0)
        if min_m is not None:
            ok &= d >= min_m
        if max_m is not None:
            ok &= d <= max_m
    return ok


def negative_depth(depth: np.ndarray) -> str | None:
    """The ground-truth rule (metres > 0, NaN where unknown): what breaks it, or None.

    Negative ground truth is a broken file, not unknown depth, so the tools refuse it."""
    negative = int(np.count_nonzero(np.asarray(depth) < 0))
    if not negative:
        return None
    return (f'has {negative} negative values (min {float(np.nanmin(depth)):.3g} m); ground truth '
            f'must be metres > 0, NaN where unknown')


def mask_invalid(depth: np.ndarray, min_m: Optional[float] = None,
                 max_m: Optional[float] = None) -> np.ndarray:
    """Float32 copy of ``depth`` in metres with NaN wherever :func:`valid_mask` is False."""
    d = np.asarray(depth, dtype=np.float32)
    return np.where(valid_mask(d, min_m, max_m), d, np.float32(np.nan))


def range_coded(depth: np.ndarray, min_m: float, max_m: float) -> np.ndarray:
    """Float32 depth for ROS outputs (REP 117): NaN no depth, -Inf below min_m, +Inf above max_m.

    Same rule as :func:`mask_invalid`; out-of-range depths keep their direction (too close or too
    far) instead of becoming NaN, as REP 118 depth images and REP 117 ranges define.
    """
    if not max_m > min_m:
        raise ValueError(f'depth range needs max > min, got {min_m}..{max_m}')
    d = mask_invalid(depth)
    with np.errstate(invalid='ignore'):
        np.copyto(d, np.float32(-np.inf), where=d < min_m)
        np.copyto(d, np.float32(np.inf), where=d > max_m)
    return d
