"""Calibration: OpenCV camchain maps agree with an independent lens model; folders; bad files."""
import numpy as np
import pytest
import yaml

from stereospike_ros.io import calibration as cal
from stereospike_ros.io.events import Events
from stereospike_ros.offline import synthetic as syn
from stereospike_ros.windowing.encoding import Rectifier, encode_window

MODELS = ('equidistant', 'radtan')


@pytest.fixture(scope='module', params=MODELS)
def rig(request, tmp_path_factory):
    """Generator calibration (own lens model) and its written MVSEC folder."""
    config = syn.SyntheticConfig(distortion_model=request.param, seed=7)
    gen = syn.rig_calibration(config)
    folder = tmp_path_factory.mktemp(f'calib_{request.param}')
    paths = cal.write_calibration(folder, 'indoor_flying', gen)
    return gen, folder, paths


def test_camchain_maps_match_independent_model(rig):
    gen, _, paths = rig
    from_yaml = cal.load_calibration(paths['camchain'])
    assert from_yaml.focal_baseline == pytest.approx(19.941772)
    for key in ('left_x_map', 'left_y_map', 'right_x_map', 'right_y_map'):
        a, b = getattr(gen, key), getattr(from_yaml, key)
        assert a.shape == b.shape == (260, 346) and b.dtype == np.float32
        assert np.abs(a - b)[5:-5, 5:-5].max() < 0.05, key
    # The distortion is real: rectified coordinates differ from raw ones by pixels at the corners.
    xs = np.arange(346, dtype=np.float32)
    assert np.abs(gen.left_x_map[0] - xs).max() > 2.0


def test_generator_maps_invert_forward_model(rig):
    gen, _, _ = rig
    for cam, x_map, y_map in ((gen.left_camera, gen.left_x_map, gen.left_y_map),
                              (gen.right_camera, gen.right_x_map, gen.right_y_map)):
        p = cam.projection
        ray = np.stack([(x_map.ravel() - p[0, 2]) / p[0, 0], (y_map.ravel() - p[1, 2]) / p[1, 1],
                        np.ones(x_map.size)])
        raw = cam.rectification.T @ ray
        xd, yd = syn.distort_normalized(cam.distortion_model, cam.distortion_coeffs,
                                        raw[0] / raw[2], raw[1] / raw[2])
        fu, fv, cu, cv = cam.intrinsics
        ys, xs = np.mgrid[0:260, 0:346]
        assert np.abs(fu * xd + cu - xs.ravel()).max() < 1e-3
        assert np.abs(fv * yd + cv - ys.ravel()).max() < 1e-3


def test_folder_round_trip(rig):
    gen, folder, paths = rig
    assert paths['left_x'].name == 'indoor_flying_left_x_map.txt'
    loaded = cal.load_calibration(folder)
    assert (loaded.width, loaded.height) == (346, 260)
    for key in ('left_x_map', 'right_y_map'):
        assert np.abs(getattr(loaded, key) - getattr(gen, key)).max() < 1e-5
    np.testing.assert_allclose(loaded.left_projection, gen.left_projection)
    np.testing.assert_allclose(loaded.right_projection, gen.right_projection)


def test_stereo_rectify_when_camchain_lacks_it(rig, tmp_path):
    """Without rectification/projection entries OpenCV rectifies from T_cn_cnm1: rows align."""
    gen, _, paths = rig
    doc = yaml.safe_load(paths['camchain'].read_text())
    for cam in ('cam0', 'cam1'):
        del doc[cam]['rectification_matrix'], doc[cam]['projection_matrix']
    path = tmp_path / 'camchain-bare.yaml'
    path.write_text(yaml.safe_dump(doc))
    calib = cal.load_calibration(path)
    # Project 3-D points (left camera frame) into both raw cameras with the forward model.
    rng = np.random.default_rng(0)
    pts = np.stack([rng.uniform(-1, 1, 50), rng.uniform(-0.7, 0.7, 50), rng.uniform(1.5, 5, 50)])
    t = gen.right_camera.T_cn_cnm1
    rect = []
    for cam, p_cam, r, proj in ((gen.left_camera, pts, calib.left_camera.rectification,
                                 calib.left_projection),
                                (gen.right_camera, t[:3, :3] @ pts + t[:3, 3:],
                                 calib.right_camera.rectification, calib.right_projection)):
        xd, yd = syn.distort_normalized(cam.distortion_model, cam.distortion_coeffs,
                                        p_cam[0] / p_cam[2], p_cam[1] / p_cam[2])
        fu, fv, cu, cv = cam.intrinsics
        raw = np.stack([fu * xd + cu, fv * yd + cv], axis=1)
        rect.append(cal.rectify_points(cam, r, proj, raw))
    assert np.abs(rect[0][:, 1] - rect[1][:, 1]).max() < 0.05
    depth = (calib.left_camera.rectification @ pts)[2]
    np.testing.assert_allclose(rect[0][:, 0] - rect[1][:, 0], calib.focal_baseline / depth,
                               atol=0.05)


def test_rectifier_uses_maps(rig):
    gen, folder, _ = rig
    rect = Rectifier.for_camera(cal.load_calibration(folder), 'left', rounding='truncate')
    ev = Events(np.array([173], np.uint16), np.array([130], np.uint16),
                np.array([0], np.int64), np.array([True]))
    counts, _ = encode_window(ev, Events.empty(), rect, rect)
    x, y = gen.left_x_map[130, 173], gen.left_y_map[130, 173]
    assert counts[0, int(y), int(x)] == 1 and counts.sum() == 1
    with pytest.raises(ValueError):
        Rectifier.for_camera(gen, 'middle')


def _copy_folder(src, dst):
    dst.mkdir()
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


@pytest.mark.parametrize('case', ['missing_map', 'short_map', 'text_in_map', 'nan_in_map',
                                  'two_camchains', 'no_camchain', 'bad_model', 'no_cam1',
                                  'bad_projection'])
def test_bad_folders_raise_named_errors(rig, tmp_path, case):
    _, folder, paths = rig
    bad = _copy_folder(folder, tmp_path / 'calib')
    xmap = bad / paths['left_x'].name
    chain = bad / paths['camchain'].name
    culprit = xmap.name
    if case == 'missing_map':
        xmap.unlink()
        culprit = 'left_x'
    elif case == 'short_map':
        xmap.write_text('\n'.join(xmap.read_text().splitlines()[:-1]) + '\n')
    elif case == 'text_in_map':
        xmap.write_text(xmap.read_text().replace(' ', ' abc ', 1))
    elif case == 'nan_in_map':
        xmap.write_text(xmap.read_text().replace(' ', ' nan ', 1).rsplit(' ', 1)[0] + '\n')
    elif case == 'two_camchains':
        (bad / 'camchain-other.yaml').write_text(chain.read_text())
        culprit = 'camchain-other.yaml'
    elif case == 'no_camchain':
        chain.unlink()
        culprit = 'camchain'
    else:
        doc = yaml.safe_load(chain.read_text())
        if case == 'bad_model':
            doc['cam0']['distortion_model'] = 'fov'
        elif case == 'no_cam1':
            del doc['cam1']
        else:
            doc['cam1']['projection_matrix'] = [[1, 2], [3, 4]]
        chain.write_text(yaml.safe_dump(doc))
        culprit = chain.name
    with pytest.raises(cal.CalibrationError, match=culprit):
        cal.load_calibration(bad)


def test_bad_paths(tmp_path):
    with pytest.raises(cal.CalibrationError, match='does not exist'):
        cal.load_calibration(tmp_path / 'nope')
    other = tmp_path / 'x.txt'
    other.write_text('1 2 3')
    with pytest.raises(cal.CalibrationError, match='x.txt'):
        cal.load_calibration(other)
    broken = tmp_path / 'camchain-broken.yaml'
    broken.write_text('cam0: [unclosed')
    with pytest.raises(cal.CalibrationError, match='camchain-broken.yaml'):
        cal.load_calibration(broken)
