"""Convert one MVSEC sequence (HDF5 pair or ROS 1/ROS 2 bags) into one StereoSpike tensors file.

Example: ``python train/convert.py --data indoor_flying1_data.hdf5 --gt indoor_flying1_gt.hdf5
--calib indoor_flying_calib --split 1 --out data/`` (a folder: the file gets the name
``splits.split_datasets`` looks for, here ``data/indoor_flying1_139-1201.h5``). An existing
output is replaced only with ``--overwrite``; mistakes give one ``error:`` line (README).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from stereospike_ros.io.events import UNSORTED_POLICIES
from stereospike_ros.io.mvsec import MVSEC_TOPICS
from stereospike_ros.io.tensors import COMPRESSIONS
from stereospike_ros.offline import cli, conversion, splits
from stereospike_ros.windowing.encoding import ROUNDING_MODES
from stereospike_ros.windowing.reference import WINDOW_MODES


def parse_crop(text: str) -> tuple[int, int]:
    """``'A:B'`` -> ``(A, B)``, a half-open depth-frame range."""
    try:
        a, b = (int(v) for v in text.split(':'))
    except ValueError:
        raise argparse.ArgumentTypeError(f'crop must be A:B with integers, not {text!r}')
    if a < 0 or b <= a:
        raise argparse.ArgumentTypeError(f'crop {text!r}: need 0 <= A < B')
    return a, b


PROG = 'convert.py'


def build_parser() -> argparse.ArgumentParser:
    """The command-line options."""
    p = cli.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    p.add_argument('--data', required=True, help='NAME_data.hdf5, a ROS 1 .bag or a ROS 2 bag dir')
    p.add_argument('--gt', required=True, help='NAME_gt.hdf5, a ROS 1 .bag or a ROS 2 bag dir')
    p.add_argument('--calib', required=True,
                   help="calibration folder or camchain yaml; 'identity' if already rectified")
    p.add_argument('--out', required=True,
                   help='output tensors file (.h5), or a folder (existing, or written with a '
                        'trailing /; with --split or --crop: named SEQUENCE_A-B.h5 as the '
                        'splits expect)')
    p.add_argument('--overwrite', action='store_true', help='replace an existing output file')
    crop = p.add_mutually_exclusive_group()
    crop.add_argument('--split', type=int, choices=sorted(splits.SPLITS),
                      help='use the crop of --sequence in this split')
    crop.add_argument('--crop', type=parse_crop, help='depth frames A:B (half-open)')
    p.add_argument('--sequence', type=cli.plain_name,
                   help='sequence name (default: from the --data file name)')
    p.add_argument('--window-ms', type=cli.positive, default=50.0)
    p.add_argument('--window-mode', choices=WINDOW_MODES, default='reference')
    p.add_argument('--rounding', choices=ROUNDING_MODES, default='truncate')
    p.add_argument('--no-hole-filling', action='store_true',
                   help='keep the ground truth as is (no area closing)')
    p.add_argument('--left-topic', default=MVSEC_TOPICS['left_events'],
                   help='left event topic of a bag: dvs_msgs/EventArray or '
                        'event_camera_msgs/EventPacket (libcaer_driver, metavision_driver)')
    p.add_argument('--right-topic', default=MVSEC_TOPICS['right_events'],
                   help='right event topic (same types)')
    p.add_argument('--depth-topic', default=MVSEC_TOPICS['left_depth'])
    p.add_argument('--unsorted', choices=UNSORTED_POLICIES, default='error',
                   help='events whose time goes backwards: stop with an error, or drop them')
    p.add_argument('--compression', choices=COMPRESSIONS, default='gzip')
    p.add_argument('--quiet', action='store_true', help='no progress bars')
    return p


def output_path(args: argparse.Namespace) -> Path:
    """``--out`` as given, or inside a folder the split's file name of the sequence; checked."""
    sequence = args.sequence or conversion.sequence_name(args.data)
    crop = args.crop
    if args.split is not None:
        try:
            crop = splits.crop_for(args.split, sequence)
        except splits.SplitError as exc:
            raise cli.UsageError(f'--split {args.split}: {exc} (name it with --sequence)') \
                from None
    out = Path(args.out)
    if cli.names_folder(args.out):
        if crop is None:
            raise cli.UsageError(f'--out {args.out}: is a folder; give a file name, or '
                                 f'--split/--crop so the file can be named after the sequence '
                                 f'and crop')
        out = out / splits.tensors_filename(sequence, crop)
    return cli.output_file(out, overwrite=args.overwrite, inputs=(
        ('--data', args.data), ('--gt', args.gt), ('--calib', args.calib)))


def main(argv: list[str] | None = None) -> int:
    """Run the conversion and print its summary; errors raise (see :func:`cli.run`)."""
    args = build_parser().parse_args(argv)
    for flag in ('data', 'gt'):
        cli.existing_path(getattr(args, flag), f'--{flag}')
    if args.calib != 'identity':
        cli.existing_path(args.calib, '--calib')
    args.out = output_path(args)
    topics = {'left_events': args.left_topic, 'right_events': args.right_topic,
              'left_depth': args.depth_topic}
    with cli.made_dirs(args.out.parent):
        summary = conversion.convert_sequence(
            args.data, args.gt, args.calib, args.out, sequence=args.sequence, crop=args.crop,
            split=args.split, window_ms=args.window_ms, window_mode=args.window_mode,
            rounding=args.rounding, hole_filling=not args.no_hole_filling, topics=topics,
            compression=args.compression, unsorted=args.unsorted, progress=not args.quiet)
    print(conversion.format_summary(summary))
    for warning in summary['warnings']:
        cli.report(PROG, 'warning', warning)
    return 0


if __name__ == '__main__':
    sys.exit(cli.run(main, prog=PROG))
