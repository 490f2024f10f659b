"""Smoke test: real rclpy over Fast DDS exchanges dvs_msgs/EventArray with another process."""
import subprocess
import sys
import time
from pathlib import Path

import pytest

rclpy = pytest.importorskip('rclpy')
from builtin_interfaces.msg import Time  # noqa: E402
from dvs_msgs.msg import Event, EventArray  # noqa: E402

HERE = Path(__file__).resolve().parent / 'support'


def make_array(n: int) -> EventArray:
    """Build a small typed EventArray with distinct events."""
    msg = EventArray()
    msg.header.frame_id = 'smoke'
    msg.height, msg.width = 260, 346
    msg.events = [Event(x=i, y=2 * i, ts=Time(sec=100, nanosec=i), polarity=bool(i % 2))
                  for i in range(n)]
    return msg


@pytest.mark.ros
@pytest.mark.slow
def test_event_array_round_trip_across_processes():
    proc = subprocess.Popen([sys.executable, str(HERE / 'echo_events_node.py')],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node('smoke_test', context=context)
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(node)
    received = []
    node.create_subscription(EventArray, 'echo/out', received.append, 10)
    pub = node.create_publisher(EventArray, 'echo/in', 10)
    sent = make_array(5)
    try:
        deadline = time.monotonic() + 60.0
        while not received and time.monotonic() < deadline:
            assert proc.poll() is None, 'echo node exited early:\n' + proc.stdout.read()
            if pub.get_subscription_count() > 0:
                pub.publish(sent)
            executor.spin_once(timeout_sec=0.2)
        assert received, 'no reply from the echo process over DDS within 60 s'
        reply = received[0]
        assert reply.header.frame_id == 'smoke'
        assert (reply.height, reply.width) == (260, 346)
        assert [e.x for e in reply.events] == [e.x + 1 for e in sent.events]
        assert [e.y for e in reply.events] == [e.y for e in sent.events]
        assert [e.ts.nanosec for e in reply.events] == list(range(5))
        assert [e.polarity for e in reply.events] == [bool(i % 2) for i in range(5)]
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
