"""Depth node outputs: added cost per window of disparity, right camera_info and point cloud.

Per 346 x 260 window, in one process: build every message from the raw model depth
(``ros/outputs.py``) and serialise it as ``publish`` does (``rclpy.serialization``), CPU time of
the one thread that does it (the node's inference thread), median of repeats. Baseline:
what the node published before these outputs (validity rule, depth/image, depth/camera_info).
The point cloud is also compared with a per-point Python loop (``struct.pack`` per point, the
way a naive ``create_cloud`` builds the data) on the same depth map.
"""
from __future__ import annotations

import argparse
import statistics
import struct
import time

import numpy as np
from rclpy.serialization import serialize_message

from stereospike_ros.io.events import SENSOR_HEIGHT, SENSOR_WIDTH
from stereospike_ros.nn.depth import mask_invalid
from stereospike_ros.nn.geometry import StereoGeometry
from stereospike_ros.ros import outputs, ros_images
from stereospike_ros.ros.depth_node import MVSEC_BASELINE_M, MVSEC_CX, MVSEC_CY, MVSEC_FX

W, H = SENSOR_WIDTH, SENSOR_HEIGHT
STAMP = 1_500_000_000_000_000_000
WINDOW_MS = 50.0          # the node's default window period (20 Hz)
BASE = dict(frame_id='davis_left_optical_frame', right_frame_id='davis_right_optical_frame',
            depth_min_m=0.1, depth_max_m=100.0, disparity=False, points=False,
            points_organized=True, points_rgb=False, colorized=False, colorize_min_m=0.5,
            colorize_max_m=10.0)
CASES = [
    ('defaults: + right/camera_info + depth/disparity', dict(disparity=True)),
    ('+ depth/points organised xyz', dict(disparity=True, points=True)),
    ('+ depth/points unorganised xyz', dict(disparity=True, points=True,
                                            points_organized=False)),
    ('+ depth/points organised xyz + rgb', dict(disparity=True, points=True, points_rgb=True)),
    ('everything (+ depth/colorized)', dict(disparity=True, points=True, points_rgb=True,
                                            colorized=True)),
]


def scene_depth(seed: int = 0) -> np.ndarray:
    """A plausible raw model output: smooth 1-12 m room depth, 5 % of pixels non-positive."""
    rng = np.random.default_rng(seed)
    v, u = np.mgrid[0:H, 0:W]
    depth = 1.0 + 11.0 * (0.5 + 0.5 * np.sin(u / 40.0) * np.cos(v / 30.0))
    depth[rng.random((H, W)) < 0.05] = -0.5
    return depth.astype(np.float32)


def _median_ms(fn, repeats: int) -> float:
    """Median CPU time (ms) of this thread per call: steadier than wall time on a shared host."""
    times = []
    for _ in range(repeats):
        t = time.thread_time()
        fn()
        times.append((time.thread_time() - t) * 1e3)
    return statistics.median(times)


def run(quick: bool = False) -> list[dict]:
    """ms per window of each output set, added ms and ratio against the depth-only baseline."""
    repeats = 5 if quick else 30
    geometry = StereoGeometry.from_intrinsics(W, H, MVSEC_FX, MVSEC_FX, MVSEC_CX, MVSEC_CY,
                                              MVSEC_BASELINE_M)
    builder = outputs.OutputBuilder(geometry)
    raw = scene_depth()

    def before() -> int:          # the node before issue 12: rule, depth image, camera_info
        depth = mask_invalid(raw)
        header = ros_images.make_header(STAMP, BASE['frame_id'])
        msgs = [ros_images.depth_to_image(depth, header),
                ros_images.camera_info(W, H, geometry.left_projection, header)]
        return sum(len(serialize_message(m)) for m in msgs)

    def after(settings: outputs.OutputSettings) -> int:
        msgs = builder.build(raw, STAMP, settings)
        return sum(len(serialize_message(m)) for m in msgs.values())

    before()
    base_ms = _median_ms(before, repeats)
    rows = [{'outputs per window': 'before: depth/image + depth/camera_info (baseline)',
             'ms per window': base_ms, 'added ms': 0.0, 'x baseline': 1.0,
             '% of 50 ms window': 100.0 * base_ms / WINDOW_MS,
             'MB serialised': before() / 1e6}]
    for name, overrides in CASES:
        settings = outputs.OutputSettings(**{**BASE, **overrides})
        size = after(settings)
        ms = _median_ms(lambda: after(settings), repeats)
        rows.append({'outputs per window': name, 'ms per window': ms, 'added ms': ms - base_ms,
                     'x baseline': ms / base_ms, '% of 50 ms window': 100.0 * ms / WINDOW_MS,
                     'MB serialised': size / 1e6})
    rows += _points_vs_loop(geometry, raw, 2 if quick else 5)
    return rows


def _points_vs_loop(geometry: StereoGeometry, raw: np.ndarray, repeats: int) -> list[dict]:
    """Organised xyz cloud data: the vectorised builder vs a per-point Python loop (same bytes)."""
    depth = mask_invalid(raw)
    header = ros_images.make_header(STAMP, BASE['frame_id'])
    k = geometry.left_projection

    def loop() -> bytes:
        fx, fy, cx, cy = k[0, 0], k[1, 1], k[0, 2], k[1, 2]
        out = bytearray()
        for v in range(H):
            for u in range(W):
                z = float(depth[v, u])
                out += struct.pack('<fff', (u - cx) * z / fx, (v - cy) * z / fy, z)
        return bytes(out)

    def vectorised() -> bytes:
        return outputs.point_cloud(geometry.points(depth), header).data

    ours, theirs = np.frombuffer(vectorised(), '<f4'), np.frombuffer(loop(), '<f4')
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5, equal_nan=True)
    loop_ms = _median_ms(loop, repeats)
    ours_ms = _median_ms(vectorised, repeats * 5)
    return [{'outputs per window': 'organised xyz cloud data: per-point Python loop',
             'ms per window': loop_ms, 'x vectorised': loop_ms / ours_ms},
            {'outputs per window': 'organised xyz cloud data: vectorised (node)',
             'ms per window': ours_ms, 'x vectorised': 1.0}]


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--quick', action='store_true')
    for row in run(parser.parse_args().quick):
        print(row)
