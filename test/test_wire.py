"""wire.py agrees byte for byte with rosbags and rclpy; malformed bytes raise WireError."""

import numpy as np
import pytest
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from stereospike_ros.io import wire
from stereospike_ros.io.events import NS_PER_S, Events
from stereospike_ros.io.wire import EventArrayMsg, WireError
from support import ROOT

EA = 'dvs_msgs/msg/EventArray'
# Frame ids of every length mod 4 (UTF-8 byte lengths 0..7 and a multi-byte character).
FRAME_IDS = ['', 'a', 'ab', 'abc', 'left', 'davis', 'camera', 'davis_l', 'kör']
SIZES = [0, 1, 2, 3, 50]


@pytest.fixture(scope='module')
def ros2_store():
    store = get_typestore(Stores.ROS2_HUMBLE)
    types = {}
    for path in sorted((ROOT / 'interfaces' / 'dvs_msgs' / 'msg').glob('*.msg')):
        types.update(get_types_from_msg(path.read_text(), f'dvs_msgs/msg/{path.stem}'))
    store.register(types)
    return store


@pytest.fixture(scope='module')
def ros1_store():
    store = get_typestore(Stores.ROS1_NOETIC)
    store.register(get_types_from_msg('uint16 x\nuint16 y\ntime ts\nbool polarity\n',
                                      'dvs_msgs/msg/Event'))
    store.register(get_types_from_msg(
        'Header header\nuint32 height\nuint32 width\nEvent[] events\n', EA))
    return store


def random_msg(rng, n: int, frame_id: str, seq: int = 0) -> EventArrayMsg:
    """Events with full-range coordinates and times (ROS 1 needs non-negative seconds)."""
    t = rng.integers(0, 2 ** 31 - 1, n) * NS_PER_S + rng.integers(0, NS_PER_S, n)
    events = Events(rng.integers(0, 2 ** 16, n).astype(np.uint16),
                    rng.integers(0, 2 ** 16, n).astype(np.uint16), t, rng.random(n) < 0.5)
    stamp = int(rng.integers(0, 2 ** 31 - 1)) * NS_PER_S + int(rng.integers(0, NS_PER_S))
    return EventArrayMsg(stamp, frame_id, int(rng.integers(0, 2 ** 32)),
                         int(rng.integers(0, 2 ** 32)), events, seq)


def to_rosbags(store, msg: EventArrayMsg, ros1: bool):
    """The same message as rosbags objects (built per event: fine for a test)."""
    time = store.types['builtin_interfaces/msg/Time']
    header = store.types['std_msgs/msg/Header']
    event = store.types['dvs_msgs/msg/Event']
    ev = msg.events
    events = [event(int(ev.x[i]), int(ev.y[i]), time(*map(int, divmod(int(ev.t[i]), NS_PER_S))),
                    bool(ev.p[i])) for i in range(len(ev))]
    stamp = time(*divmod(msg.stamp_ns, NS_PER_S))
    head = header(msg.seq, stamp, msg.frame_id) if ros1 else header(stamp, msg.frame_id)
    return store.types[EA](head, msg.height, msg.width, events)


def assert_same(a: EventArrayMsg, b: EventArrayMsg, seq: bool = True) -> None:
    assert (a.stamp_ns, a.frame_id, a.height, a.width) == (b.stamp_ns, b.frame_id, b.height,
                                                           b.width)
    if seq:
        assert a.seq == b.seq
    for name, dtype in (('x', np.uint16), ('y', np.uint16), ('t', np.int64), ('p', np.bool_)):
        got = getattr(a.events, name)
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, getattr(b.events, name))


def assert_matches_rosbags(decoded: EventArrayMsg, obj, ros1: bool) -> None:
    """A wire.py decode equals rosbags' own deserialised object field by field."""
    stamp = obj.header.stamp
    assert decoded.stamp_ns == stamp.sec * NS_PER_S + stamp.nanosec
    assert decoded.frame_id == obj.header.frame_id
    assert (decoded.height, decoded.width) == (obj.height, obj.width)
    if ros1:
        assert decoded.seq == obj.header.seq
    ev = decoded.events
    assert len(ev) == len(obj.events)
    np.testing.assert_array_equal(ev.x, [e.x for e in obj.events])
    np.testing.assert_array_equal(ev.y, [e.y for e in obj.events])
    np.testing.assert_array_equal(ev.t, [e.ts.sec * NS_PER_S + e.ts.nanosec for e in obj.events])
    np.testing.assert_array_equal(ev.p, [bool(e.polarity) for e in obj.events])


@pytest.mark.parametrize('frame_id', FRAME_IDS)
@pytest.mark.parametrize('n', SIZES)
def test_cdr_matches_rosbags(ros2_store, frame_id, n):
    rng = np.random.default_rng([n, len(frame_id)])
    msg = random_msg(rng, n, frame_id)
    theirs = bytes(ros2_store.serialize_cdr(to_rosbags(ros2_store, msg, False), EA))
    ours = wire.encode_cdr_event_array(msg)
    assert ours == theirs                     # identical bytes, padding included
    decoded = wire.decode_cdr_event_array(theirs)
    assert_same(decoded, msg)
    assert_matches_rosbags(decoded, ros2_store.deserialize_cdr(theirs, EA), False)


@pytest.mark.parametrize('frame_id', FRAME_IDS)
@pytest.mark.parametrize('n', SIZES)
def test_ros1_matches_rosbags(ros1_store, frame_id, n):
    rng = np.random.default_rng([n, len(frame_id), 1])
    msg = random_msg(rng, n, frame_id, seq=int(rng.integers(0, 2 ** 32)))
    theirs = bytes(ros1_store.serialize_ros1(to_rosbags(ros1_store, msg, True), EA))
    assert wire.encode_ros1_event_array(msg) == theirs
    decoded = wire.decode_ros1_event_array(theirs)
    assert_same(decoded, msg)
    assert_matches_rosbags(decoded, ros1_store.deserialize_ros1(theirs, EA), True)
    # ROS 1 -> CDR for the player equals rosbags' own CDR serialisation (seq dropped).
    assert wire.ros1_to_cdr_event_array(theirs) == wire.encode_cdr_event_array(
        EventArrayMsg(msg.stamp_ns, msg.frame_id, msg.height, msg.width, msg.events))


def test_polarity_nonzero_byte_is_on_and_bool_valid():
    msg = random_msg(np.random.default_rng(3), 5, 'x')
    raw = bytearray(wire.encode_ros1_event_array(msg))
    start = len(raw) - 5 * 13
    for i, value in enumerate([0, 1, 2, 255, 7]):
        raw[start + 13 * i + 12] = value
    p = wire.decode_ros1_event_array(raw).events.p
    assert p.tolist() == [False, True, True, True, True]
    assert p.view(np.uint8).max() == 1      # valid bools, safe for ~p and indexing
    assert (~p).tolist() == [True, False, False, False, False]


def test_unaligned_memoryview_and_bytearray_inputs():
    msg = random_msg(np.random.default_rng(4), 9, 'left')
    for encode, decode in ((wire.encode_cdr_event_array, wire.decode_cdr_event_array),
                           (wire.encode_ros1_event_array, wire.decode_ros1_event_array)):
        raw = encode(msg)
        for shift in range(1, 4):
            big = bytearray(b'\xaa' * shift) + raw + b'\xbb' * 5
            view = memoryview(big)[shift:shift + len(raw)]
            assert_same(decode(view), decode(raw))
        assert_same(decode(bytearray(raw)), msg, seq=False)
        assert_same(decode(np.frombuffer(raw, np.uint8)), msg, seq=False)


def test_decoded_events_do_not_alias_the_buffer():
    msg = random_msg(np.random.default_rng(5), 4, 'a')
    raw = bytearray(wire.encode_cdr_event_array(msg))
    decoded = wire.decode_cdr_event_array(raw)
    raw[:] = bytes(len(raw))
    assert_same(decoded, msg)


def test_rclpy_serialize_message_decodes_equal():
    pytest.importorskip('rclpy')
    from builtin_interfaces.msg import Time
    from dvs_msgs.msg import Event, EventArray
    from rclpy.serialization import deserialize_message, serialize_message

    rng = np.random.default_rng(6)
    for n, frame_id in ((0, ''), (1, 'l'), (2, 'ab'), (3, 'abc'), (40, 'davis_left')):
        msg = random_msg(rng, n, frame_id)
        typed = EventArray()
        typed.header.frame_id = frame_id
        typed.header.stamp = Time(sec=msg.stamp_ns // NS_PER_S, nanosec=msg.stamp_ns % NS_PER_S)
        typed.height, typed.width = msg.height, msg.width
        typed.events = [Event(x=int(msg.events.x[i]), y=int(msg.events.y[i]),
                              ts=Time(sec=int(msg.events.t[i] // NS_PER_S),
                                      nanosec=int(msg.events.t[i] % NS_PER_S)),
                              polarity=bool(msg.events.p[i])) for i in range(n)]
        raw = serialize_message(typed)          # rclpy leaves padding bytes uninitialised
        assert_same(wire.decode_cdr_event_array(raw), msg)
        back = deserialize_message(wire.encode_cdr_event_array(msg), EventArray)
        assert back == typed


def test_negative_cdr_seconds_round_trip():
    ev = Events(np.array([1, 2], np.uint16), np.array([3, 4], np.uint16),
                np.array([-5 * NS_PER_S + 1, -1], np.int64), np.array([True, False]))
    msg = EventArrayMsg(-3 * NS_PER_S + 9, 'n', 2, 3, ev)
    assert_same(wire.decode_cdr_event_array(wire.encode_cdr_event_array(msg)), msg)
    with pytest.raises(WireError, match='representable'):
        wire.encode_ros1_event_array(msg)


def test_encoder_range_errors():
    ev = Events(np.array([1], np.uint16), np.array([1], np.uint16),
                np.array([2 ** 31 * NS_PER_S], np.int64), np.array([True]))
    with pytest.raises(WireError, match='event times'):
        wire.encode_cdr_event_array(EventArrayMsg(0, '', 1, 1, ev))
    assert len(wire.decode_ros1_event_array(
        wire.encode_ros1_event_array(EventArrayMsg(0, '', 1, 1, ev))).events) == 1
    with pytest.raises(WireError, match='height'):
        wire.encode_cdr_event_array(EventArrayMsg(0, '', -1, 1, Events.empty()))
    wide = Events(np.array([70000]), np.array([1]), np.array([0]), np.array([True]))
    with pytest.raises(WireError, match='uint16'):
        wire.encode_ros1_event_array(EventArrayMsg(0, '', 1, 1, wide))


@pytest.mark.parametrize('encode,decode', [
    (wire.encode_cdr_event_array, wire.decode_cdr_event_array),
    (wire.encode_ros1_event_array, wire.decode_ros1_event_array)], ids=['cdr', 'ros1'])
def test_every_truncation_raises_wire_error(encode, decode):
    raw = encode(random_msg(np.random.default_rng(7), 3, 'abcde'))
    for cut in range(len(raw)):
        with pytest.raises(WireError):
            decode(raw[:cut])


def test_malformed_cdr_messages():
    raw = wire.encode_cdr_event_array(random_msg(np.random.default_rng(8), 4, 'left'))
    with pytest.raises(WireError, match='encapsulation header'):
        wire.decode_cdr_event_array(b'\x00\x01')
    with pytest.raises(WireError, match='big-endian'):
        wire.decode_cdr_event_array(b'\x00\x00\x00\x00' + raw[4:])
    with pytest.raises(WireError, match='bad encapsulation'):
        wire.decode_cdr_event_array(b'\x00\x07\x00\x00' + raw[4:])
    with pytest.raises(WireError, match='frame_id length 4000000000'):
        wire.decode_cdr_event_array(raw[:12] + (4_000_000_000).to_bytes(4, 'little') + raw[16:])
    with pytest.raises(WireError, match='NUL-terminated'):
        wire.decode_cdr_event_array(raw[:16] + b'lefty' + raw[21:])
    with pytest.raises(WireError, match='UTF-8'):
        wire.decode_cdr_event_array(raw[:16] + b'\xff\xfe\xfd\xfc' + raw[20:])
    count_at = len(raw) - wire.cdr_events_size(4) - 4
    huge = raw[:count_at] + (2 ** 32 - 1).to_bytes(4, 'little') + raw[count_at + 4:]
    with pytest.raises(WireError, match='4294967295 events need'):
        wire.decode_cdr_event_array(huge)
    five = raw[:count_at] + (5).to_bytes(4, 'little') + raw[count_at + 4:]
    with pytest.raises(WireError, match='5 events need 77 bytes but only 61 remain'):
        wire.decode_cdr_event_array(five)
    with pytest.raises(WireError, match='unexpected bytes'):
        wire.decode_cdr_event_array(raw + bytes(8))
    assert len(wire.decode_cdr_event_array(raw + bytes(3)).events) == 4  # end padding is fine
    with pytest.raises(WireError, match='bytes-like'):
        wire.decode_cdr_event_array('not bytes')


def test_malformed_ros1_messages():
    raw = wire.encode_ros1_event_array(random_msg(np.random.default_rng(9), 2, 'ab'))
    with pytest.raises(WireError, match='frame_id length 99'):
        wire.decode_ros1_event_array(raw[:12] + (99).to_bytes(4, 'little') + raw[16:])
    with pytest.raises(WireError, match='UTF-8'):
        wire.decode_ros1_event_array(raw[:16] + b'\xc3(' + raw[18:])
    with pytest.raises(WireError, match='unexpected bytes'):
        wire.decode_ros1_event_array(raw + b'\x00')
    count_at = len(raw) - 2 * 13 - 4
    with pytest.raises(WireError, match='3 events need 39 bytes but only 26 remain'):
        wire.decode_ros1_event_array(raw[:count_at] + (3).to_bytes(4, 'little')
                                     + raw[count_at + 4:])


def test_random_garbage_never_escapes_wire_error():
    rng = np.random.default_rng(10)
    good = wire.encode_cdr_event_array(random_msg(rng, 6, 'left'))
    for _ in range(300):
        raw = np.frombuffer(good, np.uint8).copy()
        idx = rng.integers(0, len(raw), rng.integers(1, 6))
        raw[idx] = rng.integers(0, 256, len(idx))
        for decode in (wire.decode_cdr_event_array, wire.decode_ros1_event_array):
            try:
                out = decode(bytes(raw))
            except WireError:
                continue
            assert isinstance(out, EventArrayMsg)


# ---------------------------------------------------------------- event_camera_msgs/EventPacket

EP = 'event_camera_msgs/msg/EventPacket'
EP_FIELDS = ('uint32 height\nuint32 width\nuint64 seq\nuint64 time_base\nstring encoding\n'
             'bool is_bigendian\nuint8[] events\n')


def random_packet(rng, n: int, frame_id: str, encoding: str = 'libcaer_cmp'):
    stamp = int(rng.integers(0, 2 ** 31 - 1)) * NS_PER_S + int(rng.integers(0, NS_PER_S))
    return wire.EventPacketMsg(stamp, frame_id, int(rng.integers(0, 2 ** 32)),
                               int(rng.integers(0, 2 ** 32)), int(rng.integers(0, 2 ** 63)),
                               int(rng.integers(0, 2 ** 63)) * 2 + 1, encoding,
                               bool(rng.random() < 0.5), rng.integers(0, 256, n, np.uint8),
                               int(rng.integers(0, 2 ** 32)))


def packet_stores():
    """rosbags typestores (ROS 2, ROS 1) with the upstream EventPacket definitions."""
    ros2, ros1 = get_typestore(Stores.ROS2_HUMBLE), get_typestore(Stores.ROS1_NOETIC)
    ros2.register(get_types_from_msg('std_msgs/Header header\n' + EP_FIELDS, EP))
    ros1.register(get_types_from_msg('Header header\n' + EP_FIELDS, EP))
    return ros2, ros1


def assert_packet_equal(a, b, header_seq=True):
    for name in ('stamp_ns', 'frame_id', 'height', 'width', 'seq', 'time_base', 'encoding',
                 'is_bigendian') + (('header_seq',) if header_seq else ()):
        assert getattr(a, name) == getattr(b, name), name
    np.testing.assert_array_equal(a.events, b.events)


@pytest.mark.parametrize('frame_id', FRAME_IDS)
@pytest.mark.parametrize('encoding', ['', 'mono', 'evt3', 'libcaer', 'libcaer_cmp'])
def test_event_packet_matches_rosbags(frame_id, encoding):
    ros2, ros1 = packet_stores()
    rng = np.random.default_rng(len(frame_id) * 7 + len(encoding))
    for n in SIZES:
        msg = random_packet(rng, n, frame_id, encoding)
        time = ros2.types['builtin_interfaces/msg/Time'](*divmod(msg.stamp_ns, NS_PER_S))
        fields = (msg.height, msg.width, msg.seq, msg.time_base, msg.encoding,
                  msg.is_bigendian, msg.events)
        cdr = ros2.serialize_cdr(ros2.types[EP](
            ros2.types['std_msgs/msg/Header'](time, frame_id), *fields), EP)
        assert wire.encode_cdr_event_packet(msg) == bytes(cdr)
        assert_packet_equal(wire.decode_cdr_event_packet(cdr), msg, header_seq=False)
        raw = ros1.serialize_ros1(ros1.types[EP](
            ros1.types['std_msgs/msg/Header'](msg.header_seq, time, frame_id), *fields), EP)
        assert wire.encode_ros1_event_packet(msg) == bytes(raw)
        assert_packet_equal(wire.decode_ros1_event_packet(raw), msg)
        assert wire.ros1_to_cdr_event_packet(raw) == bytes(cdr)


def test_event_packet_rclpy_serialize_message_agrees():
    """The real event_camera_msgs type support (built into the venv) and wire.py agree."""
    pytest.importorskip('rclpy')
    event_camera_msgs = pytest.importorskip('event_camera_msgs.msg')
    from rclpy.serialization import deserialize_message, serialize_message
    rng = np.random.default_rng(5)
    for n in (0, 1, 3, 1000):
        msg = random_packet(rng, n, 'davis_left')
        typed = event_camera_msgs.EventPacket()
        typed.header.stamp.sec, typed.header.stamp.nanosec = divmod(msg.stamp_ns, NS_PER_S)
        typed.header.frame_id = msg.frame_id
        typed.height, typed.width, typed.seq, typed.time_base = (msg.height, msg.width, msg.seq,
                                                                 msg.time_base)
        typed.encoding, typed.is_bigendian = msg.encoding, msg.is_bigendian
        typed.events = msg.events.tobytes()
        cdr = serialize_message(typed)          # rclpy leaves padding bytes uninitialised
        assert_packet_equal(wire.decode_cdr_event_packet(cdr), msg, header_seq=False)
        back = deserialize_message(wire.encode_cdr_event_packet(msg),
                                   event_camera_msgs.EventPacket)
        assert back == typed


@pytest.mark.parametrize('encode, decode', [
    (wire.encode_cdr_event_packet, wire.decode_cdr_event_packet),
    (wire.encode_ros1_event_packet, wire.decode_ros1_event_packet)])
def test_event_packet_every_truncation_raises_wire_error(encode, decode):
    msg = random_packet(np.random.default_rng(2), 21, 'cam', 'evt3')
    data = encode(msg)
    for cut in range(len(data)):
        with pytest.raises(WireError):
            decode(data[:cut])
    assert_packet_equal(decode(data), msg, header_seq=decode is wire.decode_ros1_event_packet)


def test_event_packet_malformed():
    msg = random_packet(np.random.default_rng(3), 8, 'cam', 'mono')
    cdr = bytearray(wire.encode_cdr_event_packet(msg))
    with pytest.raises(WireError, match='big-endian CDR'):
        wire.decode_cdr_event_packet(b'\x00\x00' + bytes(cdr[2:]))
    bad = bytearray(cdr)
    bad[12 + 4 + 3] = ord('x')                  # the frame id's NUL becomes a character
    with pytest.raises(WireError, match='not NUL-terminated'):
        wire.decode_cdr_event_packet(bad)
    with pytest.raises(WireError, match='unexpected bytes after the events'):
        wire.decode_cdr_event_packet(bytes(cdr) + bytes(8))
    with pytest.raises(WireError, match='unexpected bytes'):
        wire.decode_ros1_event_packet(wire.encode_ros1_event_packet(msg) + b'\x00')
    payload = wire.decode_cdr_event_packet(cdr).events
    assert payload.base is not None                 # a view of the message buffer, no copy
    with pytest.raises(WireError, match='time_base'):
        wire.encode_cdr_event_packet(wire.EventPacketMsg(0, '', 1, 1, 0, 2 ** 64, 'mono', False,
                                                         payload))
