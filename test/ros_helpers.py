"""Test-side ROS plumbing: a node in its own rclpy context, spun by a background thread; readers
of output messages written independently of the package."""
import threading

import numpy as np
import rclpy
from rclpy.executors import SingleThreadedExecutor


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


def cloud_array(msg) -> np.ndarray:
    """A consumer's view of a float32 PointCloud2: structured (height, width) from its fields."""
    float32 = '<f4' if not msg.is_bigendian else '>f4'
    assert all(f.datatype == 7 and f.count == 1 for f in msg.fields)      # FLOAT32
    dtype = np.dtype({'names': [f.name for f in msg.fields],
                      'formats': [float32] * len(msg.fields),
                      'offsets': [f.offset for f in msg.fields], 'itemsize': msg.point_step})
    assert msg.row_step == msg.point_step * msg.width
    assert len(msg.data) == msg.row_step * msg.height
    return np.frombuffer(bytes(msg.data), dtype).reshape(msg.height, msg.width)


def back_project(depth: np.ndarray, k) -> np.ndarray:
    """(H, W, 3) points from a depth map and a CameraInfo K: x = (u - cx) z / fx, ...; NaN if
    the depth is not finite (written here independently of stereospike_ros.nn.geometry)."""
    k = np.asarray(k, dtype=np.float64).reshape(3, 3)
    v, u = np.mgrid[0:depth.shape[0], 0:depth.shape[1]]
    z = np.where(np.isfinite(depth), depth, np.nan)
    return np.stack([(u - k[0, 2]) * z / k[0, 0], (v - k[1, 2]) * z / k[1, 1], z], -1)
