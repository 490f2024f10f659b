"""Synthetic generator: MVSEC layout, determinism, plausible events, depth GT, stereo geometry."""
import subprocess
import sys

import h5py
import numpy as np
import pytest

from stereospike_ros.io import calibration as cal
from stereospike_ros.offline import synthetic as syn
from stereospike_ros.io.events import ns_to_seconds, seconds_to_ns
from support import ROOT

pytestmark = pytest.mark.slow      # every test renders a synthetic sequence
ROOM = syn.SyntheticConfig(seconds=0.12, seed=1, name='room')
WALL = syn.SyntheticConfig(seconds=0.1, seed=2, name='wall', scene='wall', wall_depth=1.0,
                           noise_rate_hz=0.0)


@pytest.fixture(scope='module')
def room(tmp_path_factory):
    return syn.generate(tmp_path_factory.mktemp('room'), ROOM)


@pytest.fixture(scope='module')
def wall(tmp_path_factory):
    return syn.generate(tmp_path_factory.mktemp('wall'), WALL)


def _datasets(path):
    out = {}
    with h5py.File(path, 'r') as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()])
                     if isinstance(obj, h5py.Dataset) else None)
    return out


def test_mvsec_layout(room):
    assert room['data'].name == 'room_data.hdf5' and room['gt'].name == 'room_gt.hdf5'
    frames = int(ROOM.seconds * ROOM.frame_hz) + 1
    with h5py.File(room['data'], 'r') as f:
        for side in ('left', 'right'):
            ev = f[f'davis/{side}/events']
            assert ev.dtype == np.float64 and ev.ndim == 2 and ev.shape[1] == 4
            img = f[f'davis/{side}/image_raw']
            assert img.dtype == np.uint8 and img.shape == (frames, 260, 346)
            assert f[f'davis/{side}/image_raw_ts'].shape == (frames,)
            assert img[()].std() > 5   # textured
    with h5py.File(room['gt'], 'r') as f:
        for kind in ('rect', 'raw'):
            d = f[f'davis/left/depth_image_{kind}']
            ts = f[f'davis/left/depth_image_{kind}_ts'][()]
            assert d.dtype == np.float32 and d.shape == (frames, 260, 346)
            assert ts.dtype == np.float64 and ts.shape == (frames,)
            np.testing.assert_allclose(np.diff(ts), 0.05, atol=1e-6)
            assert ts[0] == pytest.approx(ROOM.start_ns / 1e9)
    calib = cal.load_calibration(room['calib'])
    assert calib.focal_baseline == pytest.approx(19.941772)
    assert (room['calib'] / 'camchain-imucam-room.yaml').is_file()


def test_events_plausible(room):
    t0 = ROOM.start_ns / 1e9
    with h5py.File(room['data'], 'r') as f:
        for side in ('left', 'right'):
            ev = f[f'davis/{side}/events'][()]
            x, y, t, p = ev.T
            assert len(ev) > 10_000
            assert set(np.unique(p)) == {-1.0, 1.0}
            assert 0.3 < (p > 0).mean() < 0.7
            assert np.all(np.diff(t) >= 0)
            assert t[0] > t0 and t[-1] <= t0 + ROOM.seconds + 1e-9
            assert x.min() >= 0 and x.max() <= 345 and y.min() >= 0 and y.max() <= 259
            assert np.all(x == np.round(x)) and np.all(y == np.round(y))
            # times are exactly MVSEC's float(sec) + float(nsec) / 1e9 of integer ns
            np.testing.assert_array_equal(ns_to_seconds(seconds_to_ns(t)), t)
            # events everywhere in time: every 10 ms bin has some
            assert np.all(np.histogram(t, bins=12, range=(t0, t0 + 0.12))[0] > 0)


def test_depth_ground_truth(room):
    with h5py.File(room['gt'], 'r') as f:
        rect = f['davis/left/depth_image_rect'][()]
        raw = f['davis/left/depth_image_raw'][()]
    for d in (rect, raw):
        valid = d[np.isfinite(d)]
        assert valid.min() > 0.5 and valid.max() < 12
        assert 1.0 < np.median(valid) < 6.0
        nan = np.isnan(d)
        # NaN only where nothing is hit: the open top of the room (upper image), never the floor
        assert nan[:, :65].mean() > 0.05 and not nan[:, -65:].any()
        assert nan.mean() < 0.5


def test_deterministic_per_seed(room, tmp_path):
    again = syn.generate(tmp_path / 'a', ROOM)
    for key in ('data', 'gt'):
        a, b = _datasets(room[key]), _datasets(again[key])
        assert a.keys() == b.keys()
        for name in a:
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)
        assert again[key].read_bytes() == room[key].read_bytes()   # same bytes, not only values
    for f in room['calib'].iterdir():
        assert (again['calib'] / f.name).read_bytes() == f.read_bytes()
    other = syn.generate(tmp_path / 'b', syn.SyntheticConfig(seconds=0.05, seed=2, name='room'))
    a, b = _datasets(room['data']), _datasets(other['data'])
    assert not np.array_equal(a['davis/left/image_raw'][0], b['davis/left/image_raw'][0])


def test_wall_disparity_matches_focal_baseline(wall):
    """Fronto-parallel wall at Z: rectified left/right events are offset by f*B/Z, same rows."""
    calib = cal.load_calibration(wall['calib'])
    with h5py.File(wall['gt'], 'r') as f:
        depth = f['davis/left/depth_image_rect'][()]
    np.testing.assert_allclose(depth, WALL.wall_depth, rtol=1e-4)
    hist = {}
    with h5py.File(wall['data'], 'r') as f:
        for side in ('left', 'right'):
            ev = f[f'davis/{side}/events'][()]
            xi, yi = ev[:, 0].astype(int), ev[:, 1].astype(int)
            x_map, y_map = calib.maps(side)
            hist[side] = [np.histogram(x_map[yi, xi], bins=1384, range=(0, 346))[0],
                          np.histogram(y_map[yi, xi], bins=1040, range=(0, 260))[0]]

    def shift(a, b):
        a = a - a.mean()
        b = b - b.mean()
        c = np.correlate(a, b, mode='full')
        k = int(np.argmax(c))
        y0, y1, y2 = c[k - 1], c[k], c[k + 1]
        return (k - (len(b) - 1) + 0.5 * (y0 - y2) / (y0 - 2 * y1 + y2)) * 0.25

    disparity = shift(hist['left'][0], hist['right'][0])
    assert disparity == pytest.approx(calib.focal_baseline / WALL.wall_depth, abs=0.5)
    assert abs(shift(hist['left'][1], hist['right'][1])) < 0.5


def test_bags_match_hdf5(tmp_path):
    bags = pytest.importorskip('stereospike_ros.io.bags')
    config = syn.SyntheticConfig(seconds=0.06, seed=3, name='b', scene='wall',
                                 bags=('ros1', 'sqlite3', 'mcap'))
    paths = syn.generate(tmp_path, config)
    data = _datasets(paths['data'])
    gt = _datasets(paths['gt'])
    for fmt in config.bags:
        bag = paths[f'bag_{fmt}']
        for side in ('left', 'right'):
            topic = f'/davis/{side}/events'
            rows = data[f'davis/{side}/events']
            ev = list(bags.read_events(bag, topic))
            x = np.concatenate([e.x for e in ev])
            t = np.concatenate([e.seconds for e in ev])
            p = np.concatenate([e.p for e in ev])
            np.testing.assert_array_equal(x, rows[:, 0])
            np.testing.assert_array_equal(t, rows[:, 2])
            np.testing.assert_array_equal(np.where(p, 1.0, -1.0), rows[:, 3])
            for record_ns, msg in bags.iter_event_messages(bag, topic):
                assert record_ns == msg.stamp_ns and msg.events.t.max() <= record_ns
        depth = list(bags.iter_depth_images(bag, '/davis/left/depth_image_rect'))
        np.testing.assert_array_equal(ns_to_seconds(np.array([d[0] for d in depth])),
                                      gt['davis/left/depth_image_rect_ts'])
        np.testing.assert_array_equal(np.stack([d[1] for d in depth]),
                                      gt['davis/left/depth_image_rect'])


def test_cli_and_bad_config(tmp_path):
    out = tmp_path / 'cli'
    cmd = [sys.executable, str(ROOT / 'train' / 'synthesize.py'), '--out', str(out),
           '--seconds', '0.01', '--seed', '4', '--name', 'c', '--quiet']
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (out / 'c_data.hdf5').is_file() and (out / 'c_calib').is_dir()
    again = subprocess.run(cmd, capture_output=True, text=True)
    assert again.returncode == 2 and 'overwrite' in again.stderr
    assert not [p for p in out.iterdir() if p.name.startswith('.')]   # no partial leftovers
    bad = subprocess.run(cmd + ['--bags', 'zip'], capture_output=True, text=True)
    assert bad.returncode == 2 and 'zip' in bad.stderr
    for kwargs in ({'seconds': 0}, {'scene': 'moon'}, {'name': '../x'}, {'render_hz': 333.0}):
        with pytest.raises(ValueError):
            syn.SyntheticConfig(**kwargs).validate()
