"""Metrics: numpy and torch implementations against an independent per-pixel computation."""
import numpy as np
import pytest
import torch

from stereospike_ros.nn.metrics import (FOCAL_BASELINE, MetricAccumulator, firing_rates,
                                        frame_metrics, frame_metrics_torch, summarize)


def _independent(pred, gt):
    """Plain loops over frames with boolean indexing (no shared code with metrics.py)."""
    rows = []
    for p, g in zip(pred, gt):
        v = np.isfinite(g)
        if not v.any():
            rows.append(None)
            continue
        e = np.abs(p[v] - g[v])
        dv = v & (np.nan_to_num(g) > 0)
        de = np.abs(FOCAL_BASELINE / np.maximum(p[dv], 1e-3) - FOCAL_BASELINE / g[dv])
        row = {'mde': e.mean(), 'median': np.median(e), 'disp_error': de.mean(),
               'one_px': np.mean(de <= 1.0)}
        for c in (10, 20, 30):
            sel = g[v] <= c
            row[f'mde_{c}'] = e[sel].mean() if sel.any() else np.nan
        rows.append(row)
    return rows


def _data(seed=0, n=5, h=20, w=24):
    rng = np.random.default_rng(seed)
    gt = rng.uniform(0.5, 40, (n, h, w)).astype(np.float32)
    gt[rng.random(gt.shape) < 0.4] = np.nan
    pred = (np.nan_to_num(gt, nan=5.0) + rng.normal(0, 1.5, gt.shape)).astype(np.float32)
    pred[0, 0, :3] = [-1.0, 0.0, 1e-5]  # non-positive predictions are clamped for disparity
    gt[2] = np.nan  # a frame without ground truth
    gt[3] = np.where(np.isfinite(gt[3]), 35.0, np.nan)  # nothing under the cut-offs
    return pred, gt


def test_numpy_and_torch_equal_independent_computation():
    pred, gt = _data()
    ref = _independent(pred.astype(np.float64), gt.astype(np.float64))
    a = frame_metrics(pred, gt)
    b = frame_metrics_torch(torch.from_numpy(pred), torch.from_numpy(gt))
    for i, row in enumerate(ref):
        for res in (a, b):
            if row is None:
                assert res['valid_pixels'][i] == 0 and np.isnan(res['mde'][i])
                continue
            for k, v in row.items():
                np.testing.assert_allclose(res[k][i], v, rtol=1e-9, equal_nan=True, err_msg=k)
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-9, equal_nan=True, err_msg=k)


def test_one_pixel_threshold_is_a_true_pixel():
    gt = np.full((1, 2, 2), 10.0)
    d = FOCAL_BASELINE / 10.0
    pred = FOCAL_BASELINE / np.array([[[d + 0.5, d + 0.9], [d + 1.2, d - 3]]])
    res = frame_metrics(pred, gt)
    assert res['one_px'][0] == pytest.approx(0.5)


def test_summary_skips_empty_frames_and_reports_cm():
    pred, gt = _data()
    acc = MetricAccumulator()
    acc.add(torch.from_numpy(pred[:2]), torch.from_numpy(gt[:2]))
    acc.add(pred[2:], gt[2:])
    s = acc.summary()
    ref = [r for r in _independent(pred.astype(np.float64), gt.astype(np.float64)) if r]
    assert s['frames'] == 5 and s['frames_without_gt'] == 1
    np.testing.assert_allclose(s['mde_cm'], 100 * np.mean([r['mde'] for r in ref]), rtol=1e-9)
    np.testing.assert_allclose(
        s['mde_10'], np.nanmean([r['mde_10'] for r in ref]), rtol=1e-9)
    with pytest.raises(ValueError, match='no valid ground truth'):
        summarize(frame_metrics(pred, np.full_like(gt, np.nan)))


def test_firing_rates():
    spikes = [torch.tensor([0.0, 1.0, 1.0, 0.0]), np.zeros((2, 3)), torch.ones(5)]
    assert firing_rates(spikes) == [0.5, 0.0, 1.0]
