"""Rectify raw event coordinates and bin them into uint16 count images (the one binning code).

Used offline (``windows.py`` / ``conversion.py``) and by the ROS node, so it is vectorised and
allocation-light: a per-raw-pixel lookup table maps a raw pixel (and polarity) straight to its
flat index in the ``(2, H, W)`` count image, and ``np.bincount`` does the counting.

Reference rule (see docs): keep ``0 <= x_rect <= W`` and ``0 <= y_rect <= H``, truncate to int,
then drop column ``W`` / row ``H`` (counted as ``rect_edge``, part of ``out_of_range``).
``rounding='round'``
(the DDES convention) rounds half to even with ``np.rint`` instead of truncating.
"""
from __future__ import annotations

import numpy as np

from stereospike_ros.io.events import SENSOR_HEIGHT, SENSOR_WIDTH, Events

COUNT_MAX = np.iinfo(np.uint16).max
ROUNDING_MODES = ('truncate', 'round')

# Lookup-table codes for dropped raw pixels.
_OUT_OF_RANGE = -1
_RECT_EDGE = -2
_BEYOND_SENSOR = -3


class Rectifier:
    """Per-raw-pixel lookup table from raw ``(x, y)`` to the rectified flat index ``y*W + x``.

    ``x_map`` / ``y_map`` are float ``(H, W)`` maps (raw pixel -> rectified coordinate); both
    ``None`` means the events are already rectified (identity).
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
        # Second half of the table: the same pixels in the OFF channel (offset H*W).
        off = np.where(lut >= 0, lut + width * height, lut).astype(np.int32)
        self._lut2 = np.concatenate([lut, off])
        # Same table with drops sent to "trash" bins after the count image (see lookup).
        self.trash = 2 * width * height
        self._lut_trash = np.where(self._lut2 >= 0, self._lut2,
                                   self.trash - 1 - self._lut2).astype(np.int32)

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

    def lookup(self, x: np.ndarray, y: np.ndarray, on: np.ndarray,
               trash: bool = False) -> np.ndarray:
        """Count-image codes ``ch*H*W + y_r*W + x_r`` (int32) of raw integer ``x, y`` and ON flags.

        Dropped events keep their place with a negative code: -1 out of range, -2 rectified onto
        column W / row H, -3 raw coordinate beyond the sensor (see :func:`drop_counts`). With
        ``trash`` they get codes ``self.trash + 0 / 1 / 2`` instead (bincount-able, no compaction).
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
        codes = (self._lut_trash if trash else self._lut2)[raw]
        if inside is not None:
            codes[~inside] = self.trash - 1 - _BEYOND_SENSOR if trash else _BEYOND_SENSOR
        return codes

    def codes(self, x: np.ndarray, y: np.ndarray, on: np.ndarray) -> tuple[np.ndarray, dict]:
        """Codes of the kept events only (see :meth:`lookup`) and their drop counts."""
        codes = self.lookup(x, y, on)
        keep = codes >= 0
        if np.all(keep):
            return codes, drop_counts(codes[:0])
        return codes[keep], drop_counts(codes[~keep])

    def pixel_index(self, events: Events) -> tuple[np.ndarray, np.ndarray, dict]:
        """Rectified flat index ``y*W + x`` (int64), ON flags of the kept events, drop counts."""
        codes, stats = self.codes(events.x, events.y, events.p)
        flat = codes.astype(np.int64)
        on = flat < self.width * self.height
        flat[~on] -= self.width * self.height
        return flat, on, stats


def drop_counts(dropped_codes: np.ndarray) -> dict:
    """Drop counts of negative lookup codes: beyond_sensor, out_of_range (incl. rect_edge)."""
    beyond = int(np.count_nonzero(dropped_codes == _BEYOND_SENSOR))
    edge = int(np.count_nonzero(dropped_codes == _RECT_EDGE))
    return {'beyond_sensor': beyond, 'out_of_range': len(dropped_codes) - beyond,
            'rect_edge': edge}


def counts_from_codes(codes: np.ndarray, width: int, height: int, out: np.ndarray | None = None,
                      accumulate: bool = False) -> tuple[np.ndarray, int]:
    """Bin count-image codes into uint16 ``(2, H, W)`` saturating at 65535: (counts, n clipped).

    With ``accumulate`` the codes are added to ``out``'s current counts (still saturating).
    """
    size = 2 * width * height
    if out is None:
        out = np.zeros((2, height, width), np.uint16)
        accumulate = False
    elif out.shape != (2, height, width) or out.dtype != np.uint16:
        raise ValueError(f'out must be uint16 (2, {height}, {width}), not {out.dtype} {out.shape}')
    counts = np.bincount(codes, minlength=size)
    if len(counts) > size:
        raise ValueError(f'code {len(counts) - 1} beyond a (2, {height}, {width}) count image')
    if not accumulate:
        out[...] = 0
    return out, add_counts(counts, out)


def add_counts(counts: np.ndarray, out: np.ndarray) -> int:
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


def bin_counts(flat: np.ndarray, on: np.ndarray, width: int, height: int,
               out: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """Count rectified events per pixel into uint16 ``(2, H, W)`` (ON, OFF): (counts, n clipped).

    Counts saturate at 65535 (clipped events are counted, never wrapped); ``out`` is overwritten.
    """
    flat = np.asarray(flat, dtype=np.int64)
    on = np.asarray(on, dtype=bool)
    if len(flat) and (flat.min() < 0 or flat.max() >= width * height):
        raise ValueError(f'flat pixel index outside a {width}x{height} image')
    codes = flat + np.logical_not(on) * (width * height)
    return counts_from_codes(codes, width, height, out=out)


def encode_window(left: Events, right: Events, rect_left: Rectifier, rect_right: Rectifier,
                  out: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
    """Rectify and bin one stereo window into uint16 ``(4, H, W)`` ``[L_ON, L_OFF, R_ON, R_OFF]``.

    Returns the counts and summed drop counts (``beyond_sensor``, ``out_of_range``, ``rect_edge``,
    ``saturated``).
    """
    w, h = rect_left.width, rect_left.height
    if (rect_right.width, rect_right.height) != (w, h):
        raise ValueError('left and right rectifiers have different sensor sizes')
    if out is None:
        out = np.zeros((4, h, w), np.uint16)
    elif out.shape != (4, h, w) or out.dtype != np.uint16:
        raise ValueError(f'out must be uint16 (4, {h}, {w}), not {out.dtype} {out.shape}')
    stats = {'beyond_sensor': 0, 'out_of_range': 0, 'rect_edge': 0, 'saturated': 0}
    for i, (ev, rect) in enumerate(((left, rect_left), (right, rect_right))):
        codes, s = rect.codes(ev.x, ev.y, ev.p)
        _, clipped = counts_from_codes(codes, w, h, out=out[2 * i:2 * i + 2])
        for key, value in s.items():
            stats[key] += value
        stats['saturated'] += clipped
    return out, stats
