"""Train StereoSpike on tensors files; read top to bottom: config, data, model, loop, checkpoints.

Defaults are the reference code's hyper-parameters (Adam 2e-4, betas 0.9/0.999, MultiStepLR [8, 42,
60] x 0.5, 70 epochs, batch 1, seed 2021). Writes ``best.pt`` (lowest validation MDE; ``--select
one_px``: highest one-pixel accuracy) and ``last.pt`` atomically, TensorBoard scalars + a depth
preview each epoch, ``train_log.csv`` (a row per step) and ``summary.json``. ``--resume last.pt``
continues exactly where a run stopped (RNG states, the per-epoch shuffle and the position inside
the epoch are restored). A folder that holds an earlier run is refused unless ``--overwrite``
(which deletes that run's files first) or ``--resume`` of that run's ``last.pt``; mistakes give one
``error:`` line (README).

Data parallel: under ``torchrun`` each process trains on its shard of every epoch
(``DistributedSampler``) with DistributedDataParallel (``nccl`` on CUDA, one GPU per process by
LOCAL_RANK; ``gloo`` on the CPU); ``--batch-size`` is per process and the loss pools its
statistics over the global batch, as one process with the global batch would. Only rank 0
writes; resume needs the same world size.

    python train/train.py --split 1 --data-root data/tensors --out runs/split1
    python train/train.py --train-files a.h5 --val-files b.h5 --width 0.25 --epochs 3
    torchrun --nproc-per-node 4 train/train.py --split 1 --data-root data/tensors --out runs/s1
    python train/train.py ... --crop 128 192    # random crops: about 3.7x fewer pixels a step
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import random
import sys
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import ConcatDataset, DataLoader, Dataset
from torch.utils.data.distributed import DistributedSampler
from tqdm import tqdm

from stereospike_ros.io import atomic
from stereospike_ros.nn.checkpoint import read_checkpoint, save_checkpoint
from stereospike_ros.nn.depth import valid_mask
from stereospike_ros.nn.inference import resolve_device
from stereospike_ros.offline import cli
from stereospike_ros.offline.dataset import TensorsDataset, left_out_warning
from stereospike_ros.nn.loss import stereospike_loss
from stereospike_ros.nn.metrics import MetricAccumulator, firing_rates
from stereospike_ros.nn.model import StereoSpike, build_model, count_parameters

PROG = 'train.py'
#: best.pt's rule: a validation score to minimise (one-pixel accuracy: the stereo metric).
SELECT = {'mde': lambda m: m['mde'], 'one_px': lambda m: -m['one_px']}
#: What a run writes into ``--out`` (an earlier run's are replaced only with --overwrite).
PRODUCTS = ('best.pt', 'last.pt', 'train_log.csv', 'summary.json', 'tb/events.out.tfevents.*')

# ----------------------------------------------------------------------------------------------
# data: tensors files (inputs uint16 (N,4,H,W), depth float32 (N,H,W), timestamps, frame_indices)


def build_datasets(args: argparse.Namespace) -> tuple[Dataset, Dataset]:
    """Train and validation sets from explicit files or from ``--data-root`` + ``--split``."""
    if args.train_files:
        train = ConcatDataset([TensorsDataset(p) for p in args.train_files])
        val = ConcatDataset([TensorsDataset(p) for p in args.val_files])
        return train, val
    from stereospike_ros.offline.splits import split_datasets
    sets = split_datasets(args.data_root, args.split)
    return sets['train'], sets['val']


def random_crop(x: torch.Tensor, gt: torch.Tensor, size: tuple[int, int] | None
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """The same random ``size`` window of each sample's inputs and depth (None: unchanged).

    The network is fully convolutional, so training on crops is cheaper per step; left and right
    channels are cut at the same columns, so the stereo geometry of the window is unchanged.
    """
    if size is None:
        return x, gt
    h, w = int(size[0]), int(size[1])
    if h >= x.shape[-2] and w >= x.shape[-1]:
        return x, gt
    h, w = min(h, x.shape[-2]), min(w, x.shape[-1])
    ys = torch.randint(0, x.shape[-2] - h + 1, (len(x),)).tolist()
    xs = torch.randint(0, x.shape[-1] - w + 1, (len(x),)).tolist()
    return (torch.stack([s[..., y:y + h, c:c + w] for s, y, c in zip(x, ys, xs)]),
            torch.stack([g[y:y + h, c:c + w] for g, y, c in zip(gt, ys, xs)]))


def check_has_ground_truth(dataset: Dataset, name: str, quiet: bool = True) -> int:
    """Read every ground-truth frame (negative depth is an error) and count those with a valid
    pixel; fail before training when there is none."""
    valid = 0
    parts = getattr(dataset, 'datasets', [dataset])
    with tqdm(total=len(dataset), desc=f'{name} ground truth', disable=quiet) as bar:
        for part in parts:
            for i in range(len(part)):
                valid += bool(valid_mask(part.depth(i)).any())
                bar.update(1)
    if not valid:
        raise cli.ToolError(f'{name} set ({len(dataset)} frames) has no valid ground truth '
                            f'(all NaN)')
    return valid


# ----------------------------------------------------------------------------------------------
# configuration

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line (+ optional YAML ``--config`` whose keys are option names)."""
    p = cli.ArgumentParser(prog=PROG, description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--config', type=Path, help='YAML file of option defaults')
    p.add_argument('--split', type=int, default=1, choices=(1, 2, 3))
    p.add_argument('--data-root', type=Path)
    p.add_argument('--train-files', nargs='+', type=Path)
    p.add_argument('--val-files', nargs='+', type=Path)
    p.add_argument('--epochs', type=cli.positive_count, default=70)
    p.add_argument('--lr', type=cli.positive, default=2e-4)
    p.add_argument('--betas', type=cli.number(float, 0, 1, high_open=True), nargs=2,
                   default=(0.9, 0.999))
    p.add_argument('--milestones', type=cli.count, nargs='*', default=[8, 42, 60])
    p.add_argument('--gamma', type=cli.positive, default=0.5)
    p.add_argument('--batch-size', type=cli.positive_count, default=1)
    p.add_argument('--seed', type=cli.count, default=2021)
    p.add_argument('--device', type=cli.device, default='auto',
                   help="'auto', 'cpu', 'cuda', 'cuda:1', ...")
    p.add_argument('--variant', default='binocular', choices=('binocular', 'monocular'))
    p.add_argument('--network', default='snn', choices=('snn', 'ann'))
    p.add_argument('--activation', default='sigmoid', choices=('sigmoid', 'tanh', 'leakyrelu'))
    p.add_argument('--width', type=cli.positive, default=1.0, help='channel multiplier')
    p.add_argument('--surrogate', default='reference', choices=('reference', 'atan', 'sigmoid'))
    p.add_argument('--spike-penalty', type=cli.non_negative, default=0.0,
                   help='beta of the spike penalty')
    p.add_argument('--l1-weight', type=cli.non_negative, default=0.0,
                   help='NON-reference scale-pinning L1 term weight')
    p.add_argument('--disp-weight', type=cli.non_negative, default=0.0,
                   help='NON-reference disparity L1 term weight (px; near pixels weigh most)')
    p.add_argument('--out', type=Path, default=Path('runs/stereospike'))
    p.add_argument('--overwrite', action='store_true',
                   help="delete an earlier run's files in --out and start afresh")
    p.add_argument('--resume', type=Path, help='checkpoint (last.pt) to continue from')
    p.add_argument('--select', default='mde', choices=tuple(SELECT),
                   help="best.pt's epoch: lowest validation MDE, or highest one-pixel accuracy")
    p.add_argument('--init', type=Path, help='start from these weights (fresh optimizer)')
    p.add_argument('--crop', type=cli.number(int, 16), nargs=2, metavar=('H', 'W'),
                   help='train on random H x W crops (validation stays full frame)')
    p.add_argument('--max-steps-per-epoch', type=cli.count, default=0, help='0 = whole epoch')
    p.add_argument('--max-val-frames', type=cli.count, default=0,
                   help='0 = whole validation set')
    p.add_argument('--time-limit', type=cli.non_negative, default=0.0,
                   help='minutes; save last.pt (resumable) and stop when exceeded')
    p.add_argument('--stop-after-steps', type=cli.count, default=0,
                   help='stop after this many steps of this run (resumable; for smoke tests)')
    p.add_argument('--num-workers', type=cli.count, default=0)
    p.add_argument('--amp', default='none', choices=('none', 'bf16', 'fp16'))
    p.add_argument('--deterministic', action='store_true')
    p.add_argument('--no-tensorboard', action='store_true')
    p.add_argument('--quiet', action='store_true', help='no progress bars')
    return cli.parse_with_config(p, argv)   # command line wins over the YAML file


def check_args(args: argparse.Namespace, check_out: bool = True) -> None:
    """Before any work: option combinations, inputs exist, ``--out`` holds no other run (checked
    by the process that writes, ``check_out``)."""
    usage = cli.UsageError
    if args.resume and args.init:
        raise usage('--resume continues a run with its own weights, --init starts a new one: '
                    'give one of them')
    if args.train_files and not args.val_files:
        raise usage('--train-files needs --val-files (model selection uses validation)')
    if args.val_files and not args.train_files:
        raise usage('--val-files needs --train-files')
    if not args.train_files and not args.data_root:
        raise usage('give --train-files and --val-files, or --data-root with --split')
    if args.amp == 'fp16' and resolve_device(args.device).type != 'cuda':
        raise usage('--amp fp16 needs CUDA (use bf16 on CPU)')
    for flag in ('train_files', 'val_files'):
        for path in getattr(args, flag) or ():
            cli.existing_file(path, '--' + flag.replace('_', '-'))
    if args.data_root and not args.train_files and not args.data_root.is_dir():
        raise cli.UsageError(f'--data-root {args.data_root}: no such folder')
    for flag in ('resume', 'init'):
        if getattr(args, flag):
            cli.existing_file(getattr(args, flag), '--' + flag)
    inputs = [('--resume', args.resume), ('--init', args.init)]
    inputs += [('--train-files', f) for f in args.train_files or ()]
    inputs += [('--val-files', f) for f in args.val_files or ()]
    args.same_run = bool(args.resume) and args.out.is_dir() and \
        args.resume.resolve().parent == args.out.resolve()
    if not check_out:
        return
    if args.same_run:      # continuing this folder's own run: its files are ours to extend
        cli.output_dir(args.out, (), overwrite=True)
    else:
        cli.output_dir(args.out, PRODUCTS, overwrite=args.overwrite, inputs=inputs)


def _jsonable(args) -> dict:
    return {k: (str(v) if isinstance(v, Path) else
                [str(x) for x in v] if isinstance(v, (list, tuple)) else v)
            for k, v in vars(args).items()}


# ----------------------------------------------------------------------------------------------
# RNG state in checkpoint-safe types (weights_only=True loads tensors, dicts, lists, tuples, ...)

def rng_state(all_cuda: bool = True) -> dict:
    """torch, numpy and python RNG states as tensors/tuples (CUDA: every device, or only the
    current one, as a data-parallel process must not touch the other processes' GPUs)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {'torch': torch.get_rng_state(), 'python': random.getstate(),
             'numpy': {'kind': kind, 'keys': torch.from_numpy(keys.astype(np.int64)),
                       'pos': int(pos), 'has_gauss': int(has_gauss), 'gauss': float(gauss)}}
    if torch.cuda.is_available():
        state['cuda'] = torch.cuda.get_rng_state_all() if all_cuda else \
            [torch.cuda.get_rng_state()]
    return state


def set_rng_state(state: dict, all_cuda: bool = True) -> None:
    """Inverse of :func:`rng_state` (same ``all_cuda``)."""
    torch.set_rng_state(state['torch'])
    random.setstate(state['python'])
    n = state['numpy']
    np.random.set_state((n['kind'], n['keys'].numpy().astype(np.uint32), n['pos'],
                         n['has_gauss'], n['gauss']))
    if 'cuda' in state and torch.cuda.is_available():
        if all_cuda:
            torch.cuda.set_rng_state_all(state['cuda'])
        else:
            torch.cuda.set_rng_state(state['cuda'][0])


def epoch_order(n: int, seed: int, epoch: int, rank: int = 0, world_size: int = 1) -> list[int]:
    """This process's frames of one epoch: a function of (seed, epoch, rank, world size) only,
    so resume can replay it. One process: a permutation of all ``n``; ``DistributedSampler``
    deals it out to the ranks (padded to equal shares)."""
    sampler = DistributedSampler(range(n), num_replicas=world_size, rank=rank, shuffle=True,
                                 seed=seed * 1000)
    sampler.set_epoch(epoch)
    return list(sampler)


# ----------------------------------------------------------------------------------------------
# data parallel (torchrun): one process per device, the same steps everywhere, rank 0 writes

class Parallel(NamedTuple):
    """This process's place in a ``torchrun`` job; rank 0 of 1 without torchrun."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> 'Parallel':
        """From torchrun's RANK, WORLD_SIZE and LOCAL_RANK environment variables."""
        try:
            par = cls(int(os.environ.get('RANK', 0)), int(os.environ.get('WORLD_SIZE', 1)),
                      int(os.environ.get('LOCAL_RANK', 0)))
        except ValueError:
            raise cli.UsageError('RANK, WORLD_SIZE and LOCAL_RANK must be integers (torchrun '
                                 'sets them)') from None
        if not 0 <= par.rank < par.world_size:
            raise cli.UsageError(f'RANK {par.rank} is not in [0, WORLD_SIZE {par.world_size})')
        return par

    @property
    def enabled(self) -> bool:
        """True when several processes train together."""
        return self.world_size > 1

    @property
    def main(self) -> bool:
        """Rank 0: the one process that prints and writes."""
        return self.rank == 0

    def start(self, device: torch.device) -> torch.device:
        """Join the process group (nccl on CUDA, gloo on CPU); returns this process's device."""
        if device.type == 'cuda':
            if device.index is not None:
                raise cli.UsageError(f'--device {device} with torchrun: each process uses the '
                                     'GPU of its LOCAL_RANK; give --device cuda or auto (and '
                                     'choose GPUs with CUDA_VISIBLE_DEVICES)')
            device = torch.device('cuda', self.local_rank)
            torch.cuda.set_device(device)
        dist.init_process_group('nccl' if device.type == 'cuda' else 'gloo')
        return device


class _SumOverRanks(torch.autograd.Function):
    """All-reduce sum whose gradient is summed back, so that DDP's averaging of the parameter
    gradients yields the gradient of the global-batch loss."""

    @staticmethod
    def forward(ctx, t: torch.Tensor) -> torch.Tensor:
        t = t.clone()
        dist.all_reduce(t)
        return t

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


def sum_over_ranks(t: torch.Tensor) -> torch.Tensor:
    """Differentiable sum of ``t`` over the processes (the loss's ``reduce``)."""
    return _SumOverRanks.apply(t)


# ----------------------------------------------------------------------------------------------
# validation

@torch.no_grad()
def validate(model: StereoSpike, loader: DataLoader, device: torch.device,
             amp_dtype: torch.dtype | None, channels_last: bool, max_frames: int = 0,
             quiet: bool = True) -> tuple[dict, list[float], tuple[torch.Tensor, torch.Tensor]]:
    """Validation metrics (MDE etc.), mean loss, firing rates per layer and one preview pair."""
    model.eval()
    acc = MetricAccumulator()
    losses, rates, preview, seen = [], [], None, 0
    total = len(loader)
    if max_frames:
        total = min(total, math.ceil(max_frames / (loader.batch_size or 1)))
    for x, gt in tqdm(loader, desc='val', leave=False, disable=quiet, total=total):
        x, gt = x.to(device), gt.to(device)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            out = model(x)
        depths = [d.float() for d in out.depths]
        loss, info = stereospike_loss(depths, gt)
        if info.valid_pixels:
            losses.append(float(loss))
        acc.add(depths[-1], gt)
        rates.append(firing_rates(out.spikes))
        if preview is None:
            preview = (depths[-1][0].cpu(), gt[0].cpu())
        seen += len(x)
        if max_frames and seen >= max_frames:
            break
    summary = acc.summary()
    summary['loss'] = float(np.mean(losses)) if losses else float('nan')
    layer_rates = np.mean(rates, axis=0).tolist() if rates and rates[0] else []
    return summary, layer_rates, preview


def preview_image(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """(1, H, 2W) grey image: prediction | ground truth on a common depth scale (NaN black)."""
    g = gt.clone()
    finite = torch.isfinite(g)
    hi = float(g[finite].max()) if finite.any() else float(pred.max())
    both = torch.cat([pred.clamp(0, hi), torch.where(finite, g, torch.zeros_like(g))], dim=1)
    return (both / max(hi, 1e-6)).clamp(0, 1)[None]


# ----------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> dict:
    """Train; returns the summary (also written to ``OUT/summary.json`` by rank 0)."""
    args = parse_args(argv)
    par = Parallel.from_env()
    check_args(args, check_out=par.main)
    start_time = time.monotonic()

    # -- reproducibility and device
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    if args.deterministic:
        os.environ.setdefault('CUBLAS_WORKSPACE_CONFIG', ':4096:8')
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    device = resolve_device(args.device)
    if par.enabled:
        device = par.start(device)
    cuda = device.type == 'cuda'
    amp_dtype = {'none': None, 'bf16': torch.bfloat16, 'fp16': torch.float16}[args.amp]
    channels_last = cuda

    # -- data
    train_set, val_set = build_datasets(args)
    for dataset, role in ((train_set, 'training'), (val_set, 'validation')):
        if (line := left_out_warning(dataset)) is not None:
            cli.report(PROG, 'warning', f'{role} data: {line}')
    if len(train_set) == 0 or len(val_set) == 0:
        raise cli.ToolError(f'empty data: {len(train_set)} train / {len(val_set)} val frames')
    check_has_ground_truth(train_set, 'training', args.quiet)
    check_has_ground_truth(val_set, 'validation', args.quiet)
    val_loader = DataLoader(val_set, batch_size=args.batch_size, shuffle=False,
                            num_workers=args.num_workers, pin_memory=cuda)

    # -- model, optimiser, schedule
    model = build_model(variant=args.variant, width=args.width, surrogate=args.surrogate,
                        network=args.network, activation=args.activation).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, betas=tuple(args.betas))
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, args.milestones, args.gamma)
    scaler = torch.amp.GradScaler('cuda', enabled=amp_dtype is torch.float16)
    epoch, position, global_step = 0, 0, 0
    best_metrics: dict = {}    # validation metrics of best.pt's epoch (empty: none yet)

    if args.init:
        from stereospike_ros.nn.checkpoint import load_weights_into
        load_weights_into(model, args.init)
    if args.resume:
        ck = read_checkpoint(args.resume)
        if ck['model_config'] != model.config.to_dict():
            raise cli.UsageError(f'--resume {args.resume}: model config {ck["model_config"]} '
                                 f'differs from the command line {model.config.to_dict()}')
        model.load_state_dict(ck['state_dict'])
        meta = ck['meta']
        if 'optimizer' not in meta:
            raise cli.UsageError(f'--resume {args.resume}: no optimizer state; use --init for '
                                 f'weights only')
        optimizer.load_state_dict(meta['optimizer'])
        scheduler.load_state_dict(meta['scheduler'])
        scaler.load_state_dict(meta.get('scaler', scaler.state_dict()))
        if meta.get('world_size', 1) != par.world_size:
            raise cli.UsageError(f'--resume {args.resume}: written by '
                                 f'{meta.get("world_size", 1)} process(es), this run has '
                                 f'{par.world_size}: resume with the same world size')
        if meta.get('select', 'mde') != args.select:
            raise cli.UsageError(f'--resume {args.resume}: chose best.pt by '
                                 f'{meta.get("select", "mde")}, not --select {args.select}')
        epoch, position = meta['epoch'], meta['position']
        global_step = meta['global_step']
        best_metrics = meta.get('best_metrics', {})
        if 'best_metrics' not in meta and math.isfinite(meta.get('best_mde', math.inf)):
            best_metrics = {'mde': meta['best_mde']}       # a run written before --select
        set_rng_state(meta['rng'], all_cuda=not par.enabled)
    net = model
    if par.enabled:  # gradients averaged over the processes; rank 0's weights broadcast first
        net = DistributedDataParallel(model, device_ids=[device.index] if cuda else None)
    if par.main:
        print(f'model {model.config.to_dict()}: {count_parameters(model):,} parameters; '
              f'{len(train_set)} train / {len(val_set)} val frames; device {device}; '
              f'world_size {par.world_size}', flush=True)
        if not args.same_run:
            stale = cli.output_dir(args.out, PRODUCTS, overwrite=True)
            for path in stale:    # --overwrite: no file of the earlier run may mix with this one
                path.unlink()
            if stale:
                cli.report(PROG, 'note', f'--overwrite: deleted {len(stale)} file(s) of the '
                                         f'earlier run in {args.out}')
        args.out.mkdir(parents=True, exist_ok=True)

    writer = log_file = log = None
    if par.main and not args.no_tensorboard:
        from torch.utils.tensorboard import SummaryWriter
        writer = SummaryWriter(str(args.out / 'tb'))
    if par.main:
        log_path = args.out / 'train_log.csv'
        new_log = not (args.same_run and log_path.exists())
        log_file = open(log_path, 'w' if new_log else 'a', newline='')
        log = csv.writer(log_file)
        if new_log:
            log.writerow(['global_step', 'epoch', 'loss', 'skipped_frames', 'lr'])

    def checkpoint_meta(next_epoch, next_position, metrics):
        return {'epoch': next_epoch, 'position': next_position, 'global_step': global_step,
                'best_metrics': best_metrics, 'select': args.select,
                'metrics': metrics, 'seed': args.seed,
                'optimizer': optimizer.state_dict(), 'scheduler': scheduler.state_dict(),
                'scaler': scaler.state_dict(), 'rng': rng_state(all_cuda=not par.enabled),
                'args': _jsonable(args), 'world_size': par.world_size}

    # -- the loop
    skipped_total, steps_this_run, stopped, last_metrics = 0, 0, None, {}
    while epoch < args.epochs and stopped is None:
        order = epoch_order(len(train_set), args.seed, epoch, par.rank, par.world_size)
        n_batches = math.ceil(len(order) / args.batch_size)
        if args.max_steps_per_epoch:
            n_batches = min(n_batches, args.max_steps_per_epoch)
        remaining = order[position * args.batch_size:n_batches * args.batch_size]
        loader = DataLoader(train_set, batch_size=args.batch_size, sampler=remaining,
                            num_workers=args.num_workers, pin_memory=cuda)
        model.train()
        bar = tqdm(loader, desc=f'epoch {epoch}', initial=position, total=n_batches,
                   disable=args.quiet or not par.main)
        for x, gt in bar:
            x, gt = random_crop(x, gt, args.crop)
            x, gt = x.to(device, non_blocking=True), gt.to(device, non_blocking=True)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                out = net(x)
            loss, info = stereospike_loss([d.float() for d in out.depths], gt, out.spikes,
                                          beta=args.spike_penalty, l1_weight=args.l1_weight,
                                          disp_weight=args.disp_weight,
                                          reduce=sum_over_ranks if par.enabled else None)
            optimizer.zero_grad(set_to_none=True)
            if info.valid_pixels or par.enabled:  # every rank joins DDP's gradient all-reduce
                scaler.scale(loss).backward()
            if info.valid_pixels:
                scaler.step(optimizer)
                scaler.update()
            position += 1
            global_step += 1
            steps_this_run += 1
            if args.stop_after_steps and steps_this_run >= args.stop_after_steps:
                stopped = 'stop-after-steps'
            elif args.time_limit and time.monotonic() - start_time > args.time_limit * 60:
                stopped = 'time-limit'
            skipped = info.skipped_frames
            if par.enabled:  # one decision for all: a rank's clock may pass the limit first
                flags = torch.tensor([float(stopped is not None), float(skipped)], device=device)
                dist.all_reduce(flags)
                stopped = stopped or ('time-limit' if flags[0] > 0 else None)
                skipped = int(flags[1])
            skipped_total += skipped
            lr = optimizer.param_groups[0]['lr']
            if log:
                log.writerow([global_step, epoch, repr(float(loss.detach())), skipped, lr])
            if writer:
                writer.add_scalar("train/loss", float(loss.detach()), global_step)
            bar.set_postfix(loss=f"{float(loss.detach()):.4f}")
            if stopped and position < n_batches:
                break
        bar.close()
        if position < n_batches:  # interrupted inside the epoch: resumable from here
            if par.main:
                save_checkpoint(args.out / 'last.pt', model,
                                checkpoint_meta(epoch, position, last_metrics))
            break
        # -- end of epoch: schedule, validate, log, checkpoints
        scheduler.step()
        if par.enabled:  # every rank validates the same model (BatchNorm statistics of rank 0)
            for buffer in model.buffers():
                dist.broadcast(buffer, 0)
        metrics, layer_rates, preview = validate(model, val_loader, device, amp_dtype,
                                                 channels_last, args.max_val_frames, args.quiet)
        metrics['firing_rate'] = float(np.mean(layer_rates)) if layer_rates else 0.0
        metrics['layer_firing_rates'] = layer_rates
        last_metrics = metrics
        if par.main:
            print(f'epoch {epoch}: val MDE {metrics["mde_cm"]:.2f} cm, 1PA '
                  f'{100 * metrics["one_px"]:.1f} %, loss {metrics["loss"]:.4f}, firing '
                  f'{metrics["firing_rate"]:.3f}, lr {optimizer.param_groups[0]["lr"]:.2e}',
                  flush=True)
        if writer:
            writer.add_scalar('val/mde_cm', metrics['mde_cm'], epoch)
            writer.add_scalar('val/one_px', metrics['one_px'], epoch)
            writer.add_scalar('val/loss', metrics['loss'], epoch)
            writer.add_scalar('val/firing_rate', metrics['firing_rate'], epoch)
            writer.add_scalar('lr', optimizer.param_groups[0]['lr'], epoch)
            writer.add_image('val/prediction_vs_gt', preview_image(*preview), epoch)
            writer.flush()
        rule = SELECT[args.select]
        improved = rule(metrics) < (rule(best_metrics) if best_metrics else math.inf)
        if improved:
            best_metrics = {'epoch': epoch, **metrics}
        epoch, position = epoch + 1, 0
        if par.main:
            meta = checkpoint_meta(epoch, 0, metrics)
            save_checkpoint(args.out / 'last.pt', model, meta)
            if improved:
                save_checkpoint(args.out / 'best.pt', model, meta)
            log_file.flush()

    if log_file:
        log_file.close()
    if writer:
        writer.close()
    summary = {'epochs_done': epoch, 'global_step': global_step, 'select': args.select,
               'best_epoch': best_metrics.get('epoch'),
               'best_val_mde_cm': best_metrics['mde'] * 100 if best_metrics else None,
               'best_val_one_px': best_metrics.get('one_px'),
               'last_metrics': {k: v for k, v in last_metrics.items()},
               'skipped_frames_without_gt': skipped_total, 'stopped': stopped,
               'world_size': par.world_size, 'seconds': time.monotonic() - start_time}
    if par.main:
        atomic.write_text(args.out / 'summary.json', json.dumps(summary, indent=2))
    if par.enabled:
        dist.destroy_process_group()
    return summary


if __name__ == '__main__':
    sys.exit(cli.run(main, prog=PROG))
