"""numpy <-> sensor_msgs Image / CameraInfo: layout fields, round trips, cv_bridge equivalence."""
import sys

import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import CameraInfo, Image

from stereospike_ros.nn.geometry import projection_from_intrinsics
from stereospike_ros.ros import ros_images as ri


def test_depth_image_layout_and_round_trip():
    rng = np.random.default_rng(0)
    depth = rng.uniform(0.5, 10, (26, 35)).astype(np.float32)
    depth[3, 4] = np.nan
    msg = ri.depth_to_image(depth, ri.make_header(1_500_000_000_123_456_789, 'cam'),
                            use_cv_bridge=False)
    assert (msg.height, msg.width, msg.encoding) == (26, 35, '32FC1')
    assert msg.step == 35 * 4 and len(msg.data) == 26 * 35 * 4
    assert msg.is_bigendian == int(sys.byteorder == 'big')
    assert msg.header.stamp.sec == 1_500_000_000 and msg.header.stamp.nanosec == 123_456_789
    assert msg.header.frame_id == 'cam'
    # Through real serialisation and back.
    back = deserialize_message(serialize_message(msg), Image)
    out = ri.image_to_numpy(back, use_cv_bridge=False)
    assert out.dtype == np.float32 and out.shape == depth.shape
    np.testing.assert_array_equal(out, depth)      # NaN positions compare equal too
    assert ri.time_to_ns(back.header.stamp) == 1_500_000_000_123_456_789


@pytest.mark.parametrize('encoding,dtype,shape', [
    ('bgr8', np.uint8, (5, 7, 3)), ('mono8', np.uint8, (5, 7)), ('mono16', np.uint16, (5, 7)),
    ('16UC1', np.uint16, (4, 3)), ('rgba8', np.uint8, (2, 3, 4)), ('64FC1', np.float64, (3, 3)),
    ('32FC3', np.float32, (2, 5, 3))])
def test_round_trip_every_encoding(encoding, dtype, shape):
    a = (np.arange(np.prod(shape)) % 200).astype(dtype).reshape(shape)
    msg = ri.numpy_to_image(a, encoding, use_cv_bridge=False)
    assert msg.step == shape[1] * (shape[2] if len(shape) == 3 else 1) * np.dtype(dtype).itemsize
    np.testing.assert_array_equal(ri.image_to_numpy(msg, use_cv_bridge=False), a)


def test_big_endian_and_padded_rows_are_read():
    a = np.arange(12, dtype=np.uint16).reshape(3, 4) * 300
    msg = Image(height=3, width=4, encoding='mono16', is_bigendian=1, step=10)
    padded = np.zeros((3, 10), np.uint8)
    padded[:, :8] = a.astype('>u2').view(np.uint8).reshape(3, 8)
    msg.data = padded.tobytes()
    out = ri.image_to_numpy(msg, use_cv_bridge=False)
    np.testing.assert_array_equal(out, a)
    assert out.dtype.isnative


def test_bad_images_are_refused_clearly():
    with pytest.raises(ri.ImageConversionError, match='dtype'):
        ri.numpy_to_image(np.zeros((2, 2), np.float64), '32FC1')
    with pytest.raises(ri.ImageConversionError, match='shape'):
        ri.numpy_to_image(np.zeros((2, 2), np.uint8), 'bgr8')
    with pytest.raises(ri.ImageConversionError, match='unsupported'):
        ri.numpy_to_image(np.zeros((2, 2), np.uint8), 'yuv422_nope')
    short = Image(height=4, width=4, encoding='32FC1', step=16)
    short.data = bytes(40)
    with pytest.raises(ri.ImageConversionError, match='too'):
        ri.image_to_numpy(short, use_cv_bridge=False)
    with pytest.raises(ValueError):
        ri.ns_to_time(-1)


def test_camera_info_from_projection():
    p = projection_from_intrinsics(226.38, 226.38, 173.65, 133.73, -19.94)
    info = ri.camera_info(346, 260, p, ri.make_header(5, 'f'))
    back = deserialize_message(serialize_message(info), CameraInfo)
    assert (back.width, back.height, back.header.frame_id) == (346, 260, 'f')
    np.testing.assert_allclose(np.asarray(back.p).reshape(3, 4), p)
    np.testing.assert_allclose(np.asarray(back.k).reshape(3, 3), p[:, :3])
    np.testing.assert_allclose(np.asarray(back.r).reshape(3, 3), np.eye(3))
    assert list(back.d) == [0.0] * 5
    with pytest.raises(ValueError):
        ri.camera_info(346, 260, np.zeros((3, 3)), ri.make_header(0, ''))


def test_colorize_depth():
    d = np.array([[0.5, 10.0, np.nan, 5.0]], np.float32)
    bgr = ri.colorize_depth(d, 0.5, 10.0)
    assert bgr.shape == (1, 4, 3) and bgr.dtype == np.uint8
    assert (bgr[0, 2] == 0).all() and not (bgr[0, 0] == bgr[0, 1]).all()
    assert ri.numpy_to_image(bgr, 'bgr8').encoding == 'bgr8'


@pytest.mark.skipif(not ri.HAVE_CV_BRIDGE, reason='cv_bridge is not installed (no ROS '
                    'install; the PyPI cv-bridge is a broken ROS 1 build)')
def test_numpy_path_equals_cv_bridge():  # pragma: no cover - needs a ROS install
    rng = np.random.default_rng(1)
    for enc, a in (('32FC1', rng.random((6, 7), dtype=np.float32)),
                   ('bgr8', rng.integers(0, 255, (6, 7, 3), dtype=np.uint8)),
                   ('mono16', rng.integers(0, 60000, (6, 7), dtype=np.uint16))):
        header = ri.make_header(42, 'x')
        ours = ri.numpy_to_image(a, enc, header, use_cv_bridge=False)
        theirs = ri.numpy_to_image(a, enc, header, use_cv_bridge=True)
        assert serialize_message(ours) == serialize_message(theirs)
        np.testing.assert_array_equal(ri.image_to_numpy(theirs, use_cv_bridge=False),
                                      ri.image_to_numpy(ours, use_cv_bridge=True))
