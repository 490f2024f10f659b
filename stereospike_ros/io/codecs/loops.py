"""The four formats' rules written as plain per-word Python loops, one event at a time.

Never used on a data path: these are the oracle the vectorised codecs are tested against and
the baseline ``bench/bench_codecs.py`` measures them against. Same interface, counters and drop
rules as the codecs (see each codec module's docstring for the format).
"""
from __future__ import annotations

import struct

import numpy as np

from stereospike_ros.io.codecs import evt3 as _evt3
from stereospike_ros.io.codecs import libcaer_cmp as _cmp
from stereospike_ros.io.codecs.base import (NS_PER_US, Codec, TimeOverflow, check_time_range,
                                            whole_units)
from stereospike_ros.io.events import Events


def _finish(rows: list, width: int, height: int, counts: dict) -> Events:
    """Events from ``(t, x, y, p)`` rows, those beyond the sensor dropped and counted."""
    kept = [r for r in rows if r[1] < width and r[2] < height]
    counts['beyond_sensor'] += len(rows) - len(kept)
    if not kept:
        return Events.empty()
    t, x, y, p = zip(*kept)
    return Events(np.array(x, np.uint16), np.array(y, np.uint16), np.array(t, np.int64),
                  np.array(p, bool))


class MonoLoop(Codec):
    """``mono``, one event at a time."""

    name = 'mono'

    def decode(self, payload: np.ndarray, time_base: int, width: int, height: int,
               counts: dict) -> Events:
        """Events of one packet."""
        payload = bytes(payload)
        check_time_range(time_base, 0xFFFFFFFF)
        rows = []
        for k in range(whole_units(payload, 8, counts)):
            (word,) = struct.unpack_from('<Q', payload, 8 * k)
            rows.append((time_base + (word & 0xFFFFFFFF), word >> 32 & 0xFFFF,
                         word >> 48 & 0x7FFF, word >> 63))
        return _finish(rows, width, height, counts)


class LibcaerLoop(Codec):
    """``libcaer``, one event at a time."""

    name = 'libcaer'

    def decode(self, payload: np.ndarray, time_base: int, width: int, height: int,
               counts: dict) -> Events:
        """Events of one packet."""
        payload = bytes(payload)
        rows, high, last = [], time_base, 0
        for k in range(whole_units(payload, 8, counts)):
            data, ts = struct.unpack_from('<Ii', payload, 8 * k)
            low = ts & 0xFFFFFFFF                # the uint32 order of the sign-extended value
            if low < last:
                high += (1 << 31) * NS_PER_US
            last = low
            if ts < 0:
                counts['bad_time'] += 1
                continue
            rows.append((high + ts * NS_PER_US, data >> 17 & 0x7FFF, data >> 2 & 0x7FFF,
                         data >> 1 & 1))
        if rows:
            check_time_range(0, max(r[0] for r in rows))
        return _finish(rows, width, height, counts)


class LibcaerCmpLoop(Codec):
    """``libcaer_cmp``, one word at a time."""

    name = 'libcaer_cmp'

    def __init__(self) -> None:
        self.x = self.base_y = self.polarity = 0

    def decode(self, payload: np.ndarray, time_base: int, width: int, height: int,
               counts: dict) -> Events:
        """Events of one packet."""
        payload = bytes(payload)
        check_time_range(time_base, _cmp.MAX_OFFSET_US * NS_PER_US)
        rows, high, low = [], 0, 0
        for k in range(whole_units(payload, 2, counts)):
            (word,) = struct.unpack_from('<H', payload, 2 * k)
            code, value = word >> 12, word & 0xFFF
            t = time_base + (high | low) * NS_PER_US
            if code == _cmp.TIME_HIGH:
                high = value << 12
            elif code == _cmp.TIME_LOW:
                low = value
            elif code == _cmp.ADDR_X:
                self.x = value & 0x7FF
            elif code == _cmp.ADDR_Y:
                rows.append((t, self.x, value & 0x7FF, value >> 11))
            elif code == _cmp.VECT_BASE_Y:
                self.base_y, self.polarity = value & 0x7FF, value >> 11
            elif code == _cmp.VECT_8:
                for b in range(8):
                    if value >> b & 1:
                        rows.append((t, self.x, (self.base_y + b) & 0xFFFF, self.polarity))
                self.base_y = (self.base_y + 8) & 0xFFFF
            else:
                counts['unknown_words'] += 1
        return _finish(rows, width, height, counts)


class Evt3Loop(Codec):
    """``evt3``, one word at a time."""

    name = 'evt3'
    uses_time_base = False

    def __init__(self) -> None:
        self.y = self.low = self.high = self.polarity = self.base_x = 0
        self.has_time = False

    def _set_high(self, value: int) -> None:
        last = self.high >> 12 & 0xFFF
        if value < last and last - value > _evt3.ROLLOVER_MIN_DISTANCE:
            self.high += 1 << 24
        self.high = (self.high >> 24 << 24) | value << 12

    def decode(self, payload: np.ndarray, time_base: int, width: int, height: int,
               counts: dict) -> Events:
        """Events of one packet."""
        payload = bytes(payload)
        words = [struct.unpack_from('<H', payload, 2 * k)[0]
                 for k in range(whole_units(payload, 2, counts))]
        saved = dict(vars(self))
        rows, k, seen_high = [], 0, False
        while not self.has_time and k < len(words):
            code, value = words[k] >> 12, words[k] & 0xFFF
            if code == _evt3.TIME_LOW:
                self.low = value
                self.has_time = seen_high
            elif code == _evt3.TIME_HIGH:
                self._set_high(value)
                seen_high = True
            elif code == _evt3.ADDR_X:
                counts['no_time'] += 1
            elif code in (_evt3.VECT_8, _evt3.VECT_12):
                counts['no_time'] += bin(value & (0xFF if code == _evt3.VECT_8 else 0xFFF)
                                         ).count('1')
            elif code == _evt3.EXT_TRIGGER:
                counts['triggers'] += 1
            k += 1
        for k in range(k, len(words)):
            code, value = words[k] >> 12, words[k] & 0xFFF
            t = (self.high | self.low) * NS_PER_US
            if code == _evt3.ADDR_Y:
                self.y = value & 0x7FF
            elif code == _evt3.ADDR_X:
                rows.append((t, value & 0x7FF, self.y, value >> 11))
            elif code == _evt3.VECT_BASE_X:
                self.base_x, self.polarity = value & 0x7FF, value >> 11
            elif code in (_evt3.VECT_8, _evt3.VECT_12):
                size = 8 if code == _evt3.VECT_8 else 12
                for b in range(size):
                    if value >> b & 1:
                        rows.append((t, (self.base_x + b) & 0xFFFF, self.y, self.polarity))
                self.base_x = (self.base_x + size) & 0xFFFF
            elif code == _evt3.TIME_LOW:
                self.low = value
            elif code == _evt3.TIME_HIGH:
                self._set_high(value)
            elif code == _evt3.EXT_TRIGGER:
                counts['triggers'] += 1
            elif code in _evt3.UNDEFINED:
                counts['unknown_words'] += len(words) - k
                break
        if (self.high | 0xFFF) * NS_PER_US > 2 ** 63 - 1:
            vars(self).update(saved)
            raise TimeOverflow('evt3 time rollovers exceed int64 nanoseconds')
        return _finish(rows, width, height, counts)


#: Per-event loop decoder class of each encoding.
LOOPS = {c.name: c for c in (MonoLoop, LibcaerLoop, LibcaerCmpLoop, Evt3Loop)}
