"""Stopping a child ROS process: SIGINT first (what ``rclpy`` nodes and ``ros2`` tools shut down
cleanly on, as Ctrl-C), then kill when it hangs. Used by the demo, bench and test support, which
start the depth node, the player and the load generator as their own processes. No rclpy import.
"""
from __future__ import annotations

import signal
import subprocess


def stop(proc: subprocess.Popen, timeout: float = 15.0) -> None:
    """SIGINT ``proc`` if it still runs, wait up to ``timeout`` s, then kill it and reap it."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
