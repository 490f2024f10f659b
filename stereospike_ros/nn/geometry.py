"""Geometry of the rectified stereo pair: depth -> disparity, depth -> 3-D points, projections.

numpy only, shared by the node's outputs (``ros/outputs.py``) and offline tools. Frames follow
REP 103 (optical: x right, y down, z forward) in the rectified left camera; projections follow
sensor_msgs/CameraInfo (the right camera's ``P[0,3] = -fx*B``); disparity follows
stereo_msgs/DisparityImage (``d = f*B / Z`` px). Depths are those of ``depth.range_coded``:
NaN no depth, -Inf too close, +Inf too far (REP 117).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


class GeometryError(ValueError):
    """Projections that do not describe a rectified horizontal stereo pair (message says why)."""


def projection_from_intrinsics(fx: float, fy: float, cx: float, cy: float,
                               tx: float = 0.0) -> np.ndarray:
    """3x4 projection ``[[fx,0,cx,tx],[0,fy,cy,0],[0,0,1,0]]``."""
    return np.array([[fx, 0.0, cx, tx], [0.0, fy, cy, 0.0], [0.0, 0.0, 1.0, 0.0]])


def _projection(p: np.ndarray, what: str) -> np.ndarray:
    p = np.asarray(p, dtype=np.float64)
    if p.shape != (3, 4) or not np.isfinite(p).all():
        raise GeometryError(f'{what} projection must be a finite 3x4 matrix, got {p.shape}')
    if not (p[0, 0] > 0 and p[1, 1] > 0):
        raise GeometryError(f'{what} projection has non-positive focal lengths '
                            f'{p[0, 0]}, {p[1, 1]}')
    return p


@dataclass(frozen=True, eq=False)
class StereoGeometry:
    """Rectified pair: size, left/right 3x4 projections, and the window where depth can exist.

    ``valid_window`` is ``(x, y, width, height)``: the bounding box of the rectified left pixels
    that receive events (the whole image when events come rectified).
    """

    width: int
    height: int
    left_projection: np.ndarray
    right_projection: np.ndarray
    valid_window: tuple[int, int, int, int] | None = None
    _rays: tuple = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.width < 1 or self.height < 1:
            raise GeometryError(f'bad image size {self.width}x{self.height}')
        left = _projection(self.left_projection, 'left')
        right = _projection(self.right_projection, 'right')
        same = [(0, 0), (1, 1), (1, 2)]        # fx, fy, cy; cx may differ (verged pair)
        if not np.allclose([left[k] for k in same], [right[k] for k in same], rtol=1e-6):
            raise GeometryError('left and right projections are not a rectified pair (fx, fy '
                                'or cy differ)')
        if left[1, 3] != 0 or right[1, 3] != 0 or left[2, 3] != 0 or right[2, 3] != 0:
            raise GeometryError('only horizontal stereo pairs are supported (P[1,3] = P[2,3] = 0)')
        if not self.baseline_of(left, right) > 0:
            raise GeometryError(f'the right camera must be right of the left one: baseline '
                                f'{self.baseline_of(left, right)} m (right P[0,3] = -fx*B < 0)')
        object.__setattr__(self, 'left_projection', left)
        object.__setattr__(self, 'right_projection', right)
        window = self.valid_window or (0, 0, self.width, self.height)
        x, y, w, h = (int(v) for v in window)
        object.__setattr__(self, 'valid_window', (x, y, w, h))
        if x < 0 or y < 0 or w < 0 or h < 0 or x + w > self.width or y + h > self.height:
            raise GeometryError(f'valid window {self.valid_window} is not inside the '
                                f'{self.width}x{self.height} image')
        # Ray of each pixel centre at z = 1 (broadcastable: x (1, W), y (H, 1)), float32.
        u = np.arange(self.width, dtype=np.float64)[None, :]
        v = np.arange(self.height, dtype=np.float64)[:, None]
        object.__setattr__(self, '_rays', (((u - left[0, 2]) / left[0, 0]).astype(np.float32),
                                           ((v - left[1, 2]) / left[1, 1]).astype(np.float32)))

    @staticmethod
    def baseline_of(left: np.ndarray, right: np.ndarray) -> float:
        """Baseline (m) of a rectified pair from its projections' ``P[0,3] = -fx*B`` terms."""
        return float(left[0, 3] / left[0, 0] - right[0, 3] / right[0, 0])

    @classmethod
    def from_intrinsics(cls, width: int, height: int, fx: float, fy: float, cx: float,
                        cy: float, baseline_m: float) -> 'StereoGeometry':
        """An ideal rectified pair with the given left intrinsics and baseline."""
        return cls(int(width), int(height), projection_from_intrinsics(fx, fy, cx, cy),
                   projection_from_intrinsics(fx, fy, cx, cy, -fx * baseline_m))

    @property
    def fx(self) -> float:
        """Rectified focal length (px), the ``f`` of disparity = f*B/Z."""
        return float(self.left_projection[0, 0])

    @property
    def baseline(self) -> float:
        """Baseline B (m) between the rectified camera centres."""
        return self.baseline_of(self.left_projection, self.right_projection)

    @property
    def focal_baseline(self) -> float:
        """f*B (px*m): disparity (px) = focal_baseline / depth (m)."""
        return self.fx * self.baseline

    def disparity_range(self, depth_min_m: float, depth_max_m: float) -> tuple[float, float]:
        """(min, max) disparity (px) of the depth range (the horopter of DisparityImage)."""
        if not 0 < depth_min_m < depth_max_m:
            raise ValueError(f'depth range needs 0 < min < max, got {depth_min_m}..{depth_max_m}')
        return self.focal_baseline / depth_max_m, self.focal_baseline / depth_min_m

    def disparity(self, depth: np.ndarray) -> np.ndarray:
        """Disparity (px, float32) of a depth map, f*B/Z: NaN stays NaN, too far (+Inf) -> 0.

        Too close (-Inf) -> +Inf: above max_disparity, as too far is below min_disparity.
        """
        depth = np.asarray(depth, dtype=np.float32)
        out = np.empty(depth.shape, np.float32)
        with np.errstate(divide='ignore'):
            np.divide(np.float32(self.focal_baseline), depth, out=out)
        np.copyto(out, np.float32(np.inf), where=np.isneginf(depth))
        return out

    def points(self, depth: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """3-D points (H, W, 3) float32 in metres of a depth map; NaN where depth is not finite.

        ``out`` may be a float32 (H, W, C >= 3) array: the points go into its first 3 channels.
        """
        depth = np.asarray(depth, dtype=np.float32)
        if depth.shape != (self.height, self.width):
            raise ValueError(f'depth has shape {depth.shape}, expected '
                             f'({self.height}, {self.width})')
        if out is None:
            out = np.empty((self.height, self.width, 3), np.float32)
        rx, ry = self._rays
        with np.errstate(invalid='ignore'):         # 0 * Inf: NaN, overwritten below
            np.multiply(rx, depth, out=out[..., 0])
            np.multiply(ry, depth, out=out[..., 1])
        out[..., 2] = depth
        np.copyto(out[..., :3], np.float32(np.nan), where=~np.isfinite(depth)[..., None])
        return out


def coverage_window(lut: np.ndarray, width: int, height: int) -> tuple[int, int, int, int]:
    """(x, y, w, h) bounding box of the rectified pixels a rectifier's lookup table reaches.

    ``lut`` maps each raw pixel to a rectified flat index ``y*W + x`` (negative = dropped).
    """
    idx = np.asarray(lut).ravel()
    idx = idx[idx >= 0]
    if not idx.size:
        return (0, 0, 0, 0)
    xs, ys = idx % width, idx // width
    x0, y0 = int(xs.min()), int(ys.min())
    return (x0, y0, int(xs.max()) - x0 + 1, int(ys.max()) - y0 + 1)
