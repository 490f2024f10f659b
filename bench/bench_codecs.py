"""EventPacket decoder throughput per encoding, one core: numpy codecs vs per-event Python loops.

Each encoding decodes a stream of realistic packets from a camera at about 5 M events/s (DAVIS346
for the libcaer formats, a 1280x720 sensor for evt3; bursts of events sharing a time and a
column, or a row for evt3, as sensors read out), made by the codecs' own encoders, in two message
sizes: 1 ms (libcaer_driver's default message period, ~5,000 events) and ~30,000 events (the
message of bench_wire). Rows give M events/s of this thread's CPU time (best of several batches,
through the per-stream decoder the node and the tools use) and the ratio to the plain per-event
loop of the same format (``codecs.loops``) measured in the same run.
"""
from __future__ import annotations

import os
import sys
import time

for _var in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS'):
    os.environ.setdefault(_var, '1')

import numpy as np  # noqa: E402  (thread counts are set first)

from bench_wire import best_rate  # noqa: E402
from stereospike_ros.io import wire  # noqa: E402
from stereospike_ros.io.codecs import CODECS, EventPacketDecoder  # noqa: E402
from stereospike_ros.io.codecs.base import new_counts  # noqa: E402
from stereospike_ros.io.codecs.loops import LOOPS  # noqa: E402
from stereospike_ros.io.events import Events  # noqa: E402

#: Targets of issue 10 in M events/s, one core.
TARGETS = {'libcaer': 100.0, 'libcaer_cmp': 20.0, 'evt3': 20.0, 'mono': 20.0}
SENSORS = {'libcaer': (346, 260), 'libcaer_cmp': (346, 260), 'mono': (346, 260),
           'evt3': (1280, 720)}
RATE = 5_000_000          # events/s of the simulated camera
PACKET_US = 1000          # one message per ms
TIME_BASE = 1_700_000_000 * 10 ** 9


def camera_events(n: int, width: int, height: int, by_row: bool, seed: int = 0) -> Events:
    """A sensor-like stream: bursts of 1-8 events at one time stamp sharing a column (DAVIS
    readout; rows for evt3 sensors) with nearby other coordinates and one polarity."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 9, n)
    sizes = sizes[:np.searchsorted(np.cumsum(sizes), n) + 1]
    sizes[-1] -= sizes.sum() - n
    bursts = len(sizes)
    burst_us = np.cumsum(rng.poisson(sizes.mean() * 1e6 / RATE, bursts))
    fixed = rng.integers(0, height if by_row else width, bursts)
    start = rng.integers(0, (width if by_row else height) - 16, bursts)
    pol = rng.random(bursts) < 0.5
    burst = np.repeat(np.arange(bursts), sizes)
    rank = np.arange(n) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    vary = start[burst] + rank * rng.integers(1, 3, n)
    x, y = (vary, fixed[burst]) if by_row else (fixed[burst], vary)
    return Events(x.astype(np.uint16), y.astype(np.uint16),
                  burst_us[burst].astype(np.int64) * 1000, pol[burst])


def make_packets(encoding: str, n_packets: int, packet_us: int = PACKET_US,
                 seed: int = 0) -> tuple[list, int]:
    """EventPacket messages of one camera (``packet_us`` each) and their total event count."""
    width, height = SENSORS[encoding]
    events = camera_events(RATE * packet_us * n_packets // 10 ** 6, width, height,
                           by_row=encoding == 'evt3', seed=seed)
    codec = CODECS[encoding]
    bounds = np.searchsorted(events.t, np.arange(n_packets + 1) * packet_us * 1000)
    packets = []
    for k in range(n_packets):
        part = events[bounds[k]:bounds[k + 1]]
        base = TIME_BASE + k * packet_us * 1000
        if encoding == 'evt3':
            payload = codec.encode(part)
        else:
            part = Events(part.x, part.y, part.t + TIME_BASE, part.p)
            payload = codec.encode(part, base)
        packets.append(wire.EventPacketMsg(base, 'camera', height, width, k, base, encoding,
                                           False, np.frombuffer(payload, np.uint8)))
    return packets, int(bounds[-1])


def _decode_all(decoder_factory, packets: list) -> int:
    decoder = decoder_factory()
    return sum(len(decoder.decode(m).events) for m in packets)


def _loop_all(encoding: str, packets: list) -> int:
    loop = LOOPS[encoding]()
    counts = new_counts()
    return sum(len(loop.decode(m.events, m.time_base, m.width, m.height, counts))
               for m in packets)


def run(quick: bool = False) -> list[dict]:
    """Time each encoding's decoder (two message sizes) and its per-event loop."""
    seconds = 0.6 if quick else 3.0
    rows = []
    for encoding in ('libcaer', 'libcaer_cmp', 'evt3', 'mono'):
        base = None
        for packet_us, n_packets in ((PACKET_US, 20 if quick else 60), (6 * PACKET_US, 8)):
            packets, n = make_packets(encoding, n_packets, packet_us)
            # the decoder must agree with the loop before either is timed
            fast = Events.concatenate([EventPacketDecoder().decode(m).events for m in packets])
            if base is None:
                loop = LOOPS[encoding]()
                slow = Events.concatenate([loop.decode(m.events, m.time_base, m.width,
                                                       m.height, new_counts())
                                           for m in packets])
                assert len(fast) == n and all(np.array_equal(getattr(fast, f),
                                                             getattr(slow, f)) for f in 'xytp')
                few = packets[:2]
                n_few = sum(len(EventPacketDecoder().decode(m).events) for m in few)
                base = best_rate(lambda: _loop_all(encoding, few), n_few, seconds,
                                 min_batches=2, clock=time.thread_time)
            payload = sum(len(m.events) for m in packets)
            rate = best_rate(lambda: _decode_all(EventPacketDecoder, packets), n, seconds,
                             clock=time.thread_time)
            rows.append({'encoding': encoding, 'events/msg': n // len(packets),
                         'bytes/event': payload / n, 'M events/s': rate,
                         'loop M events/s': base, 'x loop': rate / base,
                         'target': f'>= {TARGETS[encoding]:g}',
                         'met': rate >= TARGETS[encoding]})
    return rows


def main() -> None:
    """Print one line per encoding."""
    for row in run('--quick' in sys.argv):
        print(f"{row['encoding']:12s} {row['events/msg']:6d}/msg "
              f"{row['M events/s']:8.1f} M events/s "
              f"(loop {row['loop M events/s']:.2f}, x{row['x loop']:.0f}; "
              f"{row['bytes/event']:.2f} B/event; target {row['target']}: {row['met']})")


if __name__ == '__main__':
    main()
