"""The per-stream EventPacket decoder: one per camera topic, called once per message.

It picks the codec from the packet's ``encoding``, keeps the codec's state between packets,
checks what a single packet cannot show (seq gaps, ``time_base`` going back, size or encoding
changing) and counts every drop. Bad input never raises: a packet that cannot be decoded is
rejected whole, counted, and described in :attr:`Decoded.problems` for the caller to log.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Union

from stereospike_ros.io import wire
from stereospike_ros.io.codecs.base import Codec, TimeOverflow, new_counts
from stereospike_ros.io.events import Events


@dataclass
class Decoded:
    """One packet's events (sensor order) and what happened to it.

    ``counts`` has every key of :data:`~stereospike_ros.io.codecs.base.COUNTERS` (this packet
    only); ``problems`` one line per problem worth logging; ``time_reset`` is true when the
    stream's time went back (time_base decreased, or seq went back: then the codec's state is
    reset too, as for a new stream): windows should restart. ``message`` is the packet's
    message (header, seq, time_base; None when its bytes did not parse).
    """

    events: Events
    counts: dict
    problems: list = field(default_factory=list)
    time_reset: bool = False
    message: Optional[wire.EventPacketMsg] = None

    @property
    def rejected(self) -> bool:
        """True when the whole packet was dropped."""
        return self.counts['rejected_packets'] > 0


class EventPacketDecoder:
    """Stateful decoder of one EventPacket stream (a camera's topic).

    ``width``/``height`` pin the sensor size the caller expects; by default the first accepted
    packet's size becomes the stream's. Packets of another size are rejected (the rectifier
    and the network are built for one size). ``counts`` accumulates every packet's counts.
    """

    def __init__(self, width: Optional[int] = None, height: Optional[int] = None) -> None:
        from stereospike_ros.io.codecs import CODECS
        self.codecs = CODECS
        self.size = None if width is None or height is None else (int(width), int(height))
        self.counts = new_counts()
        self.encoding: Optional[str] = None
        self._codec: Optional[Codec] = None
        self._seq: Optional[int] = None
        self._time_base: Optional[int] = None

    def reset(self) -> None:
        """Start a new stream: forget codec state, seq and time_base (counts are kept)."""
        self._codec = None
        self.encoding = None
        self._seq = self._time_base = None

    def decode_bytes(self, data: Union[bytes, memoryview], fmt: str = 'cdr') -> Decoded:
        """Decode one serialised EventPacket (``'cdr'`` or ``'ros1'``) and its events."""
        try:
            msg = (wire.decode_cdr_event_packet(data) if fmt == 'cdr'
                   else wire.decode_ros1_event_packet(data))
        except wire.WireError as err:
            counts = new_counts()
            counts['packets'] = counts['rejected_packets'] = counts['malformed'] = 1
            self._add(counts)
            return Decoded(Events.empty(), counts, [f'malformed message: {err}'])
        return self.decode(msg)

    def decode(self, msg: wire.EventPacketMsg) -> Decoded:
        """Decode one EventPacket message (see :class:`Decoded`)."""
        counts = new_counts()
        counts['packets'] = 1
        problems: list[str] = []
        reset = self._check_seq(msg.seq, counts, problems)
        if reset and self._codec is not None:
            self._codec.reset()                 # a new stream: no state carries over
        events = Events.empty()
        reason = self._reject_reason(msg, counts)
        if reason is None:
            codec = self._codec_for(msg.encoding, counts, problems)
            found = new_counts()
            try:
                events = codec.decode(msg.events, msg.time_base, msg.width, msg.height, found)
            except TimeOverflow as err:
                counts['time_overflow'] = 1
                reason = str(err)
            else:
                if codec.uses_time_base:
                    reset |= self._check_time_base(msg.time_base, counts, problems)
                for key, value in found.items():
                    if value:
                        counts[key] += value
                counts['events'] = len(events)
                problems += _drop_lines(counts, msg.seq)
        if reason is not None:
            counts['rejected_packets'] = 1
            problems.append(f'packet seq {msg.seq} rejected: {reason}')
        self._add(counts)
        return Decoded(events, counts, problems, reset, msg)

    def _reject_reason(self, msg: wire.EventPacketMsg, counts: dict) -> Optional[str]:
        """Why a packet cannot be decoded at all (counting the reason), or None."""
        if msg.is_bigendian:
            counts['big_endian'] = 1
            return 'is_bigendian is true (payloads are decoded as little endian only)'
        if msg.encoding not in self.codecs:
            counts['unknown_encoding'] = 1
            return (f'unknown encoding {msg.encoding!r} (known: '
                    f'{", ".join(sorted(self.codecs))})')
        size = (int(msg.width), int(msg.height))
        if self.size is None:
            if 0 in size:
                counts['size_changes'] = 1
                return f'sensor size {size[0]}x{size[1]} is empty'
            self.size = size
        elif size != self.size:
            counts['size_changes'] = 1
            return (f'sensor size {size[0]}x{size[1]} differs from the stream\'s '
                    f'{self.size[0]}x{self.size[1]}')
        return None

    def _codec_for(self, encoding: str, counts: dict, problems: list) -> Codec:
        if encoding != self.encoding:
            if self.encoding is not None:
                counts['encoding_changes'] = 1
                problems.append(f'encoding changed from {self.encoding!r} to {encoding!r}')
            self.encoding = encoding
            self._codec = self.codecs[encoding]()
        return self._codec

    def _check_seq(self, seq: int, counts: dict, problems: list) -> bool:
        last, self._seq = self._seq, int(seq)
        if last is None or seq == last + 1:
            return False
        if seq > last:
            counts['seq_gaps'] = 1
            counts['seq_missing'] = seq - last - 1
            problems.append(f'seq jumped from {last} to {seq}: {seq - last - 1} messages lost')
            return False
        counts['seq_back'] = 1
        problems.append(f'seq went back from {last} to {seq} (driver restart or bag loop)')
        return True

    def _check_time_base(self, time_base: int, counts: dict, problems: list) -> bool:
        last, self._time_base = self._time_base, int(time_base)
        if last is not None and time_base < last:
            counts['time_base_back'] = 1
            problems.append(f'time_base went back from {last} to {time_base} ns')
            return True
        return False

    def _add(self, counts: dict) -> None:
        for key, value in counts.items():
            if value:
                self.counts[key] += value


_DROP_LINES = {
    'beyond_sensor': 'events beyond the sensor dropped',
    'truncated_bytes': 'bytes of a truncated payload dropped',
    'unknown_words': 'words with an undefined code not decoded',
    'bad_time': 'events with a negative timestamp dropped',
    'no_time': 'events before the stream had a time skipped',
}


def _drop_lines(counts: dict, seq: int) -> list[str]:
    """One problem line per kind of event-level drop in a packet (triggers are expected)."""
    return [f'packet seq {seq}: {counts[k]} {text}' for k, text in _DROP_LINES.items()
            if counts[k]]
