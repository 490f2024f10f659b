"""Test-side ROS plumbing: a node in its own rclpy context, spun by a background thread."""
import threading

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
