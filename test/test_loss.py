"""Reference loss: scale-invariant + 0.5 Sobel gradient matching, NaN masking, spike penalty."""
import numpy as np
import torch

from stereospike_ros.io.mvsec import MVSEC_FOCAL_BASELINE
from stereospike_ros.nn.loss import DISP_MIN_DEPTH, readout_loss, spike_penalty, stereospike_loss


def _numpy_loss(pred, gt):
    """Independent numpy computation of L_SI + 0.5 L_GM for one readout (batch pooled)."""
    m = ~np.isnan(gt)
    n = m.sum()
    r = np.where(m, pred - np.nan_to_num(gt), 0.0)
    si = (r ** 2).sum() / n - r.sum() ** 2 / n ** 2
    p = np.pad(r, ((0, 0), (1, 1), (1, 1)))
    h, w = r.shape[1:]

    def at(dy, dx):
        return p[:, 1 + dy:1 + dy + h, 1 + dx:1 + dx + w]
    gx = (at(-1, -1) + 2 * at(0, -1) + at(1, -1)) - (at(-1, 1) + 2 * at(0, 1) + at(1, 1))
    gy = (at(-1, -1) + 2 * at(-1, 0) + at(-1, 1)) - (at(1, -1) + 2 * at(1, 0) + at(1, 1))
    gm = ((np.abs(gx) + np.abs(gy)) * m).sum() / n
    return si + 0.5 * gm


def _data(seed=0, b=2, h=12, w=15):
    rng = np.random.default_rng(seed)
    gt = rng.uniform(1, 8, (b, h, w))
    gt[rng.random((b, h, w)) < 0.3] = np.nan
    pred = gt + rng.normal(0, 0.5, (b, h, w))
    pred = np.where(np.isnan(pred), rng.uniform(1, 8, (b, h, w)), pred)
    return pred, gt


def test_readout_loss_matches_independent_numpy():
    pred, gt = _data()
    loss, parts = readout_loss(torch.tensor(pred), torch.tensor(gt))
    np.testing.assert_allclose(float(loss), _numpy_loss(pred, gt), rtol=1e-10)
    assert parts['n'] == int((~np.isnan(gt)).sum())


def test_total_sums_four_readouts_and_scale_invariance():
    pred, gt = _data(1)
    depths = [torch.tensor(pred + k * 0.1) for k in range(4)]
    total, info = stereospike_loss(depths, torch.tensor(gt))
    want = sum(_numpy_loss(pred + k * 0.1, gt) for k in range(4))
    np.testing.assert_allclose(float(total), want, rtol=1e-10)
    assert len(info.si) == 4 and info.skipped_frames == 0
    # L_SI is blind to a constant offset (only the zero-padded Sobel borders see it); L1 is not
    full = np.random.default_rng(2).uniform(1, 5, (1, 8, 9))
    a, parts = readout_loss(torch.tensor(full + 0.3), torch.tensor(full))
    assert abs(parts['si']) < 1e-9 and parts['gm'] > 0
    b, _ = readout_loss(torch.tensor(full + 0.3), torch.tensor(full), l1_weight=1.0)
    np.testing.assert_allclose(float(b) - float(a), 0.3, rtol=1e-9)


def test_disparity_term_is_mean_pixel_error_of_valid_pixels():
    """``disp_weight`` adds mean |fB/pred - fB/gt| (px) over valid pixels, predictions clamped
    to DISP_MIN_DEPTH; a 10 cm error at 1 m costs ~20x what it costs at 4.5 m."""
    pred, gt = _data(4)
    pred[0, 0, :3] = (-1.0, 0.0, 0.1)                    # non-positive or tiny depth: clamped
    gt[0, 0, :3] = 2.0
    m = ~np.isnan(gt)
    fb = MVSEC_FOCAL_BASELINE
    want = np.abs(fb / np.maximum(pred, DISP_MIN_DEPTH) - fb / np.nan_to_num(gt, nan=1.0))[m]
    base, _ = readout_loss(torch.tensor(pred), torch.tensor(gt))
    got, parts = readout_loss(torch.tensor(pred), torch.tensor(gt), disp_weight=0.5)
    np.testing.assert_allclose(parts['disp'], want.mean(), rtol=1e-10)
    np.testing.assert_allclose(float(got) - float(base), 0.5 * want.mean(), rtol=1e-9)
    near = readout_loss(torch.full((1, 4, 4), 1.1), torch.ones(1, 4, 4), disp_weight=1.0)[1]
    far = readout_loss(torch.full((1, 4, 4), 4.6), torch.full((1, 4, 4), 4.5), disp_weight=1.0)[1]
    assert 15 < near['disp'] / far['disp'] < 25


def test_nan_pixels_do_not_affect_loss_or_gradient():
    pred, gt = _data(3)
    p = torch.tensor(pred, requires_grad=True)
    loss, _ = readout_loss(p, torch.tensor(gt))
    loss.backward()
    assert torch.all(p.grad[torch.isnan(torch.tensor(gt))] == 0)
    pred2 = np.where(np.isnan(gt), 1e6, pred)
    loss2, _ = readout_loss(torch.tensor(pred2), torch.tensor(gt))
    np.testing.assert_allclose(float(loss2), float(loss.detach()), rtol=1e-12)


def test_frames_without_valid_pixels_are_skipped_and_counted():
    pred, gt = _data(4, b=3)
    gt[1] = np.nan
    total, info = stereospike_loss([torch.tensor(pred)], torch.tensor(gt))
    assert info.skipped_frames == 1
    keep = [0, 2]
    np.testing.assert_allclose(float(total), _numpy_loss(pred[keep], gt[keep]), rtol=1e-10)
    p = torch.tensor(pred, requires_grad=True)
    empty, info = stereospike_loss([p], torch.full_like(p, float('nan')))
    assert info.skipped_frames == 3 and float(empty.detach()) == 0.0
    empty.backward()
    assert torch.isfinite(p.grad).all()


def test_spike_penalty():
    s1 = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    s2 = torch.zeros(10)
    s2[:2] = 1
    np.testing.assert_allclose(float(spike_penalty([s1, s2])), 3 / 8 + 2 / 20)
    pred, gt = _data(5)
    base, _ = stereospike_loss([torch.tensor(pred)], torch.tensor(gt))
    pen, info = stereospike_loss([torch.tensor(pred)], torch.tensor(gt), [s1, s2], beta=0.5)
    np.testing.assert_allclose(float(pen) - float(base), 0.5 * (3 / 8 + 2 / 20), rtol=1e-6)
    assert info.spike_penalty > 0


def test_reduce_gives_the_loss_and_gradient_of_the_global_batch():
    """Two shards of a batch, each summing in the other's statistics, as a data-parallel run."""
    pred, gt = _data(6, b=4)
    spikes = [torch.tensor(np.random.default_rng(7).random((4, 3, 5)) < 0.3).double()]
    whole = torch.tensor(pred, requires_grad=True)
    want, want_info = stereospike_loss([whole, whole * 1.1], torch.tensor(gt), spikes,
                                       beta=0.3, l1_weight=0.2, disp_weight=0.4)
    want.backward()
    halves = (slice(0, 1), slice(1, 4))                 # unequal shards: pooled, not averaged
    recorded = []

    def record(t):
        recorded.append(t.detach().clone())
        return t

    def shard_loss(part, reduce):
        p = torch.tensor(pred[part], requires_grad=True)
        loss, info = stereospike_loss([p, p * 1.1], torch.tensor(gt[part]),
                                      [s[part] for s in spikes], beta=0.3, l1_weight=0.2,
                                      disp_weight=0.4,
                                      reduce=reduce)
        return p, loss, info

    shard_loss(halves[1], record)                      # the other process's statistics
    others = iter(recorded)
    p, got, info = shard_loss(halves[0], lambda t: t + next(others))
    np.testing.assert_allclose(float(got.detach()), float(want.detach()), rtol=1e-12)
    assert info.valid_pixels == want_info.valid_pixels
    got.backward()   # this shard's part of the global gradient
    np.testing.assert_allclose(p.grad.numpy(), whole.grad[halves[0]].numpy(), rtol=1e-10,
                               atol=1e-14)
