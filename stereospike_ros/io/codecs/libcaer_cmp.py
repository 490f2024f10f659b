"""``libcaer_cmp``: libcaer_driver's compressed format (its default), 16-bit little-endian words.

Top 4 bits of a word are its code, the low 12 its value (event_camera_codecs' libcaer_cmp rules):

====  ===========  =====================================================================
code  name         meaning
====  ===========  =====================================================================
0     TIME_HIGH    time bits 12-23 (us after ``time_base``) = value
1     TIME_LOW     time bits 0-11 = value
2     ADDR_X       current x = value & 0x7FF
3     ADDR_Y       one event at (current x, value & 0x7FF), polarity bit 11
4     VECT_BASE_Y  vector base y = value & 0x7FF, vector polarity bit 11
5     VECT_8       one event at (current x, base y + b) per set bit b of value & 0xFF;
                   then base y += 8
====  ===========  =====================================================================

Time = ``time_base + 1000 * (high << 12 | low)``; high and low restart at 0 in every packet,
while current x, base y and vector polarity carry over from the previous packet (as the
reference decoder's members do). Other codes are skipped and counted, like the reference
(which ignores them silently); coordinates are uint16 and wrap as there.
"""
from __future__ import annotations

import numpy as np

from stereospike_ros.io.codecs.base import (NS_PER_US, Codec, CodecError, address_fields,
                                            check_time_range, expand_vectors, inside_sensor,
                                            lookup, running_counts, vector_runs, whole_units)
from stereospike_ros.io.events import Events

TIME_HIGH, TIME_LOW, ADDR_X, ADDR_Y, VECT_BASE_Y, VECT_8 = range(6)
MAX_OFFSET_US = (1 << 24) - 1


class LibcaerCmpCodec(Codec):
    """Decoder of one ``libcaer_cmp`` stream (keeps x, base y and polarity between packets)."""

    name = 'libcaer_cmp'
    unit = 2

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget the address state (the reference decoder's initial zeros)."""
        self.x = 0
        self.base_y = 0
        self.polarity = 0

    def decode(self, payload: np.ndarray, time_base: int, width: int, height: int,
               counts: dict) -> Events:
        """Events of one packet in word order; see the module docstring for the rules."""
        n = whole_units(payload, 2, counts)
        check_time_range(time_base, MAX_OFFSET_US * NS_PER_US)
        words = payload[:2 * n].view('<u2')
        codes = words >> 12
        unknown = int(np.count_nonzero(codes > VECT_8))
        if unknown:
            counts['unknown_words'] += unknown
        is_vector = codes == VECT_8
        is_base = codes == VECT_BASE_Y
        at = np.flatnonzero((codes == ADDR_Y) | is_vector)     # the words that carry events
        k = len(at)
        # how many words of each kind precede each event word: the state in force there
        n_high, n_low, n_x, n_base = running_counts(
            codes, (TIME_HIGH, TIME_LOW, ADDR_X, VECT_BASE_Y), at)
        state = np.flatnonzero(codes <= ADDR_X)
        state_codes, state_values = codes[state], words[state] & 0xFFF
        highs, lows = state_values[state_codes == TIME_HIGH], state_values[state_codes == TIME_LOW]
        xs = state_values[state_codes == ADDR_X] & 0x7FF
        t_us = lookup(highs, 0, n_high) << 12
        t_us |= lookup(lows, 0, n_low)
        t = t_us * NS_PER_US
        t += np.int64(time_base)
        x = lookup(xs, self.x, n_x, np.uint16)
        # per event word: mask (1 for ADDR_Y), y or vector base, polarity
        event_words = words[at]
        base = event_words & 0x7FF
        pol = (event_words >> 11).astype(np.uint8)
        pol &= 1
        masks = np.ones(k, np.uint16)
        # vector words: base of the last VECT_BASE_Y (or the carried one), 8 more per VECT_8
        # since it; in the list of base and vector words, that is 8 per word since the base
        chain = np.flatnonzero(is_base | is_vector)
        chain_base = np.flatnonzero(codes[chain] == VECT_BASE_Y)
        base_words = words[chain[chain_base]]
        base_table = np.concatenate(([self.base_y], base_words & 0x7FF)).astype(np.int64)
        pol_table = np.concatenate(([self.polarity], base_words >> 11 & 1)).astype(np.uint8)
        base_at = np.concatenate(([-1], chain_base))          # chain index of each base
        vec_at = np.flatnonzero(is_vector[at])
        if len(vec_at):
            g = n_base[vec_at]
            since = np.flatnonzero(codes[chain] == VECT_8) - base_at[g] - 1
            base[vec_at] = (base_table[g] + 8 * since) & 0xFFFF
            pol[vec_at] = pol_table[g]
            masks[vec_at] = event_words[vec_at] & 0xFF
        events = expand_vectors(masks, 8, base, x, t, pol, vary_x=False)
        if len(xs):
            self.x = int(xs[-1])
        last = len(chain_base)
        self.base_y = int(base_table[last] + 8 * (len(chain) - 1 - base_at[last])) & 0xFFFF
        self.polarity = int(pol_table[last])
        return inside_sensor(events, width, height, counts)

    @classmethod
    def encode(cls, events: Events, time_base: int = 0, vectors: bool = True) -> bytes:
        """Payload of ``events``: times whole us in [time_base, time_base + 2**24 us), never
        decreasing. Runs of events at one time, x and polarity whose y rise within one aligned
        block of 8 become VECT_BASE_Y + VECT_8 (``vectors``), others ADDR_Y; x is always set
        first (the decoder keeps x from the previous packet)."""
        n = len(events)
        offset = np.asarray(events.t, np.int64) - np.int64(time_base)
        us, rest = np.divmod(offset, NS_PER_US)
        if np.any(rest) or (n and (us.min() < 0 or us.max() > MAX_OFFSET_US)) or \
                np.any(np.diff(us) < 0):
            raise CodecError('libcaer_cmp: times must be whole us, never decreasing, in '
                             '[time_base, time_base + 2**24 us)')
        x, y, p = address_fields(events, 'libcaer_cmp')
        if not n:
            return b''
        high, low = us >> 12, us & 0xFFF
        first = np.zeros(n, bool)
        first[0] = True
        new_high = first | (np.diff(high, prepend=0) != 0)
        new_low = np.diff(low, prepend=0) != 0
        new_x = first | (np.diff(x, prepend=-1) != 0)
        # a vector run continues while time, x, polarity and y's block stay and y rises
        same = np.zeros(n, bool)
        if vectors:
            same[1:] = ((us[1:] == us[:-1]) & (x[1:] == x[:-1]) & (p[1:] == p[:-1]) &
                        (y[1:] >> 3 == y[:-1] >> 3) & (y[1:] > y[:-1]))
        start, single, mask = vector_runs(same, y & 7)
        tokens = np.zeros((n, 5), np.int64)
        emit = np.zeros((n, 5), bool)
        tokens[:, 0], emit[:, 0] = TIME_HIGH << 12 | high, new_high
        tokens[:, 1], emit[:, 1] = TIME_LOW << 12 | low, new_low
        tokens[:, 2], emit[:, 2] = ADDR_X << 12 | x, new_x
        is_start = ~same
        vector = is_start & ~single
        tokens[:, 3] = np.where(single, ADDR_Y << 12 | p << 11 | y,
                                VECT_BASE_Y << 12 | p << 11 | (y & ~7))
        emit[:, 3] = is_start
        tokens[start, 4] = VECT_8 << 12 | mask
        emit[:, 4] = vector
        return tokens[emit].astype('<u2').tobytes()
