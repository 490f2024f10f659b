"""Event load generator: a stereo rig's message stream at real rates, and what the depth node got.

``python -m stereospike_ros.ros.loadgen [--ns /davis] [--events-per-s 600000]
[--message-events 30000] [--messages 60] [--reliability best_effort] [--type dvs]
[--encoding libcaer_cmp] [--node NAME] [--json]``

Publishes synthetic ``left/events`` and ``right/events`` messages (random events in sensor time;
dvs_msgs/EventArray, or event_camera_msgs/EventPacket in a codec's encoding with consecutive
``seq`` and host-time header stamps, as libcaer_driver sends them) as a driver does: both
cameras' messages at the same moment, ``events_per_s / message_events`` times a second, with the
chosen reliability and history depth. Its Fast DDS set-up is whatever the environment says
(unlike depth_node and play_bag it does not load the shipped profile), so it shows what a driver
started with or without ``FASTDDS_DEFAULT_PROFILES_FILE`` delivers. With ``--node`` it reads
that depth node's /diagnostics before and after and reports, per camera, the messages the node
received and the losses it saw. Tests and bench/bench_live.py measure with it.
"""
from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from stereospike_ros.io import wire
from stereospike_ros.io.events import NS_PER_S, SENSOR_HEIGHT, SENSOR_WIDTH, Events
from stereospike_ros.ros.event_input import message_class
from stereospike_ros.windowing.stream import SIDES

if TYPE_CHECKING:
    from rclpy.context import Context

#: Node counters that tell what happened to the messages (per camera, ``{key}_{side}``).
COUNTERS = ('messages', 'malformed', 'messages_lost_rmw', 'messages_lost_seq')
#: Node counters of both cameras together.
TOTALS = ('windows_published',)
T0_NS = 1_500_000_000 * NS_PER_S    # MVSEC-like absolute sensor time


class LoadError(RuntimeError):
    """The load could not be delivered or measured (the message says why)."""


@dataclass
class LoadConfig:
    """What to publish and where (see the command-line help)."""

    ns: str = '/davis'
    events_per_s: float = 600_000.0
    message_events: int = 30_000
    messages: int = 60
    reliability: str = 'best_effort'
    depth: int = 1000
    type: str = 'dvs'               # or 'event_packet'
    encoding: str = 'libcaer_cmp'   # of event packets (libcaer_driver's default)
    width: int = SENSOR_WIDTH
    height: int = SENSOR_HEIGHT
    node: str = ''                  # fully qualified depth node name; '' = do not measure
    wait_s: float = 60.0            # for subscribers and the node's first diagnostics
    settle_s: float = 10.0          # most time to wait for the node's counters after publishing
    seed: int = 0

    def validate(self) -> None:
        """Refuse values that cannot be published."""
        if self.type not in ('dvs', 'event_packet'):
            raise LoadError(f'--type must be dvs or event_packet, got {self.type!r}')
        if self.reliability not in ('reliable', 'best_effort'):
            raise LoadError(f'--reliability must be reliable or best_effort, '
                            f'got {self.reliability!r}')
        if not (self.events_per_s > 0 and self.message_events > 0 and self.messages > 0
                and self.depth > 0 and self.width > 0 and self.height > 0):
            raise LoadError('rates, counts, depth and sensor size must be positive')

    @property
    def period_s(self) -> float:
        """Seconds between two messages of one camera."""
        return self.message_events / self.events_per_s


@dataclass
class LoadReport:
    """Published and (with a node) received messages per camera, and the node's loss counters."""

    published: dict = field(default_factory=dict)
    message_bytes: int = 0
    rate_hz: float = 0.0
    late_ms_max: float = 0.0
    node: dict = field(default_factory=dict)    # counter deltas, e.g. messages_left
    inputs: dict = field(default_factory=dict)  # the node's subscriptions at the end, per side

    def received(self, side: str) -> int:
        """Messages of camera ``side`` the node decoded (needs ``node``)."""
        return int(self.node.get(f'messages_{side}', 0))


def make_messages(cfg: LoadConfig, side: int) -> list[bytes]:
    """CDR bytes of one camera's messages: uniform random events at whole microseconds (what
    the packet encodings carry), EventArray stamps at each span's end, EventPacket ``time_base``
    at its start (header: host time, as drivers stamp)."""
    rng = np.random.default_rng(cfg.seed * 2 + side)
    span = int(round(cfg.period_s * NS_PER_S))
    n = cfg.message_events
    host = time.time_ns()
    out = []
    for k in range(cfg.messages):
        lo = T0_NS + k * span
        events = Events(rng.integers(0, cfg.width, n).astype(np.uint16),
                        rng.integers(0, cfg.height, n).astype(np.uint16),
                        lo + np.sort(rng.integers(0, span // 1000, n)).astype(np.int64) * 1000,
                        rng.random(n) < 0.5)
        if cfg.type == 'dvs':
            out.append(wire.encode_cdr_event_array(
                wire.EventArrayMsg(lo + span, 'davis', cfg.height, cfg.width, events)))
            continue
        from stereospike_ros.io.codecs import CODECS
        payload = CODECS[cfg.encoding].encode(events, time_base=lo)
        out.append(wire.encode_cdr_event_packet(wire.EventPacketMsg(
            host + k * span, 'davis', cfg.height, cfg.width, k, lo, cfg.encoding, False,
            np.frombuffer(payload, np.uint8))))
    return out


class _DiagnosticsWatch:
    """The latest counters a depth node published on /diagnostics."""

    def __init__(self, node, name: str) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        self._status = f'{name}: pipeline'
        self._cond = threading.Condition()
        self.values: dict | None = None
        self.updates = 0
        node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diag, 10)

    def _on_diag(self, msg) -> None:
        for status in msg.status:
            if status.name == self._status:
                with self._cond:
                    self.values = {kv.key: kv.value for kv in status.values}
                    self.updates += 1
                    self._cond.notify_all()

    def counters(self) -> dict:
        """Integer counters of the latest message (0 for counters not reported yet)."""
        with self._cond:
            values = dict(self.values or {})
        keys = [f'{k}_{s}' for k in COUNTERS for s in SIDES] + list(TOTALS)
        return {k: int(values.get(k, 0)) for k in keys}

    def inputs(self) -> dict:
        """The node's event subscriptions (type and reliability) per camera."""
        with self._cond:
            values = dict(self.values or {})
        return {s: values.get(f'input_{s}', '') for s in SIDES}

    def wait_update(self, after: int, timeout: float) -> bool:
        """Wait until more than ``after`` updates arrived; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self.updates > after, timeout)


def run_load(cfg: LoadConfig, context: Context | None = None) -> LoadReport:
    """Publish the load (rclpy must be initialised for ``context``) and measure the node."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

    cfg.validate()
    messages = [make_messages(cfg, i) for i in range(len(SIDES))]
    node = rclpy.create_node('stereospike_loadgen', context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    running = True

    def spin() -> None:
        while running:
            executor.spin_once(timeout_sec=0.05)
    spinner = threading.Thread(target=spin, daemon=True)
    spinner.start()
    try:
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=cfg.depth,
                         reliability=ReliabilityPolicy.RELIABLE
                         if cfg.reliability == 'reliable' else ReliabilityPolicy.BEST_EFFORT)
        ns = cfg.ns.rstrip('/')
        msg_type = message_class(cfg.type)
        pubs = [node.create_publisher(msg_type, f'{ns}/{side}/events', qos) for side in SIDES]
        watch = _DiagnosticsWatch(node, cfg.node) if cfg.node else None
        deadline = time.monotonic() + cfg.wait_s
        while any(p.get_subscription_count() == 0 for p in pubs):
            if time.monotonic() > deadline:
                raise LoadError(f'no subscriber matched {ns}/left/events and '
                                f'{ns}/right/events within {cfg.wait_s:g} s '
                                f'({cfg.reliability} publishers)')
            time.sleep(0.05)
        before = None
        if watch is not None:
            if not watch.wait_update(0, max(deadline - time.monotonic(), 0.1)):
                raise LoadError(f'no /diagnostics from {cfg.node} within {cfg.wait_s:g} s')
            before = watch.counters()
        time.sleep(1.0)     # both ends have matched each other
        report = LoadReport(message_bytes=len(messages[0][0]), rate_hz=1.0 / cfg.period_s,
                            published={side: 0 for side in SIDES})
        start = time.monotonic()
        for k in range(cfg.messages):
            for i, side in enumerate(SIDES):
                pubs[i].publish(messages[i][k])
                report.published[side] += 1
            delay = start + (k + 1) * cfg.period_s - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                report.late_ms_max = max(report.late_ms_max, -delay * 1e3)
        if watch is not None:
            report.node = _settle(watch, before, report.published, cfg.settle_s)
            report.inputs = watch.inputs()
        return report
    finally:
        running = False
        spinner.join(timeout=5)
        executor.shutdown()
        node.destroy_node()


def _settle(watch: _DiagnosticsWatch, before: dict, published: dict, settle_s: float) -> dict:
    """Counter deltas once every message arrived or two diagnostics in a row showed no change."""
    deadline = time.monotonic() + settle_s
    last = None
    while time.monotonic() < deadline:
        seen = watch.updates
        now = watch.counters()
        delta = {k: now[k] - before[k] for k in now}
        if all(delta[f'messages_{s}'] >= published[s] for s in SIDES) or delta == last:
            return delta
        last = delta
        watch.wait_update(seen, max(deadline - time.monotonic(), 0.01))
    now = watch.counters()
    return {k: now[k] - before[k] for k in now}


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    d = LoadConfig()
    ap = argparse.ArgumentParser(prog='python -m stereospike_ros.ros.loadgen',
                                 description=__doc__.split('\n\n')[0])
    ap.add_argument('--ns', default=d.ns, help='namespace of left/events, right/events')
    ap.add_argument('--events-per-s', type=float, default=d.events_per_s,
                    help='events per second and camera (default 600000, MVSEC-like)')
    ap.add_argument('--message-events', type=int, default=d.message_events,
                    help='events per message (default 30000: 480 KB, 20 Hz)')
    ap.add_argument('--messages', type=int, default=d.messages, help='messages per camera')
    ap.add_argument('--reliability', choices=('reliable', 'best_effort'),
                    default=d.reliability, help='publisher reliability (drivers: best_effort)')
    ap.add_argument('--type', choices=('dvs', 'event_packet'), default=d.type,
                    help='dvs_msgs/EventArray (default) or event_camera_msgs/EventPacket')
    ap.add_argument('--encoding', default=d.encoding,
                    help='EventPacket encoding (default libcaer_cmp, as libcaer_driver)')
    ap.add_argument('--depth', type=int, default=d.depth,
                    help='publisher history depth (libcaer_driver: 1000)')
    ap.add_argument('--node', default='',
                    help='fully qualified depth node name to measure, e.g. '
                         '/davis/stereospike_depth')
    ap.add_argument('--wait', type=float, default=d.wait_s,
                    help='seconds to wait for subscribers and diagnostics')
    ap.add_argument('--json', action='store_true', help='print the report as JSON')
    return ap


def main(argv: list[str] | None = None) -> int:
    """Publish the load, print the report; exit 2 when nothing could be delivered."""
    argv = sys.argv[1:] if argv is None else list(argv)
    cut = argv.index('--ros-args') if '--ros-args' in argv else len(argv)
    args = build_parser().parse_args(argv[:cut])
    cfg = LoadConfig(ns=args.ns, events_per_s=args.events_per_s,
                     message_events=args.message_events, messages=args.messages,
                     reliability=args.reliability, depth=args.depth, node=args.node,
                     type=args.type, encoding=args.encoding,
                     wait_s=args.wait)
    import rclpy
    try:
        cfg.validate()
        rclpy.init(args=['loadgen'] + argv[cut:])
        report = run_load(cfg)
    except LoadError as exc:
        print(f'loadgen: {exc}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    finally:
        rclpy.try_shutdown()
    if args.json:
        print(json.dumps(asdict(report)), flush=True)
    else:
        line = ', '.join(f'{s}: published {report.published[s]}'
                         + (f', received {report.received(s)}' if cfg.node else '')
                         for s in SIDES)
        print(f'loadgen: {report.message_bytes} B messages at {report.rate_hz:g} Hz '
              f'({cfg.reliability}); {line}', flush=True)
        if cfg.node:
            print('loadgen: node counters: ' + json.dumps(report.node), flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
