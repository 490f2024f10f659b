"""Test-side ROS plumbing: spun nodes in their own context, the depth node as a process, a
harness that publishes raw events to it and collects its outputs and diagnostics, and readers of
output messages written independently of the package."""
from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from dvs_msgs.msg import EventArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from stereo_msgs.msg import DisparityImage

from stereospike_ros.io import wire
from stereospike_ros.io.events import SENSOR_HEIGHT, SENSOR_WIDTH, Events
from stereospike_ros.ros import processes
from support import ROOT
from support.data import MS


class SpinningNode:
    """Own context + node + executor; subclasses add entities, then call :meth:`start`."""

    def __init__(self, name: str) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._running = False
        self._thread = threading.Thread(target=self._spin, daemon=True)

    def start(self) -> None:
        """Spin callbacks in the background until :meth:`close`."""
        self._running = True
        self._thread.start()

    def _spin(self) -> None:
        while self._running:
            self.executor.spin_once(timeout_sec=0.05)

    def close(self) -> None:
        """Stop spinning and shut this context down."""
        self._running = False
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


def cdr(events: Events, stamp_ns: int, width: int = SENSOR_WIDTH,
        height: int = SENSOR_HEIGHT) -> bytes:
    """Raw CDR bytes of an EventArray holding ``events``."""
    return wire.encode_cdr_event_array(wire.EventArrayMsg(stamp_ns, 'davis', height, width,
                                                          events))


class NodeProcess:
    """``python -m stereospike_ros.depth_node`` in namespace ``ns``; always cleaned up."""

    def __init__(self, log_dir, ns: str, checkpoint: str | None, *params: str) -> None:
        self.ns = ns
        self.log_path = Path(log_dir) / f'node{ns.replace("/", "_")}.log'
        cmd = [sys.executable, '-m', 'stereospike_ros.depth_node', '--ros-args',
               '--params-file', str(ROOT / 'config' / 'depth.yaml'),
               '-p', 'device:=cpu', '-r', f'__ns:={ns}']
        if checkpoint is not None:              # None: the node's default (shipped) model
            cmd += ['-p', f'checkpoint:={checkpoint}']
        for p in params:
            cmd += ['-p', p]
        self._log = open(self.log_path, 'w')
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, cwd=ROOT)

    def log(self) -> str:
        """Everything the node printed so far."""
        return self.log_path.read_text()

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Wait for the node's ready line (it exiting first is a failure)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if 'ready:' in self.log():
                return
            assert self.proc.poll() is None, f'node exited early:\n{self.log()}'
            time.sleep(0.2)
        raise AssertionError(f'node not ready within {timeout} s:\n{self.log()}')

    def rss_mb(self) -> float:
        """Resident memory of the node process (MB)."""
        with open(f'/proc/{self.proc.pid}/status') as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1]) / 1024
        raise AssertionError('no VmRSS')

    def stop(self) -> None:
        """SIGINT (as ROS nodes expect), then kill if it hangs."""
        processes.stop(self.proc)
        self._log.close()


def packet(events: Events, seq: int, time_base: int, encoding: str = 'libcaer_cmp',
           width: int = SENSOR_WIDTH, height: int = SENSOR_HEIGHT, big_endian: bool = False,
           payload: bytes | None = None) -> bytes:
    """Raw CDR bytes of an EventPacket as libcaer_driver sends it (header stamp: host time)."""
    from stereospike_ros.io.codecs import CODECS
    if payload is None:
        payload = CODECS[encoding].encode(events, time_base=time_base)
    return wire.encode_cdr_event_packet(wire.EventPacketMsg(
        time.time_ns(), 'davis', height, width, seq, time_base, encoding, big_endian,
        np.frombuffer(payload, np.uint8)))


class Harness(SpinningNode):
    """This process's ROS side: raw event publishers, depth / info / diagnostics subscribers.

    ``packets``: event_camera_msgs/EventPacket publishers, best effort KeepLast(1000) as
    libcaer_driver's (``libcaer_cmp``, consecutive ``seq``); else reliable dvs_msgs/EventArray.
    """

    def __init__(self, ns: str, packets: bool = False) -> None:
        super().__init__('test_harness')
        self.ns = ns
        self.packets = packets
        self.seq = {'left': 0, 'right': 0}
        reliable = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)
        if packets:
            from event_camera_msgs.msg import EventPacket
            kind, qos = EventPacket, QoSProfile(depth=1000,
                                                reliability=ReliabilityPolicy.BEST_EFFORT)
        else:
            kind, qos = EventArray, reliable
        self.pubs = {side: self.node.create_publisher(kind, f'{ns}/{side}/events', qos)
                     for side in ('left', 'right')}
        self.depth, self.info, self.color, self.diag = [], [], [], {}
        self.disparity, self.points, self.right_info = [], [], []
        for topic, kind, store in (('depth/disparity', DisparityImage, self.disparity),
                                   ('depth/points', PointCloud2, self.points),
                                   ('right/camera_info', CameraInfo, self.right_info)):
            self.node.create_subscription(kind, f'{ns}/{topic}', store.append, reliable)
        self.node.create_subscription(Image, f'{ns}/depth/colorized', self.color.append,
                                      reliable)
        self.depth_sub = self.node.create_subscription(Image, f'{ns}/depth/image',
                                                       self.depth.append, reliable)
        self.node.create_subscription(CameraInfo, f'{ns}/depth/camera_info', self.info.append,
                                      reliable)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diag, 10)
        self.start()

    def _on_diag(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name == f'{self.ns}/stereospike_depth: pipeline':
                self.diag = {kv.key: kv.value for kv in status.values}
                self.diag['_level'] = status.level

    def counter(self, key: str) -> int:
        """A counter of the node's latest diagnostics (0 when absent)."""
        return int(self.diag.get(key, 0))

    def wait(self, predicate, timeout: float, what: str) -> None:
        """Poll ``predicate`` until true; fail naming ``what`` and the diagnostics."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.05)
        raise AssertionError(f'timed out waiting for {what}; diagnostics: {self.diag}')

    def wait_subscribed(self, timeout: float = 30.0) -> None:
        """Wait until the node subscribes to both event topics, its depth publisher is matched
        (depth published before that is never delivered) and diagnostics arrive."""
        self.wait(lambda: all(p.get_subscription_count() > 0 for p in self.pubs.values()),
                  timeout, 'the node to subscribe')
        self.wait(lambda: self.depth_sub.get_publisher_count() > 0, timeout,
                  'the depth publisher to match')
        self.wait(lambda: self.diag, timeout, 'diagnostics')

    def stream(self, streams: dict, t_start: int, t_stop: int, step_ns: int = 10 * MS,
               sides: tuple = ('left', 'right')) -> None:
        """Publish ``streams`` in messages of ``step_ns`` paced at real time (packets: times
        truncated to the microseconds the encodings carry)."""
        start = time.monotonic()
        for k, lo in enumerate(range(t_start, t_stop, step_ns)):
            for side in sides:
                events = streams[side].time_slice(lo, lo + step_ns)
                if self.packets:
                    events = Events(events.x, events.y, events.t // 1000 * 1000, events.p)
                    self.pubs[side].publish(packet(events, self.seq[side], lo))
                    self.seq[side] += 1
                else:
                    self.pubs[side].publish(cdr(events, lo + step_ns))
            delay = start + (k + 1) * step_ns / 1e9 - time.monotonic()
            if delay > 0:
                time.sleep(delay)


def cloud_array(msg: PointCloud2) -> np.ndarray:
    """A consumer's view of a float32 PointCloud2: structured (height, width) from its fields."""
    float32 = '<f4' if not msg.is_bigendian else '>f4'
    assert all(f.datatype == 7 and f.count == 1 for f in msg.fields)      # FLOAT32
    dtype = np.dtype({'names': [f.name for f in msg.fields],
                      'formats': [float32] * len(msg.fields),
                      'offsets': [f.offset for f in msg.fields], 'itemsize': msg.point_step})
    assert msg.row_step == msg.point_step * msg.width
    assert len(msg.data) == msg.row_step * msg.height
    return np.frombuffer(bytes(msg.data), dtype).reshape(msg.height, msg.width)


def back_project(depth: np.ndarray, k: Sequence[float]) -> np.ndarray:
    """(H, W, 3) points from a depth map and a CameraInfo K: x = (u - cx) z / fx, ...; NaN if
    the depth is not finite (written here independently of stereospike_ros.nn.geometry)."""
    k = np.asarray(k, dtype=np.float64).reshape(3, 3)
    v, u = np.mgrid[0:depth.shape[0], 0:depth.shape[1]]
    z = np.where(np.isfinite(depth), depth, np.nan)
    return np.stack([(u - k[0, 2]) * z / k[0, 0], (v - k[1, 2]) * z / k[1, 1], z], -1)
