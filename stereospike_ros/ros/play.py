"""Bag player for event topics: republish a ROS 1 or ROS 2 bag at its recorded timing.

``python -m stereospike_ros.play BAG [--rate R] [--loop] [--start-offset S] [--topics ...]
[--depth] [--remap from:=to] [--reliability R]`` (console script ``play_bag``). Event messages
(dvs_msgs/EventArray, event_camera_msgs/EventPacket) are forwarded as raw CDR bytes
(``publisher.publish(bytes)``); ROS 1 bytes are converted with ``wire.ros1_to_cdr_event_array`` /
``ros1_to_cdr_event_packet`` (an EventPacket's encoded payload is copied as is); no message
object is ever built per event. Depth images (``--depth``) are republished as
sensor_msgs/Image. Header stamps are forwarded unchanged, so a looped bag makes sensor time go
back (the depth node resets, as it does for ``ros2 bag play -l``).
Each topic is published with the reliability its publishers offered when the bag was recorded
(reliable where the bag does not say, e.g. ROS 1 bags); ``--reliability`` overrides it.
The default topics are ``/davis/left/events`` and ``/davis/right/events``, where a plain
``python -m stereospike_ros.depth_node`` listens. Topics without a subscriber are reported.
At the end the player waits (``--ack-timeout``) until every subscriber has acknowledged its
reliable messages: exiting at once would take the unsent tail of the bag with the process.
"""
from __future__ import annotations

import argparse
import sys
import threading
import time
from dataclasses import dataclass, field

import rclpy
from rclpy.duration import Duration
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from tqdm import tqdm

from stereospike_ros.io import bags, wire
from stereospike_ros.io.events import NS_PER_S
from stereospike_ros.io.mvsec import MVSEC_TOPICS
from stereospike_ros.offline import cli
from stereospike_ros.ros import dds

RECORDED = 'recorded'
PROG = 'play_bag'


class PlayError(cli.UsageError):
    """A bad player argument, or topics the bag cannot play (exit status 2)."""


@dataclass
class PlayOptions:
    """What to play and how (see the command-line help)."""

    bag: str
    topics: list = field(default_factory=lambda: [MVSEC_TOPICS['left_events'],
                                                  MVSEC_TOPICS['right_events']])
    rate: float = 1.0
    loop: bool = False
    loops: int = 0                  # with loop: stop after this many passes (0 = forever)
    start_offset: float = 0.0
    remap: dict = field(default_factory=dict)
    qos_depth: int = 100
    wait_for_subscribers: float = 0.0
    progress: bool = True
    reliability: str = RECORDED     # or one of bags.RELIABILITIES for every topic
    ack_timeout: float = 5.0        # seconds to wait for reliable subscribers at the end

    def validate(self) -> None:
        """Refuse values the player cannot use."""
        if not self.rate > 0:
            raise PlayError(f'--rate must be > 0, got {self.rate}')
        if not self.start_offset >= 0:
            raise PlayError(f'--start-offset must be >= 0, got {self.start_offset}')
        if not self.topics:
            raise PlayError('no topics to play')
        if self.qos_depth < 1 or self.loops < 0 or self.wait_for_subscribers < 0 \
                or not self.ack_timeout >= 0:
            raise PlayError('--qos-depth must be >= 1, --loops, --wait-for-subscribers and '
                            '--ack-timeout >= 0')
        if self.reliability not in (RECORDED,) + bags.RELIABILITIES:
            raise PlayError(f'--reliability must be one of {RECORDED}, '
                            f'{", ".join(bags.RELIABILITIES)}; got {self.reliability!r}')

    def reliability_of(self, offered: dict) -> dict:
        """Per topic to play: the reliability to publish with (``offered``: recorded QoS)."""
        if self.reliability != RECORDED:
            return {topic: self.reliability for topic in self.topics}
        return {topic: offered.get(topic) or 'reliable' for topic in self.topics}


def parse_remap(items: list[str]) -> dict:
    """``['from:=to', ...]`` -> ``{from: to}``."""
    out = {}
    for item in items or []:
        src, sep, dst = item.partition(':=')
        if not sep or not src or not dst:
            raise PlayError(f'--remap {item!r}: expected FROM:=TO')
        out[src] = dst
    return out


class _Converter:
    """Turns one bag message's bytes into what the publisher sends (bytes or an Image)."""

    def __init__(self, msgtype: str, topic: str, bag: str) -> None:
        self.msgtype = msgtype
        if msgtype == bags.EVENT_ARRAY_TYPE:
            from dvs_msgs.msg import EventArray
            self.ros_type = EventArray
        elif msgtype in bags.PACKET_TYPES:
            # event_array_msgs/EventArray has EventPacket's fields: played as EventPacket
            from event_camera_msgs.msg import EventPacket
            self.ros_type = EventPacket
        elif msgtype == bags.IMAGE_TYPE:
            from sensor_msgs.msg import Image
            self.ros_type = Image
        else:
            raise PlayError(f'{bag}: topic {topic} has type {msgtype}; the player forwards '
                            f'{", ".join(bags.EVENT_TYPES)} and {bags.IMAGE_TYPE} only')

    def __call__(self, raw: bytes, fmt: str):
        if fmt == 'cdr':
            return raw
        if self.msgtype == bags.EVENT_ARRAY_TYPE:
            return wire.ros1_to_cdr_event_array(raw)
        if self.msgtype in bags.PACKET_TYPES:
            return wire.ros1_to_cdr_event_packet(raw)
        # ROS 1 image (one per frame, not per event): rebuild as a ROS 2 message.
        img = bags.dvs_typestore(1).deserialize_ros1(raw, bags.IMAGE_TYPE)
        msg = self.ros_type()
        msg.header.stamp.sec = int(img.header.stamp.sec)
        msg.header.stamp.nanosec = int(img.header.stamp.nanosec)
        msg.header.frame_id = img.header.frame_id
        msg.height, msg.width, msg.step = int(img.height), int(img.width), int(img.step)
        msg.encoding, msg.is_bigendian = img.encoding, int(img.is_bigendian)
        msg.data = bytes(img.data)
        return msg


def play(node: Node, options: PlayOptions, stop: threading.Event | None = None) -> dict:
    """Publish the bag's messages on ``node`` at recorded timing; returns counters."""
    options.validate()
    stop = stop or threading.Event()
    types = bags.topic_types(options.bag)
    missing = [t for t in options.topics if t not in types]
    if missing:
        raise PlayError(f'{options.bag}: topics not in bag: {", ".join(missing)} '
                        f'(bag has {", ".join(sorted(types))})')
    reliability = options.reliability_of(
        bags.offered_reliability(options.bag) if options.reliability == RECORDED else {})
    converters, publishers = {}, {}
    for topic in options.topics:
        converters[topic] = _Converter(types[topic], topic, options.bag)
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=options.qos_depth,
                         reliability=ReliabilityPolicy.RELIABLE
                         if reliability[topic] == 'reliable' else ReliabilityPolicy.BEST_EFFORT)
        publishers[topic] = node.create_publisher(converters[topic].ros_type,
                                                  options.remap.get(topic, topic), qos)
    if options.wait_for_subscribers > 0:
        deadline = time.monotonic() + options.wait_for_subscribers
        while time.monotonic() < deadline and not stop.is_set() and \
                any(p.get_subscription_count() == 0 for p in publishers.values()):
            time.sleep(0.02)
        lonely = _without_subscribers(publishers)
        if lonely and not stop.is_set():
            cli.report(PROG, 'warning', f'no subscriber on {", ".join(lonely)} after '
                                        f'{options.wait_for_subscribers:g} s; playing anyway '
                                        f'(are the topic names and namespace right?)')
    counts = {'messages': 0, 'bytes': 0, 'loops': 0, 'late_ms_max': 0.0,
              'reliability': reliability}
    bar = tqdm(desc=f'play {options.bag}', unit='msg', disable=not options.progress,
               file=sys.stderr)
    try:
        while not stop.is_set():
            _play_once(options, converters, publishers, counts, stop, bar)
            counts['loops'] += 1
            if not options.loop or (options.loops and counts['loops'] >= options.loops):
                break
    finally:
        bar.close()
    counts['unacked_topics'] = _wait_acked(publishers, reliability, options.ack_timeout)
    if counts['unacked_topics']:
        cli.report(PROG, 'warning', f'{", ".join(counts["unacked_topics"])}: not every '
                                    f'subscriber acknowledged the last messages within '
                                    f'{options.ack_timeout:g} s; they may be lost')
    counts['unheard_topics'] = _without_subscribers(publishers)
    if counts['unheard_topics'] and counts['messages']:
        cli.report(PROG, 'warning', f'no subscriber on {", ".join(counts["unheard_topics"])} '
                                    f'at the end of playback: its messages went unheard '
                                    f'(--wait-for-subscribers S waits for subscribers)')
    return counts


def _wait_acked(publishers: dict, reliability: dict, timeout: float) -> list[str]:
    """Wait until reliable topics' subscribers acknowledged everything; topics that did not."""
    if timeout <= 0:
        return []
    deadline = time.monotonic() + timeout
    unacked = []
    for topic, pub in publishers.items():
        if reliability[topic] != 'reliable' or pub.get_subscription_count() == 0:
            continue
        left = max(deadline - time.monotonic(), 0.0)
        if not pub.wait_for_all_acked(Duration(nanoseconds=int(left * NS_PER_S))):
            unacked.append(pub.topic_name)
    return unacked


def _without_subscribers(publishers: dict) -> list[str]:
    """Published topic names that have no subscriber now."""
    return [p.topic_name for p in publishers.values() if p.get_subscription_count() == 0]


def _play_once(options, converters, publishers, counts, stop, bar) -> None:
    first = start_wall = None
    offset_ns = int(round(options.start_offset * NS_PER_S))
    for topic, record_ns, raw, fmt in bags.iter_raw_messages(options.bag, options.topics):
        if stop.is_set():
            return
        if first is None:
            first = record_ns
        if record_ns < first + offset_ns:
            continue
        if start_wall is None:
            start_wall = time.monotonic()
            origin = record_ns
        due = start_wall + (record_ns - origin) / NS_PER_S / options.rate
        delay = due - time.monotonic()
        if delay > 0:
            stop.wait(delay)
        else:
            counts['late_ms_max'] = max(counts['late_ms_max'], -delay * 1e3)
        try:
            out = converters[topic](raw, fmt)
        except wire.WireError as exc:
            counts['malformed'] = counts.get('malformed', 0) + 1
            print(f'[play_bag] {options.bag}: {topic} message recorded at {record_ns} ns '
                  f'skipped: {exc}', file=sys.stderr)
            continue
        publishers[topic].publish(out)
        counts['messages'] += 1
        counts['bytes'] += len(out) if isinstance(out, bytes) else len(raw)
        bar.update(1)


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface of ``play_bag``."""
    ap = cli.ArgumentParser(prog=PROG, description=__doc__.split('\n\n')[0])
    ap.add_argument('bag', help='ROS 1 .bag file, ROS 2 bag folder, .db3 or .mcap')
    ap.add_argument('--rate', type=cli.positive, default=1.0,
                    help='playback speed factor (default 1)')
    ap.add_argument('--loop', action='store_true', help='start again at the end')
    ap.add_argument('--loops', type=cli.count, default=0,
                    help='with --loop: number of passes (default 0 = until stopped)')
    ap.add_argument('--start-offset', type=cli.non_negative, default=0.0, metavar='S',
                    help='skip the first S seconds of the bag')
    ap.add_argument('--topics', nargs='+', default=None,
                    help='topics to play (default: the MVSEC left and right event topics)')
    ap.add_argument('--depth', action='store_true',
                    help=f'also play {MVSEC_TOPICS["left_depth"]}')
    ap.add_argument('--remap', action='append', default=[], metavar='FROM:=TO',
                    help='publish topic FROM as TO (repeatable)')
    ap.add_argument('--qos-depth', type=cli.positive_count, default=100,
                    help='publisher history depth')
    ap.add_argument('--reliability', choices=(RECORDED,) + bags.RELIABILITIES,
                    default=RECORDED,
                    help='publisher reliability (default: as recorded in the bag; reliable '
                         'where it does not say, e.g. ROS 1 bags)')
    ap.add_argument('--wait-for-subscribers', type=cli.non_negative, default=0.0, metavar='S',
                    help='wait up to S seconds until every topic has a subscriber')
    ap.add_argument('--ack-timeout', type=cli.non_negative, default=5.0, metavar='S',
                    help='at the end, wait up to S seconds until reliable subscribers '
                         'acknowledged every message (default 5; 0: exit at once)')
    ap.add_argument('--quiet', action='store_true', help='no progress bar')
    return ap


def main(argv: list[str] | None = None) -> int:
    """Console script ``play_bag``; ROS arguments after ``--ros-args`` go to rclpy.

    Exit status as every tool (:mod:`cli`): 2 for bad arguments or topics, 1 for a bad bag.
    """
    return cli.run(_main, argv, prog=PROG)


def _main(argv: list[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # Our FROM:=TO remaps look like legacy ROS remaps: only what follows --ros-args goes to rcl.
    cut = argv.index('--ros-args') if '--ros-args' in argv else len(argv)
    args = build_parser().parse_args(argv[:cut])
    ros_args = [PROG] + argv[cut:]
    cli.existing_path(args.bag, 'bag')
    topics = list(args.topics or [MVSEC_TOPICS['left_events'],
                                  MVSEC_TOPICS['right_events']])
    if args.depth and MVSEC_TOPICS['left_depth'] not in topics:
        topics.append(MVSEC_TOPICS['left_depth'])
    options = PlayOptions(bag=args.bag, topics=topics, rate=args.rate, loop=args.loop,
                          loops=args.loops, start_offset=args.start_offset,
                          remap=parse_remap(args.remap), qos_depth=args.qos_depth,
                          wait_for_subscribers=args.wait_for_subscribers,
                          progress=not args.quiet, reliability=args.reliability,
                          ack_timeout=args.ack_timeout)
    options.validate()
    dds.use_large_data_profile()     # before rclpy.init: best-effort large messages need it
    rclpy.init(args=ros_args)
    node = rclpy.create_node('stereospike_player')
    try:
        counts = play(node, options)
        cli.report(PROG, 'note', f'published {counts["messages"]} messages in '
                                 f'{counts["loops"]} pass(es); reliability: '
                                 + ', '.join(f'{t} {r}' for t, r in counts['reliability'].items()))
        return 0
    except (KeyboardInterrupt, ExternalShutdownException):
        return 0
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    sys.exit(main())
