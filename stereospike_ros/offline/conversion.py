"""Convert one recorded sequence (MVSEC HDF5 pair or ROS 1/ROS 2 bags) into one tensors file.

Steps, as the reference: crop the left depth frames (split table or explicit ``[a, b)``), window
both cameras' events on the cropped depth timestamps (:mod:`windows`), rectify and bin them
(:mod:`encoding`), fill holes in the ground truth and write everything atomically
(:class:`tensors.TensorsWriter`). Memory stays bounded: events are streamed in chunks and every
sample is written as soon as it is complete.

Hole filling (reference behaviour, default): NaN (and other non-finite) depth -> 0, then
``skimage.morphology.area_closing(depth, area_threshold=24)``, then zeros -> NaN. Feeding the NaN
image to ``area_closing`` directly gives the same result on every case we tried; the explicit
NaN -> 0 makes it well defined. Without hole filling, non-finite depth just becomes NaN.

Degenerate data (README, "Errors and safety"): negative ground truth, a crop without any valid
ground truth, a camera without events in every window or no window with events in both cameras
are errors (no file is written); windows without events in a camera and frames without valid
ground truth are counted, stored (``event_counts``, attributes) and listed in ``warnings``.
"""
from __future__ import annotations

import os
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
from tqdm import tqdm

from stereospike_ros.io.errors import InputError
from stereospike_ros.io import bags, calibration
from stereospike_ros.io.events import UNSORTED_POLICIES, ns_to_seconds
from stereospike_ros.io.mvsec import DEFAULT_CHUNK, MVSEC_TOPICS, MvsecData, MvsecGroundTruth
from stereospike_ros.io.tensors import COMPRESSIONS, TensorsWriter
from stereospike_ros.nn.depth import mask_invalid, negative_depth, valid_mask
from stereospike_ros.io.codecs import COUNT_KEYS
from stereospike_ros.offline import splits
from stereospike_ros.windowing.encoding import ROUNDING_MODES, Rectifier
from stereospike_ros.windowing.reference import (PARTITION_KEYS, REFERENCE, STAT_KEYS,
                                                 WINDOW_MODES, WindowError, WindowGrid,
                                                 iter_stereo_windows)

HOLE_AREA_THRESHOLD = 24
_HDF5_SUFFIXES = ('.hdf5', '.h5')


class ConversionError(InputError):
    """Bad conversion input or options; the message names the file and the problem."""


def source_kind(path: str | os.PathLike) -> str:
    """``'hdf5'`` for an MVSEC HDF5 file, ``'bag'`` for a ROS 1 / ROS 2 bag; else an error."""
    p = Path(os.fspath(path))
    if not p.exists():
        raise ConversionError(f'{p}: no such file or directory')
    if p.is_file() and p.suffix.lower() in _HDF5_SUFFIXES:
        return 'hdf5'
    if bags.is_bag(p):
        return 'bag'
    raise ConversionError(f'{p}: not an MVSEC .hdf5 file, a ROS 1 .bag or a ROS 2 bag directory')


def sequence_name(path: str | os.PathLike) -> str:
    """Sequence name from a source path: ``indoor_flying1_data.hdf5`` -> ``indoor_flying1``."""
    name = Path(os.fspath(path)).name
    for suffix in _HDF5_SUFFIXES + bags.BAG_SUFFIXES:
        if name.lower().endswith(suffix):
            name = name[:-len(suffix)]
    for tail in ('_data', '_gt'):
        if name.endswith(tail):
            name = name[:-len(tail)]
    return name


def rectifiers(calib: Any, rounding: str = 'truncate') -> tuple[Rectifier, Rectifier]:
    """Left and right rectifiers from a calibration object, a path, a pair, or ``'identity'``.

    ``calib``: a ``calibration.StereoCalibration`` (or any object with ``width``, ``height`` and
    ``maps(side)``), a ``(left, right)`` pair of :class:`Rectifier`, a calibration folder /
    camchain yaml path, or ``'identity'`` (events already rectified, 346 x 260).
    """
    if rounding not in ROUNDING_MODES:
        raise ConversionError(f'rounding must be one of {ROUNDING_MODES}, not {rounding!r}')
    if isinstance(calib, str) and calib == 'identity':
        return Rectifier(rounding=rounding), Rectifier(rounding=rounding)
    if isinstance(calib, (tuple, list)) and len(calib) == 2 and \
            all(isinstance(r, Rectifier) for r in calib):
        return calib[0], calib[1]
    if isinstance(calib, (str, os.PathLike)):
        calib = calibration.load_calibration(calib)
    if not hasattr(calib, 'maps'):
        raise ConversionError(f'unsupported calibration {type(calib).__name__}')
    return (Rectifier.for_camera(calib, 'left', rounding),
            Rectifier.for_camera(calib, 'right', rounding))


def fill_holes(depth: np.ndarray, area_threshold: int = HOLE_AREA_THRESHOLD) -> np.ndarray:
    """Reference hole filling of one depth frame: NaN -> 0, area closing, 0 -> NaN (float32)."""
    from skimage.morphology import area_closing
    d = np.where(np.isfinite(depth), depth, 0).astype(np.float32)
    out = area_closing(d, area_threshold=area_threshold).astype(np.float32)
    out[out == 0] = np.nan
    return out


def prepared_frames(frames: Iterator[tuple[int, np.ndarray]],
                    prepare: Callable[[np.ndarray], np.ndarray],
                    workers: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """Apply ``prepare`` to each ``(index, frame)`` on a thread pool, yielding in order.

    skimage's area closing (~0.25 s a frame, most of a conversion) releases the GIL, so threads
    scale with cores; at most ``4 * workers`` frames are in flight (bounded memory).
    """
    workers = workers or os.cpu_count() or 1
    with ThreadPoolExecutor(workers) as pool:
        pending: deque = deque()
        for index, frame in frames:
            pending.append((index, pool.submit(prepare, frame)))
            if len(pending) >= 4 * workers:
                done_index, future = pending.popleft()
                yield done_index, future.result()
        while pending:
            done_index, future = pending.popleft()
            yield done_index, future.result()


def clean_depth(depth: np.ndarray) -> np.ndarray:
    """Depth without hole filling: float32, invalid depth (:mod:`nn.depth`: zeros, non-finite)
    -> NaN."""
    return mask_invalid(depth)


def resolve_crop(n_frames: int, crop: tuple[int, int] | None, where: str
                 ) -> tuple[int, int, bool]:
    """Half-open crop ``[a, b)`` clamped like a Python slice; returns (a, b, clamped)."""
    if crop is None:
        return 0, n_frames, False
    a, b = (int(v) for v in crop)
    if a < 0 or b <= a:
        raise ConversionError(f'bad crop [{a}, {b}): need 0 <= A < B')
    a2, b2 = min(a, n_frames), min(b, n_frames)
    if a2 >= b2:
        raise ConversionError(f'{where}: crop [{a}, {b}) selects no frame of its {n_frames} '
                              'depth frames')
    return a2, b2, (a2, b2) != (a, b)


class _DepthSource:
    """Left depth frames of a sequence (HDF5 or bag) with their float64 timestamps."""

    def __init__(self, path: str, kind: str, topic: str, height: int, width: int) -> None:
        self.path, self.kind, self.topic = path, kind, topic
        self.height, self.width = height, width
        if kind == 'hdf5':
            self._gt = MvsecGroundTruth(path, width, height)
            self.timestamps = self._gt.timestamps
        else:
            times = [ns for _, ns, _, _ in bags.iter_raw_messages(path, [topic])]
            if not times:
                raise ConversionError(f'{path}: no depth images on topic {topic}')
            self.timestamps = ns_to_seconds(np.array(times, np.int64))

    def frames(self, a: int, b: int) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(index, float32 (H, W))`` for frames ``a <= index < b`` in order."""
        for i, depth in self._frames(a, b):
            problem = negative_depth(depth)
            if problem:
                raise ConversionError(f'{self.path}: depth frame {i} {problem}')
            yield i, depth

    def _frames(self, a: int, b: int) -> Iterator[tuple[int, np.ndarray]]:
        if self.kind == 'hdf5':
            for i in range(a, b):
                yield i, self._gt.depth(i)
            return
        for i, (_, depth) in enumerate(bags.iter_depth_images(self.path, self.topic)):
            if i >= b:
                break
            if i >= a:
                if depth.shape != (self.height, self.width):
                    raise ConversionError(f'{self.path}: topic {self.topic} frame {i} has '
                                          f'shape {depth.shape}, expected '
                                          f'{(self.height, self.width)}')
                yield i, depth

    def close(self) -> None:
        """Release the file."""
        if self.kind == 'hdf5':
            self._gt.close()


def _check_event_source(data: str, kind: str, topics: dict, width: int, height: int,
                        unsorted: str) -> None:
    """Open the event source once before any work, so a bad file fails fast."""
    if kind == 'hdf5':
        MvsecData(data, width, height, unsorted).close()
        return
    types = bags.topic_types(data)
    missing = [topics[k] for k in ('left_events', 'right_events') if topics[k] not in types]
    if missing:
        raise ConversionError(f'{data}: no topic {", ".join(missing)} (the bag has '
                              f'{", ".join(sorted(types)) or "no topics"})')


def _hdf5_chunks(data: MvsecData, side: str, grid: WindowGrid, reader_stats: dict,
                 chunk: int) -> Iterator[tuple]:
    """Event chunks of one camera within the grid's span; reader drops go to ``reader_stats``."""
    total = data.num_events(side)
    reader_stats.update(read=total, non_finite=0, beyond_sensor=0, unsorted=0, skipped=total)
    stop = float(np.nextafter(grid.span_hi, np.inf))
    for c in data.chunks(side, grid.span_lo, stop, chunk):
        for key in ('non_finite', 'beyond_sensor', 'unsorted'):
            reader_stats[key] += c.drops[key]
        reader_stats['skipped'] -= c.drops['read']
        yield c.x, c.y, c.seconds, c.on


def _bag_chunks(path: str, topic: str, grid: WindowGrid, reader_stats: dict,
                packet_counts: dict) -> Iterator[tuple]:
    """Event chunks of one camera from a bag (every event is read; the windower filters).

    EventPacket topics are decoded by the codecs; the events they drop beyond the sensor are
    counted as read and dropped here, their other counters go to ``packet_counts``.
    """
    reader_stats.update(read=0, non_finite=0, beyond_sensor=0, unsorted=0, skipped=0)
    read = 0
    for ev in bags.read_events(path, topic, chunk_messages=4096, chunk_events=1 << 17,
                               packet_counts=packet_counts):
        read += len(ev)
        dropped = packet_counts.get('beyond_sensor', 0)
        if dropped:     # final before the last yield: the windower may not resume us after it
            reader_stats.update(beyond_sensor=dropped, read=read + dropped)
        yield ev.x, ev.y, ev.seconds, ev.p


def _merge_stats(window_stats: dict, reader_stats: dict) -> dict:
    """Per-camera accounting: reader drops (HDF5) merged into the windower's counts."""
    out = {k: int(window_stats.get(k, 0)) for k in STAT_KEYS}
    for key in ('non_finite', 'beyond_sensor', 'unsorted'):
        out[key] += int(reader_stats.get(key, 0))
    if reader_stats.get('read'):
        out['read'] = int(reader_stats['read'])
        out['outside_span'] += int(reader_stats['skipped'])
    return out


def _describe_calibration(calib: Any) -> str:
    if isinstance(calib, (str, os.PathLike)):
        return 'identity' if calib == 'identity' else os.path.abspath(calib)
    return str(getattr(calib, 'source', '') or type(calib).__name__)


def convert_sequence(data: str | os.PathLike, gt: str | os.PathLike, calib: Any,
                     out: str | os.PathLike, *, sequence: str | None = None,
                     crop: tuple[int, int] | None = None, split: int | None = None,
                     window_ms: float = 50.0, window_mode: str = REFERENCE,
                     rounding: str = 'truncate', hole_filling: bool = True,
                     topics: dict | None = None, compression: str = 'gzip',
                     unsorted: str = 'error', chunk: int = DEFAULT_CHUNK,
                     progress: bool = True) -> dict:
    """Convert one sequence into the tensors file ``out`` (atomically); returns a summary dict.

    ``split`` picks the crop of ``sequence`` from the split table (test crop for the split's test
    sequence, train crop otherwise); ``crop`` gives ``[a, b)`` directly; neither: all frames.
    """
    started = time.perf_counter()
    data, gt, out = os.fspath(data), os.fspath(gt), os.fspath(out)
    if window_mode not in WINDOW_MODES:
        raise ConversionError(f'window mode must be one of {WINDOW_MODES}, not {window_mode!r}')
    if compression not in COMPRESSIONS:
        raise ConversionError(f'compression must be one of {COMPRESSIONS}')
    if unsorted not in UNSORTED_POLICIES:
        raise ConversionError(f'unsorted policy must be one of {UNSORTED_POLICIES}')
    if crop is not None and split is not None:
        raise ConversionError('give either a split or a crop, not both')
    topics = {**MVSEC_TOPICS, **(topics or {})}
    data_kind, gt_kind = source_kind(data), source_kind(gt)
    sequence = sequence or sequence_name(data)
    if split is not None:
        crop = splits.crop_for(split, sequence)
    rect_l, rect_r = rectifiers(calib, rounding)
    h, w = rect_l.height, rect_l.width
    _check_event_source(data, data_kind, topics, w, h, unsorted)
    depth_src = _DepthSource(gt, gt_kind, topics['left_depth'], h, w)
    try:
        n_frames = len(depth_src.timestamps)
        a, b, clamped = resolve_crop(n_frames, crop, gt)
        if clamped and progress:
            print(f'note: crop {crop} clamped to [{a}, {b}) ({n_frames} depth frames in {gt})')
        ts = depth_src.timestamps[a:b]
        try:
            grid = WindowGrid.make(ts, window_mode, window_ms)
        except ValueError as exc:
            raise ConversionError(f'{gt}: {exc}') from None
        n = len(grid)
        summary: dict[str, Any] = {
            'sequence': sequence, 'data_source': os.path.abspath(data),
            'gt_source': os.path.abspath(gt), 'source_format': data_kind,
            'calibration': _describe_calibration(calib),
            'crop_start': a, 'crop_stop': b, 'crop_requested': list(crop) if crop else [],
            'split': -1 if split is None else int(split), 'window_ms': float(window_ms),
            'window_mode': window_mode, 'rounding': rounding, 'hole_filling': bool(hole_filling),
            'hole_area_threshold': HOLE_AREA_THRESHOLD if hole_filling else 0,
            'unsorted_policy': unsorted, 'topics': topics, 'samples': n,
            'depth_frames_in_source': n_frames, 'width': w, 'height': h,
        }
        with TensorsWriter(out, n, h, w, compression) as writer:
            writer.timestamps[:] = ts
            writer.frame_indices[:] = np.arange(a, b, dtype=np.int64)
            prepare = fill_holes if hole_filling else clean_depth
            without_gt = 0
            for i, depth in tqdm(prepared_frames(depth_src.frames(a, b), prepare), total=n,
                                 desc='depth', unit='frame', disable=not progress):
                writer.depth[i - a] = depth
                without_gt += not valid_mask(depth).any()
            if without_gt == n:
                raise ConversionError(f'{gt}: no valid ground truth (finite depth > 0) in any '
                                      f'of the {n} depth frames [{a}, {b})')
            summary['frames_without_gt'] = without_gt
            reader = {'left': {}, 'right': {}}
            packets: dict = {'left': {}, 'right': {}}      # EventPacket decoder counters
            win_stats: dict = {}
            t_events = time.perf_counter()
            if data_kind == 'hdf5':
                with MvsecData(data, w, h, unsorted) as mv:
                    chunks = [_hdf5_chunks(mv, side, grid, reader[side], chunk)
                              for side in ('left', 'right')]
                    _write_inputs(writer, chunks, grid, rect_l, rect_r, unsorted, win_stats,
                                  progress, check_order=False)
            else:
                chunks = [_bag_chunks(data, topics[f'{side}_events'], grid, reader[side],
                                      packets[side]) for side in ('left', 'right')]
                try:
                    _write_inputs(writer, chunks, grid, rect_l, rect_r, unsorted, win_stats,
                                  progress)
                except WindowError as exc:
                    raise ConversionError(f'{data}: {exc}') from None
            events_s = time.perf_counter() - t_events
            cams = {side: _merge_stats(win_stats[side], reader[side])
                    for side in ('left', 'right')}
            for side, st in cams.items():
                missing = st['read'] - sum(st[k] for k in PARTITION_KEYS)
                if missing:
                    raise ConversionError(f'{data}: internal accounting error for {side} '
                                          f'events ({missing} unaccounted)')
            summary['warnings'] = degenerate_data(writer.event_counts[()], cams, data, gt,
                                                  without_gt)
            summary['empty_windows_left'], summary['empty_windows_right'] = (
                int(v) for v in (writer.event_counts[()] == 0).sum(axis=0))
            totals = {k: cams['left'][k] + cams['right'][k] for k in STAT_KEYS}
            summary['events'] = {'left': cams['left'], 'right': cams['right'], 'total': totals}
            if packets['left'] or packets['right']:
                summary['packets'] = packets
            attrs = {k: v for k, v in summary.items() if k not in ('events', 'packets')}
            for side, st in (*cams.items(), ('total', totals)):
                for key, value in st.items():
                    attrs[f'events_{side}_{key}'] = value
            for side, st in packets.items():
                for key, value in st.items():
                    attrs[f'packets_{side}_{key}'] = value
            attrs['converter'] = 'stereospike_ros.offline.conversion'
            attrs['sample_offset_note'] = (f'reference datasets use sample i = window '
                                           f'i+{splits.SAMPLE_OFFSET}')
            writer.set_attrs(attrs)
            writer.commit()
    finally:
        depth_src.close()
    summary['output'] = os.path.abspath(out)
    summary['seconds'] = time.perf_counter() - started
    summary['event_seconds'] = events_s
    return summary


def _write_inputs(writer: TensorsWriter, chunks: list, grid: WindowGrid, rect_l: Rectifier,
                  rect_r: Rectifier, unsorted: str, stats: dict, progress: bool,
                  check_order: bool = True) -> None:
    binned = np.zeros((len(grid), 2), np.int64)
    for k, counts in tqdm(iter_stereo_windows(chunks[0], chunks[1], grid, rect_l, rect_r,
                                              unsorted, stats, check_order),
                          total=len(grid), desc='windows', unit='win', disable=not progress):
        writer.inputs[k] = counts
        binned[k] = counts[:2].sum(dtype=np.int64), counts[2:].sum(dtype=np.int64)
    writer.event_counts[:] = binned


def degenerate_data(binned: np.ndarray, cams: dict, data: str, gt: str,
                    frames_without_gt: int) -> list[str]:
    """Warnings for windows without events / frames without ground truth; errors when nothing
    usable is left (a camera silent in every window, no window with events in both)."""
    n = len(binned)
    empty = binned == 0
    for c, side in enumerate(('left', 'right')):
        if empty[:, c].all():
            st = cams[side]
            raise ConversionError(
                f'{data}: the {side} camera has no event in any of the {n} windows '
                f'({st["read"]:,} events read, {st["outside_span"]:,} outside the depth time '
                f'span of {gt}, {st["outside_windows"] + st["window_edges"]:,} between '
                f'windows): are event and depth times in the same clock and unit, and the '
                f'windows long enough?')
    unusable = empty.any(axis=1)
    if unusable.all():
        raise ConversionError(f'{data}: no usable window: none of the {n} windows has events '
                              f'from both cameras')
    warnings = []
    for c, side in enumerate(('left', 'right')):
        k = np.flatnonzero(empty[:, c])
        if len(k):
            listed = ', '.join(map(str, k[:5])) + (', ...' if len(k) > 5 else '')
            warnings.append(f'{side} camera: no event in {len(k)} of {n} windows ({listed}); '
                            f'training and evaluation leave them out')
    if frames_without_gt:
        warnings.append(f'{frames_without_gt} of {n} depth frames have no valid ground truth; '
                        f'training and evaluation skip them')
    return warnings


def format_summary(summary: dict) -> str:
    """Human-readable multi-line summary of a conversion."""
    ev = summary['events']
    lines = [f"{summary['output']}: {summary['samples']} samples of {summary['sequence']} "
             f"(depth frames [{summary['crop_start']}, {summary['crop_stop']}) of "
             f"{summary['depth_frames_in_source']}), {summary['window_mode']} windows of "
             f"{summary['window_ms']:g} ms, {summary['rounding']}, hole filling "
             f"{'on' if summary['hole_filling'] else 'off'}, {summary['seconds']:.1f} s",
             f"{'events':>16} {'left':>14} {'right':>14}"]
    for key in STAT_KEYS:
        lines.append(f'{key:>16} {ev["left"][key]:>14,} {ev["right"][key]:>14,}')
    lines.append(f'{"empty windows":>16} {summary["empty_windows_left"]:>14,} '
                 f'{summary["empty_windows_right"]:>14,}')
    packets = summary.get('packets')
    if packets:
        lines.append(f"{'EventPackets':>16} {'left':>14} {'right':>14}")
        for key in COUNT_KEYS:
            left, right = packets['left'].get(key, 0), packets['right'].get(key, 0)
            if left or right or key == 'packets':
                lines.append(f'{key:>16} {left:>14,} {right:>14,}')
    return '\n'.join(lines)
