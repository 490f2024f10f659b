"""Event message bytes <-> Python with numpy views over the raw buffer: dvs_msgs/EventArray
and event_camera_msgs/EventPacket, ROS 2 CDR and ROS 1.

Decoding never builds a Python object per event: the fixed-layout EventArray records are read
through structured, strided numpy views (ROS 1: 13 packed bytes; ROS 2 CDR: element 0 occupies
13 bytes, later elements sit at a 16-byte pitch); an EventPacket's encoded payload is returned as
a uint8 view of the message buffer for :mod:`stereospike_ros.io.codecs` to decode. Every length
is checked first, so no view reaches past the buffer; malformed bytes raise :class:`WireError`
with a precise message.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Union

import numpy as np

from stereospike_ros.io.errors import InputError
from stereospike_ros.io.events import NS_PER_S, Events

Buffer = Union[bytes, bytearray, memoryview]

#: CDR little-endian encapsulation (the ROS 2 default); 00 00 would be big-endian CDR.
CDR_LE_HEADER = b'\x00\x01\x00\x00'
#: At most this many bytes may follow the last event of a CDR message (end padding of some RMWs).
CDR_MAX_TRAILING = 7

_U32 = struct.Struct('<I')
_ROS1_HEAD = struct.Struct('<IIII')    # seq, stamp sec, stamp nsec, frame_id length
_DIMS = struct.Struct('<III')          # height, width, event count
_CDR_HEAD = struct.Struct('<iII')      # stamp sec, stamp nanosec, frame_id length (incl. NUL)
_CDR_FIRST = struct.Struct('<HHiIB')   # CDR element 0: x, y, sec, nanosec, polarity

_FIELDS = ['x', 'y', 'sec', 'nsec', 'p']
#: ROS 1 event: x u16, y u16, ts (sec u32, nsec u32), polarity u8, packed.
ROS1_EVENT = np.dtype({'names': _FIELDS, 'formats': ['<u2', '<u2', '<u4', '<u4', 'u1'],
                       'offsets': [0, 2, 4, 8, 12], 'itemsize': 13})
#: CDR element 0 (starts 4-aligned): x@0, y@2, sec@4, nanosec@8, polarity@12.
CDR_FIRST_EVENT = np.dtype({'names': _FIELDS, 'formats': ['<u2', '<u2', '<i4', '<u4', 'u1'],
                            'offsets': [0, 2, 4, 8, 12], 'itemsize': 13})
#: CDR elements 1.. (start at 2 mod 4, 16-byte pitch): x@0, y@2, sec@6, nanosec@10, polarity@14.
CDR_LATER_EVENT = np.dtype({'names': _FIELDS, 'formats': ['<u2', '<u2', '<i4', '<u4', 'u1'],
                            'offsets': [0, 2, 6, 10, 14], 'itemsize': 15})
CDR_PITCH = 16
CDR_FIRST_SIZE = 13
#: Offset of element 1 from element 0 (13 bytes, then x is 2-aligned).
CDR_SECOND_OFFSET = 14

_I32_MIN, _I32_MAX, _U32_MAX = -2 ** 31, 2 ** 31 - 1, 2 ** 32 - 1


class WireError(InputError):
    """Truncated or malformed message bytes (the message says what and where)."""


@dataclass(frozen=True)
class EventArrayMsg:
    """One dvs_msgs/EventArray: header stamp (int ns), frame id, sensor size, events, ROS 1 seq."""

    stamp_ns: int
    frame_id: str
    height: int
    width: int
    events: Events
    seq: int = 0


def cdr_events_size(count: int) -> int:
    """Bytes the CDR event sequence elements occupy (after the u32 count) for ``count`` events."""
    return 0 if count <= 0 else CDR_FIRST_SIZE + CDR_PITCH * (count - 1)


def _as_bytes_view(data: Buffer, what: str) -> memoryview:
    """A flat unsigned-byte memoryview of ``data`` (no copy)."""
    try:
        view = memoryview(data)
    except TypeError:
        raise WireError(f'{what}: expected bytes-like data, got {type(data).__name__}') from None
    if view.format != 'B' or view.ndim != 1:
        if not view.c_contiguous:
            raise WireError(f'{what}: buffer is not contiguous')
        view = view.cast('B')
    return view


def _need(buf: memoryview, pos: int, size: int, what: str, field: str) -> None:
    """Raise unless ``size`` bytes starting at ``pos`` lie inside the buffer."""
    if pos + size > len(buf):
        raise WireError(f'{what}: truncated at {field}: needs {size} bytes at offset {pos}, '
                        f'buffer has {len(buf)} bytes')


def _events_fit(buf: memoryview, pos: int, size: int, trailing: int, what: str, needs: str,
                after: str, kind: str, full_kind: str) -> None:
    """Raise unless the ``size`` event bytes at ``pos`` end the buffer, give or take at most
    ``trailing`` bytes (padding a serialiser may add): truncation or foreign bytes otherwise."""
    remain = len(buf) - pos
    if size > remain:
        raise WireError(f'{what}: {needs} but only {remain} remain '
                        f'(message of {len(buf)} bytes is truncated or not {kind})')
    if remain - size > trailing:
        raise WireError(f'{what}: {remain - size} unexpected bytes after {after} '
                        f'(message of {len(buf)} bytes is not {full_kind})')


def _decode_frame_id(raw: memoryview, what: str) -> str:
    try:
        return str(raw, 'utf-8')
    except UnicodeDecodeError as err:
        raise WireError(f'{what}: header.frame_id is not valid UTF-8 ({err.reason} at byte '
                        f'{err.start})') from None


def _fill_events(events: tuple[np.ndarray, ...], lo: int, rec: np.ndarray) -> None:
    """Copy x, y, time (int64 ns) and polarity of record view ``rec`` into ``events[lo:]``."""
    x, y, t, p = events
    hi = lo + len(rec)
    x[lo:hi] = rec['x']
    y[lo:hi] = rec['y']
    tt = t[lo:hi]
    np.multiply(rec['sec'], NS_PER_S, out=tt, dtype=np.int64)
    tt += rec['nsec']
    # polarity != 0 -> ON; min(byte, 1) writes valid 0/1 bools at half the cost of != 0
    np.minimum(rec['p'], 1, out=p[lo:hi].view(np.uint8))


def _new_events(count: int) -> tuple[np.ndarray, ...]:
    return (np.empty(count, np.uint16), np.empty(count, np.uint16), np.empty(count, np.int64),
            np.empty(count, bool))


def _check_cdr_header(buf: memoryview, what: str) -> None:
    """Accept only the little-endian CDR encapsulation header (00 01, options 00 0x)."""
    _need(buf, 0, 4, what, 'encapsulation header')
    kind = bytes(buf[0:2])
    if kind == b'\x00\x00':
        raise WireError(f'{what}: big-endian CDR (encapsulation 00 00) is not supported')
    if kind != b'\x00\x01' or buf[2] != 0 or buf[3] & 0xFC:
        raise WireError(f'{what}: bad encapsulation header {bytes(buf[0:4]).hex(" ")}, '
                        'expected 00 01 00 00 (little-endian CDR)')


def decode_cdr_event_array(data: Buffer) -> EventArrayMsg:
    """Decode a ROS 2 CDR dvs_msgs/EventArray (with its 4-byte encapsulation header)."""
    what = 'CDR dvs_msgs/EventArray'
    buf = _as_bytes_view(data, what)
    _check_cdr_header(buf, what)
    # Alignment is counted after the 4-byte header, which is itself a multiple of 4 and 8.
    _need(buf, 4, _CDR_HEAD.size, what, 'header')
    sec, nsec, slen = _CDR_HEAD.unpack_from(buf, 4)
    pos = 4 + _CDR_HEAD.size
    if slen > len(buf) - pos:
        raise WireError(f'{what}: header.frame_id length {slen} at offset {pos - 4} goes beyond '
                        f'the buffer ({len(buf) - pos} bytes remain)')
    if slen == 0:
        frame_id = ''
    else:
        if buf[pos + slen - 1] != 0:
            raise WireError(f'{what}: header.frame_id of length {slen} is not NUL-terminated')
        frame_id = _decode_frame_id(buf[pos:pos + slen - 1], what)
    pos = (pos + slen + 3) & ~3
    _need(buf, pos, _DIMS.size, what, 'height/width/events length')
    height, width, count = _DIMS.unpack_from(buf, pos)
    pos += _DIMS.size
    size = cdr_events_size(count)
    _events_fit(buf, pos, size, CDR_MAX_TRAILING, what, f'{count} events need {size} bytes',
                f'{count} events', 'an EventArray', 'a dvs_msgs/EventArray')
    arrays = _new_events(count)
    if count:
        # element 0 has its own layout: read it with struct, the rest through one strided view
        ex, ey, esec, ensec, epol = _CDR_FIRST.unpack_from(buf, pos)
        arrays[0][0], arrays[1][0] = ex, ey
        arrays[2][0], arrays[3][0] = esec * NS_PER_S + ensec, epol != 0
    if count > 1:
        _fill_events(arrays, 1, np.ndarray((count - 1,), CDR_LATER_EVENT, buffer=buf,
                                           offset=pos + CDR_SECOND_OFFSET, strides=(CDR_PITCH,)))
    return EventArrayMsg(sec * NS_PER_S + nsec, frame_id, height, width, Events(*arrays))


def decode_ros1_event_array(data: Buffer) -> EventArrayMsg:
    """Decode a ROS 1 serialised dvs_msgs/EventArray (as stored in a ROS 1 bag)."""
    what = 'ROS 1 dvs_msgs/EventArray'
    buf = _as_bytes_view(data, what)
    _need(buf, 0, _ROS1_HEAD.size, what, 'header')
    seq, sec, nsec, slen = _ROS1_HEAD.unpack_from(buf, 0)
    pos = _ROS1_HEAD.size
    if slen > len(buf) - pos:
        raise WireError(f'{what}: header.frame_id length {slen} at offset {pos - 4} goes beyond '
                        f'the buffer ({len(buf) - pos} bytes remain)')
    frame_id = _decode_frame_id(buf[pos:pos + slen], what)
    pos += slen
    _need(buf, pos, _DIMS.size, what, 'height/width/events length')
    height, width, count = _DIMS.unpack_from(buf, pos)
    pos += _DIMS.size
    size = count * ROS1_EVENT.itemsize
    _events_fit(buf, pos, size, 0, what, f'{count} events need {size} bytes',
                f'{count} events', 'an EventArray', 'a dvs_msgs/EventArray')
    arrays = _new_events(count)
    _fill_events(arrays, 0, np.frombuffer(buf, ROS1_EVENT, count, pos))
    return EventArrayMsg(sec * NS_PER_S + nsec, frame_id, height, width, Events(*arrays), seq)


def _split_stamp(stamp_ns: int, lo: int, hi: int, what: str) -> tuple[int, int]:
    sec, nsec = divmod(int(stamp_ns), NS_PER_S)
    if not lo <= sec <= hi:
        raise WireError(f'{what}: header stamp {stamp_ns} ns is outside the representable '
                        f'seconds range [{lo}, {hi}]')
    return sec, nsec


def _check_u32(value: int, name: str, what: str) -> int:
    value = int(value)
    if not 0 <= value <= _U32_MAX:
        raise WireError(f'{what}: {name} {value} does not fit uint32')
    return value


def _event_fields(events: Events, lo: int, hi: int, what: str) -> tuple[np.ndarray, ...]:
    """Range-checked x, y (uint16), sec, nsec, polarity (uint8) arrays of ``events``."""
    out = []
    for name in ('x', 'y'):
        arr = np.asarray(getattr(events, name))
        if arr.dtype != np.uint16:
            if arr.size and (arr.min() < 0 or arr.max() > 0xFFFF):
                raise WireError(f'{what}: event {name} outside uint16')
            arr = arr.astype(np.uint16)
        out.append(arr)
    sec, nsec = np.divmod(np.asarray(events.t, dtype=np.int64), NS_PER_S)
    if sec.size and (sec.min() < lo or sec.max() > hi):
        raise WireError(f'{what}: event times outside the representable seconds range '
                        f'[{lo}, {hi}]')
    out += [sec, nsec, np.asarray(events.p).astype(np.uint8)]
    return tuple(out)


def _fill(records: np.ndarray, fields: tuple[np.ndarray, ...], lo: int, hi: int) -> None:
    for name, values in zip(_FIELDS, fields):
        records[name] = values[lo:hi]


def encode_cdr_event_array(msg: EventArrayMsg) -> bytes:
    """Serialise ``msg`` as ROS 2 CDR (little endian, with encapsulation header; zero padding)."""
    what = 'encoding CDR dvs_msgs/EventArray'
    sec, nsec = _split_stamp(msg.stamp_ns, _I32_MIN, _I32_MAX, what)
    frame = msg.frame_id.encode('utf-8') + b'\x00'
    count = len(msg.events)
    fields = _event_fields(msg.events, _I32_MIN, _I32_MAX, what)
    head_end = (4 + _CDR_HEAD.size + len(frame) + 3) & ~3
    pos = head_end + _DIMS.size
    out = bytearray(pos + cdr_events_size(count))
    out[0:4] = CDR_LE_HEADER
    _CDR_HEAD.pack_into(out, 4, sec, nsec, len(frame))
    out[4 + _CDR_HEAD.size:4 + _CDR_HEAD.size + len(frame)] = frame
    _DIMS.pack_into(out, head_end, _check_u32(msg.height, 'height', what),
                    _check_u32(msg.width, 'width', what), count)
    if count:
        _fill(np.frombuffer(out, CDR_FIRST_EVENT, 1, pos), fields, 0, 1)
    if count > 1:
        later = np.ndarray((count - 1,), CDR_LATER_EVENT, buffer=out,
                           offset=pos + CDR_SECOND_OFFSET, strides=(CDR_PITCH,))
        _fill(later, fields, 1, count)
    return bytes(out)


def encode_ros1_event_array(msg: EventArrayMsg) -> bytes:
    """Serialise ``msg`` in the ROS 1 wire format (``time ts``: unsigned seconds)."""
    what = 'encoding ROS 1 dvs_msgs/EventArray'
    sec, nsec = _split_stamp(msg.stamp_ns, 0, _U32_MAX, what)
    frame = msg.frame_id.encode('utf-8')
    count = len(msg.events)
    fields = _event_fields(msg.events, 0, _U32_MAX, what)
    pos = _ROS1_HEAD.size + len(frame) + _DIMS.size
    out = bytearray(pos + count * ROS1_EVENT.itemsize)
    _ROS1_HEAD.pack_into(out, 0, _check_u32(msg.seq, 'seq', what), sec, nsec, len(frame))
    out[_ROS1_HEAD.size:_ROS1_HEAD.size + len(frame)] = frame
    _DIMS.pack_into(out, _ROS1_HEAD.size + len(frame), _check_u32(msg.height, 'height', what),
                    _check_u32(msg.width, 'width', what), count)
    _fill(np.frombuffer(out, ROS1_EVENT, count, pos), fields, 0, count)
    return bytes(out)


def ros1_to_cdr_event_array(data: Buffer) -> bytes:
    """Re-serialise ROS 1 EventArray bytes (e.g. from an MVSEC bag) as ROS 2 CDR bytes."""
    return encode_cdr_event_array(decode_ros1_event_array(data))


# ---- event_camera_msgs/EventPacket (also event_array_msgs/EventArray, its identical predecessor)

_U64X2 = struct.Struct('<QQ')          # seq, time_base
_DIMS2 = struct.Struct('<II')          # height, width


@dataclass(frozen=True)
class EventPacketMsg:
    """One event_camera_msgs/EventPacket; ``events`` is the encoded payload (uint8 array, a
    view of the message bytes when decoded), ``header_seq`` the ROS 1 header's seq."""

    stamp_ns: int
    frame_id: str
    height: int
    width: int
    seq: int
    time_base: int
    encoding: str
    is_bigendian: bool
    events: np.ndarray
    header_seq: int = 0


def _string(buf: memoryview, pos: int, what: str, field: str, nul: bool) -> tuple[str, int]:
    """A length-prefixed string at ``pos`` (CDR: counts and ends with a NUL); (text, end)."""
    _need(buf, pos, 4, what, f'{field} length')
    (size,) = _U32.unpack_from(buf, pos)
    pos += 4
    if size > len(buf) - pos:
        raise WireError(f'{what}: {field} length {size} at offset {pos - 4} goes beyond the '
                        f'buffer ({len(buf) - pos} bytes remain)')
    raw = buf[pos:pos + size]
    if nul and size:
        if raw[-1] != 0:
            raise WireError(f'{what}: {field} of length {size} is not NUL-terminated')
        raw = raw[:-1]
    try:
        text = str(raw, 'utf-8')
    except UnicodeDecodeError as err:
        raise WireError(f'{what}: {field} is not valid UTF-8 ({err.reason} at byte '
                        f'{err.start})') from None
    return text, pos + size


def _payload(buf: memoryview, pos: int, what: str, trailing: int) -> np.ndarray:
    """The ``uint8[] events`` sequence at ``pos`` as a view; at most ``trailing`` bytes after."""
    _need(buf, pos, 4, what, 'events length')
    (size,) = _U32.unpack_from(buf, pos)
    pos += 4
    _events_fit(buf, pos, size, trailing, what, f'{size} event bytes announced', 'the events',
                'an EventPacket', 'an EventPacket')
    return np.frombuffer(buf, np.uint8, size, pos)


def decode_cdr_event_packet(data: Buffer) -> EventPacketMsg:
    """Decode a ROS 2 CDR event_camera_msgs/EventPacket (with its encapsulation header)."""
    what = 'CDR event_camera_msgs/EventPacket'
    buf = _as_bytes_view(data, what)
    _check_cdr_header(buf, what)
    _need(buf, 4, 8, what, 'header.stamp')
    sec, nsec = struct.unpack_from('<iI', buf, 4)
    frame_id, pos = _string(buf, 12, what, 'header.frame_id', nul=True)
    pos = 4 + ((pos - 4 + 3) & ~3)
    _need(buf, pos, _DIMS2.size, what, 'height/width')
    height, width = _DIMS2.unpack_from(buf, pos)
    pos = 4 + ((pos + _DIMS2.size - 4 + 7) & ~7)
    _need(buf, pos, _U64X2.size, what, 'seq/time_base')
    seq, time_base = _U64X2.unpack_from(buf, pos)
    encoding, pos = _string(buf, pos + _U64X2.size, what, 'encoding', nul=True)
    _need(buf, pos, 1, what, 'is_bigendian')
    bigendian = buf[pos]
    pos = 4 + ((pos + 1 - 4 + 3) & ~3)
    events = _payload(buf, pos, what, CDR_MAX_TRAILING)
    return EventPacketMsg(sec * NS_PER_S + nsec, frame_id, height, width, seq, time_base,
                          encoding, bool(bigendian), events)


def decode_ros1_event_packet(data: Buffer) -> EventPacketMsg:
    """Decode a ROS 1 serialised event_camera_msgs/EventPacket (as stored in a ROS 1 bag)."""
    what = 'ROS 1 event_camera_msgs/EventPacket'
    buf = _as_bytes_view(data, what)
    _need(buf, 0, 12, what, 'header')
    header_seq, sec, nsec = struct.unpack_from('<III', buf, 0)
    frame_id, pos = _string(buf, 12, what, 'header.frame_id', nul=False)
    _need(buf, pos, _DIMS2.size + _U64X2.size, what, 'height/width/seq/time_base')
    height, width = _DIMS2.unpack_from(buf, pos)
    seq, time_base = _U64X2.unpack_from(buf, pos + _DIMS2.size)
    encoding, pos = _string(buf, pos + _DIMS2.size + _U64X2.size, what, 'encoding', nul=False)
    _need(buf, pos, 1, what, 'is_bigendian')
    bigendian = buf[pos]
    events = _payload(buf, pos + 1, what, 0)
    return EventPacketMsg(sec * NS_PER_S + nsec, frame_id, height, width, seq, time_base,
                          encoding, bool(bigendian), events, header_seq)


def _check_u64(value: int, name: str, what: str) -> int:
    value = int(value)
    if not 0 <= value < 2 ** 64:
        raise WireError(f'{what}: {name} {value} does not fit uint64')
    return value


def encode_cdr_event_packet(msg: EventPacketMsg) -> bytes:
    """Serialise ``msg`` as ROS 2 CDR (little endian, with encapsulation header)."""
    what = 'encoding CDR event_camera_msgs/EventPacket'
    sec, nsec = _split_stamp(msg.stamp_ns, _I32_MIN, _I32_MAX, what)
    frame = msg.frame_id.encode('utf-8') + b'\x00'
    encoding = msg.encoding.encode('utf-8') + b'\x00'
    payload = np.ascontiguousarray(msg.events, np.uint8).reshape(-1)
    out = bytearray(CDR_LE_HEADER)
    out += struct.pack('<iII', sec, nsec, len(frame)) + frame
    out += bytes(-(len(out) - 4) % 4)
    out += _DIMS2.pack(_check_u32(msg.height, 'height', what),
                       _check_u32(msg.width, 'width', what))
    out += bytes(-(len(out) - 4) % 8)
    out += _U64X2.pack(_check_u64(msg.seq, 'seq', what),
                       _check_u64(msg.time_base, 'time_base', what))
    out += _U32.pack(len(encoding)) + encoding + bytes([bool(msg.is_bigendian)])
    out += bytes(-(len(out) - 4) % 4)
    out += _U32.pack(_check_u32(payload.size, 'events length', what))
    out += payload.tobytes()
    return bytes(out)


def encode_ros1_event_packet(msg: EventPacketMsg) -> bytes:
    """Serialise ``msg`` in the ROS 1 wire format."""
    what = 'encoding ROS 1 event_camera_msgs/EventPacket'
    sec, nsec = _split_stamp(msg.stamp_ns, 0, _U32_MAX, what)
    frame = msg.frame_id.encode('utf-8')
    encoding = msg.encoding.encode('utf-8')
    payload = np.ascontiguousarray(msg.events, np.uint8).reshape(-1)
    out = bytearray(struct.pack('<IIII', _check_u32(msg.header_seq, 'header seq', what), sec,
                                nsec, len(frame)))
    out += frame
    out += _DIMS2.pack(_check_u32(msg.height, 'height', what),
                       _check_u32(msg.width, 'width', what))
    out += _U64X2.pack(_check_u64(msg.seq, 'seq', what),
                       _check_u64(msg.time_base, 'time_base', what))
    out += _U32.pack(len(encoding)) + encoding + bytes([bool(msg.is_bigendian)])
    out += _U32.pack(_check_u32(payload.size, 'events length', what))
    out += payload.tobytes()
    return bytes(out)


def ros1_to_cdr_event_packet(data: Buffer) -> bytes:
    """Re-serialise ROS 1 EventPacket bytes as ROS 2 CDR bytes (the payload is copied once)."""
    return encode_cdr_event_packet(decode_ros1_event_packet(data))
