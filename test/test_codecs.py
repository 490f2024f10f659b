"""EventPacket codecs: hand-built packets from the format rules, every truncation point, rollover
inside a packet, round trips through the encoders, the per-event loops as oracle on random word
streams, the per-stream decoder's checks, and the real ``mono`` recording's published checksums."""
import struct

import numpy as np
import pytest

from stereospike_ros.io import bags, wire
from stereospike_ros.io.codecs import CODECS, COUNT_KEYS, ENCODINGS, EventPacketDecoder
from stereospike_ros.io.codecs.base import new_counts
from stereospike_ros.io.codecs.loops import LOOPS
from stereospike_ros.io.events import Events
from support.data import MONO_BAG, MONO_SUMS, MONO_TOPIC, burst_events

TB = 1_700_000_000_123_456_000          # a time_base (ns)
W, H = 346, 260


def decode(encoding, payload, time_base=TB, width=W, height=H, codec=None):
    """(events, counts) of one payload (bytes) through a fresh or the given codec."""
    counts = new_counts()
    codec = codec or CODECS[encoding]()
    events = codec.decode(np.frombuffer(bytes(payload), np.uint8), time_base, width, height,
                          counts)
    return events, counts


def rows(events):
    """Events as a list of (x, y, t, p) tuples (small test cases only)."""
    return list(zip(events.x.tolist(), events.y.tolist(), events.t.tolist(),
                    events.p.astype(int).tolist()))


def assert_same(a, b):
    assert len(a) == len(b)
    for name in 'xytp':
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.x.dtype == np.uint16 and a.y.dtype == np.uint16
    assert a.t.dtype == np.int64 and a.p.dtype == bool


def words(*items):
    """Little-endian 16-bit words from (code, value) pairs."""
    return b''.join(struct.pack('<H', code << 12 | value) for code, value in items)


def random_events(n, seed, width=W, height=H, start_us=0, span_us=20_000):
    rng = np.random.default_rng(seed)
    us = start_us + np.sort(rng.integers(0, span_us, n))
    return Events(rng.integers(0, width, n).astype(np.uint16),
                  rng.integers(0, height, n).astype(np.uint16), us * 1000,
                  rng.random(n) < 0.5)


# ---------------------------------------------------------------- hand-built packets: mono

def test_mono_hand_built():
    payload = b''.join(struct.pack('<Q', t | x << 32 | y << 48 | p << 63)
                       for t, x, y, p in [(0, 0, 0, 0), (7, 345, 259, 1),
                                          (0xFFFFFFFF, 1, 0x7FFF, 1), (5, 346, 2, 0)])
    events, counts = decode('mono', payload)
    assert rows(events) == [(0, 0, TB, 0), (345, 259, TB + 7, 1)]
    assert counts['beyond_sensor'] == 2            # y 32767 and x 346 lie beyond 346 x 260
    events, counts = decode('mono', payload, width=1 << 16, height=1 << 15)
    assert rows(events)[2:] == [(1, 0x7FFF, TB + 0xFFFFFFFF, 1), (346, 2, TB + 5, 0)]


# ---------------------------------------------------------------- hand-built packets: libcaer

def caer(x, y, p, ts, valid=1):
    return struct.pack('<Ii', x << 17 | y << 2 | p << 1 | valid, ts)


def test_libcaer_hand_built_and_rollover_inside_packet():
    top = (1 << 31) - 10
    payload = (caer(3, 4, 1, 100) + caer(345, 259, 0, top) + caer(5, 6, 1, 2) +
               caer(7, 8, 0, 2) + caer(9, 10, 1, 1) + caer(11, 12, 0, 0, valid=0))
    events, counts = decode('libcaer', payload)
    roll = (1 << 31) * 1000
    assert rows(events) == [(3, 4, TB + 100_000, 1), (345, 259, TB + top * 1000, 0),
                            (5, 6, TB + roll + 2000, 1), (7, 8, TB + roll + 2000, 0),
                            (9, 10, TB + 2 * roll + 1000, 1), (11, 12, TB + 3 * roll, 0)]
    assert not any(counts[k] for k in COUNT_KEYS)
    # the rollover is per packet, as in the reference: the next packet starts from time_base
    events, _ = decode('libcaer', caer(1, 1, 1, 2))
    assert events.t.tolist() == [TB + 2000]


def test_libcaer_negative_timestamps_and_geometry():
    payload = caer(1, 2, 1, 50) + caer(3, 4, 0, -5) + caer(5, 6, 1, 7) + caer(400, 2, 1, 60)
    events, counts = decode('libcaer', payload)
    # -5 as uint32 is the largest time yet: the next event (7) counts as a rollover
    assert rows(events) == [(1, 2, TB + 50_000, 1), (5, 6, TB + (1 << 31) * 1000 + 7000, 1)]
    assert counts['bad_time'] == 1 and counts['beyond_sensor'] == 1


# ---------------------------------------------------------------- hand-built packets: libcaer_cmp

CMP = dict(TIME_HIGH=0, TIME_LOW=1, ADDR_X=2, ADDR_Y=3, VECT_BASE_Y=4, VECT_8=5)


def test_libcaer_cmp_hand_built():
    c = CMP
    payload = words((c['ADDR_X'], 10), (c['ADDR_Y'], 1 << 11 | 20),        # (10, 20) ON t0
                    (c['TIME_LOW'], 5), (c['ADDR_Y'], 21),                 # (10, 21) OFF 5 us
                    (c['TIME_HIGH'], 2), (c['ADDR_X'], 11),                # low 5 stays
                    (c['VECT_BASE_Y'], 1 << 11 | 40), (c['VECT_8'], 0b10000101),
                    (c['VECT_8'], 0b1),                                    # base 48 now
                    (7, 0x123),                                            # unknown: skipped
                    (c['TIME_LOW'], 4095), (c['ADDR_Y'], 1 << 11 | 259))
    events, counts = decode('libcaer_cmp', payload)
    t2 = TB + ((2 << 12) | 5) * 1000
    assert rows(events) == [
        (10, 20, TB, 1), (10, 21, TB + 5000, 0), (11, 40, t2, 1), (11, 42, t2, 1),
        (11, 47, t2, 1), (11, 48, t2, 1), (11, 259, TB + ((2 << 12) | 4095) * 1000, 1)]
    assert counts['unknown_words'] == 1 and counts['beyond_sensor'] == 0
    # x, base y and polarity carry over to the next packet; time restarts at time_base
    codec = CMP_CODEC = CODECS['libcaer_cmp']()
    decode('libcaer_cmp', payload, codec=codec)
    events, _ = decode('libcaer_cmp', words((c['ADDR_Y'], 7), (c['VECT_8'], 0b11)), codec=codec)
    assert rows(events) == [(11, 7, TB, 0), (11, 56, TB, 1), (11, 57, TB, 1)]
    assert CMP_CODEC.base_y == 64
    # beyond the sensor (x >= width or y >= height): dropped and counted
    events, counts = decode('libcaer_cmp', words((c['ADDR_X'], 346), (c['ADDR_Y'], 3),
                                                 (c['ADDR_X'], 3), (c['ADDR_Y'], 260),
                                                 (c['ADDR_Y'], 259)))
    assert rows(events) == [(3, 259, TB, 0)] and counts['beyond_sensor'] == 2


# ---------------------------------------------------------------- hand-built packets: evt3

E3 = dict(ADDR_Y=0, ADDR_X=2, VECT_BASE_X=3, VECT_12=4, VECT_8=5, TIME_LOW=6, CONTINUED_4=7,
          TIME_HIGH=8, PADDING=9, EXT_TRIGGER=10, OTHERS=14, CONTINUED_12=15)


def test_evt3_hand_built():
    e = E3
    payload = words((e['ADDR_Y'], 5), (e['ADDR_X'], 9),          # before any time: skipped
                    (e['VECT_8'], 0b11), (e['TIME_LOW'], 3),
                    (e['TIME_HIGH'], 1), (e['ADDR_X'], 1),       # still no time: skipped
                    (e['TIME_LOW'], 7),                          # time valid from here
                    (e['ADDR_X'], 1 << 11 | 100),                # y still 0: ADDR_Y was skipped
                    (e['ADDR_Y'], 1 << 11 | 30),                 # bit 11 (system type) ignored
                    (e['ADDR_X'], 101), (e['EXT_TRIGGER'], 1),
                    (e['OTHERS'], 0x19), (e['CONTINUED_12'], 1), (e['CONTINUED_4'], 1),
                    (e['PADDING'], 0),
                    (e['VECT_BASE_X'], 1 << 11 | 200), (e['VECT_12'], 1 << 11 | 1),
                    (e['VECT_8'], 0b1000_0001), (e['TIME_LOW'], 8),
                    (e['ADDR_X'], 1 << 11 | 1279), (e['ADDR_X'], 1280))
    events, counts = decode('evt3', payload, width=1280, height=720)
    t = ((1 << 12) | 7) * 1000                                  # sensor time: no time_base
    assert rows(events) == [(100, 0, t, 1), (101, 30, t, 0), (200, 30, t, 1), (211, 30, t, 1),
                            (212, 30, t, 1), (219, 30, t, 1),
                            (1279, 30, t + 1000, 1)]
    assert counts['no_time'] == 4 and counts['triggers'] == 1 and counts['beyond_sensor'] == 1


def test_evt3_rollover_jitter_and_undefined_codes():
    e = E3
    codec = CODECS['evt3']()
    payload = words((e['TIME_HIGH'], 4095), (e['TIME_LOW'], 1), (e['ADDR_X'], 1),
                    (e['TIME_HIGH'], 4090), (e['ADDR_X'], 2),     # 5 back: jitter, no rollover
                    (e['TIME_HIGH'], 3), (e['ADDR_X'], 3),        # far back: rollover
                    (e['TIME_LOW'], 2), (11, 0), (e['ADDR_X'], 4))  # code 11: rest dropped
    events, counts = decode('evt3', payload, codec=codec, width=1280, height=720)
    assert events.t.tolist() == [((4095 << 12) | 1) * 1000, ((4090 << 12) | 1) * 1000,
                                 ((1 << 24) | (3 << 12) | 1) * 1000]
    assert counts['unknown_words'] == 2
    # the state (time with rollover, low, y) carries into the next packet
    events, _ = decode('evt3', words((e['ADDR_X'], 5)), codec=codec, width=1280, height=720)
    assert events.t.tolist() == [((1 << 24) | (3 << 12) | 2) * 1000]


# ---------------------------------------------------------------- truncation, round trips

def encoded(encoding, events, time_base=TB):
    if encoding == 'evt3':
        return CODECS['evt3'].encode(events)
    shifted = Events(events.x, events.y, events.t + time_base, events.p)
    return CODECS[encoding].encode(shifted, time_base)


@pytest.mark.parametrize('encoding', ENCODINGS)
def test_every_truncation_point(encoding):
    events = burst_events(40, 3, by_row=encoding == 'evt3')
    payload = encoded(encoding, events)
    tb = 0 if encoding == 'evt3' else TB
    full, _ = decode(encoding, payload, tb)
    unit = CODECS[encoding].unit
    for cut in range(len(payload) + 1):
        part, counts = decode(encoding, payload[:cut], tb)
        assert counts['truncated_bytes'] == cut % unit
        assert counts['truncated_packets'] == (cut % unit > 0)
        assert_same(part, full[:len(part)])                  # a prefix, never garbage
    assert len(part) == len(full)


@pytest.mark.parametrize('encoding, vectors', [('mono', None), ('libcaer', None),
                                               ('libcaer_cmp', True), ('libcaer_cmp', False),
                                               ('evt3', True), ('evt3', False)])
def test_round_trip_through_encoders(encoding, vectors):
    kw = {} if vectors is None else {'vectors': vectors}
    for seed, events in enumerate((random_events(500, 1), burst_events(600, 2),
                                   burst_events(600, 3, by_row=True), random_events(0, 4),
                                   random_events(1, 5))):
        tb = 0 if encoding == 'evt3' else TB
        if encoding == 'evt3':
            payload = CODECS[encoding].encode(events, **kw)
        else:
            payload = CODECS[encoding].encode(
                Events(events.x, events.y, events.t + tb, events.p), tb, **kw)
        got, counts = decode(encoding, payload, tb)
        want = events if encoding == 'evt3' else Events(events.x, events.y, events.t + tb,
                                                        events.p)
        assert_same(got, want)
        assert not any(counts.values())


def test_multi_packet_streams_with_rollovers():
    # evt3: a stream across the 2**24 us rollover, one packet per 3 ms
    rng = np.random.default_rng(9)
    us = np.sort(rng.integers((1 << 24) - 20_000, (1 << 24) + 20_000, 3000))
    events = Events(rng.integers(0, 1280, 3000).astype(np.uint16),
                    rng.integers(0, 720, 3000).astype(np.uint16), us * 1000, rng.random(3000) < .5)
    codec = CODECS['evt3']()
    first = Events(*(np.zeros(1, d) for d in (np.uint16, np.uint16, np.int64, bool)))
    decode('evt3', CODECS['evt3'].encode(first), codec=codec, width=1280, height=720)
    got = []
    for lo in range(int(us[0]), int(us[-1]) + 1, 3000):
        part = events.time_slice(lo * 1000, (lo + 3000) * 1000)
        got.append(decode('evt3', CODECS['evt3'].encode(part), codec=codec, width=1280,
                          height=720)[0])
    # the stream started at 0, then jumped: one TIME_HIGH far back from 4095 bumps the rollover
    assert_same(Events.concatenate(got), events)
    # libcaer: a packet spanning 2**31 us twice
    us = np.array([5, (1 << 31) - 1, (1 << 31) + 3, (2 << 31) + 1, (2 << 31) + 1], np.int64)
    events = Events(*(np.arange(5, dtype=np.uint16),) * 2, TB + us * 1000, np.ones(5, bool))
    got, _ = decode('libcaer', CODECS['libcaer'].encode(events, TB))
    assert_same(got, events)


# ---------------------------------------------------------------- the per-event loops as oracle

@pytest.mark.parametrize('encoding', ENCODINGS)
def test_random_streams_match_the_per_event_loops(encoding):
    """Random words (every code, undefined ones too), 4 packets per stream: same events, same
    counters and the same state as the plain loop written from the format rules."""
    rng = np.random.default_rng(sum(map(ord, encoding)))
    for _ in range(150):
        fast, slow = CODECS[encoding](), LOOPS[encoding]()
        for _ in range(4):
            n = int(rng.integers(0, 60 if rng.random() < 0.9 else 500))
            if encoding in ('mono', 'libcaer'):
                payload = rng.integers(0, 256, 8 * n + int(rng.integers(0, 3)), np.uint8)
                if encoding == 'libcaer' and rng.random() < 0.7:
                    payload[3::8] &= 0x7F           # mostly valid (non-negative) timestamps
            else:
                pool = (range(16) if rng.random() < 0.3 else
                        [0, 2, 3, 4, 5, 6, 8, 10, 14] if encoding == 'evt3' else range(6))
                codes = rng.choice(list(pool), n).astype(np.uint16)
                data = (codes << 12 | rng.integers(0, 4096, n).astype(np.uint16))
                payload = np.frombuffer(data.astype('<u2').tobytes() +
                                        bytes(int(rng.integers(0, 2))), np.uint8)
            width, height = int(rng.integers(1, 3000)), int(rng.integers(1, 3000))
            tb = int(rng.integers(0, 1 << 40))
            a, b = new_counts(), new_counts()
            got = fast.decode(payload, tb, width, height, a)
            want = slow.decode(payload, tb, width, height, b)
            assert_same(got, want)
            assert a == b


# ---------------------------------------------------------------- the per-stream decoder

def packet(encoding='libcaer', seq=0, time_base=TB, width=W, height=H, events=None,
           bigendian=False, payload=None, name=None):
    """An EventPacket of ``events`` (5 random ones by default) in ``encoding``; ``name``
    overrides the message's encoding field."""
    if payload is None:
        payload = encoded(encoding, events if events is not None else random_events(5, seq),
                          time_base)
    return wire.EventPacketMsg(time_base, 'cam', height, width, seq, time_base,
                               name or encoding, bigendian, np.frombuffer(payload, np.uint8))


def test_stream_decoder_counts_and_rejects_bad_packets():
    dec = EventPacketDecoder()
    ok = dec.decode(packet(seq=0))
    assert len(ok.events) == 5 and not ok.problems and not ok.rejected
    cases = [(packet(seq=1, name='evt4'), 'unknown_encoding', "'evt4'"),
             (packet(seq=2, bigendian=True), 'big_endian', 'is_bigendian'),
             (packet(seq=3, width=640, height=480), 'size_changes', '640x480 differs'),
             (packet(seq=4, time_base=2 ** 63 - 10), 'time_overflow', 'int64')]
    for msg, key, text in cases:
        got = dec.decode(msg)
        assert got.rejected and got.counts[key] == 1 and len(got.events) == 0
        assert text in got.problems[-1]
    assert dec.counts['rejected_packets'] == 4 and dec.counts['packets'] == 5
    # seq gaps and seq going back; time_base going back flags a time reset
    got = dec.decode(packet(seq=9, time_base=TB + 10))
    assert got.counts['seq_gaps'] == 1 and got.counts['seq_missing'] == 4 and not got.time_reset
    got = dec.decode(packet(seq=10, time_base=TB))
    assert got.counts['time_base_back'] == 1 and got.time_reset
    got = dec.decode(packet(seq=3))
    assert got.counts['seq_back'] == 1 and got.time_reset
    # a truncated payload and events beyond the sensor: counted drops, the rest decoded
    payload = encoded('libcaer', random_events(4, 1))
    got = dec.decode(packet(seq=4, payload=payload[:-3]))
    assert len(got.events) == 3 and got.counts['truncated_bytes'] == 5 and got.problems
    wide = Events(np.array([1, 400], np.uint16), np.array([2, 3], np.uint16),
                  np.array([0, 1000], np.int64), np.array([True, False]))
    got = dec.decode(packet(seq=5, events=wide))
    assert len(got.events) == 1 and got.counts['beyond_sensor'] == 1 and got.problems
    # malformed bytes never raise
    got = dec.decode_bytes(b'\x00\x01\x00\x00\x01')
    assert got.rejected and got.counts['malformed'] == 1
    # an encoding change restarts the codec state and is counted
    got = dec.decode(packet('mono', seq=6, events=random_events(3, 2)))
    assert got.counts['encoding_changes'] == 1 and len(got.events) == 3
    assert dec.counts['packets'] == 12 and dec.counts['events'] == 5 + 5 + 5 + 5 + 3 + 1 + 3


def test_stream_decoder_pinned_size_and_empty_size():
    dec = EventPacketDecoder(width=346, height=260)
    assert dec.decode(packet(width=640, height=480)).counts['size_changes'] == 1
    assert not dec.decode(packet(seq=1)).rejected
    assert EventPacketDecoder().decode(packet(width=0, height=0)).rejected


# ---------------------------------------------------------------- the real mono recording

def test_real_mono_recording_checksums():
    if not MONO_BAG.is_dir():
        pytest.skip(f'{MONO_BAG} not present')
    sums = dict.fromkeys('txyp', 0)
    n = 0
    for _, events, decoded in bags.iter_events(MONO_BAG, MONO_TOPIC):
        assert decoded.message.encoding == 'mono' and not decoded.problems
        n += len(events)
        for name in 'txyp':
            sums[name] += int(getattr(events, name).sum(dtype=np.int64))
    assert n == 100 and sums == MONO_SUMS
    # the wire codec reproduces the recorded CDR bytes exactly
    for _, _, raw, fmt in bags.iter_raw_messages(MONO_BAG, [MONO_TOPIC]):
        assert fmt == 'cdr'
        assert wire.encode_cdr_event_packet(wire.decode_cdr_event_packet(raw)) == raw
