"""``libcaer``: libcaer polarity events as copied by libcaer_driver, 8 bytes each.

Each event is a little-endian uint32 ``data`` (bit 1 polarity, bits 2-16 y, bits 17-31 x; bit 0,
libcaer's valid mark, is ignored as the reference decoder does) and an int32 timestamp in us.
Time = ``time_base + 1000 * ts``, plus 2**31 us for every time the timestamp decreases inside
the packet (libcaer's 31-bit rollover; comparisons as the reference's uint64 of the sign-extended
value, i.e. as uint32). Events with a negative timestamp have no valid time: dropped, counted.
"""
from __future__ import annotations

import numpy as np

from stereospike_ros.io.codecs.base import (NS_PER_US, Codec, CodecError, check_time_range,
                                            inside_sensor, whole_units)
from stereospike_ros.io.events import Events

#: One libcaer polarity event: data word (also as two uint16 halves and its low byte) and time.
LIBCAER_EVENT = np.dtype({'names': ['data', 'lo', 'hi', 'b0', 'ts'],
                          'formats': ['<u4', '<u2', '<u2', 'u1', '<i4'],
                          'offsets': [0, 0, 2, 0, 4], 'itemsize': 8})
ROLLOVER_US = 1 << 31
ROLLOVER_NS = ROLLOVER_US * NS_PER_US


class LibcaerCodec(Codec):
    """Stateless decoder of ``libcaer`` packets (rollover detection is per packet)."""

    name = 'libcaer'
    unit = 8

    def decode(self, payload: np.ndarray, time_base: int, width: int, height: int,
               counts: dict) -> Events:
        """Events of one packet in packet order; see the module docstring for the rules."""
        n = whole_units(payload, 8, counts)
        rec = payload[:8 * n].view(LIBCAER_EVENT)
        ts = rec['ts']
        negative = n and int(ts.min()) < 0
        order = ts.view(np.uint32) if negative else ts     # int32 order == uint32 order if >= 0
        back = np.less(order[1:], order[:-1])
        rollovers = int(np.count_nonzero(back)) if n > 1 else 0
        check_time_range(time_base, rollovers * ROLLOVER_NS + (int(ts.max()) if n else 0)
                         * NS_PER_US)
        t = np.multiply(ts, NS_PER_US, dtype=np.int64)
        if rollovers:
            t[1:] += np.cumsum(back, dtype=np.int64) * ROLLOVER_NS
        t += np.int64(time_base)
        x = np.right_shift(rec['hi'], 1)
        y = np.right_shift(rec['data'], 2).astype(np.uint16)
        y &= 0x7FFF
        p = np.right_shift(rec['b0'], 1)
        p &= 1
        events = Events(x, y, t, p.view(bool))
        if negative:
            ok = ts >= 0
            counts['bad_time'] += int(n - np.count_nonzero(ok))
            events = events[ok]
        return inside_sensor(events, width, height, counts)

    @classmethod
    def encode(cls, events: Events, time_base: int = 0) -> bytes:
        """Payload of ``events`` (valid mark set); times whole us after ``time_base``, never
        decreasing, less than 2**31 us apart (so each rollover is seen)."""
        offset = np.asarray(events.t, np.int64) - np.int64(time_base)
        us, rest = np.divmod(offset, NS_PER_US)
        if np.any(rest) or (len(us) and us.min() < 0):
            raise CodecError('libcaer: event times must be whole us at or after time_base')
        if np.any(np.diff(us) < 0) or np.any(np.diff(us) >= ROLLOVER_US) or \
                (len(us) and us[0] >= ROLLOVER_US):
            raise CodecError('libcaer: times must not decrease, and consecutive events (and the '
                             'first from time_base) must be less than 2**31 us apart')
        x, y = np.asarray(events.x, np.uint32), np.asarray(events.y, np.uint32)
        if len(x) and (x.max() > 0x7FFF or y.max() > 0x7FFF):
            raise CodecError('libcaer: x and y must be below 32768')
        rec = np.zeros(len(us), LIBCAER_EVENT)
        rec['data'] = (x << 17) | (y << 2) | (np.asarray(events.p, np.uint32) << 1) | 1
        rec['ts'] = us % ROLLOVER_US
        return rec.tobytes()
