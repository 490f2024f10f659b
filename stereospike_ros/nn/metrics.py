"""Depth metrics of the paper and the DDES protocol: one numpy implementation (torch input too).

Per frame, over pixels where both ground truth and prediction are valid depth (finite and
positive: :mod:`stereospike_ros.nn.depth`): ``mde`` mean |pred - gt| (m), ``median`` median
|pred - gt| (m), ``disp_error`` mean |fB/pred - fB/gt| (px, ``fB`` MVSEC's f*B), ``one_px``
share of pixels with a disparity error <= 1 px (a TRUE one-pixel threshold, not the reference's
1/7 px), ``mde_<c>`` the MDE over pixels with ``gt <= c`` metres, and ``coverage`` the share of
valid ground-truth pixels that have a valid prediction (invalid predictions are NaN, never
scored as some depth). Frames are then averaged (frames without valid ground truth are skipped
and counted). Firing rate: fraction of non-zero entries of a spike tensor.
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from stereospike_ros.io.mvsec import MVSEC_FOCAL_BASELINE
from stereospike_ros.nn.depth import valid_mask

CUTOFFS = (10.0, 20.0, 30.0)


def metric_names(cutoffs: tuple = CUTOFFS) -> list[str]:
    """Names of the per-frame metrics in output order."""
    return (['mde', 'median', 'disp_error', 'one_px'] + [f'mde_{c:g}' for c in cutoffs]
            + ['coverage'])


def _as_numpy(a: Any) -> np.ndarray:
    """A numpy array of ``a`` (a torch tensor is detached and copied to the CPU first)."""
    if hasattr(a, 'detach'):
        a = a.detach().cpu().numpy()
    return np.asarray(a)


def _as_frames(a: Any) -> np.ndarray:
    a = _as_numpy(a).astype(np.float64)
    return a[None] if a.ndim == 2 else a


def frame_metrics(pred: Any, gt: Any, cutoffs: tuple = CUTOFFS,
                  focal_baseline: float = MVSEC_FOCAL_BASELINE) -> dict:
    """Per-frame metrics (float64 arrays of length N, NaN where a frame has no scored pixel).

    ``pred`` and ``gt`` are (H,W) or (N,H,W), numpy or torch; ``valid_pixels`` counts the valid
    ground-truth pixels of each frame.
    """
    p, g = _as_frames(pred), _as_frames(gt)
    if p.shape != g.shape:
        raise ValueError(f'prediction shape {p.shape} != ground truth shape {g.shape}')
    gt_ok = valid_mask(g)
    both = gt_ok & valid_mask(p)
    p1 = np.where(both, p, 1.0)                 # placeholders keep the arithmetic finite
    g1 = np.where(both, g, 1.0)
    err = np.where(both, np.abs(p1 - g1), np.nan)
    derr = np.where(both, np.abs(focal_baseline / p1 - focal_baseline / g1), np.nan)
    scored = both.sum(axis=(1, 2))
    n_gt = gt_ok.sum(axis=(1, 2))
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)   # all-NaN frames give NaN
        out['mde'] = np.nanmean(err, axis=(1, 2))
        out['median'] = np.nanmedian(err.reshape(len(err), -1), axis=1)
        out['disp_error'] = np.nanmean(derr, axis=(1, 2))
        ok = ((derr <= 1.0) & both).sum(axis=(1, 2))
        out['one_px'] = np.where(scored > 0, ok / np.maximum(scored, 1), np.nan)
        for c in cutoffs:
            out[f'mde_{c:g}'] = np.nanmean(np.where(g1 <= c, err, np.nan), axis=(1, 2))
    out['coverage'] = np.where(n_gt > 0, scored / np.maximum(n_gt, 1), np.nan)
    out['valid_pixels'] = n_gt.astype(np.int64)
    return out


def summarize(per_frame: dict) -> dict:
    """Average per-frame metrics over frames with valid GT; MDE-type values also in cm.

    Raises ValueError when no frame has any valid ground-truth pixel.
    """
    valid = np.asarray(per_frame['valid_pixels']) > 0
    frames = int(valid.size)
    if not valid.any():
        raise ValueError(f'no valid ground truth in any of the {frames} frames (all NaN)')
    out = {'frames': frames, 'frames_without_gt': int(frames - valid.sum())}
    for k, v in per_frame.items():
        if k == 'valid_pixels':
            continue
        v = np.asarray(v, dtype=np.float64)[valid]
        v = v[np.isfinite(v)]
        out[k] = float(v.mean()) if v.size else float('nan')
    for k in list(out):
        if k == 'mde' or k == 'median' or k.startswith('mde_'):
            out[k + '_cm'] = out[k] * 100.0
    return out


class MetricAccumulator:
    """Collects per-frame metrics batch by batch (torch or numpy) and summarises them."""

    def __init__(self, cutoffs: tuple = CUTOFFS) -> None:
        self.cutoffs = cutoffs
        self.parts: list[dict] = []

    def add(self, pred: Any, gt: Any) -> dict:
        """Add a batch ((H,W) or (B,H,W)); returns its per-frame metrics."""
        m = frame_metrics(pred, gt, self.cutoffs)
        self.parts.append(m)
        return m

    def per_frame(self) -> dict:
        """All per-frame arrays concatenated."""
        if not self.parts:
            return {k: np.zeros(0) for k in metric_names(self.cutoffs) + ['valid_pixels']}
        return {k: np.concatenate([p[k] for p in self.parts]) for k in self.parts[0]}

    def summary(self) -> dict:
        """:func:`summarize` of everything added."""
        return summarize(self.per_frame())


def firing_rate(spikes: Any) -> float:
    """Fraction of non-zero entries of one spike tensor/array (counted on its own device)."""
    if hasattr(spikes, 'numel'):                   # a torch tensor: no copy to the CPU
        return float((spikes != 0).sum()) / max(1, spikes.numel())
    a = np.asarray(spikes)
    return float(np.count_nonzero(a)) / max(1, a.size)


def firing_rates(spikes: list) -> list[float]:
    """Firing rate of each spike tensor of a forward pass."""
    return [firing_rate(s) for s in spikes]
