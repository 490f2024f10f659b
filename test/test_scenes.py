"""Scene families: layouts, exact depth against an independent float64 ray caster, stereo
geometry, sensor effects, determinism, held-out split and the CLI."""
import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from stereospike_ros.io import calibration as cal
from stereospike_ros.io.mvsec import MVSEC_FOCAL_BASELINE
from stereospike_ros.offline import scenes
from stereospike_ros.offline import synthetic as syn

ROOT = Path(__file__).resolve().parents[1]
SMALL = {'width': 96, 'height': 72, 'focal': 62.7,
         'focal_baseline': MVSEC_FOCAL_BASELINE * 62.7 / 226}


def _pinhole_rays(w, h, f):
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    return np.stack([(xs.ravel() - w / 2) / f, (ys.ravel() - h / 2) / f, np.ones(w * h)])


def _reference_depth(world, rot, origin, rays):
    """Independent float64 caster: nearest hit of every primitive along ``rot @ rays``."""
    d = rot @ rays
    o = origin[:, None]
    with np.errstate(divide='ignore', invalid='ignore'):
        best = np.min([np.maximum((world.lo[a] - o[a]) / d[a], (world.hi[a] - o[a]) / d[a])
                       for a in range(3)], axis=0)
        sky = world.open_top & np.isclose(best, (world.lo[1] - o[1]) / d[1]) & (d[1] < 0)
        cands = []
        for lo, hi in world.boxes:
            t1, t2 = (lo[:, None] - o) / d, (hi[:, None] - o) / d
            near, far = np.minimum(t1, t2).max(0), np.maximum(t1, t2).min(0)
            cands.append(np.where((near <= far) & (near > 0), near, np.inf))
        for c, u, v, a, b in world.rects:
            n = np.cross(u, v)
            t = (n @ (c[:, None] - o)) / (n @ d)
            p = o + t * d - c[:, None]
            cands.append(np.where((abs(u @ p) <= a) & (abs(v @ p) <= b) & (t > 0), t, np.inf))
        for x, z, r, top, bottom in world.cylinders:
            px, pz = o[0] - x, o[2] - z
            qa, qb = d[0] ** 2 + d[2] ** 2, px * d[0] + pz * d[2]
            disc = qb ** 2 - qa * (px ** 2 + pz ** 2 - r * r)
            t = (-qb - np.sqrt(disc)) / qa
            y = o[1] + t * d[1]
            cands.append(np.where((disc >= 0) & (t > 0) & (y >= top) & (y <= bottom), t, np.inf))
    hit = np.min(cands, axis=0) if cands else np.full_like(best, np.inf)
    out = np.where(hit < best, hit, np.where(sky, np.nan, best))
    return out


@pytest.mark.parametrize('family', scenes.FAMILIES)
def test_depth_matches_independent_raycast(family):
    """Culled float32 casting of each family equals a brute-force float64 cast (depth = z)."""
    config = scenes.family_config(family, 5, 2.0, **SMALL)
    world = scenes.make_world(family, config)
    w, h = config.width, config.height
    rays = _pinhole_rays(w, h, config.focal)
    for t_s in (0.0, 0.9, 1.7):
        rot, centre = world.pose(t_s)
        dirs = (rot @ rays).astype(np.float32)[:, None]
        t, level = world.cast(dirs, centre.astype(np.float32)[:, None, None], True, t_s)
        ref = _reference_depth(world, rot, centre, rays)
        assert np.array_equal(np.isnan(t[0]), np.isnan(ref))
        close = np.isclose(t[0], ref, rtol=1e-3, equal_nan=True)
        assert close.mean() > 0.995          # float32 vs float64 may flip a silhouette pixel
        assert np.isfinite(level).all() and level.dtype == np.float32
        assert 0.3 < np.nanmin(ref) and np.nanmax(ref) < 30


def test_layouts_follow_the_issue():
    """Rooms 2-15 m deep, corridors narrow and long, open scenes far, close-ups near; objects clear
    the path."""
    far = {f: [] for f in scenes.FAMILIES}
    for family in scenes.FAMILIES:
        for seed in range(12):
            cfg = scenes.family_config(family, seed, 3.0, **SMALL)
            world = scenes.make_world(family, cfg)
            path = world.motion.path(3.0)
            far[family].append(world.hi[2] - path[:, 2].max())
            assert ((path > world.lo + 0.5) & (path < world.hi - 0.5)).all()
            for lo, hi in world.boxes:
                assert scenes._clear_of(path, lo, hi, scenes.CLEARANCE)
            desc = world.describe()
            assert desc['family'] == family and desc['motion'] in scenes.MOTIONS
    assert 2.0 <= min(far['room']) and max(far['room']) <= 15.0
    assert min(far['corridor']) >= 10.0 and max(far['open']) <= 20.0
    assert max(far['open']) > 12.0
    widths = [scenes.make_world('corridor', scenes.family_config('corridor', s, 3.0, **SMALL))
              for s in range(5)]
    assert all(wd.hi[0] - wd.lo[0] < 4.5 for wd in widths)
    assert max(far['closeup']) <= 4.0            # close-up rooms: every surface near the rig
    assert set(scenes.TRAIN_FAMILIES).isdisjoint(scenes.HELD_OUT_FAMILIES)
    assert set(scenes.TRAIN_FAMILIES) | set(scenes.HELD_OUT_FAMILIES) == set(scenes.FAMILIES)


def test_motion_styles_span_slow_to_fast():
    rng = np.random.default_rng(0)
    speeds = {}
    for style in scenes.MOTIONS:
        m = scenes.Motion(style, rng)
        p = m.path(2.0, 401)
        speeds[style] = np.median(np.linalg.norm(np.diff(p, axis=0), axis=1) / 0.005)
        rot0 = m.pose(0.0)[0]
        assert np.allclose(m.pose(0.0)[1], 0) and np.allclose(rot0 @ rot0.T, np.eye(3))
    assert speeds['slow'] < 0.5 < speeds['drone']
    with pytest.raises(ValueError):
        scenes.Motion('teleport', rng)


@pytest.mark.slow
def test_sequence_files_stereo_and_determinism(tmp_path):
    """A full-size boards sequence: MVSEC layout, world attrs, left/right rows agree; same seed,
    same bytes."""
    a = scenes.generate_family(tmp_path / 'a', 'boards', 7, 0.1)
    b = scenes.generate_family(tmp_path / 'b', 'boards', 7, 0.1)
    assert a['data'].read_bytes() == b['data'].read_bytes()
    assert a['gt'].read_bytes() == b['gt'].read_bytes()
    calib = cal.load_calibration(a['calib'])
    assert calib.focal_baseline == pytest.approx(MVSEC_FOCAL_BASELINE) and calib.width == 346
    with h5py.File(a['gt'], 'r') as f:
        depth = f['davis/left/depth_image_rect'][()]
        world = json.loads(f.attrs['synthetic_world'])
        config = json.loads(f.attrs['synthetic_config'])
    assert world['family'] == 'boards' and world['rects'] >= 1
    assert config['render_hz'] == scenes.RENDER_HZ and depth.shape == (3, 260, 346)
    assert np.nanmin(depth) > 0.3
    with h5py.File(a['data'], 'r') as f:
        rows = {}
        for side in ('left', 'right'):
            ev = f[f'davis/{side}/events'][()]
            assert len(ev) > 1000 and np.all(np.diff(ev[:, 2]) >= 0)
            _, y_map = calib.maps(side)
            rows[side] = np.histogram(y_map[ev[:, 1].astype(int), ev[:, 0].astype(int)],
                                      bins=65, range=(0, 260))[0]
    # rectified rows of both cameras see the same structures (epipolar lines are rows)
    assert np.corrcoef(rows['left'], rows['right'])[0, 1] > 0.9
    c = scenes.generate_family(tmp_path / 'c', 'boards', 8, 0.1)
    assert c['gt'].read_bytes() != a['gt'].read_bytes()


def test_sensor_effects():
    """Refractory period, hot pixels and threshold mismatch in the event model."""
    npix = 500
    rng = np.random.default_rng(1)
    thr = np.full((1, npix), 0.1)
    first = np.zeros((1, npix), np.float32)
    sim = syn.EventSimulator(first, thr, 0.0, rng, refractory_ns=400_000)
    times = {p: [] for p in range(npix)}
    for j in range(40):                       # a steady ramp: 5 crossings per 1 ms step
        pix, t, on = sim.step(first + 0.5 * (j + 1), j * 1_000_000, 1_000_000)[0]
        for p, tt in zip(pix, t):
            times[p].append(tt)
    gaps = np.concatenate([np.diff(v) for v in times.values() if len(v) > 1])
    assert gaps.min() >= 400_000 and sim.dropped > 0
    assert 75 <= len(times[3]) <= 101     # about once a period (40 ms / 0.4 ms), not silenced
    hot = syn.EventSimulator(first, thr, 0.0, rng, hot_pixels=np.array([[7, 9]]),
                             hot_rate_hz=2000.0)
    pix = np.concatenate([hot.step(first, j * 1_000_000, 1_000_000)[0][0] for j in range(40)])
    assert set(pix.tolist()) == {7, 9} and 100 <= pix.size <= 230   # 2 x 2 kHz x 40 ms = 160
    cfg = scenes.family_config('room', 3, 1.0)
    assert cfg.threshold_sigma > 0 and cfg.refractory_us >= 0 and cfg.noise_rate_hz > 0
    with pytest.raises(ValueError):
        syn.SyntheticConfig(refractory_us=-1).validate()


def test_textures_prefiltered_by_pixel_footprint():
    """Mip levels keep the mean and smooth edges more per level; far surfaces read coarser
    levels than near ones, blended between neighbours (no level popping)."""
    steps = np.repeat([1.0, -1.0] * 8, 500) + 1j * np.repeat([-1.0, 1.0] * 8, 500)
    mips = scenes.mip_levels(steps)
    assert mips.shape == (scenes.MIP_LEVELS, steps.size) and mips.dtype == np.complex64
    np.testing.assert_allclose(mips[0], steps)
    assert np.allclose(mips.mean(axis=1), steps.mean(), atol=1e-3)
    slopes = np.abs(np.diff(mips.real, axis=1)).max(axis=1)
    assert (np.diff(slopes[1:]) < 0).all() and slopes[0] == 2.0
    world = scenes.make_world('room', scenes.family_config('room', 3, 1.0))
    t = np.array([[0.2, 2.0, 8.0, 30.0, 30.0]], np.float32)
    k0, k1, frac = world._mip_level(t, np.array([[1, 1, 1, 1, 3]], np.float32))
    n = world.tables[0].shape[1]
    level = k0 // n + frac
    assert level[0, 0] == 0 and (np.diff(level[0]) > 0).all()
    assert ((k1 - k0) // n <= 1).all() and ((frac >= 0) & (frac < 1)).all()


@pytest.mark.slow
def test_cli_family(tmp_path):
    cmd = [sys.executable, str(ROOT / 'train' / 'synthesize.py'), '--out', str(tmp_path),
           '--family', 'poles', '--seconds', '0.02', '--seed', '3', '--quiet']
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / 'poles3_data.hdf5').is_file()
    again = subprocess.run(cmd, capture_output=True, text=True)
    assert again.returncode == 2 and 'overwrite' in again.stderr
    bad = subprocess.run(cmd[:-1] + ['--family', 'moon'], capture_output=True, text=True)
    assert bad.returncode == 2 and 'moon' in bad.stderr
