"""Generate a synthetic MVSEC-format stereo event sequence with exact depth ground truth.

Example: ``python train/synthesize.py --out data/synth --seconds 5 --seed 1 --name synth1
--bags ros1,mcap`` writes ``synth1_data.hdf5``, ``synth1_gt.hdf5``, ``synth1_calib/`` and bags
(existing ones are replaced only with ``--overwrite``).
``--family corridor`` renders a randomised scene family instead (see offline/scenes.py; the
family draws the sensor settings from the seed, so --scene/--threshold/--noise-rate do not apply).
"""
from __future__ import annotations

import argparse
import sys

from stereospike_ros.offline import cli
from stereospike_ros.offline.scenes import FAMILIES, family_config, make_world
from stereospike_ros.offline.synthetic import (BAG_FORMATS, DEFAULT_DISTORTION, SCENES,
                                               SyntheticConfig, SyntheticConfigError, generate,
                                               output_names)

PROG = 'synthesize.py'


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
    p = cli.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    p.add_argument('--out', required=True, help='output folder (created when missing)')
    p.add_argument('--seconds', type=cli.positive, required=True, help='sequence length (s)')
    p.add_argument('--seed', type=cli.count, default=0,
                   help='random seed (same seed, same bytes)')
    p.add_argument('--name', type=cli.plain_name, default=d.name,
                   help='sequence name (file prefix)')
    p.add_argument('--bags', type=parse_bags, default=(),
                   help=f'also write bags: comma-separated subset of {",".join(BAG_FORMATS)}')
    p.add_argument('--scene', choices=SCENES, default=d.scene)
    p.add_argument('--family', choices=FAMILIES,
                   help='randomised scene family (rig motion and sensor effects from the seed)')
    p.add_argument('--wall-depth', type=cli.positive, default=d.wall_depth,
                   help="'wall' scene: distance of the fronto-parallel wall (m)")
    p.add_argument('--boxes', type=cli.count, default=d.boxes,
                   help="'room' scene: number of boxes")
    p.add_argument('--distortion-model', choices=tuple(DEFAULT_DISTORTION),
                   default=d.distortion_model)
    p.add_argument('--render-hz', type=cli.positive, default=d.render_hz)
    p.add_argument('--threshold', type=cli.positive, default=d.threshold,
                   help='contrast threshold')
    p.add_argument('--noise-rate', type=cli.non_negative, default=d.noise_rate_hz,
                   help='background activity per pixel (Hz)')
    p.add_argument('--message-ms', type=cli.positive, default=d.message_ms,
                   help='bag EventArray length (ms)')
    p.add_argument('--overwrite', action='store_true', help='replace existing outputs')
    p.add_argument('--quiet', action='store_true', help='no progress bar')
    return p


FIELD_OPTIONS = {'noise_rate_hz': 'noise_rate'}   # config field -> option dest


def main(argv: list[str] | None = None) -> int:
    """Run the generator; print the written paths. Errors raise (see :func:`cli.run`)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.family:
        config = family_config(args.family, args.seed, args.seconds,
                               args.name if args.name != SyntheticConfig.name else None,
                               bags=args.bags)
    else:
        config = SyntheticConfig(
            seconds=args.seconds, seed=args.seed, name=args.name, scene=args.scene,
            wall_depth=args.wall_depth, boxes=args.boxes, distortion_model=args.distortion_model,
            render_hz=args.render_hz, threshold=args.threshold, noise_rate_hz=args.noise_rate,
            message_ms=args.message_ms, bags=args.bags)
    try:
        config.validate()
    except SyntheticConfigError as exc:
        flag = cli.option_name(parser, FIELD_OPTIONS.get(exc.field, exc.field))
        raise cli.UsageError(f'{flag}: {exc.reason}') from None
    world = make_world(args.family, config) if args.family else None
    cli.output_dir(args.out, output_names(config).values(), overwrite=args.overwrite)
    with cli.made_dirs(args.out):
        paths = generate(args.out, config, progress=not args.quiet, overwrite=args.overwrite,
                         world=world)
    for key, path in paths.items():
        print(f'{key}: {path}')
    return 0


if __name__ == '__main__':
    sys.exit(cli.run(main, prog=PROG))
