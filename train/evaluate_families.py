"""Per-family table of a checkpoint: ``train/evaluate.py --baseline`` on tensors files, grouped.

    python train/evaluate_families.py --checkpoint CKPT \
        --data data/scenes/tensors/{corridor,boards,poles}10{1,2}.h5

A file's family is its name without the trailing seed digits (``boards101.h5`` -> ``boards``).
Family rows average the per-frame metrics over all frames of the family's files (as evaluate.py
averages frames). Prints a Markdown table; ``--out`` also writes it with every summary as JSON.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import re
import sys
from pathlib import Path

from stereospike_ros.io import atomic
from stereospike_ros.offline import cli

ROOT = Path(__file__).resolve().parents[1]
PROG = 'evaluate_families.py'
PRODUCTS = ('table.md', 'summaries.json')
COLUMNS = ('frames', 'mde_cm', 'median_cm', 'disp_error', 'one_px', 'coverage')


def _evaluate_module():
    spec = importlib.util.spec_from_file_location('_stereospike_evaluate',
                                                  ROOT / 'train' / 'evaluate.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def family_of(path: Path) -> str:
    """``boards101.h5`` -> ``boards``."""
    return re.sub(r'\d+$', '', path.stem) or path.stem


def combine(summaries: list[dict]) -> dict:
    """Frame-weighted means of the table's metrics (and of the baseline's) over sequences."""
    n = sum(s['frames'] - s['frames_without_gt'] for s in summaries)
    out = {'frames': n}
    for k in COLUMNS[1:]:
        out[k] = sum(s[k] * (s['frames'] - s['frames_without_gt']) for s in summaries) / n
        out['baseline_' + k] = sum(s['baseline'][k] * (s['frames'] - s['frames_without_gt'])
                                   for s in summaries) / n
    # metrics score pixels with a valid prediction only; coverage says how many those are
    out['ratio'] = out['mde_cm'] / out['baseline_mde_cm']
    return out


def table(rows: dict) -> str:
    """Markdown table: one row per sequence or family."""
    lines = ['| data | frames | MDE | median | disparity error | 1-px accuracy | '
             'coverage | constant baseline MDE | MDE / baseline | targets met |',
             '|---|---|---|---|---|---|---|---|---|---|']
    for name, r in rows.items():
        met = r['ratio'] <= 0.5 and r['one_px'] >= 0.6
        lines.append(f'| {name} | {r["frames"]} | {r["mde_cm"]:.1f} cm | {r["median_cm"]:.1f} cm '
                     f'| {r["disp_error"]:.2f} px | {100 * r["one_px"]:.1f} % | '
                     f'{100 * r["coverage"]:.1f} % | {r["baseline_mde_cm"]:.1f} cm | '
                     f'{r["ratio"]:.2f} | {"yes" if met else "no"} |')
    return '\n'.join(lines)


def main(argv: list[str] | None = None) -> dict:
    """Evaluate every file, print the per-sequence and per-family table."""
    p = cli.ArgumentParser(prog=PROG, description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--checkpoint', required=True, type=Path)
    p.add_argument('--data', required=True, nargs='+', type=Path, help='tensors files')
    p.add_argument('--out', type=Path, help='folder for table.md and summaries.json')
    p.add_argument('--overwrite', action='store_true', help='replace an existing table')
    p.add_argument('--device', type=cli.device, default='auto')
    p.add_argument('--quiet', action='store_true')
    args = p.parse_args(argv)
    cli.existing_file(args.checkpoint, '--checkpoint')
    for path in args.data:
        cli.existing_file(path, '--data')
    if args.out:
        cli.output_dir(args.out, PRODUCTS, overwrite=args.overwrite)
    evaluate = _evaluate_module()
    per_file, families = {}, {}
    for path in args.data:
        opts = ['--checkpoint', str(args.checkpoint), '--data', str(path), '--baseline',
                '--device', args.device] + (['--quiet'] if args.quiet else [])
        per_file[path.stem] = evaluate.main(opts)
        families.setdefault(family_of(path), []).append(per_file[path.stem])
    rows = {name: combine([s]) for name, s in per_file.items()}
    rows.update({f'**{f}** (all)': combine(s) for f, s in families.items()})
    text = table(rows)
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        atomic.write_text(args.out / 'table.md', text + '\n')
        atomic.write_text(args.out / 'summaries.json', json.dumps(per_file, indent=2))
    return {'files': per_file, 'rows': rows}


if __name__ == '__main__':
    sys.exit(cli.run(main, prog=PROG))
