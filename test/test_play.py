"""Bag player: raw CDR forwarding (ROS 1 converted), timing, options; bags played into the node."""
import os
import subprocess
import sys
import time

import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy')
from dvs_msgs.msg import EventArray  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from stereospike_ros.io import bags, wire  # noqa: E402
from stereospike_ros.io.events import Events  # noqa: E402
from stereospike_ros.io.mvsec import MVSEC_TOPICS  # noqa: E402
from stereospike_ros.ros import play, ros_images  # noqa: E402
from support import ROOT  # noqa: E402
from support.data import MS, T0, make_events  # noqa: E402
from support.ros import Harness, NodeProcess, SpinningNode  # noqa: E402

pytestmark = pytest.mark.ros
LEFT, RIGHT, DEPTH = (MVSEC_TOPICS[k] for k in ('left_events', 'right_events', 'left_depth'))
SW, SH = 128, 96            # a small sensor keeps the node's inference fast


def write_bag(path, fmt, seconds=1.0, step_ms=10, depth=False, width=SW, height=SH,
              reliability=None):
    """A stereo event bag (record time = stamp = end of each message's span); returns streams.

    ``reliability``: the offered QoS recorded for every topic (ROS 2 bags).
    """
    stop = T0 + int(seconds * 1000) * MS
    streams = {LEFT: make_events(T0, stop, 20_000, 11, width=width, height=height),
               RIGHT: make_events(T0, stop, 20_000, 12, width=width, height=height)}
    with bags.EventBagWriter(path, fmt, reliability=reliability) as writer:
        for lo in range(T0, stop, step_ms * MS):
            stamp = lo + step_ms * MS
            for topic, ev in streams.items():
                writer.write_events(topic, stamp, wire.EventArrayMsg(
                    stamp, 'davis', height, width, ev.time_slice(lo, stamp)))
            if depth and (stamp - T0) % (50 * MS) == 0:
                writer.write_depth(DEPTH, stamp, stamp,
                                   np.full((height, width), (stamp - T0) / 1e9, np.float32),
                                   'davis_left')
    return streams


class Listener(SpinningNode):
    """Raw event and typed depth subscribers in this process, spun in a thread."""

    def __init__(self, remap_ns=''):
        super().__init__('play_listener')
        qos = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)
        self.raw = {LEFT: [], RIGHT: []}
        self.depth = []
        for topic in (LEFT, RIGHT):
            self.node.create_subscription(
                EventArray, remap_ns + topic,
                lambda data, t=topic: self.raw[t].append((time.monotonic(), data)), qos,
                raw=True)
        self.node.create_subscription(Image, remap_ns + DEPTH, self.depth.append, qos)
        self.start()


def test_ros1_bag_is_forwarded_as_cdr_bytes_at_recorded_timing(tmp_path):
    path = tmp_path / 'seq.bag'
    streams = write_bag(path, 'ros1', seconds=0.5, depth=True)
    listener = Listener('/fwd')
    pnode = rclpy.create_node('player_under_test', context=listener.context)
    try:
        opts = play.PlayOptions(str(path), topics=[LEFT, RIGHT, DEPTH], rate=2.0,
                                remap={t: '/fwd' + t for t in (LEFT, RIGHT, DEPTH)},
                                wait_for_subscribers=20.0, progress=False)
        start = time.monotonic()
        counts = play.play(pnode, opts)
        elapsed = time.monotonic() - start
        opts.start_offset, opts.rate, opts.wait_for_subscribers = 0.3, 4.0, 0.0
        skipped = play.play(pnode, opts)       # records from first + 0.3 s on: 310..500 ms
        deadline = time.monotonic() + 10
        while len(listener.raw[RIGHT]) < 70 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        pnode.destroy_node()
        listener.close()
    assert counts['messages'] == 2 * 50 + 10 and counts['loops'] == 1
    assert counts['unacked_topics'] == []      # every reliable subscriber had it all at the end
    assert skipped['messages'] == 2 * 20 + 4
    assert elapsed >= 0.5 / 2.0 * 0.9          # paced by record time, not as fast as possible
    for topic in (LEFT, RIGHT):
        assert len(listener.raw[topic]) == 70
        msgs = [wire.decode_cdr_event_array(data) for _, data in listener.raw[topic][:50]]
        got = np.concatenate([m.events.t for m in msgs])
        np.testing.assert_array_equal(got, streams[topic].t)
        np.testing.assert_array_equal(np.concatenate([m.events.x for m in msgs]),
                                      streams[topic].x)
        assert [m.stamp_ns for m in msgs] == [T0 + (k + 1) * 10 * MS for k in range(50)]
        # Exactly the bytes a ROS 2 bag would hold: the converted CDR.
        assert listener.raw[topic][0][1] == wire.encode_cdr_event_array(msgs[0])
    assert len(listener.depth) == 14
    d = listener.depth[2]
    assert ros_images.time_to_ns(d.header.stamp) == T0 + 150 * MS
    np.testing.assert_allclose(ros_images.image_to_numpy(d), 0.15, rtol=1e-6)


@pytest.mark.parametrize('fmt, name', [('ros1', 'packets.bag'), ('mcap', 'packets')])
def test_event_packet_bags_are_forwarded_as_raw_bytes(tmp_path, fmt, name):
    """EventPackets as libcaer_driver records them reach a subscriber of the real
    event_camera_msgs type as the exact CDR bytes (ROS 1: converted), payload untouched."""
    from event_camera_msgs.msg import EventPacket
    from stereospike_ros.io.codecs import CODECS, EventPacketDecoder
    path = tmp_path / name
    streams = make_events(T0, T0 + 100 * MS, 20_000, 3)
    sent = []
    with bags.EventBagWriter(path, fmt) as writer:
        for seq, lo in enumerate(range(T0, T0 + 100 * MS, 10 * MS)):
            part = streams.time_slice(lo, lo + 10 * MS)
            part = Events(part.x % SW, part.y % SH, part.t // 1000 * 1000, part.p)
            payload = np.frombuffer(CODECS['libcaer_cmp'].encode(part, lo), np.uint8)
            msg = wire.EventPacketMsg(lo, 'davis_left', SH, SW, seq, lo, 'libcaer_cmp', False,
                                      payload)
            writer.write_packet(LEFT, lo + 10 * MS, msg)
            sent.append((msg, part))
    got = []
    listener = SpinningNode('packet_listener')
    qos = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)
    listener.node.create_subscription(EventPacket, '/pk' + LEFT, got.append, qos, raw=True)
    listener.start()
    pnode = rclpy.create_node('packet_player', context=listener.context)
    try:
        opts = play.PlayOptions(str(path), topics=[LEFT], rate=4.0, remap={LEFT: '/pk' + LEFT},
                                wait_for_subscribers=20.0, progress=False)
        counts = play.play(pnode, opts)
        deadline = time.monotonic() + 10
        while len(got) < len(sent) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        pnode.destroy_node()
        listener.close()
    assert counts['messages'] == len(sent) == len(got)
    decoder = EventPacketDecoder()
    for raw, (msg, part) in zip(got, sent):
        assert raw == wire.encode_cdr_event_packet(msg)
        decoded = decoder.decode_bytes(raw)
        assert not decoded.problems
        np.testing.assert_array_equal(decoded.events.t, part.t)
        np.testing.assert_array_equal(decoded.events.x, part.x)


@pytest.mark.slow
def test_player_refuses_bad_arguments(tmp_path):
    with pytest.raises(play.PlayError):
        play.parse_remap(['/a:/b'])
    assert play.parse_remap(['/a:=/b']) == {'/a': '/b'}
    with pytest.raises(play.PlayError):
        play.PlayOptions('x', rate=0).validate()
    with pytest.raises(play.PlayError):
        play.PlayOptions('x', start_offset=-1).validate()
    with pytest.raises(play.PlayError, match='ack-timeout'):
        play.PlayOptions('x', ack_timeout=float('nan')).validate()
    path = tmp_path / 'one.bag'
    write_bag(path, 'ros1', seconds=0.05)
    (tmp_path / 'junk.bag').write_bytes(b'not a bag' * 20)
    for argv, code, message in (
            ([str(tmp_path / 'missing.bag')], 2, 'missing.bag: no such file or folder'),
            ([str(path), '--topics', '/nope'], 2, 'topics not in bag: /nope'),
            ([str(tmp_path / 'junk.bag')], 1, 'junk.bag: cannot read bag')):
        proc = subprocess.run([sys.executable, '-m', 'stereospike_ros.play', *argv, '--quiet'],
                              capture_output=True, text=True, cwd=ROOT, timeout=60)
        assert proc.returncode == code, proc.stderr
        assert proc.stderr.count('\n') == 1 and proc.stderr.startswith('play_bag: error: ')
        assert message in proc.stderr


@pytest.mark.slow
def test_player_says_when_nobody_listens(tmp_path):
    path = tmp_path / 'one.bag'
    write_bag(path, 'ros1', seconds=0.05)
    ns = f'/t{os.getpid()}nobody'
    proc = subprocess.run([sys.executable, '-m', 'stereospike_ros.play', str(path), '--quiet',
                           '--wait-for-subscribers', '0.5', '--remap', f'{LEFT}:={ns}/l',
                           '--remap', f'{RIGHT}:={ns}/r'],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert lines[0] == (f'play_bag: warning: no subscriber on {ns}/l, {ns}/r after 0.5 s; '
                        f'playing anyway (are the topic names and namespace right?)')
    assert lines[1].startswith(f'play_bag: warning: no subscriber on {ns}/l, {ns}/r at the end '
                               f'of playback')
    assert lines[2].startswith('play_bag: note: published 10 messages in 1 pass(es); ')


@pytest.mark.slow
def test_plain_node_hears_the_players_default_topics(tmp_path, tiny_checkpoint):
    """``python -m stereospike_ros.depth_node`` without a namespace listens where the player
    publishes by default (/davis/...), says so at start, and answers with depth there."""
    bag = tmp_path / 'seq.bag'
    write_bag(bag, 'ros1', seconds=0.4)
    log_path = tmp_path / 'node.log'
    cmd = [sys.executable, '-m', 'stereospike_ros.depth_node', '--ros-args',
           '-p', f'checkpoint:={tiny_checkpoint}', '-p', 'device:=cpu', '-p', f'width:={SW}',
           '-p', f'height:={SH}', '-p', 'rate_hz:=10.0']
    ros = None
    with open(log_path, 'w') as log:
        node = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        deadline = time.monotonic() + 120
        while 'ready:' not in log_path.read_text():
            assert node.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        assert f'subscribed to {LEFT} and {RIGHT}' in log_path.read_text()
        ros = Harness('/davis')
        ros.wait_subscribed()
        proc = subprocess.run([sys.executable, '-m', 'stereospike_ros.play', str(bag),
                               '--quiet', '--wait-for-subscribers', '20'],
                              capture_output=True, text=True, cwd=ROOT, timeout=90)
        assert proc.returncode == 0 and 'warning' not in proc.stderr, proc.stderr
        ros.wait(lambda: len(ros.depth) >= 3, 20.0, 'depth on /davis/depth/image')
    finally:
        if ros is not None:
            ros.close()
        if node.poll() is None:
            node.send_signal(2)
            node.wait(timeout=15)


def test_player_publishes_the_recorded_reliability_unless_told(tmp_path):
    best, ros1 = tmp_path / 'best_effort', tmp_path / 'old.bag'
    write_bag(best, 'sqlite3', seconds=0.02, reliability='best_effort')
    write_bag(ros1, 'ros1', seconds=0.02)
    assert bags.offered_reliability(best) == {LEFT: 'best_effort', RIGHT: 'best_effort'}
    assert bags.offered_reliability(ros1) == {LEFT: None, RIGHT: None}
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        for k, (bag, override, expected) in enumerate((
                (best, play.RECORDED, 'best_effort'), (ros1, play.RECORDED, 'reliable'),
                (best, 'reliable', 'reliable'), (ros1, 'best_effort', 'best_effort'))):
            pnode = rclpy.create_node(f'player{k}', context=context)
            ns = f'/t{os.getpid()}qos{k}'
            opts = play.PlayOptions(str(bag), rate=10.0, progress=False, reliability=override,
                                    remap={t: ns + t for t in (LEFT, RIGHT)})
            counts = play.play(pnode, opts)
            assert counts['reliability'] == {LEFT: expected, RIGHT: expected}
            offered = pnode.get_publishers_info_by_topic(ns + LEFT)
            assert [i.qos_profile.reliability for i in offered] == [
                getattr(ReliabilityPolicy, expected.upper())]
            pnode.destroy_node()
    finally:
        rclpy.shutdown(context=context)
    with pytest.raises(play.PlayError, match='reliability'):
        play.PlayOptions('x', reliability='sometimes').validate()


ACCOUNTED = ('windows_cut', 'windows_skipped', 'windows_discarded_reset')


def _delta(ros, counted, key):
    return ros.counter(key) - counted[key]


def _is_subsequence(items, sequence):
    it = iter(sequence)
    return all(any(x == y for y in it) for x in items)


@pytest.mark.slow
def test_bags_played_into_the_node_give_one_depth_per_window(tmp_path, tiny_checkpoint):
    ros2_bag, ros1_bag = tmp_path / 'seq_ros2', tmp_path / 'seq.bag'
    best_effort_bag = tmp_path / 'seq_best_effort'
    write_bag(ros2_bag, 'sqlite3')
    write_bag(ros1_bag, 'ros1')
    write_bag(best_effort_bag, 'mcap', reliability='best_effort')   # a driver's recording
    ns = f'/t{os.getpid()}play'
    node = NodeProcess(tmp_path, ns, tiny_checkpoint, 'rate_hz:=10.0', f'width:={SW}',
                       f'height:={SH}')
    ros = None
    try:
        node.wait_ready()
        ros = Harness(ns)
        ros.wait_subscribed()
        remap = ['--remap', f'{LEFT}:={ns}/left/events', '--remap', f'{RIGHT}:={ns}/right/events']
        expected = list(range(T0 - 7 * MS + 100 * MS, T0 + 1000 * MS + 1, 100 * MS))
        # The node matches either: reliable players, then a best-effort one.
        for bag, extra, passes in ((ros2_bag, ['--loop', '--loops', '2'], 2), (ros1_bag, [], 1),
                                   (best_effort_bag, [], 1)):
            before = len(ros.depth)
            counted = {k: ros.counter(k) for k in ACCOUNTED}
            subprocess.run([sys.executable, '-m', 'stereospike_ros.play', str(bag), '--quiet',
                            '--wait-for-subscribers', '20'] + remap + extra,
                           check=True, cwd=ROOT, timeout=90)
            # Every window of every pass is cut (no message lost, the last one included) and
            # each cut window is published or counted: at a loop the bag's time jumps back and
            # a window still in inference then is discarded; on a busy CPU the node skips to
            # the newest ready window. Both by design, and both counted.
            ros.wait(lambda: len(ros.depth) > before
                     and ros_images.time_to_ns(ros.depth[-1].header.stamp) == expected[-1]
                     and _delta(ros, counted, 'windows_cut') == passes * len(expected)
                     and len(ros.depth) - before + _delta(ros, counted, 'windows_skipped')
                     + _delta(ros, counted, 'windows_discarded_reset') == passes * len(expected),
                     20.0, f'every window of {bag.name} published or counted')
            stamps = [ros_images.time_to_ns(m.header.stamp) for m in ros.depth[before:]]
            assert _is_subsequence(stamps, expected * passes), (bag.name, stamps)
        assert ros.counter('resets') == 3            # each replay of the bag's time is a reset
        assert 'dvs best_effort (was dvs reliable)' in node.log()
        assert ros.counter('malformed_left') == 0
        assert all((m.width, m.height) == (SW, SH) for m in ros.depth)
    finally:
        if ros is not None:
            ros.close()
        node.stop()
