"""The node's output messages (ros/outputs.py) through real serialisation, read back with numpy.

The cloud is decoded from its own ``fields`` / ``point_step`` / ``row_step`` (what any consumer
does), and compared with points computed here from the camera_info's K.
"""
import sys

import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import PointCloud2
from stereo_msgs.msg import DisparityImage

from stereospike_ros.nn.geometry import StereoGeometry
from stereospike_ros.ros import outputs, ros_images
from support.ros import back_project, cloud_array

W, H = 40, 30
FX, FY, CX, CY, B = 50.0, 51.0, 19.5, 14.0, 0.1
STAMP = 1_500_000_000_123_456_789
SETTINGS = dict(frame_id='left_f', right_frame_id='right_f', depth_min_m=0.5,
                depth_max_m=8.0, disparity=True, points=True, points_organized=True,
                points_rgb=True, colorized=True, colorize_min_m=0.5, colorize_max_m=8.0)


@pytest.fixture
def depth():
    rng = np.random.default_rng(5)
    d = rng.uniform(0.1, 12.0, (H, W))
    d[0, :3] = [np.nan, -2.0, 0.0]
    return d


def round_trip(msg):
    return deserialize_message(serialize_message(msg), type(msg))


def test_every_output_of_a_window_shares_the_stamp(depth):
    geometry = StereoGeometry.from_intrinsics(W, H, FX, FY, CX, CY, B)
    settings = outputs.OutputSettings(**SETTINGS)
    msgs = outputs.OutputBuilder(geometry).build(depth, STAMP, settings)
    assert list(msgs) == settings.topics() == list(outputs.TOPICS)
    for topic, msg in msgs.items():
        assert isinstance(msg, outputs.TOPICS[topic][0])
        back = round_trip(msg)
        assert ros_images.time_to_ns(back.header.stamp) == STAMP
        assert back.header.frame_id == ('right_f' if topic == 'right/camera_info' else 'left_f')
    assert msgs['depth/disparity'].image.header == msgs['depth/disparity'].header
    off = outputs.OutputSettings(**{**SETTINGS, 'disparity': False, 'points': False,
                                    'colorized': False})
    assert list(outputs.OutputBuilder(geometry).build(depth, STAMP, off)) == \
        ['depth/image', 'depth/camera_info', 'right/camera_info']


def test_depth_disparity_and_camera_infos(depth):
    geometry = StereoGeometry.from_intrinsics(W, H, FX, FY, CX, CY, B)
    msgs = outputs.OutputBuilder(geometry).build(depth, STAMP, outputs.OutputSettings(**SETTINGS))
    expected = np.where(depth > 0, depth, np.nan)
    expected = np.where(expected < 0.5, -np.inf, np.where(expected > 8.0, np.inf, expected))
    got = ros_images.image_to_numpy(round_trip(msgs['depth/image']))
    np.testing.assert_array_equal(got, expected.astype(np.float32))
    assert np.isneginf(got).any() and np.isposinf(got).any() and np.isnan(got).any()
    left = round_trip(msgs['depth/camera_info'])
    right = round_trip(msgs['right/camera_info'])
    assert right.p[3] == pytest.approx(-FX * B) and left.p[3] == 0.0
    assert list(right.k) == list(left.k) and (right.width, right.height) == (W, H)
    disp = round_trip(msgs['depth/disparity'])
    fb = -right.p[3]
    assert disp.f == pytest.approx(FX) and disp.t == pytest.approx(B)
    assert (disp.min_disparity, disp.max_disparity) == pytest.approx((fb / 8.0, fb / 0.5))
    assert disp.delta_d == 0.0
    roi = disp.valid_window
    assert (roi.x_offset, roi.y_offset, roi.width, roi.height) == (0, 0, W, H)
    d = ros_images.image_to_numpy(disp.image)
    assert disp.image.encoding == '32FC1'
    finite = np.isfinite(got)
    np.testing.assert_allclose(d[finite], fb / got[finite], rtol=1e-6)
    assert (d[np.isposinf(got)] == 0).all() and np.isposinf(d[np.isneginf(got)]).all()
    assert np.isnan(d[np.isnan(got)]).all()
    # Depth from disparity the way a DisparityImage consumer does it: Z = f T / d.
    np.testing.assert_allclose(disp.f * disp.t / d[finite], got[finite], rtol=1e-5)
    assert (d[finite] >= disp.min_disparity * (1 - 1e-6)).all()
    assert (d[finite] <= disp.max_disparity * (1 + 1e-6)).all()


@pytest.mark.parametrize('organized', [True, False])
def test_point_cloud_matches_numpy_back_projection(depth, organized):
    geometry = StereoGeometry.from_intrinsics(W, H, FX, FY, CX, CY, B)
    settings = outputs.OutputSettings(**{**SETTINGS, 'points_organized': organized})
    msgs = outputs.OutputBuilder(geometry).build(depth, STAMP, settings)
    cloud = round_trip(msgs['depth/points'])
    assert [(f.name, f.offset, f.datatype, f.count) for f in cloud.fields] == [
        ('x', 0, 7, 1), ('y', 4, 7, 1), ('z', 8, 7, 1), ('rgb', 12, 7, 1)]
    assert cloud.point_step == 16 and cloud.is_bigendian == (sys.byteorder == 'big')
    pts = cloud_array(cloud)
    image = ros_images.image_to_numpy(msgs['depth/image'])
    ref = back_project(image, msgs['depth/camera_info'].k)
    colour = ros_images.image_to_numpy(msgs['depth/colorized'])      # bgr8
    valid = np.isfinite(image)
    if organized:
        assert (cloud.height, cloud.width) == (H, W) and not cloud.is_dense
        sel, ref_sel, col_sel = pts[valid], ref[valid], colour[valid]
        assert all(np.isnan(pts[k][~valid]).all() for k in ('x', 'y', 'z'))
    else:
        assert (cloud.height, cloud.width) == (1, int(valid.sum())) and cloud.is_dense
        sel, ref_sel, col_sel = pts[0], ref[valid], colour[valid]     # row-major order
    for k, name in enumerate('xyz'):
        np.testing.assert_allclose(sel[name], ref_sel[:, k], rtol=1e-5, atol=1e-6)
    rgb = sel['rgb'].view(np.uint32)
    np.testing.assert_array_equal(np.stack([rgb & 255, (rgb >> 8) & 255, (rgb >> 16) & 255],
                                           -1), col_sel)
    assert (rgb >> 24 == 0).all() and len(np.unique(rgb)) > 5


def test_point_cloud_without_colour_and_bad_arrays():
    pts = np.arange(2 * 3 * 3, dtype=np.float32).reshape(2, 3, 3)
    msg = round_trip(outputs.point_cloud(pts, ros_images.make_header(5, 'f')))
    assert [f.name for f in msg.fields] == ['x', 'y', 'z'] and msg.point_step == 12
    assert msg.is_dense and (msg.height, msg.width) == (2, 3)
    np.testing.assert_array_equal(cloud_array(msg)['z'], pts[..., 2])
    with pytest.raises(ValueError, match='float32'):
        outputs.point_cloud(pts.astype(np.float64), ros_images.make_header(5, 'f'))
    empty = outputs.point_cloud(np.full((2, 3, 3), np.nan, np.float32),
                                ros_images.make_header(5, 'f'), organized=False)
    assert (empty.height, empty.width, len(empty.data)) == (1, 0, 0) and empty.is_dense


def test_disparity_message_type_is_the_stereo_msgs_one():
    assert outputs.TOPICS['depth/disparity'][0] is DisparityImage
    assert outputs.TOPICS['depth/points'][0] is PointCloud2


def test_readme_lists_every_topic_with_its_type():
    from pathlib import Path
    readme = (Path(__file__).resolve().parents[1] / 'README.md').read_text()
    rows = {line.split('|')[1].strip(): line.split('|')[2].strip()
            for line in readme.split('## Topics', 1)[1].split('\n## ', 1)[0].splitlines()
            if line.startswith('| `')}
    listed = {name.strip('` '): kind for cell, kind in rows.items()
              for name in cell.replace(' (in)', '').split(',')}
    for topic, (kind, _) in outputs.TOPICS.items():
        module = kind.__module__.split('.')[0]
        assert listed.get(topic) == f'`{module}/{kind.__name__}`', topic
    assert listed['left/events'] == listed['right/events']
    from stereospike_ros.ros.event_input import EVENT_TYPES
    for name in EVENT_TYPES.values():             # every type the node subscribes with
        package, _, message = name.split('/')
        assert f'`{package}/{message}`' in listed['left/events'], name
    assert listed['/diagnostics'] == '`diagnostic_msgs/DiagnosticArray`'
