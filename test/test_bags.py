"""bags.py writes ROS 1 and ROS 2 (sqlite3, mcap) bags and reads them back; bad bags fail."""
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from rosbags.highlevel import AnyReader
from rosbags.rosbag2 import StoragePlugin, Writer as Writer2
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from stereospike_ros.io import bags, wire
from stereospike_ros.io.bags import BagError, EventBagWriter
from stereospike_ros.io.events import NS_PER_S, Events
from stereospike_ros.io.mvsec import MVSEC_TOPICS
from stereospike_ros.io.wire import EventArrayMsg
from support import ROOT

EV = MVSEC_TOPICS['left_events']
EV_R = MVSEC_TOPICS['right_events']
DEPTH = MVSEC_TOPICS['left_depth']
BASE = 1_500_000_000 * NS_PER_S
FMTS = [('ros1', 'seq.bag'), ('sqlite3', 'seq'), ('mcap', 'seq')]


def make_messages(seed: int, count: int = 12) -> list[tuple[int, EventArrayMsg]]:
    """(record ns, message) with sorted event times; message sizes include 0 and 1."""
    rng = np.random.default_rng(seed)
    out, t0 = [], BASE
    for k in range(count):
        n = [0, 1, 2, 37][k % 4] if k < 4 else int(rng.integers(0, 120))
        t = t0 + np.sort(rng.integers(0, 10_000_000, n))
        t0 += 10_000_000
        events = Events(rng.integers(0, 346, n).astype(np.uint16),
                        rng.integers(0, 260, n).astype(np.uint16), t, rng.random(n) < 0.5)
        out.append((t0 + 1000 + k, EventArrayMsg(t0 - 10_000_000, 'davis_left', 260, 346, events)))
    return out


def make_depths(seed: int, count: int = 3) -> list[tuple[int, int, np.ndarray]]:
    """(record ns, header stamp ns, float32 depth with NaN holes)."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(count):
        depth = rng.uniform(1, 30, (6, 9)).astype(np.float32)
        depth[rng.random(depth.shape) < 0.3] = np.nan
        out.append((BASE + 33_000_000 * k + 7, BASE + 33_000_000 * k, depth))
    return out


def write_bag(path: Path, fmt: str, msgs, depths, right=None) -> None:
    with EventBagWriter(path, fmt) as writer:
        for record_ns, msg in msgs:
            writer.write_events(EV, record_ns, msg)
        for record_ns, msg in right or []:
            writer.write_events(EV_R, record_ns, msg)
        for record_ns, stamp_ns, depth in depths:
            writer.write_depth(DEPTH, record_ns, stamp_ns, depth, 'davis_left')


def assert_msg_equal(a: EventArrayMsg, b: EventArrayMsg) -> None:
    assert (a.stamp_ns, a.frame_id, a.height, a.width) == (b.stamp_ns, b.frame_id, b.height,
                                                           b.width)
    for name in 'xytp':
        np.testing.assert_array_equal(getattr(a.events, name), getattr(b.events, name))


@pytest.fixture(scope='module')
def written(tmp_path_factory):
    """One bag of every format with the same content (written once per module)."""
    root = tmp_path_factory.mktemp('bags')
    msgs, right, depths = make_messages(1), make_messages(2, 5), make_depths(3)
    paths = {}
    for fmt, name in FMTS:
        paths[fmt] = root / fmt / name
        paths[fmt].parent.mkdir()
        write_bag(paths[fmt], fmt, msgs, depths, right)
    return paths, msgs, right, depths


@pytest.mark.parametrize('fmt', [f for f, _ in FMTS])
def test_round_trip_every_format(written, fmt):
    paths, msgs, right, depths = written
    path = paths[fmt]
    got = list(bags.iter_event_messages(path, EV))
    assert [r for r, _ in got] == [r for r, _ in msgs]
    for (_, a), (_, b) in zip(got, msgs):
        assert_msg_equal(a, b)
    assert len(list(bags.iter_event_messages(path, EV_R))) == len(right)

    images = list(bags.iter_depth_images(path, DEPTH))
    assert [r for r, _ in images] == [r for r, _, _ in depths]   # RECORD time, not the stamp
    for (_, got_depth), (_, _, want) in zip(images, depths):
        assert got_depth.dtype == np.float32 and got_depth.flags.c_contiguous
        np.testing.assert_array_equal(got_depth, want)            # NaN positions included

    raw = list(bags.iter_raw_messages(path, [EV, DEPTH]))
    times = [r for _, r, _, _ in raw]
    assert times == sorted(times) and len(raw) == len(msgs) + len(depths)
    kind = 'ros1' if fmt == 'ros1' else 'cdr'
    assert {k for _, _, _, k in raw} == {kind}
    encode = wire.encode_ros1_event_array if fmt == 'ros1' else wire.encode_cdr_event_array
    ev_raw = [(r, data) for topic, r, data, _ in raw if topic == EV]
    assert len(ev_raw) == len(msgs)
    for (r, data), (want_r, msg) in zip(ev_raw, msgs):
        assert isinstance(data, bytes) and r == want_r
        assert data == encode(msg)
    assert bags.topic_types(path) == {EV: bags.EVENT_ARRAY_TYPE, EV_R: bags.EVENT_ARRAY_TYPE,
                                      DEPTH: bags.IMAGE_TYPE}


@pytest.mark.parametrize('fmt', [f for f, _ in FMTS])
def test_read_events_chunks_and_time_range(written, fmt):
    paths, msgs, _, _ = written
    every = Events.concatenate([m.events for _, m in msgs])
    chunks = list(bags.read_events(paths[fmt], EV, chunk_messages=5))
    assert len(chunks) == 3                          # 12 messages in chunks of at most 5
    joined = Events.concatenate(chunks)
    np.testing.assert_array_equal(joined.t, every.t)
    np.testing.assert_array_equal(joined.x, every.x)
    np.testing.assert_array_equal(joined.p, every.p)
    # cut by event count: each chunk stops growing at the first message that reaches the limit
    sizes = [len(m.events) for _, m in msgs]
    by_events = list(bags.read_events(paths[fmt], EV, chunk_messages=100,
                                      chunk_events=sizes[0] + 1))
    assert 1 < len(by_events) < len(msgs)
    assert all(len(c) >= sizes[0] + 1 for c in by_events[:-1])
    np.testing.assert_array_equal(Events.concatenate(by_events).t, every.t)
    start, stop = BASE + 25_000_000, BASE + 71_000_000
    want = every.time_slice(start, stop)
    for early in (False, True):
        part = Events.concatenate(list(bags.read_events(paths[fmt], EV, start, stop,
                                                        early_stop=early, progress=early)))
        np.testing.assert_array_equal(part.t, want.t)
        np.testing.assert_array_equal(part.y, want.y)
    assert list(bags.read_events(paths[fmt], EV, BASE + 10 ** 12)) == []


def test_embedded_definitions_match_ros_dvs_msgs(written):
    paths = written[0]
    store = get_typestore(Stores.ROS2_HUMBLE)
    types = {}
    for path in sorted((ROOT / 'interfaces' / 'dvs_msgs' / 'msg').glob('*.msg')):
        types.update(get_types_from_msg(path.read_text(), f'dvs_msgs/msg/{path.stem}'))
    store.register(types)
    for fmt in ('sqlite3', 'mcap'):
        with AnyReader([paths[fmt]]) as reader:
            conn = next(c for c in reader.connections if c.topic == EV)
            assert conn.digest == store.hash_rihs01(bags.EVENT_ARRAY_TYPE)
            assert 'builtin_interfaces/Time ts' in conn.msgdef.data
            digest = conn.digest
        meta = (paths[fmt] / 'metadata.yaml').read_text()
        assert 'version: 8' in meta
    # The hash rosidl computed when it built the real dvs_msgs package (when installed here).
    built = Path(sys.prefix) / 'share' / 'dvs_msgs' / 'msg' / 'EventArray.json'
    if built.is_file():
        hashes = {h['type_name']: h['hash_string']
                  for h in json.loads(built.read_text())['type_hashes']}
        assert hashes[bags.EVENT_ARRAY_TYPE] == digest
    with AnyReader([paths['ros1']]) as reader:
        conn = next(c for c in reader.connections if c.topic == EV)
        # md5 of rpg_dvs_ros dvs_msgs/EventArray, as in the MVSEC bags
        assert conn.digest == '5e8beee5a6c107e504c2e78903c224b8'
        assert 'time ts' in conn.msgdef.data


def test_ros1_bag_converted_by_rosbags_reads_identically(written, tmp_path):
    from rosbags.convert.converter import convert
    paths, msgs, _, depths = written
    dst = tmp_path / 'converted'
    convert([paths['ros1']], dst, 'sqlite3', 8, None, 'file', None,
            get_typestore(Stores.ROS2_HUMBLE), [], [], [], [])
    got = list(bags.iter_event_messages(dst, EV))
    assert [r for r, _ in got] == [r for r, _ in msgs]
    for (_, a), (_, b) in zip(got, msgs):
        assert_msg_equal(a, b)
    for (r, a), (want_r, _, b) in zip(bags.iter_depth_images(dst, DEPTH), depths):
        assert r == want_r
        np.testing.assert_array_equal(a, b)


def test_missing_and_invalid_paths(tmp_path):
    with pytest.raises(BagError, match='no such bag'):
        next(bags.read_events(tmp_path / 'nope.bag', EV))
    (tmp_path / 'notes.txt').write_text('hello')
    with pytest.raises(BagError, match='not a ROS 1 .bag'):
        list(bags.iter_event_messages(tmp_path / 'notes.txt', EV))
    (tmp_path / 'empty_dir').mkdir()
    with pytest.raises(BagError, match='no metadata.yaml'):
        list(bags.iter_depth_images(tmp_path / 'empty_dir', DEPTH))
    with pytest.raises(BagError, match='string or path'):
        bags.topic_types(42)


def test_missing_topic_and_wrong_type(written):
    path = written[0]['mcap']
    with pytest.raises(BagError, match=r"topic '/davis/right/depth' not in bag") as info:
        list(bags.read_events(path, '/davis/right/depth'))
    assert str(path) in str(info.value)
    with pytest.raises(BagError, match='has type sensor_msgs/msg/Image, expected dvs_msgs'):
        list(bags.iter_event_messages(path, DEPTH))
    with pytest.raises(BagError, match='has type dvs_msgs/msg/EventArray, expected sensor'):
        list(bags.iter_depth_images(path, EV))
    with pytest.raises(BagError, match='not in bag'):
        list(bags.iter_raw_messages(path, [EV, '/imu']))


@pytest.mark.parametrize('fmt', [f for f, _ in FMTS])
def test_truncated_and_corrupt_bags(written, tmp_path, fmt):
    src = written[0][fmt]
    if fmt == 'ros1':
        data_file, dst = src, tmp_path / 'cut.bag'
    else:
        data_file = next(p for p in src.iterdir() if p.suffix in ('.db3', '.mcap'))
        dst = tmp_path / 'cut'
        dst.mkdir()
        (dst / 'metadata.yaml').write_bytes((src / 'metadata.yaml').read_bytes())
    raw = data_file.read_bytes()
    target = dst if fmt == 'ros1' else dst / data_file.name
    target.write_bytes(raw[:len(raw) // 2])
    with pytest.raises(BagError, match='cannot read bag') as info:
        list(bags.read_events(dst, EV))
    assert str(dst) in str(info.value)
    # Garbage in place of the data: same clear error, never another exception type.
    target.write_bytes(bytes(np.random.default_rng(0).integers(0, 256, len(raw), np.uint8)))
    with pytest.raises(BagError, match='cannot read bag'):
        list(bags.iter_depth_images(dst, DEPTH))


def _ros2_bag_with(path: Path, topic: str, msgtype: str, blobs: list[bytes]) -> None:
    """A ROS 2 bag holding hand-made raw messages (to test malformed content)."""
    store = bags.dvs_typestore(2)
    with Writer2(path, version=8, storage_plugin=StoragePlugin.SQLITE3) as writer:
        conn = writer.add_connection(topic, msgtype, typestore=store)
        for k, blob in enumerate(blobs):
            writer.write(conn, BASE + k, blob)


def test_malformed_event_message_names_bag_topic_and_time(tmp_path):
    good = wire.encode_cdr_event_array(make_messages(4, 4)[3][1])
    path = tmp_path / 'bad_events'
    _ros2_bag_with(path, EV, bags.EVENT_ARRAY_TYPE, [good, good[:-5]])
    gen = bags.iter_event_messages(path, EV)
    assert len(next(gen)[1].events) == 37
    with pytest.raises(BagError, match=rf'{path}: topic {EV} message recorded at {BASE + 1} ns: '
                                       'CDR dvs_msgs/EventArray: 37 events need'):
        next(gen)


def _image(store, height, width, encoding, bigendian, step, data):
    stamp = store.types['builtin_interfaces/msg/Time'](1, 2)
    header = store.types['std_msgs/msg/Header'](stamp, 'cam')
    return store.serialize_cdr(store.types[bags.IMAGE_TYPE](
        header, height, width, encoding, bigendian, step, np.frombuffer(data, np.uint8)),
        bags.IMAGE_TYPE)


def test_depth_image_checks_and_layouts(tmp_path):
    store = bags.dvs_typestore(2)
    depth = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
    padded = np.zeros((3, 6), np.float32)
    padded[:, :4] = depth
    good = [_image(store, 3, 4, '32FC1', 0, 16, depth.tobytes()),
            _image(store, 3, 4, '32FC1', 1, 16, depth.astype('>f4').tobytes()),
            _image(store, 3, 4, '32FC1', 0, 24, padded.tobytes())]   # row padding
    path = tmp_path / 'good_depth'
    _ros2_bag_with(path, DEPTH, bags.IMAGE_TYPE, good)
    for _, got in bags.iter_depth_images(path, DEPTH):
        np.testing.assert_array_equal(got, depth)
    cases = [(_image(store, 3, 4, '16UC1', 0, 8, bytes(24)), "encoding '16UC1'"),
             (_image(store, 3, 4, '32FC1', 0, 12, bytes(36)), 'step 12 is less than'),
             (_image(store, 3, 4, '32FC1', 0, 16, bytes(40)), 'data has 40 bytes, expected'),
             (_image(store, 0, 4, '32FC1', 0, 16, b''), 'empty image'),
             (good[0][:-9], 'cannot decode sensor_msgs/Image')]
    for k, (blob, problem) in enumerate(cases):
        path = tmp_path / f'bad_depth{k}'
        _ros2_bag_with(path, DEPTH, bags.IMAGE_TYPE, [blob])
        with pytest.raises(BagError, match=problem) as info:
            list(bags.iter_depth_images(path, DEPTH))
        assert str(path) in str(info.value) and DEPTH in str(info.value)


def test_writer_is_atomic_and_validates(tmp_path):
    msgs = make_messages(5, 3)
    target = tmp_path / 'out'
    with pytest.raises(RuntimeError):
        with EventBagWriter(target, 'sqlite3') as writer:
            writer.write_events(EV, *msgs[0])
            raise RuntimeError('interrupted')
    assert os.listdir(tmp_path) == []              # no partial bag, no temporary folder
    write_bag(target, 'mcap', msgs, [])
    with pytest.raises(BagError, match='exists already'):
        EventBagWriter(target, 'mcap')
    write_bag_over = EventBagWriter(target, 'sqlite3', overwrite=True)
    with write_bag_over as writer:
        writer.write_events(EV, *msgs[1])
    assert len(list(bags.iter_event_messages(target, EV))) == 1
    assert sorted(os.listdir(tmp_path)) == ['out']
    with pytest.raises(BagError, match='must end in .bag'):
        EventBagWriter(tmp_path / 'x.db', 'ros1')
    with pytest.raises(BagError, match='must not end in .bag'):
        EventBagWriter(tmp_path / 'x.bag', 'mcap')
    with pytest.raises(BagError, match='unknown bag format'):
        EventBagWriter(tmp_path / 'x', 'zip')
    with pytest.raises(BagError, match='parent folder'):
        EventBagWriter(tmp_path / 'missing' / 'x.bag', 'ros1')
    with EventBagWriter(tmp_path / 'y.bag', 'ros1') as writer:
        with pytest.raises(BagError, match='already has type'):
            writer.write_events(EV, *msgs[0])
            writer.write_depth(EV, BASE, BASE, np.zeros((2, 2), np.float32), 'f')
        with pytest.raises(BagError, match='negative record time'):
            writer.write_events(EV, -1, msgs[0][1])
        with pytest.raises(BagError, match='2-D'):
            writer.write_depth(DEPTH, BASE, BASE, np.zeros(4, np.float32), 'f')
        neg = EventArrayMsg(-NS_PER_S, 'f', 1, 1, Events.empty())
        with pytest.raises(BagError, match='representable'):
            writer.write_events(EV, BASE, neg)
    assert len(list(bags.iter_event_messages(tmp_path / 'y.bag', EV))) == 1


def test_messages_missing_against_the_index_are_reported(written, tmp_path):
    src = written[0]['sqlite3']
    dst = tmp_path / 'short'
    dst.mkdir()
    for item in src.iterdir():
        (dst / item.name).write_bytes(item.read_bytes())
    meta = (dst / 'metadata.yaml').read_text()
    assert meta.count('message_count: 12\n') == 1
    (dst / 'metadata.yaml').write_text(meta.replace('message_count: 12\n',
                                                    'message_count: 13\n'))
    with pytest.raises(BagError, match='read 12 messages but the bag index lists 13'):
        list(bags.read_events(dst, EV))


# ---------------------------------------------------------------- EventPacket topics

PK = '/left/events'


def packet_stream(count: int = 6):
    """libcaer_cmp EventPackets (record ns, message, events) of one camera, seq 0.."""
    from stereospike_ros.io.codecs import CODECS
    rng = np.random.default_rng(11)
    out = []
    for k in range(count):
        base = BASE + k * 1_000_000
        n = [0, 1, 50][k % 3]
        ev = Events(rng.integers(0, 346, n).astype(np.uint16),
                    rng.integers(0, 260, n).astype(np.uint16),
                    base + np.sort(rng.integers(0, 1000, n)) * 1000, rng.random(n) < 0.5)
        payload = np.frombuffer(CODECS['libcaer_cmp'].encode(ev, base), np.uint8)
        out.append((base + 2_000_000, wire.EventPacketMsg(base, 'left', 260, 346, k, base,
                                                          'libcaer_cmp', False, payload), ev))
    return out


@pytest.mark.parametrize('fmt, name', FMTS)
def test_event_packet_bags_round_trip(tmp_path, fmt, name):
    stream = packet_stream()
    path = tmp_path / name
    with EventBagWriter(path, fmt) as writer:
        for record_ns, msg, _ in stream:
            writer.write_packet(PK, record_ns, msg)
    assert bags.topic_types(path) == {PK: bags.EVENT_PACKET_TYPE}
    assert bags.topic_counts(path) == {PK: len(stream)}
    got = list(bags.iter_events(path, PK))
    assert [r for r, _, _ in got] == [r for r, _, _ in stream]
    for (_, events, decoded), (_, msg, want) in zip(got, stream):
        assert decoded.message.seq == msg.seq and decoded.message.encoding == 'libcaer_cmp'
        assert not decoded.problems
        for field in 'xytp':
            np.testing.assert_array_equal(getattr(events, field), getattr(want, field))
    counts: dict = {}
    chunks = list(bags.read_events(path, PK, chunk_messages=2, packet_counts=counts))
    assert sum(len(c) for c in chunks) == sum(len(e) for _, _, e in stream)
    assert counts['packets'] == len(stream) and counts['rejected_packets'] == 0
    raw = [r for _, _, r, _ in bags.iter_raw_messages(path, [PK])]
    want = [(wire.encode_ros1_event_packet if fmt == 'ros1' else wire.encode_cdr_event_packet)(m)
            for _, m, _ in stream]
    assert raw == want


def test_event_packet_definitions_and_hash_match_upstream(tmp_path):
    """The bag definitions are ros-event-camera/event_camera_msgs' EventPacket: the RIHS01 hash
    rosbags computes from upstream's text, and (when built here) the one rosidl generated."""
    upstream = ('# This message contains a packet of camera events\n\n'
                'std_msgs/Header header     # standard ROS header\n'
                'uint32 height     # image height\nuint32 width      # image width\n\n'
                'uint64 seq        # sequence number to detect lost messages\n'
                'uint64 time_base  # event ros time = time_base + decoded event_time\n'
                'string encoding   # the encoding scheme to use\n'
                'bool is_bigendian # true if machine stores in big endian format\n\n'
                'uint8[] events\n')
    store = get_typestore(Stores.ROS2_HUMBLE)
    store.register(get_types_from_msg(upstream, bags.EVENT_PACKET_TYPE))
    want = store.hash_rihs01(bags.EVENT_PACKET_TYPE)
    assert bags.dvs_typestore(2).hash_rihs01(bags.EVENT_PACKET_TYPE) == want
    ours = (ROOT / 'interfaces' / 'event_camera_msgs' / 'msg' / 'EventPacket.msg').read_text()
    mine = get_typestore(Stores.ROS2_HUMBLE)
    mine.register(get_types_from_msg(ours, bags.EVENT_PACKET_TYPE))
    assert mine.hash_rihs01(bags.EVENT_PACKET_TYPE) == want
    built = Path(sys.prefix) / 'share' / 'event_camera_msgs' / 'msg' / 'EventPacket.json'
    if built.is_file():
        hashes = {h['type_name']: h['hash_string']
                  for h in json.loads(built.read_text())['type_hashes']}
        assert hashes[bags.EVENT_PACKET_TYPE] == want
    path = tmp_path / 'pk'
    with EventBagWriter(path, 'sqlite3') as writer:
        writer.write_packet(PK, BASE, packet_stream(1)[0][1])
    with AnyReader([path]) as reader:
        assert reader.connections[0].digest == want


def test_event_packet_bad_packets_strict_and_counted(tmp_path):
    stream = packet_stream(4)
    _, msg, _ = stream[2]
    bad = wire.EventPacketMsg(msg.stamp_ns, msg.frame_id, msg.height, msg.width, msg.seq,
                              msg.time_base, 'evt21', False, msg.events)
    path = tmp_path / 'bad'
    with EventBagWriter(path, 'mcap') as writer:
        for k, (record_ns, m, _) in enumerate(stream):
            writer.write_packet(PK, record_ns, bad if k == 2 else m)
    with pytest.raises(BagError, match=r"bad.*topic /left/events message recorded at \d+ ns: "
                                       r"packet seq 2 rejected: unknown encoding 'evt21'"):
        list(bags.iter_events(path, PK))
    got = list(bags.iter_events(path, PK, strict=False))
    assert len(got) == 4 and got[2][2].rejected and len(got[2][1]) == 0
    assert got[2][2].counts['unknown_encoding'] == 1
    with pytest.raises(BagError, match='rejected'):
        list(bags.read_events(path, PK))


def test_legacy_event_array_msgs_bag_reads_as_event_packet(tmp_path):
    """event_array_msgs/EventArray (EventPacket's predecessor, e.g. the shared mono recording)
    is read with the same codecs."""
    stream = packet_stream(3)
    path = tmp_path / 'legacy'
    store = bags.dvs_typestore(2)
    with Writer2(path, version=8, storage_plugin=StoragePlugin.SQLITE3) as writer:
        conn = writer.add_connection(PK, bags.LEGACY_PACKET_TYPE, typestore=store)
        for record_ns, msg, _ in stream:
            writer.write(conn, record_ns, wire.encode_cdr_event_packet(msg))
    got = list(bags.iter_events(path, PK))
    for (_, events, _), (_, _, want) in zip(got, stream):
        np.testing.assert_array_equal(events.t, want.t)
