"""Test stand-in for libcaer_driver's ``driver_node`` (there is no camera here), installed by the
launch tests under the driver's package and executable names so that stereo_davis.launch.py
starts it as it would start the driver.

It does what the launch wiring must make work, with real rclpy, the real event_camera_msgs type
and the driver's parameter and topic names: takes the launch file's parameters, publishes
best-effort KeepLast(1000) EventPackets (``libcaer_cmp``, consecutive ``seq``, host-time header
stamps) on ``~/events``; the master (``master: true``) publishes the host time of its clock reset
on ``~/reset_timestamps`` (every 0.5 s, where the driver sends it once), the slave waits for it
on its ``~/reset_timestamps``; both count sensor time from that instant (as the sync cable makes
the cameras do), so their windows line up only if the remapping works. It writes what it saw
as JSON to ``$STANDIN_REPORT_DIR/<name>.json``.
"""
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np
import rclpy
from builtin_interfaces.msg import Time
from event_camera_msgs.msg import EventPacket
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

from stereospike_ros.io import wire
from stereospike_ros.io.codecs import CODECS
from stereospike_ros.io.events import NS_PER_S, SENSOR_HEIGHT, SENSOR_WIDTH, Events

PERIOD_S = 0.01             # one packet per 10 ms of sensor time
RATE = 20_000               # events per second
ENCODING = 'libcaer_cmp'


def main() -> int:
    """Run until SIGINT / SIGTERM (what launch sends)."""
    rclpy.init(args=sys.argv)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    node = rclpy.create_node(
        'libcaer_driver', automatically_declare_parameters_from_overrides=True)
    params = {p: node.get_parameter(p).value if node.has_parameter(p) else None
              for p in ('device_type', 'serial', 'master', 'camera_frame_id')}
    master = bool(params['master'])
    pub = node.create_publisher(EventPacket, '~/events', QoSProfile(
        history=HistoryPolicy.KEEP_LAST, depth=1000, reliability=ReliabilityPolicy.BEST_EFFORT))
    base = {}        # 'ns': host time of the clock reset; 'wall': that instant, monotonic

    def start_at(reset_ns: int) -> None:
        base['wall'] = time.monotonic() - (time.time_ns() - reset_ns) / NS_PER_S
        base['ns'] = reset_ns
    if master:
        reset = node.create_publisher(Time, '~/reset_timestamps', 10)
        start_at(time.time_ns() // 1000 * 1000)
        stamp = Time(sec=base['ns'] // NS_PER_S, nanosec=base['ns'] % NS_PER_S)
        node.create_timer(0.5, lambda: reset.publish(stamp))
    else:
        reset = node.create_subscription(
            Time, '~/reset_timestamps',
            lambda msg: 'ns' in base or start_at(msg.sec * NS_PER_S + msg.nanosec), 10)
    report = {'name': node.get_fully_qualified_name(), 'parameters': params,
              'events_topic': pub.topic_name, 'reset_topic': reset.topic_name,
              'fastdds_profile': os.environ.get('FASTDDS_DEFAULT_PROFILES_FILE'),
              'reset_received': False, 'packets': 0}
    out = Path(os.environ['STANDIN_REPORT_DIR']) / f'{node.get_name()}.json'

    def write() -> None:
        out.write_text(json.dumps(report))
    write()
    executor = SingleThreadedExecutor()
    executor.add_node(node)

    def spin() -> None:
        while not stop.is_set():
            executor.spin_once(timeout_sec=0.05)
    spinner = threading.Thread(target=spin, daemon=True)
    spinner.start()
    rng = np.random.default_rng(1 if master else 2)
    span = int(PERIOD_S * NS_PER_S)
    n = int(RATE * PERIOD_S)
    seq, tick = 0, None
    try:
        while not stop.is_set():
            if 'ns' not in base:
                time.sleep(0.01)
                continue
            if tick is None:     # sensor time counts from the reset; start at the present
                report['reset_received'] = True
                tick = int((time.monotonic() - base['wall']) / PERIOD_S)
            lo = base['ns'] + tick * span
            stop.wait(max(base['wall'] + (tick + 1) * PERIOD_S - time.monotonic(), 0.0))
            events = Events(rng.integers(0, SENSOR_WIDTH, n).astype(np.uint16),
                            rng.integers(0, SENSOR_HEIGHT, n).astype(np.uint16),
                            lo + np.sort(rng.integers(0, span // 1000, n)) * 1000,
                            rng.random(n) < 0.5)
            payload = CODECS[ENCODING].encode(events, time_base=lo)
            pub.publish(wire.encode_cdr_event_packet(wire.EventPacketMsg(
                time.time_ns(), str(params['camera_frame_id']), SENSOR_HEIGHT, SENSOR_WIDTH,
                seq, lo, ENCODING, False, np.frombuffer(payload, np.uint8))))
            seq, tick = seq + 1, tick + 1
            if seq % 50 == 1:
                report['packets'] = seq
                write()
    finally:
        stop.set()
        spinner.join(timeout=5)
        report['packets'] = seq
        write()
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
