"""EventPacket codecs: one decoder per encoding behind one interface, keyed by encoding name.

``CODECS[name]`` is a :class:`~stereospike_ros.io.codecs.base.Codec` class (``mono``,
``libcaer``, ``libcaer_cmp``, ``evt3``); :class:`EventPacketDecoder` is the per-stream object
the tools and the node call once per message (state, drop counters, seq and time_base checks).
The format rules follow ros-event-camera/event_camera_codecs; decoding is numpy only.
"""
from stereospike_ros.io.codecs.base import COUNT_KEYS, COUNTERS, Codec, CodecError
from stereospike_ros.io.codecs.evt3 import Evt3Codec
from stereospike_ros.io.codecs.libcaer import LibcaerCodec
from stereospike_ros.io.codecs.libcaer_cmp import LibcaerCmpCodec
from stereospike_ros.io.codecs.mono import MonoCodec
from stereospike_ros.io.codecs.stream import Decoded, EventPacketDecoder

#: Codec class of each encoding name (the ``encoding`` field of an EventPacket).
CODECS: dict[str, type[Codec]] = {
    c.name: c for c in (LibcaerCmpCodec, LibcaerCodec, Evt3Codec, MonoCodec)}
ENCODINGS = tuple(CODECS)

__all__ = ['CODECS', 'COUNTERS', 'COUNT_KEYS', 'Codec', 'CodecError', 'Decoded', 'ENCODINGS',
           'EventPacketDecoder']
