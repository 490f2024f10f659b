"""Synthetic MVSEC-format stereo event data with exact depth ground truth, for tests and demos.

A DAVIS346-like stereo rig (lens distortion, MVSEC-like f*B) flies through a textured room
with boxes; log intensity is ray cast at ``render_hz`` for every raw pixel of both cameras and
turned into events by a per-pixel contrast threshold. Output: ``NAME_data.hdf5``,
``NAME_gt.hdf5``, ``NAME_calib/`` and optional ROS 1 / ROS 2 bags, laid out exactly like MVSEC.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol, Sequence

import h5py
import numpy as np

from stereospike_ros.io.errors import InputError
from stereospike_ros.io import atomic
from stereospike_ros.io.bags import FORMATS as BAG_FORMATS, EventBagWriter
from stereospike_ros.io.calibration import CameraModel, StereoCalibration, write_calibration
from stereospike_ros.io.events import NS_PER_S, SENSOR_HEIGHT, SENSOR_WIDTH, Events, ns_to_seconds
from stereospike_ros.io.mvsec import EVENTS_KEY, MVSEC_FOCAL_BASELINE, MVSEC_TOPICS
from stereospike_ros.io.wire import EventArrayMsg

LEFT_EVENTS, RIGHT_EVENTS, LEFT_DEPTH = (
    MVSEC_TOPICS[k] for k in ('left_events', 'right_events', 'left_depth'))
SCENES = ('room', 'wall')
DEFAULT_DISTORTION = {'equidistant': (-0.045, 0.012, -0.006, 0.0015),
                      'radtan': (-0.09, 0.02, 0.0006, -0.0004)}


class SyntheticConfigError(InputError):
    """A bad generator setting: ``field`` names it, ``reason`` says what is wrong."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f'{field}: {reason}')
        self.field, self.reason = field, reason


@dataclass(frozen=True)
class SyntheticConfig:
    """What to generate; same config (and seed) -> same output bytes."""

    seconds: float = 1.0
    seed: int = 0
    name: str = 'synthetic'
    scene: str = 'room'                    # 'room' (walls, floor, open top, boxes) | 'wall'
    wall_depth: float = 1.0                # 'wall' scene: fronto-parallel wall distance (m)
    speed: float = 0.4                     # 'wall' scene: sideways speed (m/s)
    boxes: int = 4                         # 'room' scene: number of boxes
    width: int = SENSOR_WIDTH
    height: int = SENSOR_HEIGHT
    focal: float = 226.0                   # rectified focal length (px)
    focal_baseline: float = MVSEC_FOCAL_BASELINE   # f*B (px*m)
    distortion_model: str = 'equidistant'  # raw lens model: 'equidistant' | 'radtan'
    distortion: tuple[float, ...] | None = None   # None: DEFAULT_DISTORTION[model]
    render_hz: float = 1000.0
    frame_hz: float = 20.0                 # depth GT and image_raw rate
    threshold: float = 0.2                 # contrast threshold (log intensity)
    threshold_sigma: float = 0.03          # relative per-pixel threshold spread
    noise_rate_hz: float = 0.1             # background activity per pixel
    refractory_us: float = 0.0             # per-pixel refractory period (0: none)
    hot_pixels: int = 0                    # pixels firing at hot_pixel_rate_hz per camera
    hot_pixel_rate_hz: float = 100.0
    start_ns: int = 1_500_000_000 * NS_PER_S + 123_456_789
    message_ms: float = 5.0                # bag EventArray length
    bags: tuple[str, ...] = ()             # subset of BAG_FORMATS
    chunk_frames: int = 20                 # render frames per flush (small arrays: reused memory)
    texture_res: float = 0.001             # texture table resolution (m)

    def validate(self) -> None:
        """Raise :class:`SyntheticConfigError` naming the first bad field."""
        bad = SyntheticConfigError
        if not (self.seconds > 0 and np.isfinite(self.seconds)):
            raise bad('seconds', f'must be positive, not {self.seconds}')
        if self.scene not in SCENES:
            raise bad('scene', f'must be one of {SCENES}, not {self.scene!r}')
        if self.distortion_model not in DEFAULT_DISTORTION:
            raise bad('distortion_model', f'must be one of {tuple(DEFAULT_DISTORTION)}')
        if not self.name or any(c in self.name for c in '/\\') or self.name.startswith('.'):
            raise bad('name', f'{self.name!r} is not a plain sequence name')
        unknown = [b for b in self.bags if b not in BAG_FORMATS]
        if unknown:
            raise bad('bags', f'unknown bag formats {unknown}; choose from {BAG_FORMATS}')
        dt = NS_PER_S / self.render_hz if self.render_hz > 0 else 0.5
        if self.render_hz <= 0 or dt != int(dt):
            raise bad('render_hz', f'{self.render_hz:g} Hz does not give an integer ns period')
        every = self.render_hz / self.frame_hz if self.frame_hz > 0 else 0.5
        if self.frame_hz <= 0 or every != int(every):
            raise bad('render_hz', f'{self.render_hz:g} Hz is not an integer multiple of the '
                      f'{self.frame_hz:g} Hz depth rate')
        msg = self.message_ms * 1e6
        if msg <= 0 or msg != int(msg) or int(msg) % int(dt):
            raise bad('message_ms', f'{self.message_ms:g} ms is not a positive multiple of the '
                      f'render period')
        for name in ('threshold', 'wall_depth', 'focal'):
            if not getattr(self, name) > 0:
                raise bad(name, f'must be positive, not {getattr(self, name)}')
        for name in ('noise_rate_hz', 'threshold_sigma', 'refractory_us', 'hot_pixels',
                     'hot_pixel_rate_hz'):
            if not getattr(self, name) >= 0:
                raise bad(name, f'must be >= 0, not {getattr(self, name)}')
        if self.boxes < 0:
            raise bad('boxes', f'must be >= 0, not {self.boxes}')
        if self.width < 8 or self.height < 8 or self.chunk_frames < 1:
            raise bad('width', 'image too small or chunk_frames < 1')


# ---------------------------------------------------------------- lens models (own, not OpenCV)

def distort_normalized(model: str, k: np.ndarray, x: np.ndarray, y: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Ideal normalised coordinates -> distorted normalised coordinates (Kalibr models)."""
    k = np.asarray(k, dtype=np.float64)
    if model == 'equidistant':
        r = np.hypot(x, y)
        th = np.arctan(r)
        th2 = th * th
        thd = th * (1 + th2 * (k[0] + th2 * (k[1] + th2 * (k[2] + th2 * k[3]))))
        scale = np.where(r > 1e-12, thd / np.maximum(r, 1e-12), 1.0)
        return x * scale, y * scale
    r2 = x * x + y * y
    k3 = k[4] if k.size > 4 else 0.0
    radial = 1 + r2 * (k[0] + r2 * (k[1] + r2 * k3))
    xd = x * radial + 2 * k[2] * x * y + k[3] * (r2 + 2 * x * x)
    yd = y * radial + k[2] * (r2 + 2 * y * y) + 2 * k[3] * x * y
    return xd, yd


def undistort_normalized(model: str, k: np.ndarray, xd: np.ndarray, yd: np.ndarray
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Distorted normalised coordinates -> ideal ones (Newton / fixed point, float64)."""
    k = np.asarray(k, dtype=np.float64)
    xd = np.asarray(xd, dtype=np.float64)
    yd = np.asarray(yd, dtype=np.float64)
    if model == 'equidistant':
        thd = np.hypot(xd, yd)
        th = thd.copy()
        for _ in range(30):
            th2 = th * th
            f = th * (1 + th2 * (k[0] + th2 * (k[1] + th2 * (k[2] + th2 * k[3])))) - thd
            df = 1 + th2 * (3 * k[0] + th2 * (5 * k[1] + th2 * (7 * k[2] + th2 * 9 * k[3])))
            th = th - f / df
        scale = np.where(thd > 1e-12, np.tan(th) / np.maximum(thd, 1e-12), 1.0)
        return xd * scale, yd * scale
    x, y = xd.copy(), yd.copy()
    for _ in range(200):
        fx, fy = distort_normalized(model, k, x, y)
        x, y = x + (xd - fx), y + (yd - fy)
    return x, y


def _rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Rotation about y (yaw, y points down), then x (pitch), then z (roll)."""
    cy, sy, cp, sp, cr, sr = (np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch),
                              np.cos(roll), np.sin(roll))
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return ry @ rx @ rz


# ---------------------------------------------------------------- the rig

def make_rig(config: SyntheticConfig) -> tuple[CameraModel, CameraModel]:
    """Left/right Kalibr camera models: raw intrinsics, distortion, rectification, projection.

    Rectification is computed here (baseline along the rectified x axis), independently of OpenCV.
    """
    rng = np.random.default_rng(np.random.SeedSequence([config.seed, 1]))
    w, h, f = config.width, config.height, config.focal
    baseline = config.focal_baseline / f
    coeffs = np.asarray(config.distortion if config.distortion is not None
                        else DEFAULT_DISTORTION[config.distortion_model], dtype=np.float64)
    # Right camera centre in the left camera frame (mostly +x) and a small relative rotation.
    c1 = np.array([1.0, rng.uniform(-0.02, 0.02), rng.uniform(-0.02, 0.02)])
    c1 *= baseline / np.linalg.norm(c1)
    r_lr = _rotation(*rng.uniform(-0.01, 0.01, 3))          # cam0 -> cam1 orientation
    t_lr = -r_lr @ c1
    e1 = c1 / baseline
    e2 = np.array([-e1[1], e1[0], 0.0])
    e2 /= np.linalg.norm(e2)
    rect_left = np.stack([e1, e2, np.cross(e1, e2)])        # cam0 frame -> rectified frame
    rect_right = rect_left @ r_lr.T
    proj = np.array([[f, 0, w / 2.0, 0], [0, f, h / 2.0, 0], [0, 0, 1, 0]])
    proj_right = proj.copy()
    proj_right[0, 3] = -config.focal_baseline
    tcn = np.eye(4)
    tcn[:3, :3], tcn[:3, 3] = r_lr, t_lr
    cams = []
    sides = (('left', rect_left, proj, None), ('right', rect_right, proj_right, tcn))
    for side, rect, p, t in sides:
        intr = np.array([f * (1 + rng.uniform(-0.01, 0.01)), f * (1 + rng.uniform(-0.01, 0.01)),
                         w / 2.0 + rng.uniform(-2, 2), h / 2.0 + rng.uniform(-2, 2)])
        k = coeffs * (1 + rng.uniform(-0.1, 0.1, coeffs.size))
        extra = {'camera_model': 'pinhole', 'rostopic': f'/davis/{side}/image_raw',
                 'cam_overlaps': [1 if side == 'left' else 0]}
        cams.append(CameraModel(intr, config.distortion_model, k, (w, h), rect, p, t, extra))
    return cams[0], cams[1]


def raw_rays(cam: CameraModel) -> np.ndarray:
    """Ray directions (3, H*W) of every raw pixel in the rectified frame of its camera."""
    w, h = cam.resolution
    fu, fv, cu, cv = cam.intrinsics
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    x, y = undistort_normalized(cam.distortion_model, cam.distortion_coeffs,
                                (xs.ravel() - cu) / fu, (ys.ravel() - cv) / fv)
    return cam.rectification @ np.stack([x, y, np.ones_like(x)])


def rig_calibration(config: SyntheticConfig) -> StereoCalibration:
    """The rig's exact raw->rectified maps (own lens model), as MVSEC ships them."""
    left, right = make_rig(config)
    maps = []
    for cam in (left, right):
        d = raw_rays(cam)
        p = cam.projection
        maps.append((p[0, 0] * d[0] / d[2] + p[0, 2]).reshape(config.height, config.width))
        maps.append((p[1, 1] * d[1] / d[2] + p[1, 2]).reshape(config.height, config.width))
    maps = [m.astype(np.float32) for m in maps]
    return StereoCalibration(config.width, config.height, *maps, left.projection,
                             right.projection, float(abs(right.projection[0, 3])), left, right,
                             'synthetic')


# ---------------------------------------------------------------- scene and trajectory

@dataclass(eq=False)
class Scene:
    """Axis-aligned room (inside view; open top optional), boxes and a solid procedural texture."""

    room_lo: np.ndarray
    room_hi: np.ndarray
    open_top: bool
    boxes: np.ndarray                       # (K, 2, 3) lo / hi corners
    tab_lo: np.ndarray                      # (3,) texture table origin per axis
    tables: list = field(default_factory=list)   # per axis complex64: noise + 1j * stripes
    sky_level: float = float(np.log(0.8))
    res: float = 0.001                            # texture table resolution (m)
    smooth_amp: float = 0.3                       # log-intensity amplitude of the noise
    stripe_amp: float = 0.3                       # log-intensity amplitude of the checker


def _smooth_noise(rng: np.random.Generator, n: int, res: float) -> np.ndarray:
    """Band-limited 1-D noise of unit std: white noise blurred at a few scales (cm to dm)."""
    out = np.zeros(n)
    for sigma_m, amp in ((0.04, 0.4), (0.12, 0.7), (0.4, 1.0)):
        width = max(1, int(round(sigma_m / res)))
        x = rng.standard_normal(n + 6 * width)
        for _ in range(3):                  # three box filters ~ a Gaussian
            c = np.cumsum(np.concatenate([[0.0], x]))
            x = (c[width:] - c[:-width]) / width
        out += amp * (x[:n] - x[:n].mean()) / (x[:n].std() + 1e-12)
    return out / (out.std() + 1e-12)


def _stripes(rng: np.random.Generator, n: int, res: float) -> np.ndarray:
    """Random +-1 step function with segments of 8-60 cm (sharp edges)."""
    lengths = np.maximum(1, (rng.uniform(0.08, 0.6, int(n * res / 0.08) + 2) / res).astype(
        np.int64))
    signs = np.where(np.arange(lengths.size) % 2 == 0, 1.0, -1.0)
    return np.repeat(signs, lengths)[:n]


def make_scene(config: SyntheticConfig) -> Scene:
    """A random room (walls, floor, open top, boxes) or a single fronto-parallel wall."""
    rng = np.random.default_rng(np.random.SeedSequence([config.seed, 2]))
    if config.scene == 'wall':
        lo = np.array([-50.0, -50.0, -50.0])
        hi = np.array([50.0, 50.0, config.wall_depth])
        boxes = np.zeros((0, 2, 3))
        open_top = False
        tab_lo, tab_hi = np.array([-6.0, -6.0, -1.0]), np.array([6.0, 6.0, config.wall_depth + 1])
    else:
        lo = np.array([-rng.uniform(2.5, 3.5), -rng.uniform(1.5, 2.0), -rng.uniform(3.0, 4.0)])
        hi = np.array([rng.uniform(2.5, 3.5), rng.uniform(1.2, 1.5), rng.uniform(5.5, 7.0)])
        boxes = []
        for _ in range(config.boxes):
            cx, cz = rng.uniform(-2.2, 2.2), rng.uniform(2.3, 5.0)
            sx, sz = rng.uniform(0.3, 1.0, 2)
            height = rng.uniform(0.5, 2.0)
            boxes.append([[cx - sx / 2, hi[1] - height, cz - sz / 2],
                          [cx + sx / 2, hi[1] + 0.01, cz + sz / 2]])
        boxes = np.array(boxes, dtype=np.float64).reshape(-1, 2, 3)
        open_top = True
        tab_lo, tab_hi = lo - 0.5, hi + 0.5
    scene = Scene(lo, hi, open_top, boxes, tab_lo, res=config.texture_res)
    for axis in range(3):
        n = int(np.ceil((tab_hi[axis] - tab_lo[axis]) / config.texture_res)) + 2
        scene.tables.append((_smooth_noise(rng, n, config.texture_res)
                             + 1j * _stripes(rng, n, config.texture_res)).astype(np.complex64))
    return scene


class Trajectory:
    """Smooth random rig motion (world <- rectified-left frame): sums of slow sinusoids."""

    def __init__(self, config: SyntheticConfig) -> None:
        rng = np.random.default_rng(np.random.SeedSequence([config.seed, 3]))
        self.wall = config.scene == 'wall'
        if self.wall:
            self.velocity = config.speed * np.array([1.0, 0.3, 0.0]) / np.hypot(1.0, 0.3)
            return
        # axes x, y, z, yaw, pitch, roll
        amps = np.array([0.7, 0.15, 0.8, 0.25, 0.06, 0.04])
        self.freq = rng.uniform(0.08, 0.3, (6, 3))
        self.phase = rng.uniform(0, 2 * np.pi, (6, 3))
        weights = rng.uniform(0.2, 1.0, (6, 3))
        self.amp = amps[:, None] * weights / weights.sum(axis=1, keepdims=True)

    def pose(self, t_s: float) -> tuple[np.ndarray, np.ndarray]:
        """(R 3x3, centre 3) of the rectified left camera at ``t_s`` seconds from the start."""
        if self.wall:
            return np.eye(3), self.velocity * t_s
        v = (self.amp * np.sin(2 * np.pi * self.freq * t_s + self.phase)).sum(axis=1)
        return _rotation(v[3], v[4], v[5]), v[:3]


# ---------------------------------------------------------------- rendering

def box_slabs(lo: Sequence[float], hi: Sequence[float], origins: Sequence[np.ndarray],
              inv: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Entry and exit ray parameters of an axis-aligned box ``lo``..``hi`` (slab method) for
    rays from ``origins`` with reciprocal directions ``inv``; a ray hits where entry <= exit."""
    near = far = None
    for a in range(3):
        t1 = (np.float32(lo[a]) - origins[a]) * inv[a]
        t2 = (np.float32(hi[a]) - origins[a]) * inv[a]
        tn = np.minimum(t1, t2)
        np.maximum(t1, t2, out=t2)
        if near is None:
            near, far = tn, t2
        else:
            np.maximum(near, tn, out=near)
            np.minimum(far, t2, out=far)
    return near, far


def cast(scene: Scene, dirs: np.ndarray, origins: np.ndarray, texture: bool = True
         ) -> tuple[np.ndarray, np.ndarray | None]:
    """Ray cast float32 ``dirs`` (3, C, N) from ``origins`` (3, C, 1) in the world.

    Returns (ray parameter t (C, N), NaN where nothing is hit; log intensity (C, N) or None).
    """
    with np.errstate(divide='ignore', invalid='ignore', over='ignore'):
        inv = np.divide(np.float32(1), dirs)
        t = None
        t_y = None
        for a in range(3):
            t1 = (np.float32(scene.room_lo[a]) - origins[a]) * inv[a]
            t2 = (np.float32(scene.room_hi[a]) - origins[a]) * inv[a]
            np.maximum(t1, t2, out=t1)
            if a == 1:
                t_y = t1
            t = t1.copy() if t is None else np.minimum(t, t1, out=t)
        sky = (t == t_y) & (dirs[1] < 0) if scene.open_top else None
        for lo, hi in scene.boxes:
            near, far = box_slabs(lo, hi, origins, inv)
            hit = near <= far
            hit &= near > 0
            np.copyto(t, near, where=hit & (near < t))
            if sky is not None:
                sky &= ~hit
        level = None
        if texture:
            level = prod = None
            for a in range(3):
                pos = t * dirs[a]
                pos += origins[a] - np.float32(scene.tab_lo[a])
                pos *= np.float32(1.0 / scene.res)
                # one gather per axis: real part smooth noise, imaginary part +-1 stripes
                c = scene.tables[a].take(pos.astype(np.intp), mode='clip')
                if level is None:
                    level, prod = c.real.copy(), c.imag.copy()
                else:
                    level += c.real
                    prod *= c.imag
            level *= np.float32(scene.smooth_amp / np.sqrt(3))
            level += np.float32(scene.stripe_amp) * prod
            level += np.float32(-1.3)
            if sky is not None:
                level[sky] = np.float32(scene.sky_level)
        if sky is not None:
            t[sky] = np.nan
    return t, level


class RenderWorld(Protocol):
    """What the renderer needs of a world: the rig's pose, ray casting and a description."""

    def pose(self, t_s: float) -> tuple[np.ndarray, np.ndarray]:
        """(R 3x3, centre 3) of the rectified left camera at ``t_s`` seconds."""

    def cast(self, dirs: np.ndarray, origins: np.ndarray, texture: bool = True,
             t_s: float = 0.0) -> tuple[np.ndarray, np.ndarray | None]:
        """(ray parameter t (C, N), NaN for no hit; log intensity (C, N) or None)."""

    def describe(self) -> dict:
        """JSON-able facts stored with the sequence (empty: none)."""


class RoomWorld:
    """The built-in 'room' / 'wall' scene and its trajectory, as the renderer's world.

    A world gives ``pose(t_s)`` (R, centre of the rectified left camera), ``cast(dirs, origins,
    texture, t_s)`` (like :func:`cast`) and ``describe()`` (a JSON-able dict stored in the files).
    """

    def __init__(self, config: SyntheticConfig) -> None:
        self.scene = make_scene(config)
        self.trajectory = Trajectory(config)

    def pose(self, t_s: float) -> tuple[np.ndarray, np.ndarray]:
        """Rig pose at ``t_s``."""
        return self.trajectory.pose(t_s)

    def cast(self, dirs: np.ndarray, origins: np.ndarray, texture: bool = True,
             t_s: float = 0.0) -> tuple[np.ndarray, np.ndarray | None]:
        """Depth along the rays and log intensity (static lighting)."""
        return cast(self.scene, dirs, origins, texture)

    def describe(self) -> dict:
        """Nothing beyond the config."""
        return {}


# ---------------------------------------------------------------- event generation

class EventSimulator:
    """Per-pixel contrast-threshold events from successive log-intensity frames (vectorised)."""

    def __init__(self, first: np.ndarray, thresholds: np.ndarray, noise_rate_hz: float,
                 rng: np.random.Generator, refractory_ns: int = 0,
                 hot_pixels: np.ndarray | None = None, hot_rate_hz: float = 0.0) -> None:
        self.ref = first.astype(np.float32).copy()
        self.prev = self.ref.copy()
        self.c = thresholds.astype(np.float32)
        self.inv_c = (1.0 / self.c).astype(np.float32)
        self.noise = noise_rate_hz
        self.rng = rng
        self.refractory_ns = int(refractory_ns)
        self.last_ns = np.full(first.size, np.iinfo(np.int64).min // 2, np.int64)
        self.hot = (np.zeros((first.shape[0], 0), np.int64) if hot_pixels is None
                    else np.asarray(hot_pixels, np.int64))      # (cameras, K) flat pixels
        self.hot_rate = hot_rate_hz
        self.dropped = 0                                        # events lost to refractoriness

    def step(self, level: np.ndarray, t0_ns: int, dt_ns: int
             ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Events of frame interval (t0, t0 + dt] per camera: [(flat pixel, t ns, ON)] sorted."""
        n = ((level - self.ref) * self.inv_c).astype(np.int32)
        flat = np.flatnonzero(n)
        counts_signed = n.ravel()[flat]
        counts = np.abs(counts_signed)
        total = int(counts.sum())
        rep = np.repeat(flat, counts)
        k = np.arange(1, total + 1) - np.repeat(np.cumsum(counts) - counts, counts)
        sign = np.sign(np.repeat(counts_signed, counts)).astype(np.float32)
        ref, prev, cur = self.ref.ravel(), self.prev.ravel(), level.ravel()
        crossing = ref[rep] + sign * k.astype(np.float32) * self.c.ravel()[rep]
        with np.errstate(divide='ignore', invalid='ignore'):
            frac = (crossing - prev[rep]) / (cur[rep] - prev[rep])
        frac = np.nan_to_num(np.clip(frac, 0.0, 1.0), nan=1.0)
        t = t0_ns + np.maximum(1, np.rint(frac * dt_ns).astype(np.int64))
        ref[flat] += counts_signed.astype(np.float32) * self.c.ravel()[flat]
        self.prev = level.copy()
        if self.refractory_ns and rep.size:
            rep, t, sign = self._refractory(rep, t, sign)
        ncam, npix = level.shape
        out = []
        for cam in range(ncam):
            sel = (rep >= cam * npix) & (rep < (cam + 1) * npix)
            pix = rep[sel] - cam * npix
            tt = t[sel]
            on = sign[sel] > 0
            m = self.rng.poisson(self.noise * npix * dt_ns / NS_PER_S) if self.noise > 0 else 0
            if m:
                pix = np.concatenate([pix, self.rng.integers(0, npix, m)])
                tt = np.concatenate([tt, t0_ns + self.rng.integers(1, dt_ns + 1, m)])
                on = np.concatenate([on, self.rng.random(m) < 0.5])
            hot = self.hot[cam] if cam < len(self.hot) else self.hot[:0]
            if hot.size and self.hot_rate > 0:
                k = self.rng.poisson(self.hot_rate * dt_ns / NS_PER_S, hot.size)
                hp = np.repeat(hot, k)
                pix = np.concatenate([pix, hp])
                tt = np.concatenate([tt, t0_ns + self.rng.integers(1, dt_ns + 1, hp.size)])
                on = np.concatenate([on, (hp % 2).astype(bool)])
            out.append((pix, tt, on))
        return out

    def _refractory(self, rep: np.ndarray, t: np.ndarray, sign: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Drop events closer than the refractory period to the pixel's last *kept* event.

        Exact greedy rule, vectorised over pixels: one pass per rank of an event within its pixel
        (a handful per render step). The pixel's reference level still moves past dropped events.
        """
        order = np.lexsort((t, rep))
        rep, t, sign = rep[order], t[order], sign[order]
        first = np.ones(rep.size, bool)
        first[1:] = rep[1:] != rep[:-1]
        starts = np.flatnonzero(first)
        rank = np.arange(rep.size) - np.repeat(starts, np.diff(np.append(starts, rep.size)))
        keep = np.zeros(rep.size, bool)
        for k in range(int(rank.max()) + 1):
            sel = np.flatnonzero(rank == k)
            ok = t[sel] - self.last_ns[rep[sel]] >= self.refractory_ns
            keep[sel[ok]] = True
            self.last_ns[rep[sel[ok]]] = t[sel[ok]]
        self.dropped += int(rep.size - keep.sum())
        return rep[keep], t[keep], sign[keep]


# ---------------------------------------------------------------- output


def _sort_events(parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]]
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render steps' events in time order. Each step's events lie in its own interval
    (t0, t0 + dt], so a stable sort per step equals one global stable sort, for less work."""
    if not parts:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, bool)
    orders = [np.argsort(t, kind='stable') for _, t, _ in parts]
    return tuple(np.concatenate([part[i][o] for part, o in zip(parts, orders)])
                 for i in range(3))


def _append(ds: h5py.Dataset, rows: np.ndarray) -> None:
    n = ds.shape[0]
    ds.resize(n + rows.shape[0], axis=0)
    ds[n:] = rows


def _open_bags(stack: contextlib.ExitStack, stage: Path, name: str,
               formats: tuple[str, ...]) -> list:
    if not formats:
        return []
    return [stack.enter_context(
        EventBagWriter(stage / (f'{name}.bag' if fmt == 'ros1' else f'{name}_{fmt}'), fmt))
        for fmt in formats]


def output_names(config: SyntheticConfig) -> dict[str, str]:
    """Names of the files and folders :func:`generate` writes, keyed as its result."""
    name = config.name
    targets = {'data': f'{name}_data.hdf5', 'gt': f'{name}_gt.hdf5', 'calib': f'{name}_calib'}
    for fmt in config.bags:
        targets[f'bag_{fmt}'] = f'{name}.bag' if fmt == 'ros1' else f'{name}_{fmt}'
    return targets


def generate(out_dir: str | os.PathLike, config: SyntheticConfig | None = None,
             progress: bool = False, overwrite: bool = False,
             world: RenderWorld | None = None) -> dict[str, Path]:
    """Render the sequence and write MVSEC-layout files into ``out_dir``; returns their paths.

    Keys: 'data', 'gt', 'calib' and 'bag_<fmt>' per requested bag. Files appear atomically.
    ``world`` (default: :class:`RoomWorld` of ``config``) is what the rig sees and how it moves.
    """
    config = config or SyntheticConfig()
    config.validate()
    out_dir, name = Path(out_dir), config.name
    targets = output_names(config)
    existing = [t for t in targets.values() if (out_dir / t).exists()]
    if existing and not overwrite:
        raise FileExistsError(f'{out_dir}: would overwrite {", ".join(existing)} '
                              f'(--overwrite, overwrite=True in Python, replaces them)')
    out_dir.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f'.{name}.partial-', dir=out_dir))
    try:
        _render_sequence(stage, config, progress, world or RoomWorld(config))
        paths = {}
        for key, target in targets.items():
            atomic.move_into_place(stage / target, out_dir / target)
            paths[key] = out_dir / target
        return paths
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _render_sequence(stage: Path, config: SyntheticConfig, progress: bool,
                     world: RenderWorld) -> None:
    name, w, h = config.name, config.width, config.height
    calib = rig_calibration(config)
    write_calibration(stage / f'{name}_calib', name, calib)
    baseline = config.focal_baseline / config.focal
    npix = w * h
    rays = np.stack([raw_rays(calib.left_camera), raw_rays(calib.right_camera)], axis=1)
    rays = rays.astype(np.float32)                                   # (3, 2, N)
    offsets = np.array([[0.0, 0.0, 0.0], [baseline, 0.0, 0.0]]).T    # camera centres, rect frame
    p = calib.left_projection
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    rect_rays = np.stack([(xs.ravel() - p[0, 2]) / p[0, 0], (ys.ravel() - p[1, 2]) / p[1, 1],
                          np.ones(npix)])[:, None, :].astype(np.float32)
    dt_ns = int(NS_PER_S // config.render_hz)
    every = int(round(config.render_hz / config.frame_hz))
    n_frames = int(round(config.seconds * config.render_hz))
    frame_idx = np.arange(0, n_frames + 1, every)
    msg_ns = int(round(config.message_ms * 1e6))
    rng_thr = np.random.default_rng(np.random.SeedSequence([config.seed, 4]))
    rng_noise = np.random.default_rng(np.random.SeedSequence([config.seed, 5]))
    thresholds = config.threshold * np.clip(
        1 + config.threshold_sigma * rng_thr.standard_normal((2, npix)), 0.5, 1.5)

    def render(j: int, depth: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        t_s = j * dt_ns / NS_PER_S
        rot, centre = world.pose(t_s)
        rot32 = rot.astype(np.float32)
        # einsum's plain loop: BLAS threads only hurt this (3x3)@(3, 2N) product
        dirs = np.einsum('ij,jn->in', rot32, rays.reshape(3, -1)).reshape(3, 2, npix)
        origins = (centre[:, None] + rot @ offsets).astype(np.float32)[:, :, None]
        t, level = world.cast(dirs, origins, True, t_s)
        rect = None
        if depth:
            rect_dirs = np.einsum('ij,jn->in', rot32, rect_rays.reshape(3, -1))
            rect = world.cast(rect_dirs.reshape(3, 1, npix), origins[:, :1], False, t_s)[0][0]
        return t, level, rect

    data_tmp, gt_tmp = stage / f'{name}_data.hdf5', stage / f'{name}_gt.hdf5'
    seq = {LEFT_EVENTS: 0, RIGHT_EVENTS: 0}
    with contextlib.ExitStack() as stack:
        bag_writers = _open_bags(stack, stage, name, tuple(config.bags))
        with h5py.File(data_tmp, 'w', track_order=False) as fd, \
                h5py.File(gt_tmp, 'w', track_order=False) as fg:
            for f in (fd, fg):
                f.attrs['synthetic_config'] = json.dumps(asdict(config), sort_keys=True)
                if world.describe():
                    f.attrs['synthetic_world'] = json.dumps(world.describe(), sort_keys=True)
            ev_ds, img_ds = {}, {}
            frame_ts = ns_to_seconds(config.start_ns + frame_idx * dt_ns)
            for side in ('left', 'right'):
                ev_ds[side] = fd.create_dataset(EVENTS_KEY.format(side=side), shape=(0, 4),
                                                maxshape=(None, 4), dtype=np.float64,
                                                chunks=(16384, 4))
                img_ds[side] = fd.create_dataset(f'davis/{side}/image_raw',
                                                 shape=(frame_idx.size, h, w), dtype=np.uint8)
                fd.create_dataset(f'davis/{side}/image_raw_ts', data=frame_ts)
            depth_ds = {}
            for kind in ('rect', 'raw'):
                depth_ds[kind] = fg.create_dataset(f'davis/left/depth_image_{kind}',
                                                   shape=(frame_idx.size, h, w),
                                                   dtype=np.float32, chunks=(1, h, w))
                fg.create_dataset(f'davis/left/depth_image_{kind}_ts', data=frame_ts)

            t0, level0, rect0 = render(0, True)
            hot = np.random.default_rng(np.random.SeedSequence([config.seed, 6])).choice(
                npix, (2, config.hot_pixels), replace=True) if config.hot_pixels else None
            sim = EventSimulator(level0, thresholds, config.noise_rate_hz, rng_noise,
                                 int(round(config.refractory_us * 1000)), hot,
                                 config.hot_pixel_rate_hz)
            pending = {'left': [], 'right': []}
            depth_frames: list[tuple[int, np.ndarray]] = []

            def store_frame(j: int, t: np.ndarray, level: np.ndarray, rect: np.ndarray) -> None:
                k = j // every
                for c, side in enumerate(('left', 'right')):
                    img = np.clip(np.exp(level[c]) * 255.0, 0, 255).astype(np.uint8)
                    img_ds[side][k] = img.reshape(h, w)
                depth_ds['raw'][k] = t[0].reshape(h, w)
                depth_ds['rect'][k] = rect.reshape(h, w)
                depth_frames.append((config.start_ns + j * dt_ns, rect.reshape(h, w)))

            store_frame(0, t0, level0, rect0)

            def flush() -> None:
                items = []
                for side, topic in (('left', LEFT_EVENTS), ('right', RIGHT_EVENTS)):
                    pix, tt, on = _sort_events(pending[side])
                    pending[side] = []
                    rows = np.empty((pix.size, 4), np.float64)
                    rows[:, 0] = pix % w
                    rows[:, 1] = pix // w
                    rows[:, 2] = ns_to_seconds(tt)
                    rows[:, 3] = np.where(on, 1.0, -1.0)
                    _append(ev_ds[side], rows)
                    if bag_writers and pix.size:
                        items.extend(_event_messages(topic, side, pix, tt, on, config, msg_ns,
                                                     seq))
                for stamp, depth in depth_frames:
                    items.append((stamp, 1, LEFT_DEPTH, depth))
                depth_frames.clear()
                items.sort(key=lambda it: (it[0], it[1]))
                for writer in bag_writers:
                    for stamp, kind, topic, payload in items:
                        if kind == 0:
                            writer.write_events(topic, stamp, payload)
                        else:
                            writer.write_depth(topic, stamp, stamp, payload, 'davis_left')

            frames = range(1, n_frames + 1)
            if progress:
                from tqdm import tqdm
                frames = tqdm(frames, desc=f'synthesize {name}', unit='frame')
            for j in frames:
                is_frame = j % every == 0
                t, level, rect = render(j, is_frame)
                start = config.start_ns + (j - 1) * dt_ns
                for side, evs in zip(('left', 'right'), sim.step(level, start, dt_ns)):
                    pending[side].append(evs)
                if is_frame:
                    store_frame(j, t, level, rect)
                if j % config.chunk_frames == 0 or j == n_frames:
                    flush()
            if n_frames == 0:
                flush()


def _event_messages(topic: str, side: str, pix: np.ndarray, t: np.ndarray, on: np.ndarray,
                    config: SyntheticConfig, msg_ns: int, seq: dict) -> list:
    """Split sorted events into EventArray messages of ``msg_ns`` (interval end = stamp)."""
    group = (t - config.start_ns - 1) // msg_ns
    bounds = np.flatnonzero(np.diff(group)) + 1
    starts = np.concatenate([[0], bounds])
    stops = np.concatenate([bounds, [group.size]])
    out = []
    for a, b in zip(starts, stops):
        stamp = int(config.start_ns + (group[a] + 1) * msg_ns)
        ev = Events((pix[a:b] % config.width).astype(np.uint16),
                    (pix[a:b] // config.width).astype(np.uint16), t[a:b].astype(np.int64),
                    on[a:b].astype(bool))
        msg = EventArrayMsg(stamp, f'davis_{side}', config.height, config.width, ev, seq[topic])
        seq[topic] += 1
        out.append((stamp, 0, topic, msg))
    return out
