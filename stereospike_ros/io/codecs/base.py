"""What every EventPacket codec shares: the codec interface, drop counters and numpy helpers.

The helpers replace the per-word state machines of ros-event-camera/event_camera_codecs with
whole-array operations: "the value of the last word of kind K before word i" is a table lookup
by running counts (:func:`running_counts`, :func:`lookup`), and vector words that carry
several events are expanded by :func:`expand_vectors`. Nothing here builds a Python object per
event.
"""
from __future__ import annotations

from typing import ClassVar

import numpy as np

from stereospike_ros.io.events import Events

#: Counters of one stream decoder (and of one packet); every drop has its own key.
COUNTERS = {
    'packets': 'packets seen, rejected ones included',
    'events': 'CD events delivered',
    'triggers': 'external trigger events (evt3), skipped',
    'beyond_sensor': 'CD events with x >= width or y >= height, dropped',
    'truncated_packets': 'packets whose payload ends in a partial word or event',
    'truncated_bytes': 'bytes of those partial words or events, dropped',
    'unknown_words': 'words with a code the format does not define, skipped (libcaer_cmp) or '
                     'ending the packet (evt3, where the reference decoder throws)',
    'no_time': 'evt3 CD events before the stream has a time (TIME_HIGH then TIME_LOW), skipped',
    'bad_time': 'libcaer events with a negative 32-bit timestamp, dropped',
    'seq_gaps': 'packets whose seq skips ahead (messages lost before them)',
    'seq_missing': 'messages missing in those gaps',
    'seq_back': 'packets whose seq is not above the previous one (driver restart, bag loop)',
    'time_base_back': 'packets whose time_base is below the previous packet\'s',
    'encoding_changes': 'packets whose encoding differs from the previous packet\'s',
    'rejected_packets': 'packets dropped whole (the reasons below)',
    'malformed': 'rejected: message bytes that do not parse',
    'big_endian': 'rejected: is_bigendian is true',
    'unknown_encoding': 'rejected: no decoder for the encoding',
    'size_changes': 'rejected: width/height differ from the stream\'s',
    'time_overflow': 'rejected: event times beyond int64 nanoseconds (time_base or rollovers)',
}
COUNT_KEYS = tuple(COUNTERS)

INT64_MAX = 2 ** 63 - 1
NS_PER_US = 1000

#: POPCOUNT[v]: number of set bits of a 12-bit vector mask.
POPCOUNT = np.array([bin(v).count('1') for v in range(1 << 12)], np.uint8)


def new_counts() -> dict[str, int]:
    """A zeroed counter dict with every key of :data:`COUNTERS`."""
    return dict.fromkeys(COUNT_KEYS, 0)


class CodecError(ValueError):
    """Events that an encoder cannot represent in its format (the message says which)."""


def address_fields(events: Events, codec: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x, y, p as int64 for an encoder whose address words hold x and y below 2048 (11 bits)."""
    x = np.asarray(events.x, np.int64)
    y = np.asarray(events.y, np.int64)
    if len(events) and (x.max() > 0x7FF or y.max() > 0x7FF):
        raise CodecError(f'{codec}: x and y must be below 2048')
    return x, y, np.asarray(events.p, np.int64)


class TimeOverflow(Exception):
    """A packet whose event times do not fit int64 nanoseconds (the stream decoder rejects it)."""


def check_time_range(time_base: int, max_offset_ns: int) -> None:
    """Raise :class:`TimeOverflow` unless ``time_base + max_offset_ns`` fits int64."""
    if time_base + max_offset_ns > INT64_MAX:
        raise TimeOverflow(f'time_base {time_base} + offsets up to {max_offset_ns} ns exceed '
                           'int64 nanoseconds')


class Codec:
    """Decoder state of one event stream in one encoding; subclasses implement one format.

    ``decode`` turns one packet's payload into events and adds its drops to ``counts``; the
    instance keeps whatever state the format carries from packet to packet.
    """

    name: ClassVar[str] = ''
    #: True when event times are ``time_base`` plus in-packet offsets (all but evt3).
    uses_time_base: ClassVar[bool] = True
    #: Payload unit in bytes: 8 (one event) or 2 (one word of a stateful format).
    unit: ClassVar[int] = 8

    def decode(self, payload: np.ndarray, time_base: int, width: int, height: int,
               counts: dict) -> Events:
        """Events of one packet (``payload``: uint8 array, little endian) in packet order.

        Raises :class:`TimeOverflow` (and changes no state) when times would not fit int64.
        """
        raise NotImplementedError

    def reset(self) -> None:
        """Forget the state carried between packets (a new stream)."""

    @classmethod
    def encode(cls, events: Events, time_base: int = 0) -> bytes:
        """One packet payload holding ``events`` (tests, benchmarks and synthetic bags)."""
        raise NotImplementedError


def whole_units(payload: np.ndarray, unit: int, counts: dict) -> int:
    """Number of whole ``unit``-byte items in ``payload``; a partial tail is counted as dropped."""
    n, tail = divmod(len(payload), unit)
    if tail:
        counts['truncated_packets'] += 1
        counts['truncated_bytes'] += tail
    return n


def inside_sensor(events: Events, width: int, height: int, counts: dict) -> Events:
    """``events`` without those beyond the sensor (counted); no copy when all are inside."""
    if not len(events) or (int(events.x.max()) < width and int(events.y.max()) < height):
        return events
    keep = (events.x < width) & (events.y < height)
    counts['beyond_sensor'] += int(len(keep) - np.count_nonzero(keep))
    return events[keep]


def running_counts(codes: np.ndarray, kinds: tuple, at: np.ndarray) -> list[np.ndarray]:
    """For each code of ``kinds``: how many words of that code occur at or before each index
    of ``at`` (int64 arrays, in the order of ``kinds``).

    "The last word of kind K so far" is then a table lookup. Cumulative sums are slow in numpy
    (a few ns per element), so the counts of several kinds share one: each kind gets its own
    bit field of a uint64 (fields as wide as the packet's word count needs: four kinds per sum
    up to 65,535 words).
    """
    bits = max(len(codes).bit_length(), 1)
    per_sum = 64 // bits
    field = np.uint64((1 << bits) - 1)
    out = []
    for first in range(0, len(kinds), per_sum):
        group = kinds[first:first + per_sum]
        table = np.zeros(16, np.uint64)
        for j, code in enumerate(group):
            table[code] = 1 << (j * bits)
        packed = np.cumsum(np.take(table, codes))[at]
        out += [((packed >> np.uint64(j * bits)) & field).view(np.int64)
                for j in range(len(group))]
    return out


def lookup(values: np.ndarray, initial: int, counts: np.ndarray,
           dtype: type = np.int64) -> np.ndarray:
    """``values[counts - 1]``, or ``initial`` where the count is 0 (no such word yet)."""
    table = np.empty(len(values) + 1, dtype)
    table[0] = initial
    table[1:] = values
    return table[counts]


def expand_vectors(masks: np.ndarray, width: int, base: np.ndarray, fixed: np.ndarray,
                   t: np.ndarray, p: np.ndarray, vary_x: bool) -> Events:
    """Events of address words in word order: word k holds one event per set bit b of
    ``masks[k]`` (at most ``width`` = 8 or 12 bits, ascending b) at varying coordinate
    ``base[k] + b`` (uint16, wrapping like the reference) and the other coordinate
    ``fixed[k]``; ``t``, ``p`` per word. A single-address word has mask 1.
    """
    if len(masks) and (int(masks.max()) != 1 or int(masks.min()) != 1):
        # the masks' bits, word after word in ascending bit order, are the events in order
        if width <= 8:
            bits, shift = np.unpackbits(masks.astype(np.uint8), bitorder='little'), 3
        else:
            bits, shift = np.unpackbits(masks.astype('<u2').view(np.uint8),
                                        bitorder='little'), 4
        slot = np.flatnonzero(bits.view(bool))
        word = slot >> shift
        slot &= (1 << shift) - 1
        vary = base[word] + slot.astype(np.uint16)
        fixed, t, p = fixed[word], t[word], p[word]
    else:
        vary = base                                          # only single events
    x, y = (vary, fixed) if vary_x else (fixed, vary)
    return Events(x.astype(np.uint16, copy=False), y.astype(np.uint16, copy=False),
                  t.astype(np.int64, copy=False), p.astype(bool, copy=False))


def vector_runs(same: np.ndarray, bit: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Encoders: group events into runs, a new one wherever ``same`` is False. Returns each
    run's first index, a per-event flag set at the first event of each single-event run, and
    each run's vector mask (``1 << bit`` of its events or-ed)."""
    n = len(same)
    start = np.flatnonzero(~same)
    size = np.diff(np.append(start, n))
    mask = np.zeros(len(start), np.int64)
    np.bitwise_or.at(mask, np.cumsum(~same) - 1, 1 << bit)
    single = np.zeros(n, bool)
    single[start] = size == 1
    return start, single, mask
