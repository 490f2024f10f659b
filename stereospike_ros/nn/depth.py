"""The one depth-validity rule: valid depth is finite, positive and inside an optional range.

Invalid depth is NaN everywhere it leaves the model: the node's ``depth/image`` (REP 118),
``train/evaluate.py``'s predictions and the demo all apply :func:`mask_invalid`, and the metrics
score only pixels where both prediction and ground truth pass :func:`valid_mask` (the share of
ground-truth pixels without a valid prediction is reported as ``1 - coverage``). numpy only.
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


def mask_invalid(depth: np.ndarray, min_m: Optional[float] = None,
                 max_m: Optional[float] = None) -> np.ndarray:
    """Float32 copy of ``depth`` in metres with NaN wherever :func:`valid_mask` is False."""
    d = np.asarray(depth, dtype=np.float32)
    return np.where(valid_mask(d, min_m, max_m), d, np.float32(np.nan))
