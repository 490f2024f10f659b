"""The reference training loss: scale-invariant + 0.5 gradient matching over all four readouts.

Statistics are pooled over the whole batch, NaN ground truth is masked. A batch without any valid
pixel contributes a zero loss and is counted in ``LossInfo.skipped_frames``. Optional extras: the
spike penalty ``beta * sum_s sum(s^2) / (2 numel)`` and a NON-reference scale-pinning L1 term
(``l1_weight * mean|R|``), because the scale-invariant term on linear depth is blind to an offset.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

SOBEL_X = ((1.0, 0.0, -1.0), (2.0, 0.0, -2.0), (1.0, 0.0, -1.0))
SOBEL_Y = ((1.0, 2.0, 1.0), (0.0, 0.0, 0.0), (-1.0, -2.0, -1.0))


@dataclass
class LossInfo:
    """Parts of the last loss: per-readout terms, penalty, and frames without valid pixels."""

    si: list = field(default_factory=list)
    gm: list = field(default_factory=list)
    l1: list = field(default_factory=list)
    spike_penalty: float = 0.0
    skipped_frames: int = 0
    valid_pixels: int = 0


def _sobel_kernels(like: torch.Tensor) -> torch.Tensor:
    return torch.tensor((SOBEL_X, SOBEL_Y), dtype=like.dtype, device=like.device)[:, None]


def readout_loss(pred: torch.Tensor, gt: torch.Tensor, gm_weight: float = 0.5,
                 l1_weight: float = 0.0) -> tuple[torch.Tensor, dict]:
    """``L_SI + gm_weight * L_GM (+ l1_weight * L1)`` of one readout (B,H,W) against GT (B,H,W)."""
    if pred.shape != gt.shape:
        raise ValueError(f'prediction shape {tuple(pred.shape)} != ground truth '
                         f'{tuple(gt.shape)}')
    mask = ~torch.isnan(gt)
    n = mask.sum()
    if int(n) == 0:
        zero = pred.sum() * 0.0
        return zero, {'si': 0.0, 'gm': 0.0, 'l1': 0.0, 'n': 0}
    r = torch.where(mask, pred - torch.nan_to_num(gt, nan=0.0), torch.zeros_like(pred))
    nf = n.to(pred.dtype)
    si = (r * r).sum() / nf - r.sum() ** 2 / nf ** 2
    g = F.conv2d(r[:, None], _sobel_kernels(r), padding=1)  # (B,2,H,W) cross-correlation
    gm = ((g[:, 0].abs() + g[:, 1].abs()) * mask).sum() / nf
    loss = si + gm_weight * gm
    l1 = r.abs().sum() / nf
    if l1_weight:
        loss = loss + l1_weight * l1
    return loss, {'si': float(si.detach()), 'gm': float(gm.detach()),
                  'l1': float(l1.detach()), 'n': int(n)}


def spike_penalty(spikes: list) -> torch.Tensor:
    """``sum over spike tensors of sum(s^2) / (2 numel)`` (multiply by beta)."""
    total = None
    for s in spikes:
        term = (s * s).sum() / (2.0 * s.numel())
        total = term if total is None else total + term
    return total if total is not None else torch.zeros(())


def stereospike_loss(depths: list, gt: torch.Tensor, spikes: list | None = None,
                     beta: float = 0.0, gm_weight: float = 0.5,
                     l1_weight: float = 0.0) -> tuple[torch.Tensor, LossInfo]:
    """Total loss over the cumulative readouts ``depths`` (each (B,H,W)) against ``gt`` (B,H,W).

    ``beta`` > 0 adds the spike penalty; ``l1_weight`` > 0 adds the non-reference L1 scale pin.
    """
    if gt.dim() == 2:
        gt = gt[None]
    info = LossInfo()
    valid_per_frame = (~torch.isnan(gt)).flatten(1).sum(1)
    info.skipped_frames = int((valid_per_frame == 0).sum())
    info.valid_pixels = int(valid_per_frame.sum())
    total = None
    for d in depths:
        loss, parts = readout_loss(d, gt, gm_weight, l1_weight)
        info.si.append(parts['si'])
        info.gm.append(parts['gm'])
        info.l1.append(parts['l1'])
        total = loss if total is None else total + loss
    if beta and spikes:
        pen = spike_penalty(spikes)
        info.spike_penalty = float(pen.detach())
        total = total + beta * pen
    return total, info
