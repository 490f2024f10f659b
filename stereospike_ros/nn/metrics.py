"""Depth metrics of the paper and the DDES protocol, in numpy and torch (giving the same numbers).

Per frame over valid ground truth (finite; disparity metrics also need ``gt > 0``):
``mde`` mean |pred - gt| (m), ``median`` median |pred - gt| (m), ``disp_error`` mean
|fB/pred - fB/gt| (px, ``fB`` MVSEC's f*B, prediction clamped to ``min_depth``), ``one_px``
share of pixels with a disparity error <= 1 px (a TRUE one-pixel threshold, not the reference's
1/7 px), and ``mde_<c>`` the MDE over pixels with ``gt <= c`` metres. Frames are then
averaged (frames without valid pixels are skipped and counted). Firing rate: fraction of
non-zero entries of a spike tensor.
"""
from __future__ import annotations

import warnings

import numpy as np
import torch

from stereospike_ros.io.mvsec import MVSEC_FOCAL_BASELINE as FOCAL_BASELINE

CUTOFFS = (10.0, 20.0, 30.0)
MIN_DEPTH = 1e-3


def metric_names(cutoffs=CUTOFFS) -> list[str]:
    """Names of the per-frame metrics in output order."""
    return ['mde', 'median', 'disp_error', 'one_px'] + [f'mde_{c:g}' for c in cutoffs]


def _as_frames(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    return a[None] if a.ndim == 2 else a


def frame_metrics(pred, gt, cutoffs=CUTOFFS, focal_baseline: float = FOCAL_BASELINE,
                  min_depth: float = MIN_DEPTH) -> dict:
    """Per-frame metrics (float64 arrays of length N, NaN where a frame has no valid pixel)."""
    p, g = _as_frames(pred), _as_frames(gt)
    if p.shape != g.shape:
        raise ValueError(f'prediction shape {p.shape} != ground truth shape {g.shape}')
    valid = np.isfinite(g)
    err = np.where(valid, np.abs(p - np.where(valid, g, 0.0)), np.nan)
    dvalid = valid & (np.where(valid, g, 0.0) > 0)
    with np.errstate(divide='ignore', invalid='ignore'):
        dgt = np.where(dvalid, focal_baseline / np.where(dvalid, g, 1.0), np.nan)
        dpred = focal_baseline / np.maximum(p, min_depth)
    derr = np.abs(dpred - dgt)
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)
        out['mde'] = np.nanmean(err, axis=(1, 2))
        out['median'] = np.nanmedian(err.reshape(len(err), -1), axis=1)
        out['disp_error'] = np.nanmean(derr, axis=(1, 2))
        nd = dvalid.sum(axis=(1, 2))
        ok = ((derr <= 1.0) & dvalid).sum(axis=(1, 2))
        out['one_px'] = np.where(nd > 0, ok / np.maximum(nd, 1), np.nan)
        for c in cutoffs:
            out[f'mde_{c:g}'] = np.nanmean(np.where(g <= c, err, np.nan), axis=(1, 2))
    out['valid_pixels'] = valid.sum(axis=(1, 2)).astype(np.int64)
    return out


def frame_metrics_torch(pred: torch.Tensor, gt: torch.Tensor, cutoffs=CUTOFFS,
                        focal_baseline: float = FOCAL_BASELINE,
                        min_depth: float = MIN_DEPTH) -> dict:
    """Torch version of :func:`frame_metrics` (computed in float64 on the tensors' device)."""
    p = pred.detach().to(torch.float64)
    g = gt.detach().to(torch.float64)
    if p.dim() == 2:
        p, g = p[None], g[None]
    if p.shape != g.shape:
        raise ValueError(f'prediction shape {tuple(p.shape)} != ground truth {tuple(g.shape)}')
    nan = torch.tensor(float('nan'), dtype=torch.float64, device=p.device)
    valid = torch.isfinite(g)
    g0 = torch.where(valid, g, torch.zeros_like(g))
    err = torch.where(valid, (p - g0).abs(), nan)
    dvalid = valid & (g0 > 0)
    dgt = torch.where(dvalid, focal_baseline / torch.where(dvalid, g0, torch.ones_like(g0)), nan)
    derr = (focal_baseline / p.clamp_min(min_depth) - dgt).abs()
    n = len(p)
    out = {'mde': err.flatten(1).nanmean(1),
           'median': torch.nanquantile(err.flatten(1), 0.5, dim=1),
           'disp_error': derr.flatten(1).nanmean(1)}
    nd = dvalid.flatten(1).sum(1)
    ok = ((derr <= 1.0) & dvalid).flatten(1).sum(1)
    out['one_px'] = torch.where(nd > 0, ok.double() / nd.clamp_min(1).double(), nan)
    for c in cutoffs:
        out[f'mde_{c:g}'] = torch.where(g <= c, err, nan).flatten(1).nanmean(1)
    res = {k: v.cpu().numpy().reshape(n) for k, v in out.items()}
    res['valid_pixels'] = valid.flatten(1).sum(1).cpu().numpy().astype(np.int64)
    return res


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
    """Collects per-frame metrics batch by batch (torch tensors) and summarises them."""

    def __init__(self, cutoffs=CUTOFFS) -> None:
        self.cutoffs = cutoffs
        self.parts: list[dict] = []

    def add(self, pred, gt) -> dict:
        """Add a batch (torch or numpy, (H,W) or (B,H,W)); returns its per-frame metrics."""
        if torch.is_tensor(pred):
            m = frame_metrics_torch(pred, torch.as_tensor(gt, device=pred.device), self.cutoffs)
        else:
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


def firing_rate(spikes) -> float:
    """Fraction of non-zero entries of one spike tensor/array."""
    if torch.is_tensor(spikes):
        return float((spikes != 0).sum()) / max(1, spikes.numel())
    a = np.asarray(spikes)
    return float(np.count_nonzero(a)) / max(1, a.size)


def firing_rates(spikes: list) -> list[float]:
    """Firing rate of each spike tensor of a forward pass."""
    return [firing_rate(s) for s in spikes]
