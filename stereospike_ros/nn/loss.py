"""The reference training loss: scale-invariant + 0.5 gradient matching over all four readouts.

Statistics are pooled over the whole batch (over all processes of a data-parallel run, through
``reduce``), NaN ground truth is masked. A batch without any valid
pixel contributes a zero loss and is counted in ``LossInfo.skipped_frames``. Optional extras: the
spike penalty ``beta * sum_s sum(s^2) / (2 numel)``, a NON-reference scale-pinning L1 term
(``l1_weight * mean|R|``), because the scale-invariant term on linear depth is blind to an offset,
and a NON-reference disparity L1 term (``disp_weight * mean|fB/pred - fB/gt|`` in pixels), which
weighs errors as stereo sees them (near pixels most) and as the one-pixel accuracy scores them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F

from stereospike_ros.io.mvsec import MVSEC_FOCAL_BASELINE

SOBEL_X = ((1.0, 0.0, -1.0), (2.0, 0.0, -2.0), (1.0, 0.0, -1.0))
SOBEL_Y = ((1.0, 2.0, 1.0), (0.0, 0.0, 0.0), (-1.0, -2.0, -1.0))
#: Predictions are clamped to at least this depth (m) in the disparity term: no division by ~0.
DISP_MIN_DEPTH = 0.25
#: Sums a tensor of batch statistics over the processes of a data-parallel run (differentiable).
Reduce = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class LossInfo:
    """Parts of the last loss: per-readout terms, penalty, and frames without valid pixels."""

    si: list = field(default_factory=list)
    gm: list = field(default_factory=list)
    l1: list = field(default_factory=list)
    disp: list = field(default_factory=list)
    spike_penalty: float = 0.0
    skipped_frames: int = 0
    valid_pixels: int = 0


def _sobel_kernels(like: torch.Tensor) -> torch.Tensor:
    return torch.tensor((SOBEL_X, SOBEL_Y), dtype=like.dtype, device=like.device)[:, None]


def readout_loss(pred: torch.Tensor, gt: torch.Tensor, gm_weight: float = 0.5,
                 l1_weight: float = 0.0, reduce: Reduce | None = None,
                 disp_weight: float = 0.0, focal_baseline: float = MVSEC_FOCAL_BASELINE
                 ) -> tuple[torch.Tensor, dict]:
    """``L_SI + gm_weight * L_GM (+ l1_weight * L1 + disp_weight * L_disp)`` of one readout
    (B,H,W) against GT (B,H,W).

    ``reduce`` sums the batch statistics over processes (data parallel), so the loss is the one
    of the global batch; ``None`` (one process) is the identity.
    """
    if pred.shape != gt.shape:
        raise ValueError(f'prediction shape {tuple(pred.shape)} != ground truth '
                         f'{tuple(gt.shape)}')
    mask = ~torch.isnan(gt)
    r = torch.where(mask, pred - torch.nan_to_num(gt, nan=0.0), torch.zeros_like(pred))
    g = F.conv2d(r[:, None], _sobel_kernels(r), padding=1)  # (B,2,H,W) cross-correlation
    if disp_weight:
        fb = focal_baseline
        disp_r = torch.where(mask, fb / pred.clamp(min=DISP_MIN_DEPTH)
                             - fb / torch.nan_to_num(gt, nan=1.0).clamp(min=DISP_MIN_DEPTH),
                             torch.zeros_like(pred))
        d1 = disp_r.abs().sum()
    else:
        d1 = pred.new_zeros(())
    sums = torch.stack([mask.sum().to(pred.dtype), (r * r).sum(), r.sum(),
                        ((g[:, 0].abs() + g[:, 1].abs()) * mask).sum(), r.abs().sum(), d1])
    if reduce is not None:
        sums = reduce(sums)
    nf, r2, r1, g1, a1, d1 = sums.unbind()
    n = int(nf)
    if n == 0:
        return r2 * 0.0, {'si': 0.0, 'gm': 0.0, 'l1': 0.0, 'disp': 0.0, 'n': 0}
    si = r2 / nf - r1 ** 2 / nf ** 2
    gm = g1 / nf
    loss = si + gm_weight * gm
    l1 = a1 / nf
    if l1_weight:
        loss = loss + l1_weight * l1
    disp = d1 / nf
    if disp_weight:
        loss = loss + disp_weight * disp
    return loss, {'si': float(si.detach()), 'gm': float(gm.detach()),
                  'l1': float(l1.detach()), 'disp': float(disp.detach()), 'n': n}


def spike_penalty(spikes: list, reduce: Reduce | None = None) -> torch.Tensor:
    """``sum over spike tensors of sum(s^2) / (2 numel)`` (multiply by beta); ``reduce`` as in
    :func:`readout_loss`."""
    if not spikes:
        return torch.zeros(())
    squares = torch.stack([(s * s).sum() for s in spikes])
    numels = torch.tensor([float(s.numel()) for s in spikes], dtype=squares.dtype,
                          device=squares.device)
    if reduce is not None:
        squares, numels = reduce(torch.cat([squares, numels])).split(len(spikes))
    return (squares / (2.0 * numels)).sum()


def stereospike_loss(depths: list, gt: torch.Tensor, spikes: list | None = None,
                     beta: float = 0.0, gm_weight: float = 0.5, l1_weight: float = 0.0,
                     reduce: Reduce | None = None, disp_weight: float = 0.0
                     ) -> tuple[torch.Tensor, LossInfo]:
    """Total loss over the cumulative readouts ``depths`` (each (B,H,W)) against ``gt`` (B,H,W).

    ``beta`` > 0 adds the spike penalty; ``l1_weight`` > 0 adds the non-reference L1 scale pin;
    ``disp_weight`` > 0 the non-reference disparity L1 term (MVSEC f*B).
    ``reduce`` (data parallel): the loss of the global batch, ``valid_pixels`` counted over it.
    """
    if gt.dim() == 2:
        gt = gt[None]
    info = LossInfo()
    valid_per_frame = (~torch.isnan(gt)).flatten(1).sum(1)
    info.skipped_frames = int((valid_per_frame == 0).sum())
    total = None
    for d in depths:
        loss, parts = readout_loss(d, gt, gm_weight, l1_weight, reduce, disp_weight)
        info.si.append(parts['si'])
        info.gm.append(parts['gm'])
        info.l1.append(parts['l1'])
        info.disp.append(parts['disp'])
        info.valid_pixels = parts['n']
        total = loss if total is None else total + loss
    if beta and spikes:
        pen = spike_penalty(spikes, reduce)
        info.spike_penalty = float(pen.detach())
        total = total + beta * pen
    return total, info
