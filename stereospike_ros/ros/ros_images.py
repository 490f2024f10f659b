"""numpy <-> sensor_msgs Image / CameraInfo for the depth node (cv_bridge when importable).

cv_bridge is used when it imports (a ROS install); otherwise (PyPI wheels: it is not available,
and the PyPI ``cv-bridge`` is a broken ROS 1 build) an equivalent numpy conversion makes the same
messages: same encoding, step, ``is_bigendian`` and row-major data.
"""
from __future__ import annotations

import array
import sys

import numpy as np
from builtin_interfaces.msg import Time
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from stereospike_ros.io.errors import InputError
from stereospike_ros.io.events import NS_PER_S

try:  # pragma: no cover - depends on the installation
    from cv_bridge import CvBridge
    HAVE_CV_BRIDGE = True
except Exception:  # ImportError, or a broken build failing at import time
    CvBridge = None
    HAVE_CV_BRIDGE = False

# encoding -> (numpy dtype, channels), as sensor_msgs/image_encodings defines them.
ENCODINGS = {
    'mono8': (np.uint8, 1), 'mono16': (np.uint16, 1),
    'bgr8': (np.uint8, 3), 'rgb8': (np.uint8, 3), 'bgra8': (np.uint8, 4), 'rgba8': (np.uint8, 4),
    'bgr16': (np.uint16, 3), 'rgb16': (np.uint16, 3),
    '8UC1': (np.uint8, 1), '8UC3': (np.uint8, 3), '8SC1': (np.int8, 1),
    '16UC1': (np.uint16, 1), '16SC1': (np.int16, 1), '32SC1': (np.int32, 1),
    '32FC1': (np.float32, 1), '32FC3': (np.float32, 3), '64FC1': (np.float64, 1),
}


class ImageConversionError(InputError):
    """An image message or array that cannot be converted (the message says why)."""


def byte_array(a: np.ndarray) -> array.array:
    """Bytes of ``a`` (C order) as the ``array('B')`` of message ``data`` fields (one copy)."""
    out = array.array('B')
    out.frombytes(np.ascontiguousarray(a).reshape(-1).view(np.uint8))
    return out


def ns_to_time(stamp_ns: int) -> Time:
    """Int64 ns -> builtin_interfaces/Time (non-negative)."""
    stamp_ns = int(stamp_ns)
    if stamp_ns < 0:
        raise ValueError(f'stamp {stamp_ns} ns is negative')
    sec, nanosec = divmod(stamp_ns, NS_PER_S)
    return Time(sec=sec, nanosec=nanosec)


def time_to_ns(stamp: Time) -> int:
    """builtin_interfaces/Time -> int64 ns."""
    return int(stamp.sec) * NS_PER_S + int(stamp.nanosec)


def make_header(stamp_ns: int, frame_id: str) -> Header:
    """A std_msgs/Header with the given stamp (ns) and frame id."""
    return Header(stamp=ns_to_time(stamp_ns), frame_id=frame_id)


def numpy_to_image(array: np.ndarray, encoding: str, header: Header | None = None,
                   use_cv_bridge: bool | None = None) -> Image:
    """Array (H,W) or (H,W,C) -> sensor_msgs/Image in ``encoding`` (dtype and channels checked)."""
    if encoding not in ENCODINGS:
        raise ImageConversionError(f'unsupported image encoding {encoding!r}')
    dtype, channels = ENCODINGS[encoding]
    a = np.asarray(array)
    if a.ndim == 3 and a.shape[2] == 1 and channels == 1:
        a = a[:, :, 0]
    want_ndim = 2 if channels == 1 else 3
    if a.ndim != want_ndim or (channels > 1 and a.shape[2] != channels):
        raise ImageConversionError(
            f'{encoding} needs shape (H, W{"" if channels == 1 else f", {channels}"}), '
            f'got {a.shape}')
    if a.dtype != dtype:
        raise ImageConversionError(f'{encoding} needs dtype {np.dtype(dtype)}, got {a.dtype}')
    if use_cv_bridge is None:
        use_cv_bridge = HAVE_CV_BRIDGE
    if use_cv_bridge:
        msg = CvBridge().cv2_to_imgmsg(np.ascontiguousarray(a), encoding=encoding)
    else:
        a = np.ascontiguousarray(a)
        msg = Image()
        msg.height, msg.width = int(a.shape[0]), int(a.shape[1])
        msg.encoding = encoding
        msg.is_bigendian = int(a.dtype.byteorder == '>' or
                               (a.dtype.byteorder == '=' and sys.byteorder == 'big'))
        msg.step = int(a.strides[0])
        msg.data = byte_array(a)
    if header is not None:
        msg.header = header
    return msg


def image_to_numpy(msg: Image, use_cv_bridge: bool | None = None) -> np.ndarray:
    """sensor_msgs/Image -> a new (H,W) or (H,W,C) array in native byte order (step honoured)."""
    if msg.encoding not in ENCODINGS:
        raise ImageConversionError(f'unsupported image encoding {msg.encoding!r}')
    if use_cv_bridge is None:
        use_cv_bridge = HAVE_CV_BRIDGE
    if use_cv_bridge:
        return np.array(CvBridge().imgmsg_to_cv2(msg))
    dtype, channels = ENCODINGS[msg.encoding]
    dt = np.dtype(dtype).newbyteorder('>' if msg.is_bigendian else '<')
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    row = w * channels * dt.itemsize
    data = np.frombuffer(memoryview(msg.data).cast('B'), np.uint8)
    need = step * (h - 1) + row if h and w else 0
    if step < row or len(data) < need:
        raise ImageConversionError(
            f'image {w}x{h} {msg.encoding}: step {step} and {len(data)} data bytes are too '
            f'small (rows need {row} bytes, the image {need})')
    rows = np.lib.stride_tricks.as_strided(data, shape=(h, row), strides=(step, 1),
                                           writeable=False)
    out = np.ascontiguousarray(rows).view(dt).astype(dt.newbyteorder('='))
    return out.reshape(h, w) if channels == 1 else out.reshape(h, w, channels)


def depth_to_image(depth: np.ndarray, header: Header,
                   use_cv_bridge: bool | None = None) -> Image:
    """Float depth (H,W) in metres -> 32FC1 Image (NaN = no depth)."""
    return numpy_to_image(np.asarray(depth, dtype=np.float32), '32FC1', header, use_cv_bridge)


def camera_info(width: int, height: int, projection: np.ndarray, header: Header) -> CameraInfo:
    """CameraInfo of a rectified image: K from P, R identity, no distortion, P as given (3x4)."""
    p = np.asarray(projection, dtype=np.float64)
    if p.shape != (3, 4) or not np.isfinite(p).all():
        raise ValueError(f'projection must be a finite 3x4 matrix, got shape {p.shape}')
    msg = CameraInfo()
    msg.header = header
    msg.width, msg.height = int(width), int(height)
    msg.distortion_model = 'plumb_bob'
    msg.d = [0.0] * 5
    msg.k = p[:, :3].reshape(-1).tolist()
    msg.r = np.eye(3).reshape(-1).tolist()
    msg.p = p.reshape(-1).tolist()
    return msg


def colorize_depth(depth: np.ndarray, min_m: float, max_m: float) -> np.ndarray:
    """Depth (H,W) metres -> bgr8 (H,W,3) with a turbo colour map, near = red; NaN -> black."""
    import cv2
    if not max_m > min_m:
        raise ValueError(f'colorize range must have max > min, got {min_m}..{max_m}')
    d = np.asarray(depth, dtype=np.float32)
    valid = np.isfinite(d)
    scaled = np.clip((max_m - np.where(valid, d, max_m)) / (max_m - min_m), 0.0, 1.0)
    bgr = cv2.applyColorMap((scaled * 255.0).astype(np.uint8), cv2.COLORMAP_TURBO)
    bgr[~valid] = 0
    return bgr
