"""Event subscriptions of the depth node: message type and reliability follow the publishers found.

One :class:`EventInput` per camera holds a raw subscription (CDR bytes, no message objects) and
the decoder for its type. :meth:`EventInput.refresh` (a timer of the node) looks at the
publishers on the topic (``get_publishers_info_by_topic``) and re-creates the subscription when
they call for another type or reliability:

- reliability ``auto``: RELIABLE when every publisher offers it (what ``ros2 bag play``, the
  player and rosbag2's recorder do: reliable delivery loses nothing with the default transport),
  BEST_EFFORT as soon as one offers less (drivers: a reliable reader would not match them);
  with no publisher yet the current choice stays (RELIABLE at start).
- type ``auto``: ``dvs_msgs/msg/EventArray`` or ``event_camera_msgs/msg/EventPacket``, whichever
  the publishers offer (EventArray at start).

Messages the RMW reports lost (``message_lost`` events) are counted per camera, and so are an
EventPacket stream's seq gaps and every packet or event its decoder drops.
"""
from __future__ import annotations

import time
from typing import Any, Callable

from rclpy.event_handler import SubscriptionEventCallbacks, UnsupportedEventTypeError
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

from stereospike_ros.io import wire
from stereospike_ros.io.events import SENSOR_HEIGHT, SENSOR_WIDTH, Events

#: ``event_type`` parameter value -> ROS type name.
EVENT_TYPES = {'dvs': 'dvs_msgs/msg/EventArray',
               'event_packet': 'event_camera_msgs/msg/EventPacket'}
RELIABILITIES = {'reliable': ReliabilityPolicy.RELIABLE,
                 'best_effort': ReliabilityPolicy.BEST_EFFORT}
AUTO = 'auto'
#: How often the publishers on the topics are looked at (seconds).
REFRESH_PERIOD_S = 0.5

Sink = Callable[[str, Events, 'int | None', float], None]
Count = Callable[[str, int], None]


class InputConfigError(ValueError):
    """An event_type or reliability that cannot be used here (the message says why)."""


def match_reliability(offered: list) -> str | None:
    """'reliable' when every offered policy is RELIABLE, 'best_effort' when one is not.

    None without publishers (the caller keeps its current choice)."""
    if not offered:
        return None
    return 'reliable' if all(p == ReliabilityPolicy.RELIABLE for p in offered) \
        else 'best_effort'


def match_type(offered: list[str], current: str) -> str | None:
    """The event type the offered type names call for: ``current`` while it is offered, else the
    first known one; None when no known type is offered."""
    kinds = [k for name in offered for k, ros in EVENT_TYPES.items() if ros == name]
    if not kinds:
        return None
    return current if current in kinds else kinds[0]


def message_class(kind: str) -> type:
    """The rclpy message class of an event type (ImportError when its package is missing)."""
    if kind == 'dvs':
        from dvs_msgs.msg import EventArray
        return EventArray
    from event_camera_msgs.msg import EventPacket
    return EventPacket


def check_available(kind: str) -> None:
    """Raise InputConfigError when the message package or the decoder of ``kind`` is missing."""
    try:
        message_class(kind)
    except ImportError as exc:
        raise InputConfigError(f'event type {kind} needs {EVENT_TYPES[kind].split("/")[0]}, '
                               f'which is not installed ({exc})') from exc
    if kind == 'event_packet':
        try:
            import stereospike_ros.io.codecs  # noqa: F401
        except ImportError as exc:
            raise InputConfigError(f'event type {kind}: no EventPacket decoder ({exc})') from exc


class DvsDecoder:
    """CDR dvs_msgs/EventArray -> (events, header stamp); malformed messages counted, skipped."""

    kind = 'dvs'

    def __init__(self, side: str, width: int, height: int, count: Count, logger: Any) -> None:
        self.side, self.width, self.height = side, width, height
        self._count, self._logger = count, logger
        self._warned_size = False

    def __call__(self, data: bytes) -> tuple[Events, int | None] | None:
        """Decode one message; None when it was malformed (counted and logged)."""
        try:
            msg = wire.decode_cdr_event_array(data)
        except wire.WireError as exc:
            self._count(f'malformed_{self.side}', 1)
            self._logger.warning(f'{self.side}/events: dropped a malformed message: {exc}',
                                 throttle_duration_sec=5.0)
            return None
        if msg.width and msg.height and (msg.width, msg.height) != (self.width, self.height) \
                and not self._warned_size:
            self._warned_size = True
            self._logger.warning(
                f'{self.side}/events: messages say {msg.width}x{msg.height}, the node expects '
                f'{self.width}x{self.height}; events beyond the sensor are dropped and counted')
        return msg.events, msg.stamp_ns


class PacketDecoder:
    """CDR event_camera_msgs/EventPacket -> events in sensor time, through the codecs' stateful
    stream decoder (one per camera); every drop counted, seq gaps as lost messages.

    The header stamp of an EventPacket is host time (libcaer_driver, metavision_driver); the
    events carry sensor time (``time_base`` + offsets), which alone drives the windows.
    """

    kind = 'event_packet'
    #: Stream-decoder counter -> node counter name (``{name}_{side}``); the others are
    #: ``packet_{key}``. ``packets``/``events`` are not counted again (the windower counts).
    NAMES = {'seq_missing': 'messages_lost_seq', 'malformed': 'malformed',
             'rejected_packets': 'packets_rejected', 'triggers': 'triggers_skipped'}
    SKIP = ('packets', 'events')

    def __init__(self, side: str, width: int, height: int, count: Count, logger: Any) -> None:
        from stereospike_ros.io.codecs import EventPacketDecoder
        self.side = side
        self._count, self._logger = count, logger
        self.stream = EventPacketDecoder(width, height)

    def __call__(self, data: bytes) -> tuple[Events, int | None] | None:
        """Decode one packet; None when it was rejected whole (counted and logged)."""
        decoded = self.stream.decode_bytes(data)
        for key, value in decoded.counts.items():
            if value and key not in self.SKIP:
                self._count(f'{self.NAMES.get(key, "packet_" + key)}_{self.side}', int(value))
        for line in decoded.problems:
            self._logger.warning(f'{self.side}/events: {line}', throttle_duration_sec=5.0)
        if decoded.rejected:
            return None
        return decoded.events, None


class EventInput:
    """One camera's event subscription; type and reliability follow the publishers (module doc)."""

    def __init__(self, node: Node, side: str, topic: str, sink: Sink, count: Count, *,
                 event_type: str = AUTO, reliability: str = AUTO, depth: int = 100,
                 width: int = SENSOR_WIDTH, height: int = SENSOR_HEIGHT) -> None:
        if event_type != AUTO and event_type not in EVENT_TYPES:
            raise InputConfigError(f'event_type {event_type!r} is not auto, '
                                   f'{", ".join(EVENT_TYPES)}')
        if reliability != AUTO and reliability not in RELIABILITIES:
            raise InputConfigError(f'input_reliability {reliability!r} is not auto, '
                                   f'{", ".join(RELIABILITIES)}')
        if event_type != AUTO:
            check_available(event_type)
        self.node, self.side, self._sink, self._count = node, side, sink, count
        self._logger = node.get_logger()
        self.topic = node.resolve_topic_name(topic)
        self.event_type, self.reliability = event_type, reliability
        self.depth, self.width, self.height = int(depth), int(width), int(height)
        self.kind = 'dvs' if event_type == AUTO else event_type
        self.policy = 'reliable' if reliability == AUTO else reliability
        self.publishers = 0
        self._warned: set = set()
        self.subscription = None
        self._decoder = None
        self._subscribe(self.kind, self.policy)

    # ---------------------------------------------------------------- subscription
    def _subscribe(self, kind: str, policy: str) -> None:
        decoder = self._make_decoder(kind)      # first: a failure leaves the old subscription
        if self.subscription is not None:
            self.node.destroy_subscription(self.subscription)
            self.subscription = None
            self._count(f'resubscribed_{self.side}', 1)
            self._logger.info(f'{self.topic}: re-subscribing as {kind} {policy} (was '
                              f'{self.kind} {self.policy}) to match its publishers')
        self.kind, self.policy = kind, policy
        self._decoder = decoder
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=self.depth,
                         reliability=RELIABILITIES[policy])
        self.subscription = self._create(message_class(kind), qos, lost_events=True)

    def _create(self, msg_type, qos, lost_events: bool):
        callbacks = SubscriptionEventCallbacks(
            message_lost=self._on_lost if lost_events else None,
            incompatible_qos=self._on_incompatible)
        try:
            return self.node.create_subscription(msg_type, self.topic, self._on_data, qos,
                                                 raw=True, event_callbacks=callbacks)
        except UnsupportedEventTypeError as exc:   # an RMW without message-lost events
            if not lost_events:
                raise
            self._logger.info(f'{self.topic}: the RMW reports no lost messages ({exc})')
            return self._create(msg_type, qos, lost_events=False)

    def _make_decoder(self, kind: str) -> DvsDecoder | PacketDecoder:
        decoder = DvsDecoder if kind == 'dvs' else PacketDecoder
        return decoder(self.side, self.width, self.height, self._count, self._logger)

    def refresh(self) -> None:
        """Look at the topic's publishers; re-subscribe when type or reliability must change."""
        infos = self.node.get_publishers_info_by_topic(self.topic)
        self.publishers = len(infos)
        kind = self.kind
        if self.event_type == AUTO and infos:
            names = [i.topic_type for i in infos]
            found = match_type(names, self.kind)
            if found is None:
                self._warn_once(('type', tuple(sorted(set(names)))),
                                f'{self.topic}: publishers offer {", ".join(sorted(set(names)))}'
                                f'; the node takes {" or ".join(EVENT_TYPES.values())}')
            else:
                try:
                    check_available(found)
                    kind = found
                except InputConfigError as exc:
                    self._count(f'unsupported_type_{self.side}', 1)
                    self._warn_once(('missing', found), f'{self.topic}: {exc}')
        policy = self.policy
        if self.reliability == AUTO:
            policy = match_reliability([i.qos_profile.reliability for i in infos
                                        if i.topic_type == EVENT_TYPES[kind]]) or self.policy
        if (kind, policy) != (self.kind, self.policy):
            self._subscribe(kind, policy)

    def _warn_once(self, key, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            self._logger.warning(message)

    def describe(self) -> dict:
        """Diagnostics values: the subscription's type and reliability, publishers seen."""
        return {f'input_{self.side}': f'{EVENT_TYPES[self.kind]} {self.policy}',
                f'publishers_{self.side}': self.publishers}

    # ---------------------------------------------------------------- callbacks
    def _on_data(self, data: bytes) -> None:
        wall = time.monotonic()
        try:
            decoded = self._decoder(data)
        except Exception as exc:  # a decoder bug must not stop the executor: count, go on
            self._count(f'callback_errors_{self.side}', 1)
            self._logger.error(f'{self.topic}: message dropped: {exc!r}',
                               throttle_duration_sec=5.0)
            return
        if decoded is not None:
            self._sink(self.side, decoded[0], decoded[1], wall)

    def _on_lost(self, info) -> None:
        self._count(f'messages_lost_rmw_{self.side}', int(info.total_count_change))

    def _on_incompatible(self, info) -> None:
        if self.reliability == AUTO:
            return      # the next refresh matches the new publisher
        self._count(f'incompatible_publishers_{self.side}', 1)
        self._logger.warning(
            f'{self.topic}: a publisher offers QoS this {self.policy} subscription cannot '
            f'take (policy {info.last_policy_kind}); set input_reliability:=auto or '
            f'best_effort', throttle_duration_sec=5.0)
