"""Export one event topic of a bag to HDF5 datasets ``x``, ``y``, ``t``, ``p``.

``python -m stereospike_ros.export_events BAG --topic TOPIC --out FILE.h5``: any bag (ROS 1,
ROS 2 sqlite3 or mcap) whose topic is dvs_msgs/EventArray or event_camera_msgs/EventPacket (any
encoding the codecs know). One row per event in message order: ``x``, ``y`` uint16, ``t`` int64
ns (for EventPackets exactly as event_camera_codecs reports it: ``time_base`` plus in-packet
offsets, evt3 sensor time), ``p`` uint8 0/1. Attributes name the source, the encoding(s), the
sensor size, the message count and every drop counter (seq gaps, events beyond the sensor,
triggers, ...). The file is written atomically; an existing one is replaced only with
``--overwrite``; mistakes give one ``error:`` line (README, "Errors and safety"). Offline
tooling: never imports rclpy.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Optional

import h5py
import numpy as np
from tqdm import tqdm

from stereospike_ros.io import atomic, bags
from stereospike_ros.io.codecs import COUNT_KEYS
from stereospike_ros.io.errors import InputError
from stereospike_ros.io.events import Events
from stereospike_ros.offline import cli

#: Rows written to the HDF5 file at a time (bounded memory for any bag size).
FLUSH_EVENTS = 1 << 20
FIELDS = (('x', np.uint16), ('y', np.uint16), ('t', np.int64), ('p', np.uint8))
PROG = 'export_events'


class ExportError(InputError):
    """A bad export request or input; the message names the file and the problem."""


class _Rows:
    """Resizable x/y/t/p datasets filled in blocks (chunked, gzip level 1)."""

    def __init__(self, file: h5py.File) -> None:
        self.sets = {name: file.create_dataset(name, (0,), dtype, maxshape=(None,),
                                               chunks=(1 << 16,), compression='gzip',
                                               compression_opts=1, shuffle=True)
                     for name, dtype in FIELDS}
        self.parts: list = []
        self.pending = 0
        self.rows = 0

    def add(self, events: Events) -> None:
        if len(events):
            self.parts.append(events)
            self.pending += len(events)
            if self.pending >= FLUSH_EVENTS:
                self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        stop = self.rows + self.pending
        block = Events.concatenate(self.parts)
        for name, dtype in FIELDS:
            data = self.sets[name]
            data.resize((stop,))
            data[self.rows:stop] = getattr(block, name).astype(dtype, copy=False)
        self.rows = stop
        self.parts, self.pending = [], 0


def export_events(bag: str | os.PathLike, topic: str, out: str | os.PathLike, *,
                  overwrite: bool = False, skip_bad: bool = False,
                  progress: bool = True) -> dict:
    """Write ``topic`` of ``bag`` to the HDF5 file ``out``; returns the summary (attributes).

    EventPacket packets that cannot be decoded at all (malformed, unknown encoding, big endian,
    sensor size changing, times beyond int64) stop the export with an error naming the message,
    unless ``skip_bad``: then they are skipped and counted.
    """
    out = Path(os.fspath(out))
    if out.is_dir():
        raise ExportError(f'{out}: is a folder; give the output file name')
    if out.exists() and not overwrite:
        raise ExportError(f'{out}: exists already (pass --overwrite to replace it)')
    if not out.parent.is_dir():
        raise ExportError(f'{out}: output folder {out.parent} does not exist')
    types = bags.topic_types(bag)
    if topic not in types:
        raise ExportError(f'{bag}: topic {topic!r} not in bag (topics: '
                          f'{", ".join(sorted(types))})')
    if types[topic] not in bags.EVENT_TYPES:
        raise ExportError(f'{bag}: topic {topic} has type {types[topic]}, not an event type '
                          f'({", ".join(bags.EVENT_TYPES)})')
    total = bags.topic_counts(bag).get(topic)
    counts = dict.fromkeys(COUNT_KEYS, 0)
    summary: dict = {'source': os.path.abspath(os.fspath(bag)), 'topic': topic,
                     'message_type': types[topic], 'messages': 0, 'events': 0}
    encodings: list[str] = []
    sizes: set = set()
    problems = 0
    with atomic.atomic_path(out) as tmp, h5py.File(tmp, 'w') as file:
        rows = _Rows(file)
        bar = tqdm(total=total, desc=f'export {topic}', unit='msg', disable=not progress,
                   file=sys.stderr)
        with bar:
            for _, events, decoded in bags.iter_events(bag, topic, strict=not skip_bad):
                bar.update()
                summary['messages'] += 1
                rows.add(events)
                if decoded is not None:
                    for key, value in decoded.counts.items():
                        counts[key] += value
                    msg = decoded.message
                    if msg is not None and not decoded.rejected:
                        if msg.encoding not in encodings:
                            encodings.append(msg.encoding)
                        sizes.add((int(msg.width), int(msg.height)))
                    for line in decoded.problems:
                        problems += 1
                        if problems <= 20:
                            bar.write(f'export_events: {bag}: {topic}: {line}', file=sys.stderr)
            rows.flush()
        summary['events'] = rows.rows
        if len(sizes) == 1:
            (summary['width'], summary['height']), = sizes
        summary['encoding'] = ','.join(encodings) if encodings else 'dvs_msgs'
        if types[topic] in bags.PACKET_TYPES:
            summary.update(counts, events=rows.rows)
        for key, value in summary.items():
            file.attrs[key] = value
    return summary


def build_parser() -> argparse.ArgumentParser:
    """The command-line options."""
    p = cli.ArgumentParser(prog=PROG, description=__doc__.split('\n\n')[0])
    p.add_argument('bag', help='ROS 1 .bag file, ROS 2 bag folder, .db3 or .mcap')
    p.add_argument('--topic', required=True, help='event topic (EventArray or EventPacket)')
    p.add_argument('--out', required=True, help='output HDF5 file')
    p.add_argument('--overwrite', action='store_true', help='replace an existing --out file')
    p.add_argument('--skip-bad', action='store_true',
                   help='skip (and count) EventPackets that cannot be decoded instead of stopping')
    p.add_argument('--quiet', action='store_true', help='no progress bar')
    return p


def main(argv: Optional[list] = None) -> int:
    """Run the export. Exit status as every tool (:mod:`cli`): 2 for the command line (a missing
    bag, a topic it lacks, an existing output), 1 for a bag or packet that cannot be read."""
    return cli.run(_main, argv, prog=PROG)


def _main(argv: Optional[list]) -> int:
    args = build_parser().parse_args(argv)
    cli.existing_path(args.bag, 'bag')
    out = cli.output_file(args.out, overwrite=args.overwrite, inputs=(('bag', args.bag),))
    types = bags.topic_types(args.bag)
    if args.topic not in types:
        raise cli.UsageError(f'--topic {args.topic!r}: not in {args.bag} (topics: '
                             f'{", ".join(sorted(types))})')
    if types[args.topic] not in bags.EVENT_TYPES:
        raise cli.UsageError(f'--topic {args.topic}: has type {types[args.topic]}, not an event '
                             f'type ({", ".join(bags.EVENT_TYPES)})')
    with cli.made_dirs(out.parent):
        summary = export_events(args.bag, args.topic, out, overwrite=args.overwrite,
                                skip_bad=args.skip_bad, progress=not args.quiet)
    drops = {k: summary[k] for k in COUNT_KEYS
             if k not in ('packets', 'events') and summary.get(k)}
    print(f'{PROG}: {summary["events"]} events from {summary["messages"]} messages '
          f'({summary["encoding"]}) -> {args.out}' +
          (f'; {", ".join(f"{k} {v}" for k, v in drops.items())}' if drops else ''))
    return 0
