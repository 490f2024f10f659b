"""Test stand-in for libcaer_driver's ``driver_node`` (there is no camera here), installed by the
launch tests under the driver's package and executable names so that stereo_davis.launch.py
starts it as it would start the driver.

It does what the launch wiring must make work, with real rclpy, the real event_camera_msgs type
and the driver's parameter and topic names: takes the launch file's parameters, publishes
best-effort KeepLast(1000) EventPackets (``libcaer_cmp``, consecutive ``seq``, host-time header
stamps) on ``~/events``; the master (``master: true``) publishes the host time of its clock reset
on ``~/reset_timestamps`` (every 0.5 s, where the driver sends it once), the slave waits for it
on its ``~/reset_timestamps``; both count sensor time from that instant, so their windows line up
only if the remapping works. It writes what it saw as JSON to ``$STANDIN_REPORT_DIR/<name>.json``.
"""
import json
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
import rclpy
from builtin_interfaces.msg import Time
from event_camera_msgs.msg import EventPacket
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

from stereospike_ros.io import wire
from stereospike_ros.io.codecs import CODECS
from stereospike_ros.io.events import NS_PER_S, SENSOR_HEIGHT, SENSOR_WIDTH, Events

PERIOD_S = 0.01             # one packet per 10 ms of sensor time
RATE = 20_000               # events per second
ENCODING = 'libcaer_cmp'


def main() -> int:
    """Run until shut down."""
    rclpy.init(args=sys.argv)
    node = rclpy.create_node('libcaer_driver', automatically_declare_parameters_from_overrides=True)
    params = {p: node.get_parameter(p).value if node.has_parameter(p) else None
              for p in ('device_type', 'serial', 'master', 'camera_frame_id')}
    master = bool(params['master'])
    pub = node.create_publisher(EventPacket, '~/events', QoSProfile(
        history=HistoryPolicy.KEEP_LAST, depth=1000, reliability=ReliabilityPolicy.BEST_EFFORT))
    base = {}
    if master:
        reset = node.create_publisher(Time, '~/reset_timestamps', 10)
        base['ns'] = time.time_ns() // 1000 * 1000
        base['wall'] = time.monotonic()
        stamp = Time(sec=base['ns'] // NS_PER_S, nanosec=base['ns'] % NS_PER_S)
        node.create_timer(0.5, lambda: reset.publish(stamp))
    else:
        def on_reset(msg: Time) -> None:
            if 'ns' not in base:
                base['wall'] = time.monotonic()
                base['ns'] = msg.sec * NS_PER_S + msg.nanosec
        reset = node.create_subscription(Time, '~/reset_timestamps', on_reset, 10)
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
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    rng = np.random.default_rng(1 if master else 2)
    seq = 0
    span = int(PERIOD_S * NS_PER_S)
    n = int(RATE * PERIOD_S)
    try:
        while rclpy.ok():
            if 'ns' not in base:
                time.sleep(0.01)
                continue
            if not report['reset_received']:
                report['reset_received'] = True
                write()
            lo = base['ns'] + seq * span
            due = base['wall'] + (seq + 1) * PERIOD_S - time.monotonic()
            if due > 0:
                time.sleep(due)
            events = Events(rng.integers(0, SENSOR_WIDTH, n).astype(np.uint16),
                            rng.integers(0, SENSOR_HEIGHT, n).astype(np.uint16),
                            np.sort(rng.integers(lo, lo + span, n)).astype(np.int64),
                            rng.random(n) < 0.5)
            payload = CODECS[ENCODING].encode(events, time_base=lo)
            pub.publish(wire.encode_cdr_event_packet(wire.EventPacketMsg(
                time.time_ns(), str(params['camera_frame_id']), SENSOR_HEIGHT, SENSOR_WIDTH,
                seq, lo, ENCODING, False, np.frombuffer(payload, np.uint8))))
            seq += 1
            if seq % 50 == 0:
                report['packets'] = seq
                write()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        report['packets'] = seq
        write()
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
