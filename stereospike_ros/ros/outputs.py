"""The depth node's output messages of one window, every one stamped with the window's end.

From one raw depth map: ``depth/image`` (REP 118 32FC1 metres), ``depth/camera_info`` and
``right/camera_info`` (rectified pair, right ``P[0,3] = -fx*B``), ``depth/disparity``
(stereo_msgs/DisparityImage), ``depth/points`` (sensor_msgs/PointCloud2, xyz float32, optional
rgb) and ``depth/colorized`` (bgr8). The validity range makes depths below it -Inf and above it
+Inf (REP 117) before any output is derived. The maths is ``nn/geometry.py``; this module only
fills messages (numpy, never a Python object per pixel).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField, RegionOfInterest
from std_msgs.msg import Header
from stereo_msgs.msg import DisparityImage

from stereospike_ros.nn.depth import range_coded
from stereospike_ros.nn.geometry import StereoGeometry
from stereospike_ros.ros import ros_images

# topic -> (message type, meaning); relative names, resolved in the node's namespace.
TOPICS: dict[str, tuple[type, str]] = {
    'depth/image': (Image, 'depth in metres, 32FC1 (REP 118)'),
    'depth/camera_info': (CameraInfo, 'rectified left camera of depth/image'),
    'right/camera_info': (CameraInfo, 'rectified right camera (P[0,3] = -fx*B)'),
    'depth/disparity': (DisparityImage, 'disparity f*B/depth in pixels'),
    'depth/points': (PointCloud2, 'xyz float32 metres (optional rgb) in frame_id'),
    'depth/colorized': (Image, 'bgr8 colour map of depth/image'),
}


@dataclass(frozen=True)
class OutputSettings:
    """What to publish for each window and how (the node's output parameters).

    ``delta_d`` of depth/disparity is 0: continuous, the model predicts depth, not a disparity
    search in steps.
    """

    frame_id: str
    right_frame_id: str
    depth_min_m: float
    depth_max_m: float
    disparity: bool
    points: bool
    points_organized: bool
    points_rgb: bool
    colorized: bool
    colorize_min_m: float
    colorize_max_m: float
    delta_d: float = 0.0

    @classmethod
    def from_params(cls, p: dict[str, Any]) -> 'OutputSettings':
        """Settings from the node's parameter values (names as in config/depth.yaml)."""
        return cls(frame_id=p['frame_id'], right_frame_id=p['right_frame_id'],
                   depth_min_m=p['depth_min_m'], depth_max_m=p['depth_max_m'],
                   disparity=p['publish_disparity'], points=p['publish_points'],
                   points_organized=p['points_organized'], points_rgb=p['points_rgb'],
                   colorized=p['publish_colorized'], colorize_min_m=p['colorize_min_m'],
                   colorize_max_m=p['colorize_max_m'])

    def topics(self) -> list[str]:
        """The topics these settings publish, in publishing order."""
        return ['depth/image', 'depth/camera_info', 'right/camera_info'] + \
            [t for t, on in (('depth/disparity', self.disparity), ('depth/points', self.points),
                             ('depth/colorized', self.colorized)) if on]


def disparity_image(disparity: np.ndarray, header: Header, geometry: StereoGeometry,
                    depth_min_m: float, depth_max_m: float,
                    delta_d: float = 0.0) -> DisparityImage:
    """stereo_msgs/DisparityImage of a float32 disparity map (px) with the pair's f, T and range.

    ``delta_d`` 0 means continuous: the model predicts depth directly, no disparity search step.
    """
    msg = DisparityImage()
    msg.header = header
    msg.image = ros_images.numpy_to_image(disparity, '32FC1', header)
    msg.f = geometry.fx
    msg.t = geometry.baseline
    msg.min_disparity, msg.max_disparity = geometry.disparity_range(depth_min_m, depth_max_m)
    x, y, w, h = geometry.valid_window
    msg.valid_window = RegionOfInterest(x_offset=x, y_offset=y, width=w, height=h,
                                        do_rectify=False)
    msg.delta_d = float(delta_d)
    return msg


def pack_rgb(bgr: np.ndarray) -> np.ndarray:
    """bgr8 (H, W, 3) -> float32 (H, W) holding 0x00RRGGBB bits (PCL's packed ``rgb`` field)."""
    bgr = np.asarray(bgr, dtype=np.uint8)
    packed = bgr[..., 2].astype(np.uint32) << 16
    packed |= bgr[..., 1].astype(np.uint32) << 8
    packed |= bgr[..., 0]
    return packed.view(np.float32)


def point_cloud(points: np.ndarray, header: Header, organized: bool = True) -> PointCloud2:
    """sensor_msgs/PointCloud2 of float32 (H, W, 3) xyz or (H, W, 4) xyz + packed rgb points.

    NaN z = no point. Organised: H x W, NaN points kept (``is_dense`` false if any).
    Unorganised: 1 x N of the finite points only.
    """
    points = np.asarray(points)
    if points.ndim != 3 or points.shape[2] not in (3, 4) or points.dtype != np.float32:
        raise ValueError(f'points must be float32 (H, W, 3 or 4), got {points.dtype} '
                         f'{points.shape}')
    finite = np.isfinite(points[..., 2])
    if not organized:
        points = points[finite][None]
    channels = points.shape[2]
    msg = PointCloud2()
    msg.header = header
    msg.height, msg.width = int(points.shape[0]), int(points.shape[1])
    msg.fields = [PointField(name=n, offset=4 * k, datatype=PointField.FLOAT32, count=1)
                  for k, n in enumerate(('x', 'y', 'z', 'rgb')[:channels])]
    msg.is_bigendian = sys.byteorder == 'big'
    msg.point_step = 4 * channels
    msg.row_step = msg.point_step * msg.width
    msg.data = ros_images.byte_array(points)
    msg.is_dense = bool(not organized or finite.all())
    return msg


class OutputBuilder:
    """Builds every output message of one window from the raw model depth (see module)."""

    def __init__(self, geometry: StereoGeometry) -> None:
        self.geometry = geometry

    def build(self, raw_depth: np.ndarray, stamp_ns: int,
              settings: OutputSettings) -> dict[str, Any]:
        """{topic: message} for ``settings.topics()``; one stamp, frame_id per camera."""
        g = self.geometry
        depth = range_coded(raw_depth, settings.depth_min_m, settings.depth_max_m)
        header = ros_images.make_header(stamp_ns, settings.frame_id)
        out: dict[str, Any] = {
            'depth/image': ros_images.depth_to_image(depth, header),
            'depth/camera_info': ros_images.camera_info(g.width, g.height, g.left_projection,
                                                        header),
            'right/camera_info': ros_images.camera_info(
                g.width, g.height, g.right_projection,
                ros_images.make_header(stamp_ns, settings.right_frame_id)),
        }
        if settings.disparity:
            out['depth/disparity'] = disparity_image(g.disparity(depth), header, g,
                                                     settings.depth_min_m,
                                                     settings.depth_max_m, settings.delta_d)
        color = None
        if settings.colorized or (settings.points and settings.points_rgb):
            color = ros_images.colorize_depth(depth, settings.colorize_min_m,
                                              settings.colorize_max_m)
        if settings.points:
            points = g.points(depth, out=np.empty((g.height, g.width, 4 if settings.points_rgb
                                                   else 3), np.float32))
            if settings.points_rgb:
                points[..., 3] = pack_rgb(color)
            out['depth/points'] = point_cloud(points, header, settings.points_organized)
        if settings.colorized:
            out['depth/colorized'] = ros_images.numpy_to_image(color, 'bgr8', header)
        return out
