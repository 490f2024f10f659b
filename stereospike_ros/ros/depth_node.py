"""ROS 2 node ``stereospike_depth``: two DAVIS event streams in, dense metric depth out.

Callbacks only decode the raw CDR bytes (numpy views; ``event_input.py`` holds the subscriptions,
whose message type and reliability follow the publishers found) and append to the live
windower (``stream.py``). A windowing thread cuts, rectifies and bins windows into a one-slot
mailbox (latest window wins); an inference thread runs the model and publishes the outputs of
``ros/outputs.py`` (depth/image, depth/camera_info, right/camera_info, depth/disparity,
optionally depth/points and depth/colorized), all stamped with the window end in sensor time.
/diagnostics at 1 Hz.
Run: ``ros2 run stereospike depth_node`` or ``python -m stereospike_ros.depth_node``; either
puts the node in namespace ``davis`` (topics ``/davis/left/events`` ... ``/davis/depth/image``,
where the MVSEC bags and the player publish) unless ``--ros-args -r __ns:=/other`` says otherwise.
"""
from __future__ import annotations

import glob
import os
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                SetParametersResult)
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

from stereospike_ros.io.errors import InputError
from stereospike_ros.io.events import SENSOR_HEIGHT, SENSOR_WIDTH
from stereospike_ros.io.mvsec import MVSEC_FOCAL_BASELINE
from stereospike_ros.nn import INFERENCE_BACKENDS
from stereospike_ros.nn.geometry import GeometryError, StereoGeometry, coverage_window
from stereospike_ros.ros import dds, event_input, outputs
from stereospike_ros.windowing import encoding
from stereospike_ros.windowing.encoding import ROUNDING_MODES
from stereospike_ros.windowing.stream import (SIDES, StereoWindower, StreamConfig,
                                              StreamConfigError)

NODE_NAME = 'stereospike_depth'
#: Namespace of a node started without ``-r __ns:=...`` (as the launch file's default).
DEFAULT_NAMESPACE = 'davis'
CHECKPOINT_DIR = Path(__file__).resolve().parents[1] / 'checkpoints'
# Rectified left projection of MVSEC indoor_flying (the default when no calibration is given).
MVSEC_FX = 226.38018519795807
MVSEC_CX = 173.6470807647705
MVSEC_CY = 133.73271751403809
MVSEC_BASELINE_M = MVSEC_FOCAL_BASELINE / MVSEC_FX


class NodeConfigError(InputError):
    """A parameter value the node cannot start with (the message names the parameter)."""


@dataclass(frozen=True)
class _Param:
    """One declared parameter: default, description, range or choices, and whether it is live."""

    default: Any
    description: str
    low: float | None = None
    high: float | None = None
    choices: tuple = ()
    dynamic: bool = False


PARAMETERS: dict[str, _Param] = {
    'checkpoint': _Param('', 'Model checkpoint (.pt, our format or a reference state_dict; '
                         '.onnx from train/export.py with backend onnxruntime); empty = the '
                         'shipped demo checkpoint stereospike_ros/checkpoints/*.pt'),
    'backend': _Param('torch', 'Inference engine: torch, or onnxruntime (the same network '
                      'through ONNX Runtime; needs the onnxruntime package)',
                      choices=INFERENCE_BACKENDS),
    'device': _Param('auto', "Torch device: 'auto' (CUDA when available), 'cpu', 'cuda', "
                     "'cuda:N'"),
    'half': _Param(False, 'Run the model in float16 (CUDA only; ignored on CPU)'),
    'warmup': _Param(True, 'Run one forward pass at start so the first window is not slow'),
    'calibration': _Param('', 'MVSEC calibration folder or Kalibr camchain yaml; empty = events '
                          'are already rectified (identity)'),
    'rounding': _Param('truncate', 'Rectified coordinate rounding', choices=ROUNDING_MODES),
    'width': _Param(SENSOR_WIDTH, 'Sensor width in pixels (taken from the calibration when '
                    'given)', 1, 8192),
    'height': _Param(SENSOR_HEIGHT, 'Sensor height in pixels (taken from the calibration when '
                     'given)', 1, 8192),
    'window_ms': _Param(50.0, 'Window length in sensor time (ms)', 0.1, 10_000.0, dynamic=True),
    'rate_hz': _Param(20.0, 'Depth rate: windows end on a grid of 1/rate_hz (higher than '
                      '1000/window_ms = sliding windows)', 0.1, 1000.0, dynamic=True),
    'max_wait_ms': _Param(100.0, 'Wall time to wait for a silent camera before a window is cut '
                          'with what arrived', 0.0, 10_000.0, dynamic=True),
    'max_events_per_window': _Param(500_000, 'Most events per camera and window (excess '
                                    'dropped, counted)', 1, 100_000_000, dynamic=True),
    'time_jump_back_ms': _Param(100.0, 'Sensor time going back by more than this resets the '
                                'stream (bag loop, driver restart)', 0.001, 3_600_000.0,
                                dynamic=True),
    'qos_depth': _Param(100, 'History depth of the event subscriptions', 1, 100_000),
    'input_reliability': _Param('auto', 'Event subscription reliability: auto = reliable when '
                                'every publisher offers it (bag players: nothing lost), else '
                                'best_effort (drivers)', choices=('auto', 'reliable',
                                                                  'best_effort')),
    'event_type': _Param('auto', 'Event message type: auto = what the publishers offer, dvs = '
                         'dvs_msgs/EventArray, event_packet = event_camera_msgs/EventPacket',
                         choices=('auto', 'dvs', 'event_packet')),
    'output_reliability': _Param('reliable', 'Depth publishers reliability',
                                 choices=('reliable', 'best_effort')),
    'frame_id': _Param('davis_left_optical_frame', 'frame_id of the depth outputs (rectified '
                       'left camera)', dynamic=True),
    'right_frame_id': _Param('davis_right_optical_frame', 'frame_id of right/camera_info',
                             dynamic=True),
    'fx': _Param(MVSEC_FX, 'Focal length x (px) of the camera_infos and the f of disparity '
                 'without calibration (MVSEC indoor_flying rectified left)', 1e-6, 1e6),
    'fy': _Param(MVSEC_FX, 'Focal length y (px) of the camera_infos without calibration',
                 1e-6, 1e6),
    'cx': _Param(MVSEC_CX, 'Principal point x (px) of camera_info without calibration',
                 -1e6, 1e6),
    'cy': _Param(MVSEC_CY, 'Principal point y (px) of camera_info without calibration',
                 -1e6, 1e6),
    'baseline_m': _Param(MVSEC_BASELINE_M, 'Stereo baseline (m) without calibration (MVSEC '
                         'indoor_flying); with one, taken from its right projection', 1e-6, 1e3),
    'depth_min_m': _Param(0.1, 'Depths below this are -Inf ("too close", REP 117) in every '
                          'output', 1e-3, 1e4, dynamic=True),
    'depth_max_m': _Param(100.0, 'Depths above this are +Inf ("too far", REP 117) in every '
                          'output', 1e-3, 1e5, dynamic=True),
    'publish_disparity': _Param(True, 'Publish depth/disparity (stereo_msgs/DisparityImage)'),
    'publish_points': _Param(False, 'Publish depth/points (sensor_msgs/PointCloud2)'),
    'points_organized': _Param(True, 'depth/points as an H x W cloud with NaN for no depth '
                               '(false: 1 x N of the valid points)', dynamic=True),
    'points_rgb': _Param(False, 'Add a packed rgb field to depth/points (colorize_* colour map)',
                         dynamic=True),
    'publish_colorized': _Param(False, 'Also publish depth/colorized (bgr8)'),
    'colorize_min_m': _Param(0.5, 'Depth shown red in depth/colorized (m)', 0.0, 1000.0,
                             dynamic=True),
    'colorize_max_m': _Param(10.0, 'Depth shown blue in depth/colorized (m)', 0.001, 1000.0,
                             dynamic=True),
}
STREAM_PARAMS = ('window_ms', 'rate_hz', 'max_wait_ms', 'max_events_per_window',
                 'time_jump_back_ms')
#: Counters (prefixes) whose growth turns /diagnostics to WARN 'dropping input'.
PROBLEM_COUNTERS = ('dropped_', 'malformed_', 'windows_timeout_', 'encode_beyond', 'worker_',
                    'callback_errors_', 'messages_lost_', 'unsupported_type_',
                    'incompatible_publishers_', 'packet_', 'packets_rejected_')


def _descriptor(name: str, spec: _Param) -> ParameterDescriptor:
    desc = ParameterDescriptor(name=name, description=spec.description,
                               read_only=not spec.dynamic)
    if spec.choices:
        desc.additional_constraints = 'one of: ' + ', '.join(spec.choices)
    if spec.low is not None:
        if isinstance(spec.default, int) and not isinstance(spec.default, bool):
            desc.integer_range = [IntegerRange(from_value=int(spec.low),
                                               to_value=int(spec.high), step=1)]
        else:
            desc.floating_point_range = [FloatingPointRange(
                from_value=float(spec.low), to_value=float(spec.high), step=0.0)]
    return desc


def resolve_checkpoint(path: str) -> str:
    """Validate the checkpoint path; empty -> the shipped demo checkpoint or a clear error."""
    if not path:
        found = sorted(glob.glob(str(CHECKPOINT_DIR / '*.pt')))
        if not found:
            raise NodeConfigError(
                f'parameter checkpoint is empty and no demo checkpoint is shipped in '
                f'{CHECKPOINT_DIR}: pass -p checkpoint:=/path/to/model.pt')
        return found[0]
    p = Path(os.path.expanduser(path))
    if not p.is_file():
        raise NodeConfigError(f'parameter checkpoint: {path!r} is not a readable file')
    return str(p)


class LatestMailbox:
    """A one-slot mailbox: put replaces an unread item (returned so the caller can count it)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item = None

    def put(self, item: Any) -> Any:
        """Store ``item``; returns the unread item it replaced, or None."""
        with self._cond:
            old, self._item = self._item, item
            self._cond.notify()
            return old

    def get(self, timeout: float) -> Any:
        """Take the item, waiting up to ``timeout`` seconds; None when empty."""
        with self._cond:
            if self._item is None:
                self._cond.wait(timeout)
            item, self._item = self._item, None
            return item


class _Latency:
    """Recent latencies (seconds) for p50 / p95."""

    def __init__(self, size: int = 500) -> None:
        self._values: deque = deque(maxlen=size)
        self._lock = threading.Lock()

    def add(self, seconds: float) -> None:
        with self._lock:
            self._values.append(seconds)

    def percentiles_ms(self) -> tuple[float, float]:
        with self._lock:
            if not self._values:
                return float('nan'), float('nan')
            a = np.fromiter(self._values, float)
        return float(np.percentile(a, 50) * 1e3), float(np.percentile(a, 95) * 1e3)


class DepthNode(Node):
    """Subscribes ``left/events`` and ``right/events`` (raw CDR), publishes depth (see module)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        for name, spec in PARAMETERS.items():
            self.declare_parameter(name, spec.default, _descriptor(name, spec))
        self.p = {name: self.get_parameter(name).value for name in PARAMETERS}
        self._check_values(self.p)
        stream_config = self._stream_config(self.p)
        self._counts: dict[str, int] = {}
        self._counts_lock = threading.Lock()
        self._lat_infer = _Latency()
        self._lat_e2e = _Latency()
        self._setup_geometry()
        self._setup_model()
        self.windower = StereoWindower(stream_config, log=lambda m: self.get_logger().warning(m))
        out_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10,
                             reliability=ReliabilityPolicy.RELIABLE
                             if self.p['output_reliability'] == 'reliable'
                             else ReliabilityPolicy.BEST_EFFORT)
        self.outputs = outputs.OutputBuilder(self.geometry)
        self.pubs = {topic: self.create_publisher(outputs.TOPICS[topic][0], topic, out_qos)
                     for topic in outputs.OutputSettings.from_params(self.p).topics()}
        self.pub_diag = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        try:
            self.inputs = {side: event_input.EventInput(
                self, side, f'{side}/events', self._on_events, self._count,
                event_type=self.p['event_type'], reliability=self.p['input_reliability'],
                depth=self.p['qos_depth'], width=self.width, height=self.height)
                for side in SIDES}
        except event_input.InputConfigError as exc:
            raise NodeConfigError(f'parameter {exc}') from exc
        self.input_timer = self.create_timer(event_input.REFRESH_PERIOD_S, self._refresh_inputs)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.add_post_set_parameters_callback(self._after_set_parameters)
        self._mailbox = LatestMailbox()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._last_diag = (time.monotonic(), {})
        self.create_timer(1.0, self._publish_diagnostics)
        self._threads = [threading.Thread(target=self._guarded, args=(self._window_loop,),
                                          name='stereospike_window', daemon=True),
                         threading.Thread(target=self._guarded, args=(self._infer_loop,),
                                          name='stereospike_infer', daemon=True)]
        for thread in self._threads:
            thread.start()
        self.get_logger().info(
            f'ready: {self.width}x{self.height}, windows {self.p["window_ms"]:g} ms at '
            f'{self.p["rate_hz"]:g} Hz, model on {self.predictor.device}, subscribed to '
            f'{self.inputs["left"].topic} and {self.inputs["right"].topic} (type '
            f'{self.p["event_type"]}, reliability {self.p["input_reliability"]}), Fast DDS '
            f'profile {os.environ.get(dds.PROFILE_ENV) or "none (defaults)"}')

    # ---------------------------------------------------------------- set-up
    @staticmethod
    def _check_values(p: dict) -> None:
        for name, spec in PARAMETERS.items():
            if spec.choices and p[name] not in spec.choices:
                raise NodeConfigError(f'parameter {name}: {p[name]!r} is not one of '
                                      f'{", ".join(spec.choices)}')
        device = p['device']
        if not (device in ('auto', 'cpu', 'cuda') or
                (device.startswith('cuda:') and device[5:].isdigit())):
            raise NodeConfigError(f"parameter device: {device!r} is not auto, cpu, cuda or "
                                  f"cuda:N")
        if not p['colorize_max_m'] > p['colorize_min_m']:
            raise NodeConfigError(
                f'parameters colorize_min_m ({p["colorize_min_m"]}) must be below '
                f'colorize_max_m ({p["colorize_max_m"]})')
        if not p['depth_max_m'] > p['depth_min_m']:
            raise NodeConfigError(
                f'parameters depth_min_m ({p["depth_min_m"]}) must be below depth_max_m '
                f'({p["depth_max_m"]})')
        for name in ('frame_id', 'right_frame_id'):
            if not p[name]:
                raise NodeConfigError(f'parameter {name} must not be empty')

    @staticmethod
    def _stream_config(p: dict) -> StreamConfig:
        try:
            return StreamConfig(**{name: p[name] for name in STREAM_PARAMS})
        except StreamConfigError as exc:
            raise NodeConfigError(f'parameter {exc}') from exc

    def _setup_geometry(self) -> None:
        path = self.p['calibration']
        if path:
            from stereospike_ros.io import calibration
            if not os.path.exists(os.path.expanduser(path)):
                raise NodeConfigError(f'parameter calibration: {path!r} does not exist')
            cal = calibration.load_calibration(os.path.expanduser(path))
            self.width, self.height = int(cal.width), int(cal.height)
            self._rect_left = encoding.Rectifier.for_camera(cal, 'left', self.p['rounding'])
            self._rect_right = encoding.Rectifier.for_camera(cal, 'right', self.p['rounding'])
            try:
                geometry = StereoGeometry(self.width, self.height, cal.left_projection,
                                          cal.right_projection,
                                          coverage_window(self._rect_left.lut, self.width,
                                                          self.height))
            except GeometryError as exc:
                raise NodeConfigError(f'parameter calibration: {path}: {exc}') from exc
            if (self.width, self.height) != (self.p['width'], self.p['height']):
                self.get_logger().info(f'sensor size {self.width}x{self.height} taken from the '
                                       f'calibration {path}')
        else:
            self.width, self.height = int(self.p['width']), int(self.p['height'])
            self._rect_left = encoding.Rectifier(self.width, self.height)
            self._rect_right = encoding.Rectifier(self.width, self.height)
            try:
                geometry = StereoGeometry.from_intrinsics(
                    self.width, self.height, self.p['fx'], self.p['fy'], self.p['cx'],
                    self.p['cy'], self.p['baseline_m'])
            except GeometryError as exc:
                raise NodeConfigError(f'parameters fx, fy, cx, cy, baseline_m: {exc}') from exc
        self.geometry = geometry
        self.projection = geometry.left_projection

    def _setup_model(self) -> None:
        from stereospike_ros.nn.inference import Predictor
        ckpt = resolve_checkpoint(self.p['checkpoint'])
        device = self.p['device']
        half = bool(self.p['half'])
        self.predictor = Predictor(ckpt, device=device, half=half,
                                   warmup_shape=(self.height, self.width)
                                   if self.p['warmup'] else None, backend=self.p['backend'])
        if half and self.predictor.device.type != 'cuda':
            self.get_logger().warning('half is only used on CUDA; running float32 on '
                                      f'{self.predictor.device}')
        self.get_logger().info(f'model {ckpt} loaded on {self.predictor.device} '
                               f'({self.p["backend"]})')

    # ---------------------------------------------------------------- parameters
    def _on_set_parameters(self, params) -> SetParametersResult:
        merged = dict(self.p)
        for param in params:
            if param.name in PARAMETERS:
                merged[param.name] = param.value
        try:
            self._check_values(merged)
            self._stream_config(merged)
        except NodeConfigError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        return SetParametersResult(successful=True)

    def _after_set_parameters(self, params) -> None:
        new = {param.name: param.value for param in params if param.name in PARAMETERS}
        changed = set(new)
        self.p = {**self.p, **new}      # one assignment: worker threads see all or none
        if changed & set(STREAM_PARAMS):
            self.windower.reconfigure(self._stream_config(self.p))
            self.get_logger().info(f'windowing parameters changed ({", ".join(sorted(changed))})'
                                   ': stream restarted')

    # ---------------------------------------------------------------- counters
    def _count(self, key: str, n: int = 1) -> None:
        with self._counts_lock:
            self._counts[key] = self._counts.get(key, 0) + n

    def counters(self) -> dict:
        """Node counters merged with the windower's."""
        with self._counts_lock:
            out = dict(self._counts)
        out.update(self.windower.stats())
        return out

    # ---------------------------------------------------------------- callbacks
    def _refresh_inputs(self) -> None:
        for inp in self.inputs.values():
            try:
                inp.refresh()
            except Exception as exc:  # a graph query or re-subscription failed: keep going
                self._count(f'callback_errors_{inp.side}')
                self.get_logger().error(f'{inp.topic}: cannot match its publishers: {exc!r}',
                                        throttle_duration_sec=5.0)

    def _on_events(self, side: str, events, stamp_ns: int | None, wall: float) -> None:
        """One decoded message of camera ``side`` (called by its EventInput)."""
        try:
            self.windower.add(side, events, stamp_ns, wall)
        except Exception as exc:  # never let one message stop the executor
            self._count(f'callback_errors_{side}')
            self.get_logger().error(f'{side}/events: message dropped: {exc!r}',
                                    throttle_duration_sec=5.0)
            return
        self._wake.set()

    # ---------------------------------------------------------------- worker threads
    def _guarded(self, loop) -> None:
        while not self._stop.is_set():
            try:
                loop()
                return
            except Exception as exc:  # keep the node alive, but loudly
                self._count('worker_errors')
                self.get_logger().error(f'{loop.__name__} failed: {exc!r}; continuing')
                time.sleep(0.1)

    def _window_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(0.005)
            self._wake.clear()
            windows = self.windower.pop_ready()
            if not windows:
                continue
            if len(windows) > 1:
                self._count('windows_skipped', len(windows) - 1)
            window = windows[-1]
            for side in window.silent:
                self.get_logger().warning(
                    f'{side} camera silent: window ending {window.end_ns} ns cut after '
                    f'max_wait_ms without it', throttle_duration_sec=5.0)
            counts, stats = encoding.encode_window(window.left, window.right, self._rect_left,
                                                   self._rect_right)
            for key, value in stats.items():
                self._count(f'encode_{key}', value)
            if self._mailbox.put((window, counts)) is not None:
                self._count('windows_skipped')

    def _infer_loop(self) -> None:
        while not self._stop.is_set():
            item = self._mailbox.get(0.1)
            if item is None:
                continue
            window, counts = item
            if window.generation != self.windower.generation:
                self._count('windows_discarded_reset')
                continue
            t0 = time.perf_counter()
            depth = self.predictor.predict(counts)   # a monocular model takes L_ON, L_OFF
            self._lat_infer.add(time.perf_counter() - t0)
            msgs = self.outputs.build(depth, window.end_ns,
                                      outputs.OutputSettings.from_params(self.p))
            with self.windower.guard(window.generation) as current:
                if not current:
                    self._count('windows_discarded_reset')
                    continue
                for topic, msg in msgs.items():
                    self.pubs[topic].publish(msg)
            self._lat_e2e.add(time.monotonic() - window.ready_wall)
            self._count('windows_published')

    # ---------------------------------------------------------------- diagnostics
    def _publish_diagnostics(self) -> None:
        now = time.monotonic()
        counts = self.counters()
        last_time, last = self._last_diag
        self._last_diag = (now, counts)
        dt = max(now - last_time, 1e-6)
        values = {}
        for side in SIDES:
            for what in ('events', 'messages'):
                key = f'{what}_{side}'
                values[f'{what}_per_s_{side}'] = (counts.get(key, 0) - last.get(key, 0)) / dt
        p50, p95 = self._lat_infer.percentiles_ms()
        e50, e95 = self._lat_e2e.percentiles_ms()
        values.update({'inference_latency_p50_ms': p50, 'inference_latency_p95_ms': p95,
                       'end_to_end_latency_p50_ms': e50, 'end_to_end_latency_p95_ms': e95})
        problems = sorted(k for k in counts if (k.startswith(PROBLEM_COUNTERS)
                                                and counts[k] != last.get(k, 0)))
        status = DiagnosticStatus(name=f'{self.get_fully_qualified_name()}: pipeline',
                                  hardware_id='davis_stereo')
        silent = [s for s in SIDES if values[f'messages_per_s_{s}'] == 0]
        if counts.get('worker_errors', 0) != last.get('worker_errors', 0):
            status.level, status.message = DiagnosticStatus.ERROR, 'worker errors'
        elif silent:
            status.level = DiagnosticStatus.WARN
            status.message = 'no input from ' + ' and '.join(silent)
        elif problems:
            status.level = DiagnosticStatus.WARN
            status.message = 'dropping input: ' + ', '.join(problems)
        else:
            status.level, status.message = DiagnosticStatus.OK, 'ok'
        merged = {**{k: float(v) for k, v in values.items()}, **counts}
        for inp in self.inputs.values():
            merged.update(inp.describe())
        status.values = [KeyValue(key=k, value=(f'{v:.3f}' if isinstance(v, float) else str(v)))
                         for k, v in sorted(merged.items())]
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = self.get_clock().now().to_msg()
        self.pub_diag.publish(msg)

    # ---------------------------------------------------------------- shutdown
    def destroy_node(self) -> None:
        """Stop the worker threads, then destroy the node."""
        self._stop.set()
        self._wake.set()
        for thread in getattr(self, '_threads', []):
            thread.join(timeout=5.0)
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """Console script ``depth_node``: run the node until shutdown; exit 2 on bad parameters.

    The node lives in :data:`DEFAULT_NAMESPACE` unless the ROS arguments remap ``__ns``.
    """
    from rclpy.exceptions import ParameterException
    dds.use_large_data_profile()     # before rclpy.init: Fast DDS reads it then
    rclpy.init(args=args)
    node = None
    try:
        try:
            node = DepthNode(namespace=DEFAULT_NAMESPACE)
        except (NodeConfigError, ParameterException, ValueError, OSError) as exc:
            print(f'[{NODE_NAME}] cannot start: {exc}', file=sys.stderr, flush=True)
            return 2
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
