"""Scene families for training and testing depth that is stereo, not a memorised room.

Each family is randomised per seed: rooms (2-15 m), corridors, open scenes with far backgrounds (up
to 20 m), clutter (boxes, slanted planes, cylinders, thin poles), boards in front of a wall, a pole
forest and close-up rooms (small and cluttered: the near range); per-surface textures at several
scales (noise, stripes, checkers, blobs, low texture), contrast and illumination changes; rig
motion slow to fast, handheld- or drone-like; sensor effects (threshold mismatch, refractory
period, background activity, hot pixels). The rig, the event model and the MVSEC writer are
:mod:`synthetic`'s; this module adds the world (a vectorised ray caster over these primitives with
screen-space culling) and the motion.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from stereospike_ros.offline import synthetic as syn

# append only: a family's index in FAMILIES seeds its random draws
FAMILIES = ('room', 'corridor', 'open', 'clutter', 'boards', 'poles', 'closeup')
TRAIN_FAMILIES = ('room', 'open', 'clutter', 'closeup')
HELD_OUT_FAMILIES = ('corridor', 'boards', 'poles')
MOTIONS = ('slow', 'handheld', 'drone', 'fast')
RENDER_HZ = 500.0          # 2 ms steps: under 1 px of image motion per step at 2 m/s, 1 m
MESSAGE_MS = 10.0          # bag EventArray length (a multiple of the render period)
TEXTURE_RES = 0.001        # texture table resolution (m)
TEXTURE_SPAN = 70.0        # texture tables cover [-SPAN, SPAN] m per axis after scaling
MIP_BASE = 4               # table cells covered by the first prefiltered texture level
MIP_LEVELS = 10            # level 0 sharp; level k >= 1 filtered over MIP_BASE * 2**(k-1) cells
SKY_LEVEL = syn.Scene.sky_level
CLEARANCE = 0.6            # m between the rig's path and any object
N_FACE_IDS = 6             # texture ids 0-5: enclosure faces (2 * axis + (direction > 0))
# texture parameter columns: scale, shift x/y/z, base, noise, stripes, checker, blobs
P_SCALE, P_SHIFT, P_BASE, P_NOISE, P_STRIPE, P_CHECK, P_BLOB = 0, 1, 4, 5, 6, 7, 8


# ---------------------------------------------------------------- rig motion

class Motion:
    """Rig pose over time: drift + sums of sinusoids in position and yaw/pitch/roll."""

    def __init__(self, style: str, rng: np.random.Generator, forward: bool = False) -> None:
        if style not in MOTIONS:
            raise ValueError(f'motion must be one of {MOTIONS}, not {style!r}')
        self.style = style
        u = rng.uniform
        heading = u(-0.3, 0.3) if forward else u(-np.pi, np.pi)
        direction = np.array([np.sin(heading), 0.0, np.cos(heading) if forward else
                              0.3 * np.cos(heading)])
        direction /= np.linalg.norm(direction)
        # (speed m/s, position amp m, position Hz, angle amp rad, angle Hz, yaw rate rad/s)
        speed, pamp, pf, aamp, af, yaw_rate = {
            'slow': (u(0.05, 0.3), u(0.05, 0.3), (0.05, 0.25), u(0.03, 0.12), (0.05, 0.25),
                     u(-0.05, 0.05)),
            'handheld': (u(0.1, 0.5), u(0.01, 0.04), (1.0, 4.0), u(0.01, 0.04), (1.0, 5.0),
                         u(-0.1, 0.1)),
            'drone': (u(0.5, 2.0), u(0.05, 0.2), (0.1, 0.5), u(0.02, 0.08), (0.1, 0.6),
                      u(-0.25, 0.25)),
            'fast': (u(0.0, 0.5), u(0.2, 0.5), (0.4, 1.0), u(0.05, 0.25), (0.4, 1.2),
                     u(-0.1, 0.1)),
        }[style]
        self.velocity = speed * direction
        self.yaw_rate = yaw_rate
        self.pos_amp = pamp * rng.uniform(0.2, 1.0, (3, 3)) * np.array([[1.0], [0.4], [0.6]])
        self.pos_freq = rng.uniform(*pf, (3, 3))
        self.pos_phase = rng.uniform(0, 2 * np.pi, (3, 3))
        self.ang_amp = aamp * rng.uniform(0.2, 1.0, (3, 3)) * np.array([[1.0], [0.6], [0.4]])
        self.ang_freq = rng.uniform(*af, (3, 3))
        self.ang_phase = rng.uniform(0, 2 * np.pi, (3, 3))

    def pose(self, t_s: float) -> tuple[np.ndarray, np.ndarray]:
        """(R 3x3, centre 3) of the rectified left camera at ``t_s``; starts near the origin."""
        def wave(amp, freq, phase):
            return (amp * (np.sin(2 * np.pi * freq * t_s + phase) - np.sin(phase))).sum(axis=1)
        centre = self.velocity * t_s + wave(self.pos_amp, self.pos_freq, self.pos_phase)
        ang = wave(self.ang_amp, self.ang_freq, self.ang_phase)
        return syn._rotation(ang[0] + self.yaw_rate * t_s, ang[1], ang[2]), centre

    def path(self, seconds: float, n: int = 64) -> np.ndarray:
        """(n, 3) rig centres over the sequence (for laying out the scene around the path)."""
        return np.stack([self.pose(t)[1] for t in np.linspace(0.0, seconds, n)])


# ---------------------------------------------------------------- the world

@dataclass(eq=False)
class World:
    """Inside-view enclosure (open top optional) plus boxes, rectangles and vertical cylinders."""

    lo: np.ndarray
    hi: np.ndarray
    open_top: bool
    boxes: list = field(default_factory=list)       # (lo 3, hi 3)
    rects: list = field(default_factory=list)       # (centre 3, u 3, v 3, half_u, half_v)
    cylinders: list = field(default_factory=list)   # (x, z, radius, y_top, y_bottom)
    params: np.ndarray | None = None                # (ids, 9) texture parameters
    tables: list = field(default_factory=list)      # per axis (MIP_LEVELS, n) complex64 mips
    motion: Motion | None = None
    lighting: np.ndarray = field(default_factory=lambda: np.zeros(6))  # gain/offset waves
    family: str = ''
    width: int = 346
    height: int = 260
    focal: float = 226.0
    margin: float = 0.0                                # raw vs rectified pixel offset bound (px)
    extra: dict = field(default_factory=dict)

    # -- renderer interface (see synthetic.RoomWorld)
    def pose(self, t_s: float) -> tuple[np.ndarray, np.ndarray]:
        """Rig pose at ``t_s``."""
        return self.motion.pose(t_s)

    def describe(self) -> dict:
        """Family, motion and object counts, stored with the sequence."""
        return {'family': self.family, 'motion': self.motion.style, 'boxes': len(self.boxes),
                'rects': len(self.rects), 'cylinders': len(self.cylinders),
                'room_lo': self.lo.round(3).tolist(), 'room_hi': self.hi.round(3).tolist(),
                'open_top': self.open_top, **self.extra}

    def cast(self, dirs: np.ndarray, origins: np.ndarray, texture: bool = True,
             t_s: float = 0.0) -> tuple[np.ndarray, np.ndarray | None]:
        """Ray cast ``dirs`` (3, C, H*W) from ``origins`` (3, C, 1): (t (C, N), level or None).

        The rays must be posed at ``pose(t_s)``: culling projects the objects with that pose.
        """
        ncam = dirs.shape[1]
        with np.errstate(divide='ignore', invalid='ignore', over='ignore'):
            t, ids, sky = self._enclosure(dirs, origins)
            d4 = dirs.reshape(3, ncam, self.height, self.width)
            t4 = t.reshape(ncam, self.height, self.width)
            id4 = ids.reshape(ncam, self.height, self.width)
            rot = self.pose(t_s)[0]
            for c in range(ncam):
                o = origins[:, c, :, None]                     # (3, 1, 1)
                for k, (kind, prim, bounds) in enumerate(self._primitives()):
                    box = self._screen_box(o[:, 0, 0], bounds, rot)
                    if box is None:
                        continue
                    y0, y1, x0, x1 = box
                    d = d4[:, c, y0:y1, x0:x1]
                    tk = kind(prim, d, o)
                    tv = t4[c, y0:y1, x0:x1]
                    closer = tk < tv                            # NaN compares False
                    np.copyto(tv, tk, where=closer)
                    np.copyto(id4[c, y0:y1, x0:x1], N_FACE_IDS + k, where=closer)
            sky &= ids == 2                                    # objects may hide the sky
            level = self._texture(dirs, origins, t, ids, sky, t_s) if texture else None
            t[sky] = np.nan
        return t, level

    # -- geometry
    def _primitives(self):
        if not hasattr(self, '_prims'):
            prims = [(_hit_box, b, np.array(b)) for b in self.boxes]
            for r in self.rects:
                c, u, v, a, b = r
                corners = np.array([c + su * a * u + sv * b * v for su in (-1, 1)
                                    for sv in (-1, 1)])
                prims.append((_hit_rect, r, np.array([corners.min(0), corners.max(0)])))
            for cyl in self.cylinders:
                x, z, rad, y_top, y_bot = cyl
                prims.append((_hit_cylinder, cyl,
                              np.array([[x - rad, y_top, z - rad], [x + rad, y_bot, z + rad]])))
            self._prims = prims
        return self._prims

    def _screen_box(self, origin: np.ndarray, bounds: np.ndarray, rot: np.ndarray
                    ) -> tuple[int, int, int, int] | None:
        """Raw-pixel rows/cols whose rays can hit the AABB ``bounds`` (None: none can)."""
        corners = np.array([[bounds[i][0], bounds[j][1], bounds[k][2]]
                            for i in (0, 1) for j in (0, 1) for k in (0, 1)])
        cam = (corners - origin) @ rot                    # rows: R^T (p - o)
        if (cam[:, 2] < 0.05).any():
            if (cam[:, 2] < 0.05).all():
                return None
            return 0, self.height, 0, self.width
        u = self.focal * cam[:, 0] / cam[:, 2] + self.width / 2.0
        v = self.focal * cam[:, 1] / cam[:, 2] + self.height / 2.0
        m = self.margin
        x0, x1 = int(max(0, np.floor(u.min() - m))), int(min(self.width, np.ceil(u.max() + m)))
        y0, y1 = int(max(0, np.floor(v.min() - m))), int(min(self.height, np.ceil(v.max() + m)))
        if x0 >= x1 or y0 >= y1:
            return None
        return y0, y1, x0, x1

    def _enclosure(self, dirs, origins):
        inv = np.divide(np.float32(1), dirs)
        exits = []
        for a in range(3):
            t1 = (np.float32(self.lo[a]) - origins[a]) * inv[a]
            t2 = (np.float32(self.hi[a]) - origins[a]) * inv[a]
            exits.append(np.maximum(t1, t2))
        exits = np.stack(exits)
        axis = exits.argmin(axis=0)
        t = np.take_along_axis(exits, axis[None], 0)[0]
        ids = (2 * axis + (np.take_along_axis(dirs, axis[None], 0)[0] > 0)).astype(np.int16)
        sky = (ids == 2) if self.open_top else np.zeros(t.shape, bool)
        return t, ids, sky

    # -- appearance
    def _texture(self, dirs, origins, t, ids, sky, t_s):
        p = self.params[ids]                               # (C, N, 9)
        scale = p[..., P_SCALE]
        k0, k1, frac = self._mip_level(t, scale)
        noise, signs = None, []
        for a in range(3):
            pos = t * dirs[a]
            pos += origins[a]
            pos *= scale
            pos += p[..., P_SHIFT + a] + np.float32(TEXTURE_SPAN)
            pos *= np.float32(1.0 / TEXTURE_RES)
            table = self.tables[a]
            cell = np.clip(pos, 0, table.shape[1] - 1).astype(np.intp)
            flat = table.ravel()
            c = flat.take(cell + k0)
            c += frac * (flat.take(cell + k1) - c)
            noise = c.real.copy() if noise is None else noise + c.real
            signs.append(c.imag)
        stripes = signs[0] * signs[2]                      # x-z stripes: bands on every wall
        check = stripes * signs[1]
        gain, offset = self._lighting(t_s)
        level = p[..., P_NOISE] * noise
        level += p[..., P_STRIPE] * stripes
        level += p[..., P_CHECK] * check
        level += p[..., P_BLOB] * np.clip(3 * noise, -1, 1)
        level *= np.float32(gain)
        level += p[..., P_BASE] + np.float32(offset)
        level[sky] = np.float32(SKY_LEVEL + offset)
        return level.astype(np.float32, copy=False)

    def _mip_level(self, t, scale):
        """Flat-table offsets of the two mip levels around each pixel's footprint, and the blend.

        A pixel integrates light over about ``t / focal`` metres of surface (incidence ignored);
        reading the level whose filter matches that, blended between levels so nothing pops,
        keeps far, fine textures from aliasing into flicker events."""
        foot = np.nan_to_num(t * (scale / np.float32(self.focal * TEXTURE_RES * MIP_BASE)))
        lv = np.log2(np.maximum(foot, np.float32(0.5))) + np.float32(1)
        np.clip(lv, 0, MIP_LEVELS - 1, out=lv)
        k0 = lv.astype(np.intp)
        frac = lv - k0
        n = self.tables[0].shape[1]
        return k0 * n, np.minimum(k0 + 1, MIP_LEVELS - 1) * n, frac

    def _lighting(self, t_s: float) -> tuple[float, float]:
        g_amp, g_f, g_ph, b_amp, b_f, b_ph = self.lighting
        return (1.0 + g_amp * np.sin(2 * np.pi * g_f * t_s + g_ph),
                b_amp * (np.sin(2 * np.pi * b_f * t_s + b_ph) - np.sin(b_ph)))


def _hit_box(box, d, o):
    """Nearest positive entry distance into an axis-aligned box (NaN where missed)."""
    lo, hi = box
    near, far = syn.box_slabs(lo, hi, o, [np.float32(1) / d[a] for a in range(3)])
    return np.where((near <= far) & (near > 0), near, np.float32(np.nan))


def _hit_rect(rect, d, o):
    """Distance to a finite rectangle (centre, unit axes u, v, half sizes a, b)."""
    c, u, v, a, b = rect
    n = np.cross(u, v).astype(np.float32)
    oc = (o[:, 0, 0] - c).astype(np.float32)
    denom = n[0] * d[0] + n[1] * d[1] + n[2] * d[2]
    t = np.float32(-(n @ oc)) / denom
    pu = np.float32(u @ oc) + t * (np.float32(u[0]) * d[0] + np.float32(u[1]) * d[1]
                                   + np.float32(u[2]) * d[2])
    pv = np.float32(v @ oc) + t * (np.float32(v[0]) * d[0] + np.float32(v[1]) * d[1]
                                   + np.float32(v[2]) * d[2])
    ok = (np.abs(pu) <= a) & (np.abs(pv) <= b) & (t > 0)
    return np.where(ok, t, np.float32(np.nan))


def _hit_cylinder(cyl, d, o):
    """Distance to the outside of a vertical cylinder (x, z, radius, y_top, y_bottom)."""
    x, z, r, y_top, y_bot = cyl
    ox, oz = np.float32(o[0, 0, 0] - x), np.float32(o[2, 0, 0] - z)
    qa = d[0] * d[0] + d[2] * d[2]
    qb = ox * d[0] + oz * d[2]
    disc = qb * qb - qa * np.float32(ox * ox + oz * oz - r * r)
    t = (-qb - np.sqrt(disc)) / qa
    y = o[1, 0, 0] + t * d[1]
    ok = (disc >= 0) & (t > 0) & (y >= y_top) & (y <= y_bot)
    return np.where(ok, t, np.float32(np.nan))


# ---------------------------------------------------------------- family layouts

def _texture_row(rng: np.random.Generator, low: bool = False) -> list[float]:
    """One surface's texture: scale (several scales), shifts, brightness and pattern mix."""
    kind = rng.choice(['noise', 'stripes', 'checker', 'blobs', 'mixed', 'low'],
                      p=[0.25, 0.15, 0.15, 0.15, 0.2, 0.1])
    if low:
        kind = 'low'
    amp = rng.uniform(0.25, 0.7)
    mix = {'noise': (1, 0, 0, 0), 'stripes': (0.3, 1, 0, 0), 'checker': (0.3, 0, 1, 0),
           'blobs': (0.3, 0, 0, 1), 'mixed': tuple(rng.uniform(0, 1, 4)),
           'low': (0.1, 0, 0, 0)}[kind]
    mix = np.asarray(mix) * (amp if kind != 'low' else rng.uniform(0.1, 0.4))
    return [float(np.exp(rng.uniform(np.log(0.3), np.log(3.0)))),
            *rng.uniform(0, 10, 3), rng.uniform(-2.0, -0.6), *mix]


def mip_levels(table: np.ndarray) -> np.ndarray:
    """(MIP_LEVELS, n) complex64 copies of a 1-D texture table for footprint-matched reads: level
    k >= 1 smoothed like a box of MIP_BASE * 2**(k-1) cells (three boxes of that variance)."""
    levels = [np.asarray(table, np.complex128)]
    for k in range(1, MIP_LEVELS):
        width = max(1, int(round(MIP_BASE * 2 ** (k - 1) / np.sqrt(3))))
        x = levels[0]
        for _ in range(3):
            padded = np.pad(x, (width // 2, width - 1 - width // 2), mode='edge')
            c = np.concatenate([[0], np.cumsum(padded)])
            x = (c[width:] - c[:-width]) / width
        levels.append(x)
    return np.stack(levels).astype(np.complex64)


def _clear_of(path: np.ndarray, lo: np.ndarray, hi: np.ndarray, clearance: float) -> bool:
    """True when no rig position lies within ``clearance`` of the box [lo, hi]."""
    inside = ((path > lo - clearance) & (path < hi + clearance)).all(axis=1)
    return not inside.any()


def _layout(family: str, rng: np.random.Generator, path: np.ndarray) -> dict:
    """Enclosure and objects of one family around the rig's ``path``."""
    p_lo, p_hi = path.min(0), path.max(0)
    u = rng.uniform
    floor = p_hi[1] + u(1.0, 1.6)
    ceiling = p_lo[1] - u(0.8, 2.0)
    n_boxes = n_rects = n_cyl = n_poles = 0

    def around(x_margin, ceiling_drop, z_behind, z_ahead):
        """Enclosure lo, hi: ``x_margin`` beside the path, ``z_behind`` / ``z_ahead`` of it."""
        return ([p_lo[0] - u(*x_margin), ceiling - ceiling_drop, p_lo[2] - u(*z_behind)],
                [p_hi[0] + u(*x_margin), floor, p_hi[2] + u(*z_ahead)])

    if family == 'room':
        front = p_hi[2] + u(2.0, 15.0)
        half_w = u(1.5, 7.0)
        lo = [p_lo[0] - half_w, ceiling, p_lo[2] - u(1.0, 3.0)]
        hi = [p_hi[0] + half_w, floor, front]
        open_top = u() < 0.3
        n_boxes, n_cyl = rng.integers(0, 5), rng.integers(0, 2)
    elif family == 'corridor':
        half_w = u(0.75, 1.6)
        lo = [p_lo[0] - half_w, p_lo[1] - u(0.8, 1.3), p_lo[2] - u(1.0, 3.0)]
        hi = [p_hi[0] + half_w, p_hi[1] + u(1.0, 1.4), p_hi[2] + u(10.0, 20.0)]
        open_top = False
        n_boxes = rng.integers(0, 3)
    elif family == 'open':
        lo, hi = around((8.0, 15.0), 5.0, (2.0, 5.0), (10.0, 20.0))
        open_top = True
        n_boxes, n_cyl = rng.integers(2, 6), rng.integers(0, 4)
    elif family == 'clutter':
        lo, hi = around((2.0, 4.0), 0.0, (1.0, 2.0), (4.0, 10.0))
        open_top = u() < 0.4
        n_boxes, n_rects = rng.integers(2, 6), rng.integers(1, 5)
        n_cyl, n_poles = rng.integers(1, 4), rng.integers(1, 5)
    elif family == 'closeup':     # small cluttered rooms: the near range (4-24 px of disparity)
        lo, hi = around((0.8, 2.0), 0.0, (0.5, 1.5), (1.5, 4.0))
        open_top = u() < 0.3
        n_boxes, n_rects, n_cyl = rng.integers(1, 4), rng.integers(1, 4), rng.integers(0, 3)
    elif family == 'boards':
        lo, hi = around((3.0, 6.0), 0.0, (1.0, 2.0), (6.0, 9.0))
        open_top = u() < 0.5
        n_rects = rng.integers(3, 9)
    elif family == 'poles':
        lo, hi = around((4.0, 10.0), 3.0, (1.0, 2.0), (8.0, 18.0))
        open_top = True
        n_cyl, n_poles = rng.integers(1, 4), rng.integers(5, 15)
    else:
        raise ValueError(f'family must be one of {FAMILIES}, not {family!r}')
    lo, hi = np.array(lo), np.array(hi)
    z_near, z_far = p_lo[2] + 0.8, hi[2] - 0.3
    boxes, rects, cyls = [], [], []

    def place(make, count):
        for _ in range(int(count)):
            for _ in range(30):                       # rejection: keep clear of the rig's path
                obj, b_lo, b_hi = make()
                if z_far > z_near and _clear_of(path, b_lo, b_hi, CLEARANCE):
                    yield obj
                    break

    def box():
        cx, cz = u(lo[0] + 0.3, hi[0] - 0.3), u(z_near, z_far)
        sx, sz, h = u(0.3, 1.5), u(0.3, 1.5), u(0.4, min(2.5, floor - ceiling))
        b = (np.array([cx - sx / 2, floor - h, cz - sz / 2]),
             np.array([cx + sx / 2, floor + 0.01, cz + sz / 2]))
        return b, *b

    def rect():
        x, y = u(lo[0] + 0.5, hi[0] - 0.5), u(ceiling + 0.5, floor - 0.3)
        if family == 'boards':      # boards: 0.8-6 m ahead of the path, the wall behind them
            z = u(p_hi[2] + 0.8, min(z_far, p_hi[2] + 6))
        else:
            z = u(z_near, z_far)
        c = np.array([x, y, z])
        yaw, pitch = u(-1.0, 1.0), u(-0.6, 0.6)
        if family == 'boards':
            yaw, pitch = yaw * 0.5, pitch * 0.3
        rot = syn._rotation(yaw, pitch, u(-0.3, 0.3))
        a, b = u(0.2, 1.2), u(0.2, 1.0)
        r = (c, rot[:, 0].copy(), rot[:, 1].copy(), a, b)
        ext = a + b
        return r, c - ext, c + ext

    def cylinder(thin):
        x, z = u(lo[0] + 0.5, hi[0] - 0.5), u(z_near, z_far)
        r = u(0.015, 0.06) if thin else u(0.12, 0.5)
        top = ceiling if not open_top else min(ceiling, p_lo[1] - 3.0)
        cyl = (x, z, r, top, floor + 0.01)
        return cyl, np.array([x - r, top, z - r]), np.array([x + r, floor, z + r])

    boxes = list(place(box, n_boxes))
    rects = list(place(rect, n_rects))
    cyls = list(place(lambda: cylinder(False), n_cyl)) + list(
        place(lambda: cylinder(True), n_poles))
    return {'lo': lo, 'hi': hi, 'open_top': bool(open_top), 'boxes': boxes, 'rects': rects,
            'cylinders': cyls}


# ---------------------------------------------------------------- sequences

def family_config(family: str, seed: int, seconds: float, name: str | None = None,
                  **overrides: Any) -> syn.SyntheticConfig:
    """The :class:`synthetic.SyntheticConfig` (sensor and rig) of one family sequence."""
    if family not in FAMILIES:
        raise ValueError(f'family must be one of {FAMILIES}, not {family!r}')
    rng = np.random.default_rng(np.random.SeedSequence([seed, FAMILIES.index(family), 7]))
    u = rng.uniform
    cfg = syn.SyntheticConfig(
        seconds=seconds, seed=seed, name=name or f'{family}{seed}', render_hz=RENDER_HZ,
        message_ms=MESSAGE_MS, texture_res=TEXTURE_RES, threshold=u(0.2, 0.45),
        threshold_sigma=u(0.02, 0.1), refractory_us=u(0.0, 1000.0),
        noise_rate_hz=float(np.exp(u(np.log(0.02), np.log(1.0)))),
        hot_pixels=int(rng.integers(0, 20)), hot_pixel_rate_hz=u(20.0, 300.0),
        distortion_model=str(rng.choice(tuple(syn.DEFAULT_DISTORTION))))
    return replace(cfg, **overrides)


def make_world(family: str, config: syn.SyntheticConfig) -> World:
    """The randomised world (layout, textures, lighting, motion) of ``family`` and a config."""
    rng = np.random.default_rng(
        np.random.SeedSequence([config.seed, FAMILIES.index(family), 8]))
    forward = family == 'corridor' or (family != 'boards' and rng.uniform() < 0.3)
    styles = ('slow', 'handheld', 'fast') if family == 'boards' else MOTIONS
    motion = Motion(str(rng.choice(styles)), rng, forward)
    path = motion.path(config.seconds)
    lay = _layout(family, rng, path)
    n_ids = N_FACE_IDS + len(lay['boxes']) + len(lay['rects']) + len(lay['cylinders'])
    low_patch = rng.uniform() < 0.3
    params = np.array([_texture_row(rng, low=low_patch and i == N_FACE_IDS)
                       for i in range(n_ids)], np.float32)
    params[:, P_NOISE:] *= np.float32(rng.uniform(0.6, 1.4))          # scene contrast
    tables = []
    n = int(2 * TEXTURE_SPAN / TEXTURE_RES) + 2
    for _ in range(3):
        tables.append(mip_levels(syn._smooth_noise(rng, n, TEXTURE_RES)
                                 + 1j * syn._stripes(rng, n, TEXTURE_RES)))
    lighting = np.array([rng.uniform(0, 0.3), rng.uniform(0.1, 1.0), rng.uniform(0, 6.3),
                         rng.uniform(0, 0.3), rng.uniform(0.1, 1.0), rng.uniform(0, 6.3)])
    calib = syn.rig_calibration(config)
    ys, xs = np.mgrid[0:config.height, 0:config.width]
    margin = max(float(np.abs(calib.left_x_map - xs).max()),
                 float(np.abs(calib.left_y_map - ys).max()),
                 float(np.abs(calib.right_x_map - xs).max()),
                 float(np.abs(calib.right_y_map - ys).max())) + 2.0
    world = World(lay['lo'], lay['hi'], lay['open_top'], lay['boxes'], lay['rects'],
                  lay['cylinders'], params, tables, motion, lighting, family, config.width,
                  config.height, config.focal, margin)
    return world


def generate_family(out_dir: str | os.PathLike, family: str, seed: int, seconds: float,
                    name: str | None = None, progress: bool = False, overwrite: bool = False,
                    **overrides: Any) -> dict[str, Path]:
    """Render one family sequence in MVSEC layout (see :func:`synthetic.generate`)."""
    config = family_config(family, seed, seconds, name, **overrides)
    return syn.generate(out_dir, config, progress, overwrite, world=make_world(family, config))
