"""Export a checkpoint to ONNX (spikes as a plain step), checked against PyTorch before writing.

    python train/export.py --checkpoint runs/split1/best.pt --out stereospike.onnx
    python train/export.py --checkpoint best.pt --out model.onnx --height 260 --width 346 \
        --dynamic-batch

The graph takes float32 event counts ``counts`` (B, C, H, W) (C = 4, or 2 for a monocular net)
and returns ``depth`` (B, H, W) in metres (the finest readout) first, then depth2..depth4. The
export is run in ONNX Runtime on random counts and refused (nothing written) when its depth
differs from PyTorch's by more than 1e-3 m. TensorRT: ``trtexec --onnx=MODEL.onnx`` (README).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from stereospike_ros.io.events import SENSOR_HEIGHT, SENSOR_WIDTH
from stereospike_ros.nn.checkpoint import load_checkpoint
from stereospike_ros.nn.export import PARITY_TOLERANCE_M, export_onnx
from stereospike_ros.offline import cli

PROG = 'export.py'


def build_parser() -> argparse.ArgumentParser:
    """Command line of the exporter."""
    p = cli.ArgumentParser(prog=PROG, description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--checkpoint', required=True, type=Path, help='.pt checkpoint to export')
    p.add_argument('--out', required=True, type=Path, help='ONNX file to write (.onnx)')
    p.add_argument('--height', type=cli.number(int, 1, 8192), default=SENSOR_HEIGHT,
                   help='input height in pixels')
    p.add_argument('--width', type=cli.number(int, 1, 8192), default=SENSOR_WIDTH,
                   help='input width in pixels')
    p.add_argument('--dynamic-batch', action='store_true',
                   help='any batch size (default: batch 1)')
    p.add_argument('--seed', type=cli.count, default=0, help='seed of the random check input')
    p.add_argument('--overwrite', action='store_true', help='replace an existing --out file')
    return p


def main(argv: list[str] | None = None) -> int:
    """Export and check; prints the max |diff|. Exit status as every tool (README, "Errors and
    safety"): 2 for the command line, 1 for a bad checkpoint or a failed check."""
    return cli.run(_main, argv, prog=PROG)


def _main(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    cli.existing_file(args.checkpoint, '--checkpoint')
    if args.out.suffix.lower() != '.onnx':
        raise cli.UsageError(f'--out {args.out}: the output file name must end in .onnx')
    cli.output_file(args.out, overwrite=args.overwrite,
                    inputs=(('--checkpoint', args.checkpoint),))
    model, _ = load_checkpoint(args.checkpoint, 'cpu')
    report = export_onnx(model, args.out, args.height, args.width, args.dynamic_batch,
                         overwrite=args.overwrite, seed=args.seed)
    print(f'max |diff| vs PyTorch: {report["max_abs_diff_m"]:.3g} m '
          f'(limit {PARITY_TOLERANCE_M:g} m)')
    print(f'wrote {report["path"]} ({report["bytes"] / 1e6:.1f} MB): input counts '
          f'{tuple(report["input"])}, outputs {", ".join(report["outputs"])}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
