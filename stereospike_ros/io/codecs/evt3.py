"""``evt3``: Prophesee EVT 3.0 as published by metavision_driver, 16-bit little-endian words.

Top 4 bits of a word are its code, the low 12 its value (event_camera_codecs' evt3 rules):

====  ============  ====================================================================
code  name          meaning
====  ============  ====================================================================
0     ADDR_Y        current y = value & 0x7FF
2     ADDR_X        one event at (value & 0x7FF, current y), polarity bit 11
3     VECT_BASE_X   vector base x = value & 0x7FF, vector polarity bit 11
4     VECT_12       one event at (base x + b, current y) per set bit b; then base x += 12
5     VECT_8        the same with the low 8 bits; then base x += 8
6     TIME_LOW      time bits 0-11 (us) = value
8     TIME_HIGH     time bits 12-23 = value; a value more than 10 below the previous one
                    adds 2**24 us (rollover)
10    EXT_TRIGGER   trigger event: skipped and counted here
7, 9, 14, 15      continued / padding / others: ignored
1, 11, 12, 13     not defined: the reference decoder throws there; here the rest of the
                  packet is dropped and counted (its earlier events stand)
====  ============  ====================================================================

Times are the sensor's own, ``1000 * (rollovers << 24 | high << 12 | low)`` ns; ``time_base``
is not used (as in the reference). Every piece of state carries over between packets. Until
the stream has a time (a TIME_HIGH and then a TIME_LOW in one packet) only time words count:
the event words before are skipped and counted as ``no_time``.
"""
from __future__ import annotations

import numpy as np

from stereospike_ros.io.codecs.base import (INT64_MAX, NS_PER_US, POPCOUNT, Codec, CodecError,
                                            TimeOverflow, address_fields, expand_vectors,
                                            inside_sensor, lookup, running_counts, vector_runs,
                                            whole_units)
from stereospike_ros.io.events import Events

ADDR_Y, ADDR_X, VECT_BASE_X, VECT_12, VECT_8, TIME_LOW, TIME_HIGH, EXT_TRIGGER = \
    0, 2, 3, 4, 5, 6, 8, 10
#: Codes that are neither events nor state (continued, padding, others).
IGNORED = (7, 9, 14, 15)
#: Codes the format does not define.
UNDEFINED = (1, 11, 12, 13)
#: A TIME_HIGH this much below the previous one or less is jitter, not a rollover.
ROLLOVER_MIN_DISTANCE = 10
_CD_WORD = np.zeros(16, bool)
_CD_WORD[[ADDR_X, VECT_12, VECT_8]] = True
_ONE = np.uint16(1)
_UNDEFINED_BITS = sum(1 << c for c in UNDEFINED)
_VECTOR_BITS = sum(1 << c for c in (VECT_BASE_X, VECT_12, VECT_8))


def _time_start(codes: np.ndarray) -> tuple[int, bool]:
    """Where decoding starts in a stream without a time yet: after the first TIME_LOW that
    follows a TIME_HIGH in this packet; (that index, True), or (len(codes), False)."""
    highs = np.flatnonzero(codes == TIME_HIGH)
    if len(highs):
        lows = np.flatnonzero(codes[highs[0]:] == TIME_LOW)
        if len(lows):
            return int(highs[0] + lows[0] + 1), True
    return len(codes), False


def _cd_events(codes: np.ndarray, words: np.ndarray) -> int:
    """Number of CD events the ADDR_X and vector words among ``codes`` carry."""
    cd = _CD_WORD[codes]
    codes, values = codes[cd], words[cd] & 0xFFF
    values[codes == VECT_8] &= 0xFF
    values[codes == ADDR_X] = 1
    return int(POPCOUNT[values].sum())


class Evt3Codec(Codec):
    """Decoder of one ``evt3`` stream (every piece of state carries over between packets)."""

    name = 'evt3'
    uses_time_base = False
    unit = 2

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget the stream state (the reference decoder's initial values)."""
        self.y = 0
        self.low = 0
        self.high = 0               # time bits 12.. including the rollover bits (us)
        self.polarity = 0
        self.base_x = 0
        self.has_time = False

    def decode(self, payload: np.ndarray, time_base: int, width: int, height: int,
               counts: dict) -> Events:
        """Events of one packet in word order; see the module docstring for the rules."""
        n = whole_units(payload, 2, counts)
        words = payload[:2 * n].view('<u2')
        codes = words >> 12
        present = int(np.bitwise_or.reduce(np.left_shift(_ONE, codes))) if n else 0
        start, has_time = (0, True) if self.has_time else _time_start(codes)
        if present & _UNDEFINED_BITS:
            live = codes[start:]
            undefined = (live == UNDEFINED[0]) | (live - 11 <= 2)     # codes 1, 11, 12, 13
            if undefined.any():             # the reference throws here: keep what came before
                n = start + int(np.argmax(undefined))
                counts['unknown_words'] += len(codes) - n
                words, codes = words[:n], codes[:n]
        if present & 1 << EXT_TRIGGER:
            counts['triggers'] += int(np.count_nonzero(codes == EXT_TRIGGER))
        if start:                           # before the time: only time words take effect
            counts['no_time'] += _cd_events(codes[:start], words[:start])
            codes = codes.copy()
            prefix = codes[:start]
            prefix[(prefix != TIME_HIGH) & (prefix != TIME_LOW)] = IGNORED[-1]
        full_high = self._time_highs(words[np.flatnonzero(codes == TIME_HIGH)])
        vectors = present & _VECTOR_BITS
        if vectors:
            is_v8, is_v12 = codes == VECT_8, codes == VECT_12
            at = np.flatnonzero((codes == ADDR_X) | is_v8 | is_v12)   # the event words
        else:
            at = np.flatnonzero(codes == ADDR_X)
        # how many words of each kind precede each event word: the state in force there
        n_high, n_low, n_y, n_base = running_counts(
            codes, (TIME_HIGH, TIME_LOW, ADDR_Y, VECT_BASE_X), at)
        lows = (words[np.flatnonzero(codes == TIME_LOW)] & 0xFFF).astype(np.int64)
        ys = words[np.flatnonzero(codes == ADDR_Y)] & 0x7FF
        t_us = lookup(full_high, self.high, n_high)
        t_us |= lookup(lows, self.low, n_low)
        t = t_us * NS_PER_US
        y = lookup(ys, self.y, n_y, np.uint16)
        # per event word: mask (1 for ADDR_X), x or vector base, polarity
        event_words = words[at]
        base = event_words & 0x7FF
        pol = (event_words >> 11).astype(np.uint8)
        pol &= 1
        if vectors:
            masks = self._vectors(codes, words, at, event_words, n_base, is_v8 | is_v12,
                                  base, pol)
        else:
            masks = np.ones(len(at), np.uint16)
        events = expand_vectors(masks, 12, base, y, t, pol, vary_x=True)
        # commit the state reached at the end of the packet
        if len(full_high):
            self.high = int(full_high[-1])
        if len(lows):
            self.low = int(lows[-1])
        if len(ys):
            self.y = int(ys[-1])
        self.has_time = has_time
        return inside_sensor(events, width, height, counts)

    def _time_highs(self, high_words: np.ndarray) -> np.ndarray:
        """Time bits 12.. (with rollovers, us) after each TIME_HIGH word; TimeOverflow if the
        times no longer fit int64 ns. Changes no state."""
        highs = (high_words & 0xFFF).astype(np.int64)
        if len(highs) <= 16:                # usually 0-2 a packet: plain Python is quicker
            full, last, rolls = [], self.high >> 12 & 0xFFF, self.high >> 24
            for value in highs.tolist():
                rolls += value < last and last - value > ROLLOVER_MIN_DISTANCE
                full.append(rolls << 24 | value << 12)
                last = value
            full_high = np.array(full, np.int64)
            if len(full) and (full[-1] | 0xFFF) * NS_PER_US > INT64_MAX:
                raise TimeOverflow('evt3 time rollovers exceed int64 nanoseconds')
            return full_high
        prev = np.empty(len(highs), np.int64)
        prev[0] = self.high >> 12 & 0xFFF
        prev[1:] = highs[:-1]
        rolled = np.cumsum((highs < prev) & (prev - highs > ROLLOVER_MIN_DISTANCE))
        full_high = ((self.high >> 24) + rolled) << 24 | highs << 12
        if (int(full_high[-1]) | 0xFFF) * NS_PER_US > INT64_MAX:
            raise TimeOverflow('evt3 time rollovers exceed int64 nanoseconds')
        return full_high

    def _vectors(self, codes, words, at, event_words, n_base, is_vector, base, pol):
        """Masks of the event words; base x and polarity of the vector words filled in.

        A vector word's base is the last VECT_BASE_X's x (or the carried base) plus the sizes
        (8 or 12) of the vector words since it, summed along the base and vector words.
        """
        chain = np.flatnonzero((codes == VECT_BASE_X) | is_vector)
        if not len(chain):
            return np.ones(len(at), np.uint16)
        chain_codes = codes[chain]
        chain_base = np.flatnonzero(chain_codes == VECT_BASE_X)
        chain_vec = np.flatnonzero(chain_codes != VECT_BASE_X)
        steps = 12 - ((chain_codes & 1) << 2)           # VECT_12 (4): 12, VECT_8 (5): 8
        steps[chain_base] = 0
        advanced = np.cumsum(steps, dtype=np.int64)
        advanced -= steps                               # sizes of the vector words before
        base_words = words[chain[chain_base]]
        base_table = np.concatenate(([self.base_x], base_words & 0x7FF)).astype(np.int64)
        base_table -= np.concatenate(([0], advanced[chain_base]))
        pol_table = np.concatenate(([self.polarity], base_words >> 11 & 1)).astype(np.uint8)
        vec_at = np.flatnonzero(codes[at] != ADDR_X)
        g = n_base[vec_at]
        vec_base = base_table[g]
        vec_base += advanced[chain_vec]
        base[vec_at] = vec_base & 0xFFFF
        pol[vec_at] = pol_table[g]
        masks = np.ones(len(at), np.uint16)
        vec_words = event_words[vec_at]
        masks[vec_at] = vec_words & (0xFFF >> ((vec_words >> 10) & 4))   # VECT_8: low 8 bits
        last = len(chain_base)
        self.base_x = int(base_table[last] + advanced[-1] + steps[-1]) & 0xFFFF
        self.polarity = int(pol_table[last])
        return masks

    @classmethod
    def encode(cls, events: Events, time_base: int = 0, vectors: bool = True) -> bytes:
        """Payload of ``events`` (sensor times, whole us, never decreasing; ``time_base`` unused).

        Each packet starts with TIME_HIGH, TIME_LOW and ADDR_Y, so it decodes after any earlier
        packet of the same stream, provided the stream's first time is below 2**24 us and
        times advance less than 2**24 - 2**16 us from packet to packet (rollovers are then
        seen). Runs of events at one time, y and polarity whose x rise within one aligned
        block of 12 become VECT_BASE_X + VECT_8 / VECT_12 (``vectors``), others ADDR_X.
        """
        n = len(events)
        us, rest = np.divmod(np.asarray(events.t, np.int64), NS_PER_US)
        if np.any(rest) or (n and us.min() < 0) or np.any(np.diff(us) < 0):
            raise CodecError('evt3: times must be whole us, not negative, never decreasing')
        if np.any(np.diff(us) >= (1 << 24) - (1 << 16)):
            raise CodecError('evt3: consecutive events must be less than 2**24 - 2**16 us apart')
        x, y, p = address_fields(events, 'evt3')
        if not n:
            return b''
        high, low = us >> 12, us & 0xFFF
        first = np.zeros(n, bool)
        first[0] = True
        new_high = first | (np.diff(high, prepend=-1) != 0)
        new_low = new_high | (np.diff(low, prepend=-1) != 0)
        new_y = first | (np.diff(y, prepend=-1) != 0)
        block = x // 12
        same = np.zeros(n, bool)
        if vectors:
            same[1:] = ((us[1:] == us[:-1]) & (y[1:] == y[:-1]) & (p[1:] == p[:-1]) &
                        (block[1:] == block[:-1]) & (x[1:] > x[:-1]))
        start, single, mask = vector_runs(same, x - block * 12)
        tokens = np.zeros((n, 5), np.int64)
        emit = np.zeros((n, 5), bool)
        tokens[:, 0], emit[:, 0] = TIME_HIGH << 12 | (high & 0xFFF), new_high
        tokens[:, 1], emit[:, 1] = TIME_LOW << 12 | low, new_low
        tokens[:, 2], emit[:, 2] = ADDR_Y << 12 | y, new_y
        tokens[:, 3] = np.where(single, ADDR_X << 12 | p << 11 | x,
                                VECT_BASE_X << 12 | p << 11 | block * 12)
        emit[:, 3] = ~same
        tokens[start, 4] = np.where(mask < 256, VECT_8 << 12, VECT_12 << 12) | mask
        emit[:, 4] = ~same & ~single
        return tokens[emit].astype('<u2').tobytes()
