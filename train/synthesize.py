"""Generate a synthetic MVSEC-format stereo event sequence with exact depth ground truth.

Example: ``python train/synthesize.py --out data/synth --seconds 5 --seed 1 --name synth1
--bags ros1,mcap`` writes ``synth1_data.hdf5``, ``synth1_gt.hdf5``, ``synth1_calib/`` and bags.
"""
from __future__ import annotations

import argparse
import sys

from stereospike_ros.offline.synthetic import (BAG_FORMATS, DEFAULT_DISTORTION, SCENES,
                                               SyntheticConfig, generate)


def parse_bags(text: str) -> tuple[str, ...]:
    """``'ros1,mcap'`` -> ``('ros1', 'mcap')``, validated."""
    names = tuple(n.strip() for n in text.split(',') if n.strip())
    bad = [n for n in names if n not in BAG_FORMATS]
    if bad:
        raise argparse.ArgumentTypeError(f'unknown bag formats {bad}; choose from {BAG_FORMATS}')
    return names


def build_parser() -> argparse.ArgumentParser:
    """The command-line options."""
    d = SyntheticConfig()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--out', required=True, help='output folder')
    p.add_argument('--seconds', type=float, required=True, help='sequence length (s)')
    p.add_argument('--seed', type=int, default=0, help='random seed (same seed, same bytes)')
    p.add_argument('--name', default=d.name, help='sequence name (file prefix)')
    p.add_argument('--bags', type=parse_bags, default=(),
                   help=f'also write bags: comma-separated subset of {",".join(BAG_FORMATS)}')
    p.add_argument('--scene', choices=SCENES, default=d.scene)
    p.add_argument('--wall-depth', type=float, default=d.wall_depth,
                   help="'wall' scene: distance of the fronto-parallel wall (m)")
    p.add_argument('--boxes', type=int, default=d.boxes, help="'room' scene: number of boxes")
    p.add_argument('--distortion-model', choices=tuple(DEFAULT_DISTORTION),
                   default=d.distortion_model)
    p.add_argument('--render-hz', type=float, default=d.render_hz)
    p.add_argument('--threshold', type=float, default=d.threshold, help='contrast threshold')
    p.add_argument('--noise-rate', type=float, default=d.noise_rate_hz,
                   help='background activity per pixel (Hz)')
    p.add_argument('--message-ms', type=float, default=d.message_ms,
                   help='bag EventArray length (ms)')
    p.add_argument('--overwrite', action='store_true', help='replace existing outputs')
    p.add_argument('--quiet', action='store_true', help='no progress bar')
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the generator; print the written paths."""
    args = build_parser().parse_args(argv)
    config = SyntheticConfig(
        seconds=args.seconds, seed=args.seed, name=args.name, scene=args.scene,
        wall_depth=args.wall_depth, boxes=args.boxes, distortion_model=args.distortion_model,
        render_hz=args.render_hz, threshold=args.threshold, noise_rate_hz=args.noise_rate,
        message_ms=args.message_ms, bags=args.bags)
    try:
        paths = generate(args.out, config, progress=not args.quiet, overwrite=args.overwrite)
    except (ValueError, FileExistsError, OSError) as exc:
        print(f'synthesize: error: {exc}', file=sys.stderr)
        return 2
    for key, path in paths.items():
        print(f'{key}: {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
