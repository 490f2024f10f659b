"""The depth node as a real process over real DDS: offline-identical depth, bad input, parameters.

The node runs as ``python -m stereospike_ros.depth_node`` with a tiny checkpoint; this process
publishes dvs_msgs/EventArray as raw CDR bytes (wire.encode_cdr_event_array) and reads the depth
outputs and /diagnostics.
"""
import os
import threading
import time

import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy')
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.parameter_client import AsyncParameterClient  # noqa: E402

from stereospike_ros.io.events import SENSOR_HEIGHT as H, SENSOR_WIDTH as W  # noqa: E402
from stereospike_ros.ros import depth_node, ros_images  # noqa: E402
from stereospike_ros.windowing.stream import StreamConfig  # noqa: E402
from support.data import MS, T0, make_events  # noqa: E402
from support.ros import Harness, NodeProcess, back_project, cdr, cloud_array  # noqa: E402

pytestmark = pytest.mark.ros
# The main node's validity range: the tiny model's depths are ~8 m with ~0.1 % outliers each side.
DEPTH_MIN, DEPTH_MAX = 7.9, 8.1


# ------------------------------------------------------------------------------------ helpers
def offline_depth(streams, stamps, checkpoint):
    """Raw model depth of the 50 ms windows ending at ``stamps`` (encode_window + Predictor)."""
    from stereospike_ros.nn.inference import Predictor
    from stereospike_ros.windowing.encoding import Rectifier, encode_window
    rect = Rectifier(W, H)
    counts = np.stack([encode_window(streams['left'].time_slice(s - 50 * MS, s),
                                     streams['right'].time_slice(s - 50 * MS, s),
                                     rect, rect)[0] for s in stamps])
    return Predictor(checkpoint, device='cpu', warmup_shape=None).predict(counts)


def ranged(raw, low=DEPTH_MIN, high=DEPTH_MAX):
    """REP 117 depth written out here: not positive/finite NaN, < low -Inf, > high +Inf."""
    d = np.where(np.isfinite(raw) & (raw > 0), raw, np.nan)
    return np.where(d < low, -np.inf, np.where(d > high, np.inf, d)).astype(np.float32)


def set_parameter(ros, node_ns, name, value):
    """Set one parameter of the node through its parameter service; the SetParametersResult."""
    client = AsyncParameterClient(ros.node, f'{node_ns}/stereospike_depth')
    assert client.wait_for_services(timeout_sec=20.0)
    future = client.set_parameters([Parameter(name, value=value)])
    deadline = time.monotonic() + 20
    while not future.done() and time.monotonic() < deadline:
        time.sleep(0.05)
    return future.result().results[0]


@pytest.fixture(scope='module')
def main_node(tmp_path_factory, tiny_checkpoint):
    ns = f'/t{os.getpid()}main'
    node = NodeProcess(tmp_path_factory.mktemp('logs'), ns, tiny_checkpoint,
                       'rate_hz:=10.0', 'window_ms:=50.0', 'publish_colorized:=true',
                       'publish_points:=true', 'points_rgb:=true',
                       f'depth_min_m:={DEPTH_MIN}', f'depth_max_m:={DEPTH_MAX}')
    harness = None
    try:
        node.wait_ready()
        harness = Harness(ns)
        harness.wait_subscribed()
        yield node, harness
    finally:
        if harness is not None:
            harness.close()
        node.stop()


# ------------------------------------------------------------------------------------ tests
@pytest.mark.slow
def test_depth_equals_offline_prediction_with_matching_camera_info(main_node, tiny_checkpoint):
    node, ros = main_node
    t_stop = T0 + 2000 * MS
    streams = {'left': make_events(T0, t_stop, 20_000, 1),
               'right': make_events(T0, t_stop, 20_000, 2)}
    ros.stream(streams, T0, t_stop)
    expected = [e for e in range(-(-(T0 + 50 * MS) // (100 * MS)) * 100 * MS, t_stop + 1,
                                 100 * MS)]
    ros.wait(lambda: ros.counter('windows_cut') >= len(expected) and
             ros.counter('windows_published') + ros.counter('windows_skipped') >= len(expected)
             and len(ros.depth) == ros.counter('windows_published'), 30.0, 'all windows')
    stamps = [ros_images.time_to_ns(m.header.stamp) for m in ros.depth]
    assert ros.counter('windows_cut') == len(expected)
    assert set(stamps) <= set(expected) and stamps == sorted(stamps)
    # Latest-window-wins may skip windows on a busy CPU, but most arrive and all are counted.
    assert len(stamps) >= len(expected) // 2, (stamps, ros.diag)
    assert len(stamps) + ros.counter('windows_skipped') == len(expected)
    assert ros.counter('resets') == 0 and ros.counter('malformed_left') == 0
    float(ros.diag['inference_latency_p95_ms'])
    assert float(ros.diag['end_to_end_latency_p50_ms']) > 0
    assert float(ros.diag['events_per_s_left']) >= 0
    ros.wait(lambda: len(ros.info) >= len(ros.depth) and len(ros.color) >= len(ros.depth), 5.0,
             'camera_info and colorized depth')
    assert [m.header.stamp for m in ros.color] == [m.header.stamp for m in ros.depth]
    assert all(m.encoding == 'bgr8' and (m.width, m.height) == (W, H) for m in ros.color)
    info = {ros_images.time_to_ns(m.header.stamp): m for m in ros.info}
    for m in ros.depth:
        stamp = ros_images.time_to_ns(m.header.stamp)
        assert m.header.frame_id == 'davis_left_optical_frame' and m.encoding == '32FC1'
        assert info[stamp].header.frame_id == m.header.frame_id
        assert (info[stamp].width, info[stamp].height) == (W, H)
        assert info[stamp].p[0] == pytest.approx(depth_node.MVSEC_FX)
    # The same windows offline: encode_window + Predictor, then the validity range.
    raw = offline_depth(streams, stamps, tiny_checkpoint)
    for m, ref in zip(ros.depth, ranged(raw)):
        got = ros_images.image_to_numpy(m)
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6, equal_nan=True)
    assert np.isfinite(raw).mean() > 0.5 and np.nanstd(raw[0]) > 0
    assert not np.allclose(raw[0], raw[-1], equal_nan=True)   # depends on the events


@pytest.mark.slow
def test_outputs_over_dds_match_numpy_with_one_stamp_per_window(main_node, tiny_checkpoint):
    """depth/disparity, depth/points (organised, then unorganised), right/camera_info."""
    node, ros = main_node
    lists = (ros.depth, ros.info, ros.right_info, ros.disparity, ros.points, ros.color)
    t_start = T0 + 2000 * MS            # continues the first test's timeline (or starts one)
    phases = [(t_start, t_start + 1000 * MS, True),
              (t_start + 1000 * MS, t_start + 1600 * MS, False)]
    streams = {'left': make_events(t_start, phases[-1][1], 20_000, 11),
               'right': make_events(t_start, phases[-1][1], 20_000, 12)}
    received = []
    for lo, hi, organised in phases:
        if not organised:
            assert set_parameter(ros, node.ns, 'points_organized', False).successful
        for store in lists:
            store.clear()
        ros.stream(streams, lo, hi)
        last = hi // (100 * MS) * 100 * MS          # the last window end of this phase
        ros.wait(lambda: ros.depth and ros_images.time_to_ns(ros.depth[-1].header.stamp) == last
                 and all(len(store) == len(ros.depth) for store in lists), 30.0,
                 'every output of the last window')
        # One message per output and window, all with the window's stamp.
        stamps = [[ros_images.time_to_ns(m.header.stamp) for m in store] for store in lists]
        assert all(s == stamps[0] for s in stamps), stamps
        assert len(set(stamps[0])) == len(stamps[0]) >= 2
        assert all(m.header.frame_id == 'davis_right_optical_frame' for m in ros.right_info)
        assert all(m.header.frame_id == 'davis_left_optical_frame'
                   for store in lists if store is not ros.right_info for m in store)
        received += [(s, organised, *msgs) for s, *msgs in zip(stamps[0], *lists)
                     if s - 50 * MS >= lo]
    assert len(received) >= 8
    raw = offline_depth(streams, [r[0] for r in received], tiny_checkpoint)
    fb = 19.941772                                      # MVSEC's f*B (px*m), the default pair
    for row, ref in zip(received, ranged(raw)):
        stamp, organised, depth, info, right, disp, cloud, color = row
        got = ros_images.image_to_numpy(depth)
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6, equal_nan=True)
        # right/camera_info: the rectified pair, P[0,3] = -fx*B.
        assert right.p[3] == pytest.approx(-fb) and list(right.k) == list(info.k)
        assert (right.width, right.height) == (W, H) and right.p[0] == info.p[0]
        # depth/disparity: d = f*B / depth; too far -> 0, too close -> +Inf, none -> NaN.
        assert disp.f * disp.t == pytest.approx(fb, rel=1e-6)   # float32 fields
        assert disp.f == pytest.approx(info.p[0], rel=1e-7)
        assert (disp.min_disparity, disp.max_disparity) == pytest.approx(
            (fb / DEPTH_MAX, fb / DEPTH_MIN))
        roi = disp.valid_window
        assert (roi.x_offset, roi.y_offset, roi.width, roi.height) == (0, 0, W, H)
        d = ros_images.image_to_numpy(disp.image)
        assert ros_images.time_to_ns(disp.image.header.stamp) == stamp
        fin = np.isfinite(ref)
        np.testing.assert_allclose(d[fin], fb / ref[fin], rtol=1e-5)
        assert (d[np.isposinf(ref)] == 0).all() and np.isposinf(d[np.isneginf(ref)]).all()
        assert np.isnan(d[np.isnan(ref)]).all()
        # depth/points: back-projection with depth/camera_info's K; rgb = depth/colorized.
        pts = cloud_array(cloud)
        expected = back_project(ref, info.k)
        bgr = ros_images.image_to_numpy(color)
        if organised:
            assert (cloud.height, cloud.width, cloud.is_dense) == (H, W, bool(fin.all()))
            pts = pts[fin]
            assert all(np.isnan(cloud_array(cloud)[c][~fin]).all() for c in 'xyz')
        else:
            assert (cloud.height, cloud.width, cloud.is_dense) == (1, int(fin.sum()), True)
            pts = pts[0]
        for k, c in enumerate('xyz'):
            np.testing.assert_allclose(pts[c], expected[fin][:, k], rtol=1e-5, atol=1e-5)
        rgb = pts['rgb'].view(np.uint32)
        np.testing.assert_array_equal(
            np.stack([rgb & 255, (rgb >> 8) & 255, (rgb >> 16) & 255], -1), bgr[fin])
    # The range cut both ways in these windows (the REP 117 values were really exercised).
    assert any(np.isneginf(r).any() for r in ranged(raw))
    assert any(np.isposinf(r).any() for r in ranged(raw))
    assert {r[1] for r in received} == {True, False}
    assert set_parameter(ros, node.ns, 'points_organized', True).successful


@pytest.mark.slow
def test_parameters_are_validated_at_runtime(main_node):
    node, ros = main_node

    def set_one(name, value):
        return set_parameter(ros, node.ns, name, value)

    assert not set_one('rate_hz', -1.0).successful
    assert not set_one('window_ms', 0.0).successful
    bad = set_one('colorize_min_m', 50.0)
    assert not bad.successful and 'colorize' in bad.reason
    bad = set_one('depth_min_m', 9.0)
    assert not bad.successful and 'depth_max_m' in bad.reason
    assert not set_one('checkpoint', '/elsewhere.pt').successful      # read-only
    assert set_one('window_ms', 25.0).successful
    ros.wait(lambda: ros.counter('resets') >= 1, 5.0, 'the stream restart')
    assert node.proc.poll() is None


@pytest.mark.slow
@pytest.mark.parametrize('param,word', [('rate_hz:=0.0', 'rate_hz'),
                                        ('window_ms:=-5.0', 'window_ms'),
                                        ('device:=gpu', 'device'),
                                        ('rounding:=nearest', 'rounding'),
                                        ('depth_min_m:=200.0', 'depth_min_m'),
                                        ('event_type:=evt3', 'event_type'),
                                        ('backend:=tensorrt', 'backend')])
def test_invalid_parameters_refused_at_start(tmp_path, param, word):
    node = NodeProcess(tmp_path, f'/t{os.getpid()}bad', '/nonexistent.pt', param)
    try:
        rc = node.proc.wait(timeout=60)
    finally:
        node.stop()
    assert rc != 0
    assert word in node.log(), node.log()


@pytest.mark.slow
def test_missing_checkpoint_is_a_clear_error(tmp_path):
    node = NodeProcess(tmp_path, f'/t{os.getpid()}nockpt', str(tmp_path / 'missing.pt'))
    try:
        rc = node.proc.wait(timeout=60)
    finally:
        node.stop()
    assert rc == 2 and 'checkpoint' in node.log() and 'missing.pt' in node.log()


@pytest.mark.slow
def test_bad_input_keeps_the_node_running_and_is_counted(tmp_path, tiny_checkpoint):
    ns = f'/t{os.getpid()}bad_input'
    node = NodeProcess(tmp_path, ns, tiny_checkpoint, 'rate_hz:=10.0',
                       'max_events_per_window:=5000', 'max_wait_ms:=100.0')
    ros = None
    try:
        node.wait_ready()
        ros = Harness(ns)
        ros.wait_subscribed()
        base = {s: make_events(T0, T0 + 600 * MS, 50_000, i, beyond=300)
                for i, s in enumerate(('left', 'right'))}
        ros.stream(base, T0, T0 + 300 * MS)
        # Malformed messages: garbage, a truncated valid message, an absurd event count.
        good = cdr(base['left'].time_slice(T0 + 300 * MS, T0 + 310 * MS), T0 + 310 * MS)
        for raw in (b'garbage!', good[:len(good) - 7], good[:40] + b'\xff' * 8):
            ros.pubs['left'].publish(raw)
        ros.stream(base, T0 + 300 * MS, T0 + 600 * MS)
        ros.wait(lambda: ros.counter('malformed_left') >= 3 and
                 ros.counter('encode_beyond_sensor') > 0, 10.0, 'malformed / beyond counts')
        rss_before = node.rss_mb()
        # The right camera goes silent for 0.5 s.
        silent = {'left': make_events(T0 + 600 * MS, T0 + 1100 * MS, 50_000, 5)}
        ros.stream(silent, T0 + 600 * MS, T0 + 1100 * MS, sides=('left',))
        ros.wait(lambda: ros.counter('windows_timeout_right_silent') >= 1, 10.0,
                 'a silent-camera timeout')
        # A 10x event storm on both cameras.
        storm = {s: make_events(T0 + 1100 * MS, T0 + 1600 * MS, 500_000, 6 + i)
                 for i, s in enumerate(('left', 'right'))}
        ros.stream(storm, T0 + 1100 * MS, T0 + 1600 * MS)
        ros.wait(lambda: ros.counter('dropped_window_overflow_left') > 0, 10.0,
                 'storm drops')
        cfg = StreamConfig(rate_hz=10.0, max_events_per_window=5000)
        assert ros.counter('buffered_left') <= cfg.buffer_capacity
        # Time goes back by 10 s (bag loop / driver restart).
        before_reset = len(ros.depth)
        back = T0 - 10_000 * MS
        again = {s: make_events(back, back + 500 * MS, 50_000, 9 + i)
                 for i, s in enumerate(('left', 'right'))}
        ros.stream(again, back, back + 500 * MS)
        ros.wait(lambda: ros.counter('resets') >= 1 and any(
            ros_images.time_to_ns(m.header.stamp) < T0 for m in ros.depth), 15.0,
            'depth after the reset')
        time.sleep(0.5)
        assert node.proc.poll() is None, node.log()
        assert node.rss_mb() - rss_before < 150, (rss_before, node.rss_mb())
        stamps = [ros_images.time_to_ns(m.header.stamp) for m in ros.depth]
        first_new = next(i for i, s in enumerate(stamps) if s < T0)
        assert first_new >= 1 and before_reset >= 1
        # No depth of the old timeline after the first depth of the new one.
        assert all(s < T0 for s in stamps[first_new:]), stamps
        assert all(np.diff(stamps[:first_new]) > 0) and all(np.diff(stamps[first_new:]) > 0)
        assert ros.counter('resets') == 1
        assert int(ros.diag['generation']) == 1
    finally:
        if ros is not None:
            ros.close()
        node.stop()


@pytest.mark.slow
def test_onnxruntime_backend_publishes_the_torch_depth(tmp_path, tiny_checkpoint):
    pytest.importorskip('onnxruntime')
    ns = f'/t{os.getpid()}onnx'
    node = NodeProcess(tmp_path, ns, tiny_checkpoint, 'backend:=onnxruntime', 'rate_hz:=10.0')
    ros = None
    try:
        node.wait_ready()
        assert '(onnxruntime)' in node.log()
        ros = Harness(ns)
        ros.wait_subscribed()
        t_stop = T0 + 800 * MS
        streams = {'left': make_events(T0, t_stop, 20_000, 11),
                   'right': make_events(T0, t_stop, 20_000, 12)}
        ros.stream(streams, T0, t_stop)
        ros.wait(lambda: len(ros.depth) >= 3, 20.0, 'depth from the onnxruntime backend')
    finally:
        if ros is not None:
            ros.close()
        node.stop()
    stamps = [ros_images.time_to_ns(m.header.stamp) for m in ros.depth]
    raw = offline_depth(streams, stamps, tiny_checkpoint)   # the torch backend
    limits = [depth_node.PARAMETERS[k].default for k in ('depth_min_m', 'depth_max_m')]
    for m, ref in zip(ros.depth, ranged(raw, *limits)):
        np.testing.assert_allclose(ros_images.image_to_numpy(m), ref, atol=1e-3, rtol=0,
                                   equal_nan=True)
    assert np.isfinite(raw).mean() > 0.5


# ------------------------------------------------------------------------------ in-process parts
def test_latest_mailbox_keeps_only_the_newest():
    box = depth_node.LatestMailbox()
    assert box.get(0.01) is None
    assert box.put(1) is None
    assert box.put(2) == 1                  # replaced unread: the caller counts a skip
    assert box.get(0.01) == 2 and box.get(0.01) is None
    got = []
    reader = threading.Thread(target=lambda: got.append(box.get(5.0)))
    reader.start()
    box.put(3)
    reader.join(5)
    assert got == [3]


def test_empty_checkpoint_uses_the_demo_or_fails_clearly(tmp_path, monkeypatch):
    monkeypatch.setattr(depth_node, 'CHECKPOINT_DIR', tmp_path)
    with pytest.raises(depth_node.NodeConfigError, match='demo checkpoint'):
        depth_node.resolve_checkpoint('')
    (tmp_path / 'demo.pt').write_bytes(b'x')
    assert depth_node.resolve_checkpoint('') == str(tmp_path / 'demo.pt')
    with pytest.raises(depth_node.NodeConfigError, match='nope.pt'):
        depth_node.resolve_checkpoint(str(tmp_path / 'nope.pt'))


@pytest.mark.slow
def test_calibration_parameter_rectifies_like_the_calibration(tmp_path, tiny_checkpoint):
    from stereospike_ros.io.calibration import load_calibration, write_calibration
    from stereospike_ros.windowing.encoding import Rectifier, encode_window
    from stereospike_ros.offline.synthetic import SyntheticConfig, rig_calibration
    write_calibration(tmp_path / 'calib', 'rig', rig_calibration(SyntheticConfig()))
    cal = load_calibration(tmp_path / 'calib')
    context = rclpy.Context()
    rclpy.init(context=context)
    node = None
    try:
        node = depth_node.DepthNode(context=context, namespace=f'/t{os.getpid()}cal',
                                    parameter_overrides=[
                                        Parameter('checkpoint', value=tiny_checkpoint),
                                        Parameter('device', value='cpu'),
                                        Parameter('warmup', value=False),
                                        Parameter('calibration', value=str(tmp_path / 'calib'))])
        np.testing.assert_array_equal(node.projection, cal.left_projection)
        np.testing.assert_array_equal(node.geometry.right_projection, cal.right_projection)
        assert node.geometry.focal_baseline == pytest.approx(cal.focal_baseline, rel=1e-9)
        left = make_events(T0, T0 + 50 * MS, 100_000, 1)
        right = make_events(T0, T0 + 50 * MS, 100_000, 2)
        counts, _ = encode_window(left, right, node._rect_left, node._rect_right)
        ref, _ = encode_window(left, right, Rectifier.for_camera(cal, 'left'),
                               Rectifier.for_camera(cal, 'right'))
        assert counts.tobytes() == ref.tobytes()
        info = ros_images.camera_info(node.width, node.height, node.projection,
                                      ros_images.make_header(T0, 'f'))
        np.testing.assert_allclose(np.reshape(info.p, (3, 4)), cal.left_projection)
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.shutdown(context=context)
