"""Evaluate a checkpoint on a tensors file: paper + DDES metrics, summary JSON, per-frame CSV.

Examples::

    python train/evaluate.py --checkpoint runs/split1/best.pt --data f.h5 --out eval/ --png 8
    python train/evaluate.py --checkpoint best.pt --split 1 --data-root tensors --baseline

``--split N`` with ``--data-root`` evaluates split N's test (or ``--subset val``) set instead.
Predictions (``--save-predictions``: ``depth`` (N,H,W) float32, NaN where invalid exactly as
the node publishes them, plus ``frame_indices``/``timestamps``) are written atomically;
``--png N`` draws N evenly spaced panels (events, prediction, ground truth, error) into
``--out``. Existing outputs are replaced only with ``--overwrite``; windows without events in a
camera are left out (README, "Errors and safety").
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path

import h5py
import numpy as np
from tqdm import tqdm

from stereospike_ros.io import atomic
from stereospike_ros.io.tensors import TensorsFile
from stereospike_ros.nn.depth import mask_invalid, valid_mask
from stereospike_ros.nn.inference import Predictor
from stereospike_ros.nn.metrics import frame_metrics, metric_names, summarize
from stereospike_ros.offline import cli
from stereospike_ros.offline.dataset import TensorsDataset, left_out, left_out_warning
from stereospike_ros.offline.splits import split_datasets

PROG = 'evaluate.py'


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line, with every path checked before any work."""
    p = cli.ArgumentParser(prog=PROG, description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--checkpoint', required=True, type=Path)
    p.add_argument('--data', type=Path, help='tensors file (all frames are evaluated)')
    p.add_argument('--data-root', type=Path, help='with --split: folder of tensors files')
    p.add_argument('--split', type=int, choices=(1, 2, 3))
    p.add_argument('--subset', default='test', choices=('test', 'val'))
    p.add_argument('--out', type=Path, help='folder for summary.json, frames.csv and PNGs')
    p.add_argument('--save-predictions', type=Path, help='HDF5 file for the predicted depth')
    p.add_argument('--overwrite', action='store_true', help='replace existing outputs')
    p.add_argument('--png', type=cli.count, default=0,
                   help='number of PNG panels to draw (needs --out)')
    p.add_argument('--batch-size', type=cli.positive_count, default=4)
    p.add_argument('--device', type=cli.device, default='auto')
    p.add_argument('--half', action='store_true', help='fp16 on CUDA')
    p.add_argument('--baseline', action='store_true',
                   help='also score a constant prediction equal to the mean valid ground-truth '
                        'depth of the evaluated frames (a baseline that sees the answer)')
    p.add_argument('--quiet', action='store_true')
    args = p.parse_args(argv)
    if (args.data is None) == (args.split is None):
        p.error('give either --data FILE or --split N with --data-root')
    if args.split is not None and args.data_root is None:
        p.error('--split needs --data-root')
    if args.png and args.out is None:
        p.error('--png needs --out (the folder for the panels)')
    cli.existing_file(args.checkpoint, '--checkpoint')
    if args.data is not None:
        cli.existing_file(args.data, '--data')
    elif not args.data_root.is_dir():
        raise cli.UsageError(f'--data-root {args.data_root}: no such folder')
    inputs = (('--checkpoint', args.checkpoint), ('--data', args.data))
    if args.out is not None:
        products = ['summary.json', 'frames.csv'] + (['frame_*.png'] if args.png else [])
        cli.output_dir(args.out, products, overwrite=args.overwrite, inputs=inputs)
    if args.save_predictions is not None:
        cli.output_file(args.save_predictions, overwrite=args.overwrite,
                        flag='--save-predictions', inputs=inputs)
    return args


def _frames(args: argparse.Namespace) -> tuple[TensorsDataset, np.ndarray, np.ndarray]:
    """(dataset, per-frame ids, timestamps) of what to evaluate."""
    if args.data is not None:
        ds = TensorsDataset(str(args.data))
    else:
        ds = split_datasets(args.data_root, args.split)[args.subset]
    with TensorsFile(ds.path) as tf:
        ids, ts = tf.frame_indices[ds.rows], tf.timestamps[ds.rows]
    return ds, ids, ts


def _atomic_h5(path: Path, arrays: dict) -> None:
    with atomic.atomic_path(path) as tmp:
        with h5py.File(tmp, 'w') as f:
            for k, v in arrays.items():
                f.create_dataset(k, data=v)


def draw_panel(path: Path, counts: np.ndarray, pred: np.ndarray, gt: np.ndarray,
               title: str) -> None:
    """PNG with events (left ON-OFF), prediction, ground truth and |error| side by side."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    finite = np.isfinite(gt)
    vmax = float(np.nanmax(gt)) if finite.any() else float(np.nanmax(pred, initial=1.0))
    ev = counts[0].astype(np.float32) - counts[1].astype(np.float32)
    lim = max(1.0, float(np.abs(ev).max()))
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.4))
    panels = [(ev, 'events L (ON-OFF)', 'bwr', -lim, lim),
              (pred, 'prediction (m)', 'magma_r', 0, vmax),
              (np.where(finite, gt, np.nan), 'ground truth (m)', 'magma_r', 0, vmax),
              (np.where(finite, np.abs(pred - gt), np.nan), '|error| (m)', 'viridis', 0, None)]
    for ax, (img, name, cmap, lo, hi) in zip(axes, panels):
        im = ax.imshow(img, cmap=cmap, vmin=lo, vmax=hi)
        ax.set_title(name)
        ax.axis('off')
        fig.colorbar(im, ax=ax, fraction=0.035)
    fig.suptitle(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format='png', dpi=80)
    plt.close(fig)
    atomic.write_bytes(path, buf.getvalue())


def constant_baseline(dataset: TensorsDataset, quiet: bool = True) -> dict:
    """Metrics of predicting everywhere the mean valid ground-truth depth of ``dataset``."""
    total, count = 0.0, 0

    def frames():                             # ground truth only: the inputs are not needed
        for i in tqdm(range(len(dataset)), desc='baseline', disable=quiet):
            yield dataset.depth(i)
    for gt in frames():
        valid = valid_mask(gt)
        total += float(gt[valid].sum(dtype=np.float64))
        count += int(valid.sum())
    if count == 0:
        raise cli.ToolError(f'{dataset.path}: no valid ground truth for the constant-depth '
                            f'baseline')
    depth = total / count
    parts = [frame_metrics(np.full_like(g, depth), g) for g in frames()]
    summary = summarize({k: np.concatenate([p[k] for p in parts]) for k in parts[0]})
    summary['depth_m'] = depth
    return summary


def main(argv: list[str] | None = None) -> dict:
    """Evaluate; returns the summary dict (also printed and written to OUT/summary.json)."""
    args = parse_args(argv)
    dataset, ids, stamps = _frames(args)
    if (line := left_out_warning(dataset)) is not None:
        cli.report(PROG, 'warning', line)
    n = len(dataset)
    if n == 0:
        raise cli.ToolError(f'{args.data or args.data_root}: nothing to evaluate (0 frames)')
    predictor = Predictor(str(args.checkpoint), device=args.device, half=args.half,
                          warmup_shape=None)
    if args.half and predictor.device.type != 'cuda':
        cli.report(PROG, 'note', f'--half is used on CUDA only; evaluating float32 on '
                                 f'{predictor.device}')
    if args.out:
        with cli.made_dirs(args.out):
            return _evaluate(args, predictor, dataset, ids, stamps)
    return _evaluate(args, predictor, dataset, ids, stamps)


def _evaluate(args, predictor, dataset, ids, stamps) -> dict:
    n = len(dataset)
    png_rows = set(np.linspace(0, n - 1, args.png).round().astype(int).tolist()) \
        if args.png > 0 else set()
    keep = args.save_predictions is not None
    preds = np.empty((n,) + tuple(dataset[0][1].shape), np.float32) if keep else None
    parts = []
    for start in tqdm(range(0, n, args.batch_size), desc='evaluate', disable=args.quiet):
        rows = range(start, min(n, start + args.batch_size))
        samples = [dataset[i] for i in rows]
        counts = np.stack([s[0].numpy() for s in samples])
        gt = np.stack([s[1].numpy() for s in samples])
        pred = mask_invalid(predictor.predict(counts))    # as the node publishes it
        parts.append(frame_metrics(pred, gt))
        if keep:
            preds[start:start + len(rows)] = pred
        for j, i in enumerate(rows):
            if i in png_rows and args.out:
                draw_panel(args.out / f'frame_{int(ids[i]):06d}.png', counts[j], pred[j],
                           gt[j], f'{args.checkpoint.name}: frame {int(ids[i])}')
    per_frame = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    try:
        summary = summarize(per_frame)
    except ValueError as exc:
        raise cli.ToolError(f'{args.data or args.data_root}: {exc}') from None
    summary.update({'checkpoint': str(args.checkpoint), 'data': str(args.data or args.data_root),
                    'model': predictor.config.to_dict(),
                    'windows_left_out': sum(k for _, k in left_out(dataset))})
    if args.baseline:
        summary['baseline'] = constant_baseline(dataset, args.quiet)
        print(f'constant-depth baseline ({summary["baseline"]["depth_m"]:.3f} m): '
              f'MDE {summary["baseline"]["mde_cm"]:.2f} cm')
    print(f'{summary["frames"]} frames ({summary["frames_without_gt"]} without GT): '
          f'MDE {summary["mde_cm"]:.2f} cm, median {summary["median_cm"]:.2f} cm, '
          f'disparity error {summary["disp_error"]:.3f} px, 1PA {100 * summary["one_px"]:.1f} %, '
          f'coverage {100 * summary["coverage"]:.1f} %, '
          + ', '.join(f'MDE@{k[4:]}m {summary[k + "_cm"]:.2f} cm'
                      for k in summary if k.startswith('mde_') and not k.endswith('cm')))
    if keep:
        _atomic_h5(args.save_predictions, {'depth': preds, 'frame_indices': np.asarray(ids),
                                           'timestamps': np.asarray(stamps, np.float64)})
    if args.out:
        atomic.write_text(args.out / 'summary.json', json.dumps(summary, indent=2))
        buf = io.StringIO()
        w = csv.writer(buf)
        names = metric_names() + ['valid_pixels']
        w.writerow(['row', 'frame_index', 'timestamp'] + names)
        for i in range(n):
            w.writerow([i, int(ids[i]), repr(float(stamps[i]))]
                       + [repr(float(per_frame[k][i])) for k in names])
        atomic.write_text(args.out / 'frames.csv', buf.getvalue())
    return summary


if __name__ == '__main__':
    sys.exit(cli.run(main, prog=PROG))
