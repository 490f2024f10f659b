"""Metrics: one numpy implementation (torch input too) against an independent computation."""
import numpy as np
import pytest
import torch

from stereospike_ros.io.mvsec import MVSEC_FOCAL_BASELINE as FB
from stereospike_ros.nn.depth import mask_invalid, valid_mask
from stereospike_ros.nn.metrics import MetricAccumulator, firing_rates, frame_metrics, summarize


def _independent(pred, gt):
    """Plain loops over frames with boolean indexing (no shared code with metrics.py)."""
    rows = []
    for p, g in zip(pred, gt):
        gv = np.isfinite(g) & (np.nan_to_num(g) > 0)
        if not gv.any():
            rows.append(None)
            continue
        v = gv & np.isfinite(p) & (np.nan_to_num(p) > 0)
        e = np.abs(p[v] - g[v])
        de = np.abs(FB / p[v] - FB / g[v])
        row = {'mde': e.mean(), 'median': np.median(e), 'disp_error': de.mean(),
               'one_px': np.mean(de <= 1.0), 'coverage': v.sum() / gv.sum()}
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
    pred[0, 0, :4] = [-1.0, 0.0, np.nan, 1e-5]  # invalid predictions: not scored, less coverage
    gt[2] = np.nan  # a frame without ground truth
    gt[3] = np.where(np.isfinite(gt[3]), 35.0, np.nan)  # nothing under the cut-offs
    return pred, gt


def test_numpy_and_torch_inputs_equal_independent_computation():
    pred, gt = _data()
    ref = _independent(pred.astype(np.float64), gt.astype(np.float64))
    a = frame_metrics(pred, gt)
    b = frame_metrics(torch.from_numpy(pred), torch.from_numpy(gt))
    assert a['coverage'][0] < 1.0
    for i, row in enumerate(ref):
        for res in (a, b):
            if row is None:
                assert res['valid_pixels'][i] == 0 and np.isnan(res['mde'][i])
                continue
            for k, v in row.items():
                np.testing.assert_allclose(res[k][i], v, rtol=1e-9, equal_nan=True, err_msg=k)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_invalid_prediction_is_nan_and_scored_alike_raw_or_masked():
    """The one rule: non-finite or non-positive depth is NaN, and NaN is never scored."""
    d = np.array([[2.0, -1.0, 0.0], [np.inf, np.nan, 3.5]], np.float32)
    np.testing.assert_array_equal(valid_mask(d), [[True, False, False], [False, False, True]])
    masked = mask_invalid(d)
    assert masked.dtype == np.float32 and np.isnan(masked).sum() == 4
    np.testing.assert_array_equal(mask_invalid(d, min_m=2.5), [[np.nan] * 3, [np.nan] * 2 + [3.5]])
    np.testing.assert_array_equal(valid_mask(d, max_m=3.0)[0], [True, False, False])
    gt = np.full((2, 3), 2.0)
    raw, nan = frame_metrics(d, gt), frame_metrics(masked, gt)
    for k in raw:
        np.testing.assert_array_equal(raw[k], nan[k], err_msg=k)
    assert raw['coverage'][0] == pytest.approx(2 / 6) and raw['mde'][0] == pytest.approx(0.75)


def test_one_pixel_threshold_is_a_true_pixel():
    gt = np.full((1, 2, 2), 10.0)
    d = FB / 10.0
    pred = FB / np.array([[[d + 0.5, d + 0.9], [d + 1.2, d + 3]]])
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
