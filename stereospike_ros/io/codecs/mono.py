"""``mono``: 8 bytes per event, one little-endian uint64 each (event_camera_codecs' mono format).

Bits 0-31: time in ns after ``time_base``; 32-47: x; 48-62: y; 63: polarity. No state between
packets and no trigger events.
"""
from __future__ import annotations

import numpy as np

from stereospike_ros.io.codecs.base import (Codec, CodecError, check_time_range, inside_sensor,
                                            whole_units)
from stereospike_ros.io.events import Events

#: One mono event as little-endian fields: time offset, x, and y with polarity in bit 15.
MONO_EVENT = np.dtype({'names': ['t', 'x', 'yp'], 'formats': ['<u4', '<u2', '<u2'],
                       'offsets': [0, 4, 6], 'itemsize': 8})


class MonoCodec(Codec):
    """Stateless decoder of ``mono`` packets."""

    name = 'mono'
    unit = 8

    def decode(self, payload: np.ndarray, time_base: int, width: int, height: int,
               counts: dict) -> Events:
        """Events of one packet: ``t = time_base + offset``; beyond-sensor events dropped."""
        n = whole_units(payload, 8, counts)
        check_time_range(time_base, 0xFFFFFFFF)
        rec = payload[:8 * n].view(MONO_EVENT)
        t = np.add(rec['t'], np.int64(time_base))
        yp = rec['yp']
        events = Events(rec['x'].copy(), np.bitwise_and(yp, 0x7FFF),
                        t, np.greater_equal(yp, 0x8000))
        return inside_sensor(events, width, height, counts)

    @classmethod
    def encode(cls, events: Events, time_base: int = 0) -> bytes:
        """Payload of ``events``: offsets ``t - time_base`` must lie in [0, 2**32) ns."""
        offset = np.asarray(events.t, np.int64) - np.int64(time_base)
        if len(offset) and (offset.min() < 0 or offset.max() > 0xFFFFFFFF):
            raise CodecError('mono: event times must lie in [time_base, time_base + 2**32) ns')
        if len(offset) and int(np.max(events.y)) > 0x7FFF:
            raise CodecError('mono: y must be below 32768')
        rec = np.zeros(len(offset), MONO_EVENT)
        rec['t'] = offset
        rec['x'] = events.x
        rec['yp'] = np.asarray(events.y, np.uint16) | (np.asarray(events.p, np.uint16) << 15)
        return rec.tobytes()
