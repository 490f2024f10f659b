"""Stereo calibration: MVSEC calibration folders, Kalibr camchain files and raw->rectified maps.

MVSEC ships ``camchain-imucam-NAME.yaml`` (Kalibr; cam0 = left, cam1 = right) and four text maps
``*_{left,right}_{x,y}_map.txt`` (260 rows of 346 floats: raw pixel ``(y, x)`` -> rectified
coordinate). A camchain alone is enough too: the maps are then computed with OpenCV.
"""
from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from stereospike_ros.io.errors import InputError
from stereospike_ros.io import atomic

MAP_KEYS = ('left_x', 'left_y', 'right_x', 'right_y')
DISTORTION_MODELS = ('equidistant', 'radtan')


class CalibrationError(InputError):
    """A calibration file is missing, unreadable or inconsistent (the message names the file)."""


@dataclass(frozen=True, eq=False)
class CameraModel:
    """One Kalibr camera: raw intrinsics, lens distortion and (optional) stereo rectification."""

    intrinsics: np.ndarray            # [fu, fv, cu, cv]
    distortion_model: str             # 'equidistant' | 'radtan'
    distortion_coeffs: np.ndarray     # 4 (equidistant k1..k4) or 4-5 (radtan k1 k2 p1 p2 [k3])
    resolution: tuple[int, int]       # (width, height)
    rectification: np.ndarray | None = None   # 3x3, raw camera frame -> rectified frame
    projection: np.ndarray | None = None      # 3x4 rectified projection
    T_cn_cnm1: np.ndarray | None = None       # 4x4, previous camera frame -> this camera frame
    extra: dict = field(default_factory=dict)  # other camchain keys, written back unchanged

    @property
    def camera_matrix(self) -> np.ndarray:
        """3x3 intrinsic matrix K of the raw (distorted) camera."""
        fu, fv, cu, cv = (float(v) for v in self.intrinsics)
        return np.array([[fu, 0.0, cu], [0.0, fv, cv], [0.0, 0.0, 1.0]])


@dataclass(frozen=True, eq=False)
class StereoCalibration:
    """Rectification maps (raw pixel -> rectified coordinate) and rectified projections."""

    width: int
    height: int
    left_x_map: np.ndarray
    left_y_map: np.ndarray
    right_x_map: np.ndarray
    right_y_map: np.ndarray
    left_projection: np.ndarray
    right_projection: np.ndarray
    focal_baseline: float
    left_camera: CameraModel | None = None
    right_camera: CameraModel | None = None
    source: str = ''

    def maps(self, side: str) -> tuple[np.ndarray, np.ndarray]:
        """The (x_map, y_map) pair of ``side`` ('left' or 'right')."""
        if side == 'left':
            return self.left_x_map, self.left_y_map
        if side == 'right':
            return self.right_x_map, self.right_y_map
        raise ValueError(f"side must be 'left' or 'right', not {side!r}")


# ---------------------------------------------------------------- camchain (Kalibr yaml) parsing

def _matrix(value: Any, shape: tuple[int, ...], what: str, path: Path) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise CalibrationError(f'{path}: {what} is not numeric ({exc})') from None
    if arr.shape != shape:
        raise CalibrationError(f'{path}: {what} has shape {arr.shape}, expected {shape}')
    if not np.all(np.isfinite(arr)):
        raise CalibrationError(f'{path}: {what} has non-finite values')
    return arr


def _parse_camera(entry: Any, name: str, path: Path) -> CameraModel:
    if not isinstance(entry, dict):
        raise CalibrationError(f'{path}: {name} is missing or not a mapping')
    for key in ('intrinsics', 'distortion_model', 'distortion_coeffs', 'resolution'):
        if key not in entry:
            raise CalibrationError(f'{path}: {name} has no {key}')
    intr = _matrix(entry['intrinsics'], (4,), f'{name}.intrinsics', path)
    if intr[0] <= 0 or intr[1] <= 0:
        raise CalibrationError(f'{path}: {name}.intrinsics focal lengths must be positive')
    model = str(entry['distortion_model'])
    if model not in DISTORTION_MODELS:
        raise CalibrationError(
            f'{path}: {name}.distortion_model {model!r} not supported {DISTORTION_MODELS}')
    coeffs = np.asarray(entry['distortion_coeffs'], dtype=np.float64).ravel()
    allowed = (4,) if model == 'equidistant' else (4, 5)
    if coeffs.size not in allowed or not np.all(np.isfinite(coeffs)):
        raise CalibrationError(
            f'{path}: {name}.distortion_coeffs must be {allowed} finite numbers for {model}')
    res = _matrix(entry['resolution'], (2,), f'{name}.resolution', path)
    if np.any(res < 1) or np.any(res != np.round(res)):
        raise CalibrationError(f'{path}: {name}.resolution {res.tolist()} is not a pixel size')
    rect = proj = tcn = None
    if 'rectification_matrix' in entry:
        rect = _matrix(entry['rectification_matrix'], (3, 3), f'{name}.rectification_matrix',
                       path)
    if 'projection_matrix' in entry:
        proj = _matrix(entry['projection_matrix'], (3, 4), f'{name}.projection_matrix', path)
    if 'T_cn_cnm1' in entry:
        tcn = _matrix(entry['T_cn_cnm1'], (4, 4), f'{name}.T_cn_cnm1', path)
    known = {'intrinsics', 'distortion_model', 'distortion_coeffs', 'resolution',
             'rectification_matrix', 'projection_matrix', 'T_cn_cnm1'}
    extra = {k: v for k, v in entry.items() if k not in known}
    return CameraModel(intr, model, coeffs, (int(res[0]), int(res[1])), rect, proj, tcn, extra)


def read_camchain(path: str | os.PathLike) -> tuple[CameraModel, CameraModel]:
    """Parse a Kalibr camchain yaml into (cam0 = left, cam1 = right), validated."""
    import yaml
    path = Path(path)
    if not path.is_file():
        raise CalibrationError(f'{path}: camchain file not found')
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise CalibrationError(f'{path}: cannot read camchain yaml ({exc})') from None
    if not isinstance(doc, dict):
        raise CalibrationError(f'{path}: not a Kalibr camchain (top level is not a mapping)')
    left = _parse_camera(doc.get('cam0'), 'cam0', path)
    right = _parse_camera(doc.get('cam1'), 'cam1', path)
    if left.resolution != right.resolution:
        raise CalibrationError(
            f'{path}: cam0 resolution {left.resolution} differs from cam1 {right.resolution}')
    return left, right


def stereo_rectification(left: CameraModel, right: CameraModel, source: str = ''
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(R_left, R_right, P_left, P_right): the camchain's own, or OpenCV's when it has none.

    Missing entries are computed from ``cam1.T_cn_cnm1`` with ``cv2.fisheye.stereoRectify``
    (equidistant, balance 0) or ``cv2.stereoRectify`` (radtan, alpha 0), zero disparity.
    """
    if all(m is not None for m in (left.rectification, left.projection,
                                   right.rectification, right.projection)):
        return left.rectification, right.rectification, left.projection, right.projection
    import cv2
    if right.T_cn_cnm1 is None:
        raise CalibrationError(f'{source}: cam1 has neither rectification/projection matrices '
                               'nor T_cn_cnm1 to compute them from')
    if left.distortion_model != right.distortion_model:
        raise CalibrationError(f'{source}: cameras use different distortion models; '
                               'give rectification_matrix and projection_matrix explicitly')
    rot = right.T_cn_cnm1[:3, :3].copy()
    trans = right.T_cn_cnm1[:3, 3].copy().reshape(3, 1)
    size = left.resolution
    k1, k2 = left.camera_matrix, right.camera_matrix
    d1, d2 = left.distortion_coeffs, right.distortion_coeffs
    if left.distortion_model == 'equidistant':
        r1, r2, p1, p2, _ = cv2.fisheye.stereoRectify(
            k1, d1.reshape(4, 1), k2, d2.reshape(4, 1), size, rot, trans,
            cv2.CALIB_ZERO_DISPARITY, newImageSize=size, balance=0.0, fov_scale=1.0)
    else:
        r1, r2, p1, p2 = cv2.stereoRectify(
            k1, d1, k2, d2, size, rot, trans, flags=cv2.CALIB_ZERO_DISPARITY, alpha=0.0,
            newImageSize=size)[:4]
    return (np.asarray(r1, np.float64), np.asarray(r2, np.float64),
            np.asarray(p1, np.float64), np.asarray(p2, np.float64))


def rectify_points(camera: CameraModel, rectification: np.ndarray, projection: np.ndarray,
                   points: np.ndarray) -> np.ndarray:
    """Raw pixel points (N, 2) -> rectified pixel points (N, 2) with OpenCV's undistortPoints."""
    import cv2
    pts = np.ascontiguousarray(points, dtype=np.float64).reshape(-1, 1, 2)
    k = camera.camera_matrix
    p = np.ascontiguousarray(projection[:, :3], dtype=np.float64)
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-12)
    if camera.distortion_model == 'equidistant':
        out = cv2.fisheye.undistortPoints(pts, k, camera.distortion_coeffs.reshape(4, 1),
                                          R=rectification, P=p, criteria=criteria)
    else:
        out = cv2.undistortPoints(pts, k, camera.distortion_coeffs, R=rectification, P=p,
                                  criteria=criteria)
    return np.asarray(out, dtype=np.float64).reshape(-1, 2)


def compute_maps(camera: CameraModel, rectification: np.ndarray, projection: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Raw->rectified (x_map, y_map), float32 (H, W), for every raw pixel centre of ``camera``.

    Non-finite results (rays OpenCV cannot undistort) become -1, i.e. outside the image.
    """
    width, height = camera.resolution
    ys, xs = np.mgrid[0:height, 0:width]
    pts = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float64)
    out = rectify_points(camera, rectification, projection, pts)
    out = np.where(np.isfinite(out), out, -1.0)
    return (out[:, 0].reshape(height, width).astype(np.float32),
            out[:, 1].reshape(height, width).astype(np.float32))


def maps_from_camchain(yaml_path: str | os.PathLike) -> StereoCalibration:
    """Build a :class:`StereoCalibration` from a Kalibr camchain alone (OpenCV maps)."""
    path = Path(yaml_path)
    left, right = read_camchain(path)
    r1, r2, p1, p2 = stereo_rectification(left, right, str(path))
    lx, ly = compute_maps(left, r1, p1)
    rx, ry = compute_maps(right, r2, p2)
    width, height = left.resolution
    return StereoCalibration(width, height, lx, ly, rx, ry, p1, p2, float(abs(p2[0, 3])),
                             _with_rect(left, r1, p1), _with_rect(right, r2, p2), str(path))


def _with_rect(cam: CameraModel, rect: np.ndarray, proj: np.ndarray) -> CameraModel:
    return CameraModel(cam.intrinsics, cam.distortion_model, cam.distortion_coeffs,
                       cam.resolution, rect, proj, cam.T_cn_cnm1, cam.extra)


# ---------------------------------------------------------------- MVSEC calibration folder

def read_map_file(path: str | os.PathLike, width: int, height: int) -> np.ndarray:
    """Parse one MVSEC map text file (``height`` rows of ``width`` floats) fast, validated."""
    path = Path(path)
    try:
        text = path.read_bytes().decode('ascii')
    except OSError as exc:
        raise CalibrationError(f'{path}: cannot read map file ({exc})') from None
    except UnicodeDecodeError:
        raise CalibrationError(f'{path}: map file is not ASCII text') from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('error')
            values = np.fromstring(text, dtype=np.float64, sep=' ')
    except (ValueError, Warning):
        raise CalibrationError(f'{path}: map file has a non-numeric entry') from None
    if values.size != width * height:
        raise CalibrationError(f'{path}: map file has {values.size} values, expected '
                               f'{height} rows x {width} = {width * height}')
    rows = sum(1 for line in text.splitlines() if line.strip())
    if rows != height:
        raise CalibrationError(f'{path}: map file has {rows} rows, expected {height}')
    if not np.all(np.isfinite(values)):
        raise CalibrationError(f'{path}: map file has non-finite values')
    return values.reshape(height, width).astype(np.float32)


def _one(folder: Path, pattern: str, what: str) -> Path:
    found = sorted(folder.glob(pattern))
    if not found:
        raise CalibrationError(f'{folder}: no {what} ({pattern}) in calibration folder')
    if len(found) > 1:
        names = ', '.join(p.name for p in found)
        raise CalibrationError(f'{folder}: several {what} files match {pattern}: {names}')
    return found[0]


def load_calibration(path: str | os.PathLike) -> StereoCalibration:
    """Load an MVSEC calibration folder (camchain + four maps) or a camchain yaml alone."""
    path = Path(path)
    if not path.exists():
        raise CalibrationError(f'{path}: calibration path does not exist')
    if path.is_file():
        if path.suffix.lower() not in ('.yaml', '.yml'):
            raise CalibrationError(f'{path}: expected a calibration folder or a camchain .yaml')
        return maps_from_camchain(path)
    camchain = _one(path, 'camchain*.yaml', 'Kalibr camchain')
    left, right = read_camchain(camchain)
    r1, r2, p1, p2 = stereo_rectification(left, right, str(camchain))
    width, height = left.resolution
    maps = {key: read_map_file(_one(path, f'*_{key}_map.txt', f'{key} map'), width, height)
            for key in MAP_KEYS}
    return StereoCalibration(width, height, maps['left_x'], maps['left_y'], maps['right_x'],
                             maps['right_y'], p1, p2, float(abs(p2[0, 3])),
                             _with_rect(left, r1, p1), _with_rect(right, r2, p2), str(path))


def _camera_yaml(cam: CameraModel) -> dict[str, Any]:
    entry: dict[str, Any] = dict(cam.extra)
    if cam.T_cn_cnm1 is not None:
        entry['T_cn_cnm1'] = cam.T_cn_cnm1.tolist()
    entry.update({
        'distortion_coeffs': cam.distortion_coeffs.tolist(),
        'distortion_model': cam.distortion_model,
        'intrinsics': cam.intrinsics.tolist(),
        'resolution': list(cam.resolution),
    })
    if cam.rectification is not None:
        entry['rectification_matrix'] = cam.rectification.tolist()
    if cam.projection is not None:
        entry['projection_matrix'] = cam.projection.tolist()
    return entry


def format_map(values: np.ndarray) -> bytes:
    """Map text exactly as MVSEC lays it out: one line per row, space-separated floats."""
    buf = io.StringIO()
    np.savetxt(buf, np.asarray(values, dtype=np.float64), fmt='%.6f', delimiter=' ')
    return buf.getvalue().encode('ascii')


def write_calibration(folder: str | os.PathLike, name: str, calib: StereoCalibration,
                      ) -> dict[str, Path]:
    """Write an MVSEC-layout calibration folder (``camchain-imucam-NAME.yaml`` + four maps).

    Needs ``calib.left_camera`` / ``right_camera``; each file is written atomically.
    """
    import yaml
    if calib.left_camera is None or calib.right_camera is None:
        raise ValueError('write_calibration needs the camera models (left_camera, right_camera)')
    if not name or '/' in name or name.startswith('.'):
        raise ValueError(f'bad calibration name {name!r}')
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    doc = {'cam0': _camera_yaml(calib.left_camera), 'cam1': _camera_yaml(calib.right_camera)}
    paths = {'camchain': folder / f'camchain-imucam-{name}.yaml'}
    atomic.write_bytes(paths['camchain'],
                       yaml.safe_dump(doc, default_flow_style=None, sort_keys=True).encode())
    arrays = dict(zip(MAP_KEYS, (calib.left_x_map, calib.left_y_map,
                                 calib.right_x_map, calib.right_y_map)))
    for key, values in arrays.items():
        if values.shape != (calib.height, calib.width):
            raise ValueError(f'{key} map has shape {values.shape}, expected '
                             f'({calib.height}, {calib.width})')
        paths[key] = folder / f'{name}_{key}_map.txt'
        atomic.write_bytes(paths[key], format_map(values))
    return paths
