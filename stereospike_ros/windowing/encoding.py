"""Rectify raw event coordinates and bin them into uint16 count images (the one binning code).

Used by the offline reference windows (``reference.py``) and the live node alike, so it is
vectorised and allocation-light: a per-raw-pixel lookup table maps a raw pixel (and polarity)
straight to its code in the ``(2, H, W)`` count image (dropped events to drop bins after it), and
``np.bincount`` does the counting (:func:`bin_codes`).

Reference rule (see docs): keep ``0 <= x_rect <= W`` and ``0 <= y_rect <= H``, truncate to int,
then drop column ``W`` / row ``H`` (counted as ``rect_edge``, part of ``out_of_range``).
``rounding='round'`` (the DDES convention) rounds half to even with ``np.rint`` instead of
truncating.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from stereospike_ros.io.events import SENSOR_HEIGHT, SENSOR_WIDTH, Events

COUNT_MAX = np.iinfo(np.uint16).max
ROUNDING_MODES = ('truncate', 'round')

#: Kinds of dropped events, in the order of their bins after the count image.
DROP_KINDS = ('out_of_range', 'rect_edge', 'beyond_sensor')
# ``Rectifier.lut`` values of dropped raw pixels (kind i is -1 - i).
_OUT_OF_RANGE = -1
_RECT_EDGE = -2


class Rectifier:
    """Per-raw-pixel lookup table from raw ``(x, y)`` to the rectified flat index ``y*W + x``.

    ``x_map`` / ``y_map`` are float ``(H, W)`` maps (raw pixel -> rectified coordinate); both
    ``None`` means the events are already rectified (identity). ``lut`` holds the flat index of
    every raw pixel, or -1 (out of range) / -2 (rectified onto column W / row H).
    """

    def __init__(self, width: int = SENSOR_WIDTH, height: int = SENSOR_HEIGHT,
                 x_map: np.ndarray | None = None, y_map: np.ndarray | None = None,
                 rounding: str = 'truncate') -> None:
        if rounding not in ROUNDING_MODES:
            raise ValueError(f'rounding must be one of {ROUNDING_MODES}, not {rounding!r}')
        width, height = int(width), int(height)
        if width <= 0 or height <= 0 or width * height * 2 >= 2 ** 31:
            raise ValueError(f'bad sensor size {width}x{height}')
        self.width, self.height, self.rounding = width, height, rounding
        self.identity = x_map is None and y_map is None
        if self.identity:
            lut = np.arange(width * height, dtype=np.int32)
        else:
            if x_map is None or y_map is None:
                raise ValueError('give both x_map and y_map, or neither (identity)')
            x_map = np.asarray(x_map, dtype=np.float64)
            y_map = np.asarray(y_map, dtype=np.float64)
            for name, m in (('x_map', x_map), ('y_map', y_map)):
                if m.shape != (height, width):
                    raise ValueError(f'{name} has shape {m.shape}, expected ({height}, {width})')
            lut = self._build(x_map.ravel(), y_map.ravel(), width, height, rounding)
        self.lut = lut
        #: First drop bin: codes ``trash + i`` count drops of kind ``DROP_KINDS[i]``.
        self.trash = 2 * width * height
        # Count-image code of every raw pixel in the ON half, then the OFF half (offset H*W);
        # dropped pixels go to the drop bins after the count image (no compaction needed).
        on = np.where(lut >= 0, lut, self.trash - 1 - lut)
        off = np.where(lut >= 0, lut + width * height, on)
        self._codes = np.concatenate([on, off]).astype(np.int32)

    @classmethod
    def for_camera(cls, calib: Any, side: str, rounding: str = 'truncate') -> 'Rectifier':
        """The rectifier of camera ``side`` of a ``calibration.StereoCalibration`` (its maps)."""
        return cls(calib.width, calib.height, *calib.maps(side), rounding)

    @staticmethod
    def _build(xr: np.ndarray, yr: np.ndarray, width: int, height: int,
               rounding: str) -> np.ndarray:
        with np.errstate(invalid='ignore'):
            ok = (xr >= 0) & (xr <= width) & (yr >= 0) & (yr <= height)
        xs = np.where(ok, xr, 0.0)
        ys = np.where(ok, yr, 0.0)
        if rounding == 'truncate':
            xi, yi = np.trunc(xs).astype(np.int64), np.trunc(ys).astype(np.int64)
        else:
            xi, yi = np.rint(xs).astype(np.int64), np.rint(ys).astype(np.int64)
        edge = ok & ((xi >= width) | (yi >= height))
        lut = np.where(ok & ~edge, yi * width + xi, _OUT_OF_RANGE).astype(np.int32)
        lut[edge] = _RECT_EDGE
        return lut

    def lookup(self, x: np.ndarray, y: np.ndarray, on: np.ndarray) -> np.ndarray:
        """Count-image codes (int32) of raw integer ``x, y`` and ON flags, one per event.

        A kept event gets ``ch*H*W + y_r*W + x_r`` (channel 0 ON, 1 OFF); a dropped one keeps its
        place with ``self.trash + i``, ``i`` indexing :data:`DROP_KINDS` (out of range,
        rectified onto the edge, raw coordinate beyond the sensor).
        """
        w, h = self.width, self.height
        x = np.asarray(x)
        y = np.asarray(y)
        on = np.asarray(on, dtype=bool)
        raw = y.astype(np.int32)
        raw *= w
        raw += x.astype(np.int32, copy=False)
        raw += np.logical_not(on) * np.int32(w * h)
        if not len(raw):
            return raw
        inside = None
        if int(x.max()) >= w or int(y.max()) >= h or int(x.min()) < 0 or int(y.min()) < 0:
            inside = (x < w) & (y < h) & (x >= 0) & (y >= 0)
            raw[~inside] = 0
        codes = self._codes[raw]
        if inside is not None:
            codes[~inside] = self.trash + DROP_KINDS.index('beyond_sensor')
        return codes


def drop_stats(bins: np.ndarray) -> dict:
    """Drop counts from the :data:`DROP_KINDS` bins: ``beyond_sensor``, ``out_of_range``
    (which includes ``rect_edge``) and ``rect_edge``."""
    out_of_range, edge, beyond = (int(v) for v in bins)
    return {'beyond_sensor': beyond, 'out_of_range': out_of_range + edge, 'rect_edge': edge}


def bin_codes(codes: np.ndarray, out: np.ndarray) -> tuple[int, np.ndarray]:
    """Add lookup codes to the uint16 ``(2, H, W)`` count image ``out`` (the one binning).

    Counts saturate at 65535 (clipped events are counted, never wrapped). Returns the number
    of clipped events and the int64 counts of the :data:`DROP_KINDS` bins.
    """
    size = out.size
    counts = np.bincount(codes, minlength=size + len(DROP_KINDS))
    if len(counts) > size + len(DROP_KINDS):
        raise ValueError(f'code {len(counts) - 1} beyond a {out.shape} count image')
    return _add_counts(counts[:size], out), counts[size:]


def _add_counts(counts: np.ndarray, out: np.ndarray) -> int:
    """Add int64 per-pixel ``counts`` to the uint16 image ``out`` in place, saturating at 65535.

    Returns the number of events clipped (never wrapped).
    """
    flat = out.reshape(-1)
    total = counts + flat
    clipped = 0
    if len(total) and total.max() > COUNT_MAX:
        over = total > COUNT_MAX
        clipped = int((total[over] - COUNT_MAX).sum())
        np.minimum(total, COUNT_MAX, out=total)
    flat[:] = total
    return clipped


def encode_window(left: Events, right: Events, rect_left: Rectifier, rect_right: Rectifier,
                  out: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
    """Rectify and bin one stereo window into uint16 ``(4, H, W)`` ``[L_ON, L_OFF, R_ON, R_OFF]``.

    Returns the counts (``out`` is overwritten when given) and summed drop counts
    (``beyond_sensor``, ``out_of_range``, ``rect_edge``, ``saturated``).
    """
    w, h = rect_left.width, rect_left.height
    if (rect_right.width, rect_right.height) != (w, h):
        raise ValueError('left and right rectifiers have different sensor sizes')
    if out is None:
        out = np.zeros((4, h, w), np.uint16)
    elif out.shape != (4, h, w) or out.dtype != np.uint16:
        raise ValueError(f'out must be uint16 (4, {h}, {w}), not {out.dtype} {out.shape}')
    else:
        out[...] = 0
    stats = {'beyond_sensor': 0, 'out_of_range': 0, 'rect_edge': 0, 'saturated': 0}
    for i, (ev, rect) in enumerate(((left, rect_left), (right, rect_right))):
        clipped, bins = bin_codes(rect.lookup(ev.x, ev.y, ev.p), out[2 * i:2 * i + 2])
        for key, value in drop_stats(bins).items():
            stats[key] += value
        stats['saturated'] += clipped
    return out, stats
