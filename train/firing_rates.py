"""Firing rate of every spiking layer of a checkpoint over a tensors file (table, CSV, JSON).

Example::

    python train/firing_rates.py --checkpoint runs/split1/best.pt --data f.h5 --out eval/

Rate = fraction of non-zero entries of the layer's spike tensor, averaged over the frames;
also reported: encoder (bottom..conv4), bottleneck and decoder (deconv4..1) averages weighted by
neuron count, as in the paper's 8.1 % / 23.5 % figures. ``firing_rates.csv`` / ``.json`` in
``--out`` are replaced only with ``--overwrite``.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path

import torch
from tqdm import tqdm

from stereospike_ros.io import atomic
from stereospike_ros.nn.checkpoint import load_checkpoint
from stereospike_ros.offline import cli
from stereospike_ros.offline.dataset import TensorsDataset, left_out_warning
from stereospike_ros.nn.inference import resolve_device
from stereospike_ros.nn.model import StereoSpike

PROG = 'firing_rates.py'
PRODUCTS = ('firing_rates.csv', 'firing_rates.json')

GROUPS = {'encoder': ('bottom', 'conv1', 'conv2', 'conv3', 'conv4'),
          'bottleneck': tuple(n for n in StereoSpike.SPIKE_LAYERS if n.startswith('bottleneck')),
          'decoder': ('deconv4', 'deconv3', 'deconv2', 'deconv1')}


def layer_firing_rates(model: StereoSpike, dataset: TensorsDataset, device: torch.device,
                       max_frames: int = 0, quiet: bool = True,
                       source: str = 'this checkpoint') -> list[dict]:
    """Rows ``{layer, neurons, rate}`` (rate averaged over frames) plus group rows."""
    if not model.is_spiking:
        raise cli.ToolError(f'{source}: firing rates need a spiking model (this checkpoint '
                            f'holds an ANN)')
    if max_frames < 0:
        raise ValueError(f'max_frames must be >= 0, not {max_frames}')
    model.eval()
    n = len(dataset) if not max_frames else min(max_frames, len(dataset))
    if n == 0:
        raise cli.ToolError(f'{getattr(dataset, "path", "data")}: no frames to measure')
    totals = None
    neurons = None
    with torch.inference_mode():
        for i in tqdm(range(n), desc='firing rates', disable=quiet):
            x = dataset[i][0][None].to(device)
            spikes = model(x).spikes
            rates = torch.stack([(s != 0).float().mean() for s in spikes]).double().cpu()
            totals = rates if totals is None else totals + rates
            neurons = [s[0].numel() for s in spikes]
    rates = (totals / n).tolist()
    rows = [{'layer': name, 'neurons': k, 'rate': r}
            for name, k, r in zip(StereoSpike.SPIKE_LAYERS, neurons, rates)]
    for group, names in GROUPS.items():
        sel = [r for r in rows if r['layer'] in names]
        k = sum(r['neurons'] for r in sel)
        rows.append({'layer': group, 'neurons': k,
                     'rate': sum(r['rate'] * r['neurons'] for r in sel) / k})
    k = sum(r['neurons'] for r in rows[:len(StereoSpike.SPIKE_LAYERS)])
    rows.append({'layer': 'all', 'neurons': k,
                 'rate': sum(r['rate'] * r['neurons']
                             for r in rows[:len(StereoSpike.SPIKE_LAYERS)]) / k})
    return rows


def main(argv: list[str] | None = None) -> list[dict]:
    """Measure, print the table, write ``firing_rates.csv``/``.json`` into ``--out``."""
    p = cli.ArgumentParser(prog=PROG, description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--checkpoint', required=True, type=Path)
    p.add_argument('--data', required=True, type=Path, help='tensors file')
    p.add_argument('--out', type=Path, help='folder for firing_rates.csv and .json')
    p.add_argument('--overwrite', action='store_true', help='replace existing outputs')
    p.add_argument('--max-frames', type=cli.count, default=0, help='0 = every frame')
    p.add_argument('--device', type=cli.device, default='auto')
    p.add_argument('--quiet', action='store_true')
    args = p.parse_args(argv)
    cli.existing_file(args.checkpoint, '--checkpoint')
    cli.existing_file(args.data, '--data')
    if args.out:
        cli.output_dir(args.out, PRODUCTS, overwrite=args.overwrite,
                       inputs=(('--checkpoint', args.checkpoint), ('--data', args.data)))
    dataset = TensorsDataset(str(args.data))
    if (line := left_out_warning(dataset)) is not None:
        cli.report(PROG, 'warning', line)
    device = resolve_device(args.device)
    model, _ = load_checkpoint(args.checkpoint, device)
    rows = layer_firing_rates(model, dataset, device, args.max_frames, args.quiet,
                              str(args.checkpoint))
    print(f'{"layer":<22}{"neurons":>12}{"rate %":>10}')
    for r in rows:
        print(f'{r["layer"]:<22}{r["neurons"]:>12,}{100 * r["rate"]:>10.2f}')
    if args.out:
        with cli.made_dirs(args.out):
            buf = io.StringIO()
            w = csv.DictWriter(buf, fieldnames=['layer', 'neurons', 'rate'])
            w.writeheader()
            w.writerows(rows)
            atomic.write_text(args.out / PRODUCTS[0], buf.getvalue())
            atomic.write_text(args.out / PRODUCTS[1], json.dumps(rows, indent=2))
    return rows


if __name__ == '__main__':
    sys.exit(cli.run(main, prog=PROG))
