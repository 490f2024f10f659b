"""REP 117 range coding (nn/depth.py) and rectified stereo geometry (nn/geometry.py).

Disparity and points are checked by projecting the 3-D points back through the 3x4 projections
(an independent route to the same numbers), not by re-running the module's formulas.
"""
import numpy as np
import pytest

from stereospike_ros.io.calibration import load_calibration, write_calibration
from stereospike_ros.nn.depth import mask_invalid, range_coded, valid_mask
from stereospike_ros.nn.geometry import (GeometryError, StereoGeometry, coverage_window,
                                         projection_from_intrinsics)
from stereospike_ros.offline.synthetic import SyntheticConfig, rig_calibration
from stereospike_ros.windowing.encoding import Rectifier

FX, CX, CY, B = 226.38, 173.65, 133.73, 0.0881
W, H = 34, 26


def test_range_coded_depth_follows_rep117():
    raw = np.array([[2.0, 0.0, -1.0, np.nan], [np.inf, -np.inf, 0.05, 50.0]], np.float64)
    kept = raw.copy()
    nan, inf = np.nan, np.inf
    out = range_coded(raw, 0.1, 10.0)
    assert out.dtype == np.float32 and out is not raw
    np.testing.assert_array_equal(raw, kept)                       # input untouched
    np.testing.assert_array_equal(out, [[2.0, nan, nan, nan], [nan, nan, -inf, inf]])
    # The same rule as mask_invalid: the valid pixels and the range's closed ends agree.
    np.testing.assert_array_equal(np.isfinite(out), valid_mask(raw, 0.1, 10.0))
    np.testing.assert_array_equal(out[np.isfinite(out)], mask_invalid(raw, 0.1, 10.0)[
        np.isfinite(out)])
    edges = np.float32([[0.1, 10.0]])
    np.testing.assert_array_equal(range_coded(edges, 0.1, 10.0), edges)
    with pytest.raises(ValueError, match='max > min'):
        range_coded(raw, 5.0, 5.0)


def _ideal():
    return StereoGeometry.from_intrinsics(W, H, FX, FX * 1.01, CX / 10, CY / 10, B)


def test_right_projection_baseline_and_range():
    g = _ideal()
    assert g.right_projection[0, 3] == pytest.approx(-FX * B)
    np.testing.assert_array_equal(g.right_projection[:, :3], g.left_projection[:, :3])
    assert g.fx == FX and g.baseline == pytest.approx(B) and g.valid_window == (0, 0, W, H)
    assert g.focal_baseline == pytest.approx(FX * B)
    lo, hi = g.disparity_range(0.5, 20.0)
    assert (lo, hi) == pytest.approx((FX * B / 20.0, FX * B / 0.5))
    for bad in ((0.0, 1.0), (2.0, 1.0)):
        with pytest.raises(ValueError):
            g.disparity_range(*bad)


def test_points_and_disparity_reproject_through_both_projections():
    g = _ideal()
    rng = np.random.default_rng(0)
    depth = rng.uniform(0.3, 30.0, (H, W)).astype(np.float32)
    depth[2, 3], depth[4, 5], depth[6, 7] = np.nan, np.inf, -np.inf
    pts = g.points(depth)
    assert pts.dtype == np.float32 and pts.shape == (H, W, 3)
    bad = ~np.isfinite(depth)
    assert np.isnan(pts[bad]).all() and np.isfinite(pts[~bad]).all()
    hom = np.concatenate([pts[~bad].astype(np.float64), np.ones((int((~bad).sum()), 1))], 1)
    left = hom @ g.left_projection.T
    right = hom @ g.right_projection.T
    v, u = np.nonzero(~bad)
    np.testing.assert_allclose(left[:, 0] / left[:, 2], u, atol=1e-3)
    np.testing.assert_allclose(left[:, 1] / left[:, 2], v, atol=1e-3)
    np.testing.assert_allclose(left[:, 2], depth[~bad], rtol=1e-6)
    # stereo_msgs: d = x_l - x_r - (cx_l - cx_r)
    shift = g.left_projection[0, 2] - g.right_projection[0, 2]
    expected = left[:, 0] / left[:, 2] - right[:, 0] / right[:, 2] - shift
    disp = g.disparity(depth)
    assert disp.dtype == np.float32
    np.testing.assert_allclose(disp[~bad], expected, rtol=1e-5)
    assert np.isnan(disp[2, 3]) and disp[4, 5] == 0.0 and disp[6, 7] == np.inf
    out = np.full((H, W, 4), 7.0, np.float32)
    assert g.points(depth, out=out) is out
    np.testing.assert_array_equal(out[..., :3], pts)
    assert (out[..., 3] == 7.0).all()
    with pytest.raises(ValueError, match='shape'):
        g.points(depth[:-1])


def test_calibrated_pair_matches_its_calibration(tmp_path):
    config = SyntheticConfig()
    write_calibration(tmp_path / 'calib', 'rig', rig_calibration(config))
    cal = load_calibration(tmp_path / 'calib')
    rect = Rectifier(cal.width, cal.height, cal.left_x_map, cal.left_y_map)
    window = coverage_window(rect.lut, cal.width, cal.height)
    g = StereoGeometry(cal.width, cal.height, cal.left_projection, cal.right_projection, window)
    assert g.focal_baseline == pytest.approx(cal.focal_baseline, rel=1e-9)
    # The window is the bounding box of rectified pixels that raw pixels land on.
    hit = np.zeros(cal.width * cal.height, bool)
    hit[rect.lut[rect.lut >= 0]] = True
    rows, cols = np.nonzero(hit.reshape(cal.height, cal.width))
    assert window == (cols.min(), rows.min(), cols.max() - cols.min() + 1,
                      rows.max() - rows.min() + 1)
    lut = np.full(W * H, -1)
    lut[[3 * W + 5, 7 * W + 2, 4 * W + 9]] = [3 * W + 5, 7 * W + 2, 4 * W + 9]
    assert coverage_window(lut, W, H) == (2, 3, 8, 5)
    assert coverage_window(np.arange(W * H), W, H) == (0, 0, W, H)
    assert coverage_window(np.full(W * H, -1), W, H) == (0, 0, 0, 0)


@pytest.mark.parametrize('right,word', [
    (projection_from_intrinsics(FX, FX, CX, CY, +FX * B), 'right of the left'),
    (projection_from_intrinsics(FX * 1.1, FX, CX, CY, -FX * B), 'rectified pair'),
    (np.eye(3), '3x4'),
])
def test_non_rectified_pairs_are_refused(right, word):
    with pytest.raises(GeometryError, match=word):
        StereoGeometry(W, H, projection_from_intrinsics(FX, FX, CX, CY), right)


def test_vertical_pairs_and_bad_windows_are_refused():
    left = projection_from_intrinsics(FX, FX, CX, CY)
    right = left.copy()
    right[0, 3], right[1, 3] = -FX * B, 3.0
    with pytest.raises(GeometryError, match='horizontal'):
        StereoGeometry(W, H, left, right)
    right[1, 3] = 0.0
    with pytest.raises(GeometryError, match='valid window'):
        StereoGeometry(W, H, left, right, (5, 0, W, H))
