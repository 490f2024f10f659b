"""dvs_msgs/EventArray bytes <-> :class:`Events` with numpy views over the raw buffer.

Decoding never builds a Python object per event: the fixed-layout event records are read through
structured, strided numpy views (ROS 1: 13 packed bytes; ROS 2 CDR: element 0 occupies 13 bytes,
later elements sit at a 16-byte pitch). Every length is checked first, so no view reaches past
the buffer; malformed bytes raise :class:`WireError` with a precise message.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Union

import numpy as np

from stereospike_ros.io.events import NS_PER_S, Events

Buffer = Union[bytes, bytearray, memoryview]

#: CDR little-endian encapsulation (the ROS 2 default); 00 00 would be big-endian CDR.
CDR_LE_HEADER = b'\x00\x01\x00\x00'
#: At most this many bytes may follow the last event of a CDR message (end padding of some RMWs).
CDR_MAX_TRAILING = 7

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


class WireError(ValueError):
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


def decode_cdr_event_array(data: Buffer) -> EventArrayMsg:
    """Decode a ROS 2 CDR dvs_msgs/EventArray (with its 4-byte encapsulation header)."""
    what = 'CDR dvs_msgs/EventArray'
    buf = _as_bytes_view(data, what)
    _need(buf, 0, 4, what, 'encapsulation header')
    kind = bytes(buf[0:2])
    if kind == b'\x00\x00':
        raise WireError(f'{what}: big-endian CDR (encapsulation 00 00) is not supported')
    if kind != b'\x00\x01' or buf[2] != 0 or buf[3] & 0xFC:
        raise WireError(f'{what}: bad encapsulation header {bytes(buf[0:4]).hex(" ")}, '
                        'expected 00 01 00 00 (little-endian CDR)')
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
    remain = len(buf) - pos
    if size > remain:
        raise WireError(f'{what}: {count} events need {size} bytes but only {remain} remain '
                        f'(message of {len(buf)} bytes is truncated or not an EventArray)')
    if remain - size > CDR_MAX_TRAILING:
        raise WireError(f'{what}: {remain - size} unexpected bytes after {count} events '
                        f'(message of {len(buf)} bytes is not a dvs_msgs/EventArray)')
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
    remain = len(buf) - pos
    if size > remain:
        raise WireError(f'{what}: {count} events need {size} bytes but only {remain} remain '
                        f'(message of {len(buf)} bytes is truncated or not an EventArray)')
    if remain != size:
        raise WireError(f'{what}: {remain - size} unexpected bytes after {count} events '
                        f'(message of {len(buf)} bytes is not a dvs_msgs/EventArray)')
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
