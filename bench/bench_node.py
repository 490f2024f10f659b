"""Depth node: ingestion cost per window (raw CDR vs typed messages) and end-to-end latency.

Ingestion = what the node does per 50 ms window without inference: decode each message, append
to the live windower, cut the window, rectify and bin it. The raw path (the node's: numpy views
over the CDR bytes) is compared with the typed path (rclpy deserialisation to message objects,
then numpy from the per-event objects) in the same process, at 1 and 5 M events/s per camera.
End-to-end latency runs the node (tiny model, CPU) as a process over real DDS, raw subscriptions
vs typed ones, and measures publish of the last needed event message -> depth received.
"""
from __future__ import annotations

import argparse
import bisect
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from stereospike_ros.io import wire
from stereospike_ros.io.events import NS_PER_S, SENSOR_HEIGHT, SENSOR_WIDTH, Events
from stereospike_ros.windowing.stream import StereoWindower, StreamConfig

HERE = Path(__file__).resolve().parent

MS = 1_000_000
T0 = 1_500_000_000 * NS_PER_S + 7 * MS
W, H = SENSOR_WIDTH, SENSOR_HEIGHT
SIDES = ('left', 'right')


def make_events(t_start: int, t_stop: int, rate_per_s: float, seed: int) -> Events:
    """Uniform random events in [t_start, t_stop) ns at ``rate_per_s``."""
    rng = np.random.default_rng(seed)
    n = int((t_stop - t_start) / 1e9 * rate_per_s)
    return Events(rng.integers(0, W, n).astype(np.uint16), rng.integers(0, H, n).astype(np.uint16),
                  np.sort(rng.integers(t_start, t_stop, n)).astype(np.int64), rng.random(n) < 0.5)


def cdr_messages(ev: Events, t_start: int, t_stop: int, step_ns: int) -> list[tuple[bytes, int]]:
    """CDR EventArray bytes per ``step_ns`` of sensor time (stamp = end of the span)."""
    return [(wire.encode_cdr_event_array(wire.EventArrayMsg(
        lo + step_ns, 'davis', H, W, ev.time_slice(lo, lo + step_ns))), lo + step_ns)
        for lo in range(t_start, t_stop, step_ns)]


def typed_to_events(msg: Any) -> tuple[Events, int]:
    """What a node with typed subscriptions must do: numpy from per-event message objects."""
    evs = msg.events
    n = len(evs)
    x = np.fromiter((e.x for e in evs), np.uint16, n)
    y = np.fromiter((e.y for e in evs), np.uint16, n)
    t = np.fromiter((e.ts.sec * NS_PER_S + e.ts.nanosec for e in evs), np.int64, n)
    p = np.fromiter((e.polarity for e in evs), bool, n)
    stamp = msg.header.stamp.sec * NS_PER_S + msg.header.stamp.nanosec
    return Events(x, y, t, p), stamp


def ingest(msgs: dict, windows: int, typed: bool) -> float:
    """Seconds per window to decode, buffer, cut, rectify and bin ``windows`` windows."""
    from stereospike_ros.windowing.encoding import Rectifier, encode_window
    if typed:
        from dvs_msgs.msg import EventArray
        from rclpy.serialization import deserialize_message
    rect = Rectifier(W, H)
    win = StereoWindower(StreamConfig(window_ms=50, rate_hz=20,
                                      max_events_per_window=10_000_000))
    per_window = len(msgs['left']) // (windows + 1)
    cut = 0
    spent = 0.0
    for k in range(len(msgs['left'])):
        start = time.perf_counter()
        for side in SIDES:
            data, _ = msgs[side][k]
            if typed and k >= per_window:       # warm-up messages take the fast path
                events, stamp = typed_to_events(deserialize_message(data, EventArray))
            else:
                m = wire.decode_cdr_event_array(data)
                events, stamp = m.events, m.stamp_ns
            win.add(side, events, stamp)
        for window in win.pop_ready():
            encode_window(window.left, window.right, rect, rect)
            cut += 1
        if k >= per_window:         # the first window's messages only warm the buffers up
            spent += time.perf_counter() - start
    return spent / max(cut, 1)


def bench_ingestion(quick: bool) -> list[dict]:
    """Rows for 1 and 5 M events/s per camera, raw and typed."""
    rows = []
    for rate in (1e6, 5e6):
        n_windows = (3 if rate > 1e6 else 6) if quick else (10 if rate > 1e6 else 20)
        typed_windows = 1 if quick else 2
        span = (n_windows + 2) * 50 * MS
        streams = {s: make_events(T0, T0 + span, rate, i) for i, s in enumerate(SIDES)}
        msgs = {s: cdr_messages(streams[s], T0, T0 + span, 5 * MS) for s in SIDES}
        raw = ingest(msgs, n_windows, typed=False)
        short = {s: msgs[s][:(typed_windows + 2) * 10] for s in SIDES}
        typed = ingest(short, typed_windows, typed=True)
        for path, sec in (('raw CDR views (node)', raw), ('typed messages', typed)):
            rows.append({'bench': 'ingest per 50 ms window', 'path': path,
                         'M events/s per camera': rate / 1e6,
                         'ms per window': sec * 1e3, 'x real time': 0.05 / sec,
                         'cost vs raw': sec / raw})
    return rows


# ------------------------------------------------------------------------- end-to-end latency
def _serve(args) -> int:
    """Child process: run the depth node, raw (as shipped) or with typed subscriptions."""
    import rclpy
    from dvs_msgs.msg import EventArray
    from rclpy.executors import ExternalShutdownException
    from rclpy.parameter import Parameter
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    from stereospike_ros.ros.depth_node import DepthNode

    rclpy.init()
    overrides = [Parameter('checkpoint', value=args.checkpoint),
                 Parameter('device', value=args.device), Parameter('half', value=args.half),
                 Parameter('backend', value=args.backend),
                 Parameter('rate_hz', value=args.rate_hz)]
    node = DepthNode(namespace=args.ns, parameter_overrides=overrides)
    if args.serve == 'typed':
        node.destroy_timer(node.input_timer)
        for inp in node.inputs.values():
            node.destroy_subscription(inp.subscription)
        qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)   # as auto matches

        def callback(side):
            def on_msg(msg):
                wall = time.monotonic()
                events, stamp = typed_to_events(msg)
                node.windower.add(side, events, stamp, wall)
                node._wake.set()
            return on_msg
        node.typed_subs = [node.create_subscription(EventArray, f'{side}/events', callback(side),
                                                    qos) for side in ('left', 'right')]
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


def _tiny_checkpoint(path: Path) -> str:
    import torch
    from stereospike_ros.nn.checkpoint import save_checkpoint
    from stereospike_ros.nn.model import ModelConfig, build_model
    torch.manual_seed(0)
    save_checkpoint(path, build_model(ModelConfig(width=1 / 32)), {'note': 'benchmark'})
    return str(path)


def bench_latency(path: str, checkpoint: str, rate: float, seconds: float, rate_hz: float,
                  device: str = 'cpu', half: bool = False, backend: str = 'torch',
                  what: str = 'end-to-end latency (tiny model, CPU)') -> dict:
    """Run the node (``path`` 'raw' or 'typed'), stream events at real time, time depth.

    ``device``, ``half`` and ``backend`` are the node's parameters (gpu_bench.py runs it on CUDA).
    """
    import rclpy
    from dvs_msgs.msg import EventArray
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    ns = f'/bench{os.getpid()}{path}'
    cmd = [sys.executable, str(Path(__file__).resolve()), '--serve', path, '--checkpoint',
           checkpoint, '--ns', ns, '--rate-hz', str(rate_hz), '--device', device, '--backend',
           backend] + (['--half'] if half else [])
    proc = subprocess.Popen(cmd,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node('bench_node_client', context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    qos = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)
    pubs = {s: node.create_publisher(EventArray, f'{ns}/{s}/events', qos) for s in SIDES}
    received: dict[int, float] = {}
    node.create_subscription(
        Image, f'{ns}/depth/image',
        lambda m: received.setdefault(m.header.stamp.sec * NS_PER_S + m.header.stamp.nanosec,
                                      time.monotonic()), qos)
    running = True

    def spin():
        while running:
            executor.spin_once(timeout_sec=0.02)
    spinner = threading.Thread(target=spin, daemon=True)
    spinner.start()
    try:
        deadline = time.monotonic() + 120
        while any(p.get_subscription_count() == 0 for p in pubs.values()):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError('benchmark node did not start:\n' + proc.stdout.read())
            time.sleep(0.1)
        time.sleep(1.0)
        span = int(seconds * 1000) * MS
        msgs = {s: cdr_messages(make_events(T0, T0 + span, rate, i), T0, T0 + span, 10 * MS)
                for i, s in enumerate(SIDES)}
        sent: dict[int, float] = {}
        start = time.monotonic()
        for k in range(len(msgs['left'])):
            for side in SIDES:
                data, stamp = msgs[side][k]
                pubs[side].publish(data)
            sent[stamp] = time.monotonic()
            delay = start + (k + 1) * 0.01 - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        time.sleep(2.0)
    finally:
        running = False
        spinner.join(timeout=5)
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
    period = int(round(1e9 / rate_hz))
    expected = [e for e in range(-(-(T0 + 50 * MS) // period) * period, T0 + span + 1, period)]
    stamps = sorted(sent)
    lat = []
    for e in expected:      # from the publish of the first message reaching the window's end
        i = bisect.bisect_left(stamps, e)
        if e in received and i < len(stamps):
            lat.append(received[e] - sent[stamps[i]])
    lat = np.array(lat)
    return {'bench': what, 'path': path,
            'M events/s per camera': rate / 1e6, 'windows': len(expected),
            'depth received': int(len(lat)),
            'p50 ms': float(np.percentile(lat, 50) * 1e3) if len(lat) else float('nan'),
            'p95 ms': float(np.percentile(lat, 95) * 1e3) if len(lat) else float('nan')}


def run(quick: bool = True) -> list[dict]:
    """All rows: ingestion (raw vs typed) and end-to-end latency (raw vs typed)."""
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    os.environ.setdefault('ROS_DOMAIN_ID', str(random.SystemRandom().randint(101, 200)))
    rows = bench_ingestion(quick)
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = _tiny_checkpoint(Path(tmp) / 'tiny.pt')
        seconds = 1.0 if quick else 5.0
        for path in ('raw', 'typed'):
            rows.append(bench_latency(path, ckpt, 0.2e6, seconds, rate_hz=5.0))
    raw_p50 = rows[-2]['p50 ms']
    for row in rows[-2:]:
        row['p50 vs raw'] = row['p50 ms'] / raw_p50 if raw_p50 == raw_p50 else float('nan')
    return rows


def main(argv: list[str] | None = None) -> int:
    """``python bench/bench_node.py [--full]`` prints the rows; --serve is the child node."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--full', action='store_true', help='longer runs')
    ap.add_argument('--serve', choices=('raw', 'typed'), help=argparse.SUPPRESS)
    ap.add_argument('--checkpoint', help=argparse.SUPPRESS)
    ap.add_argument('--ns', help=argparse.SUPPRESS)
    ap.add_argument('--rate-hz', type=float, default=5.0, help=argparse.SUPPRESS)
    ap.add_argument('--device', default='cpu', help=argparse.SUPPRESS)
    ap.add_argument('--half', action='store_true', help=argparse.SUPPRESS)
    ap.add_argument('--backend', default='torch', help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve:
        return _serve(args)
    for row in run(quick=not args.full):
        print(', '.join(f'{k}: {v:.3g}' if isinstance(v, float) else f'{k}: {v}'
                        for k, v in row.items()))
    return 0


if __name__ == '__main__':
    sys.exit(main())
