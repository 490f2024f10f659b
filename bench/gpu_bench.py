"""GPU benchmark of StereoSpike: inference modes, training step, ONNX Runtime CUDA, node at 100 Hz.

One command on a CUDA machine; about 10 minutes (most of it torch.compile and the node runs):

    python bench/gpu_bench.py                 # everything; section "gpu_bench" of bench/results.md
    python bench/gpu_bench.py --smoke         # the same code on the CPU at toy size (a check)

Sections; each failing part becomes a row with its error, the others still run:

- inference, 260 x 346, batch 1, reference width: fp32, bf16/fp16 autocast, fp16 weights,
  channels_last, torch.compile, CUDA graph (median ms over ``--repeats``, CUDA events; mean |diff|
  against fp32);
- the Predictor, numpy counts in and depth out (wall time, copies included): torch fp32, torch
  fp16, and ONNX Runtime's CUDA provider when onnxruntime-gpu is installed (max |diff| vs torch);
- a training step, fp32 and bf16 autocast (spikingjelly neurons when installed);
- the depth node as its own process over DDS (needs rclpy and dvs_msgs): ``rate_hz`` 100 with
  50 ms sliding windows, 1 M events/s per camera, the reference-width net on the GPU (fp32, fp16,
  onnxruntime): end-to-end latency p50/p95 and windows dropped.

Needs torch and this repository; the ONNX and node parts are skipped (with a row saying why) when
their packages are missing. Without CUDA (and without ``--smoke``) it says so and exits 0.
"""
from __future__ import annotations

import argparse
import copy
import os
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from stereospike_ros.io import atomic
from stereospike_ros.io.events import SENSOR_HEIGHT, SENSOR_WIDTH
from stereospike_ros.nn.model import build_model, count_parameters, spikingjelly_available

HERE = Path(__file__).resolve().parent   # also on sys.path: bench_node and run_all import

SECTION = '## gpu_bench'


def _error(exc: BaseException) -> str:
    text = str(exc).splitlines()[0][:100] if str(exc) else ''
    return f'{type(exc).__name__}: {text}'


def _ms(fn, repeats: int, cuda: bool, warmup: int = 3) -> float:
    """Median milliseconds of ``fn()``: CUDA events on a GPU, wall clock on the CPU."""
    for _ in range(warmup):
        fn()
    times = []
    if cuda:
        torch.cuda.synchronize()
    for _ in range(repeats):
        if cuda:
            start, end = (torch.cuda.Event(enable_timing=True),
                          torch.cuda.Event(enable_timing=True))
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def _model(args, dev, **kw):
    torch.manual_seed(0)
    return build_model(width=args.width, **kw).to(dev).eval()


def inference_rows(args: argparse.Namespace, x32: torch.Tensor) -> list[dict]:
    """torch inference modes on device tensors (fp32 first: the others are compared with it)."""
    dev, cuda = x32.device, x32.device.type == 'cuda'
    rows: list[dict] = []
    base = _model(args, dev, neuron_backend='torch')
    ref = None

    def add(name, fn):
        nonlocal ref
        try:
            with torch.inference_mode():
                out = fn().float()
                ms = _ms(fn, args.repeats, cuda)
            diff = float((out - ref).abs().mean()) if ref is not None else 0.0
            ref = out if ref is None else ref
            rows.append({'test': f'inference {name}', 'ms': ms, 'mean |diff| m': diff})
        except Exception as exc:  # one failing mode must not hide the others
            rows.append({'test': f'inference {name}', 'ms': float('nan'), 'note': _error(exc)})

    add('fp32', lambda: base(x32).depths[-1])
    for name, dt in (('bf16 autocast', torch.bfloat16), ('fp16 autocast', torch.float16)):
        def autocast(dt=dt):
            with torch.autocast(dev.type, dtype=dt):
                return base(x32).depths[-1]
        add(name, autocast)
    half = _model(args, dev, neuron_backend='torch').half()
    xh = x32.half()
    add('fp16 weights', lambda: half(xh).depths[-1])
    cl = _model(args, dev, neuron_backend='torch').to(memory_format=torch.channels_last)
    xcl = x32.contiguous(memory_format=torch.channels_last)
    add('fp32 channels_last', lambda: cl(xcl).depths[-1])
    cl_half = _model(args, dev, neuron_backend='torch').half() \
        .to(memory_format=torch.channels_last)
    xcl_half = xcl.half()
    add('fp16 channels_last', lambda: cl_half(xcl_half).depths[-1])
    if not args.no_compile:
        compiled = torch.compile(base)
        add('torch.compile fp32', lambda: compiled(x32).depths[-1])
    if cuda:
        try:
            static_x = xh.clone()
            with torch.inference_mode():
                stream = torch.cuda.Stream()
                stream.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(stream):
                    for _ in range(3):
                        half(static_x)
                torch.cuda.current_stream().wait_stream(stream)
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph):
                    static_out = half(static_x).depths[-1]

            def replay():
                static_x.copy_(xh)
                graph.replay()
                return static_out
            add('CUDA graph fp16', replay)
        except Exception as exc:
            rows.append({'test': 'inference CUDA graph fp16', 'ms': float('nan'),
                         'note': _error(exc)})
    base_ms = rows[0]['ms']
    for r in rows:
        if r['ms'] == r['ms']:
            r['speedup vs fp32'] = base_ms / r['ms']
    return rows


def predictor_rows(args: argparse.Namespace, counts: np.ndarray, dev: torch.device) -> list[dict]:
    """The Predictor as the node runs it (numpy in, numpy out): torch fp32/fp16, onnxruntime."""
    from stereospike_ros.nn.export import ExportError, onnxruntime_module
    from stereospike_ros.nn.inference import Predictor
    cuda = dev.type == 'cuda'
    model = _model(args, 'cpu')
    shape = counts.shape[-2:]
    rows: list[dict] = []
    ref = Predictor(model=copy.deepcopy(model), device=str(dev), warmup_shape=shape)
    want = ref.predict(counts)
    cases = [('torch fp32', dict()), ('torch fp16', dict(half=True))]
    try:
        ort = onnxruntime_module()
        if cuda and 'CUDAExecutionProvider' not in ort.get_available_providers():
            raise ExportError('onnxruntime has no CUDA provider (pip install onnxruntime-gpu)')
        cases.append(('onnxruntime ' + ('CUDA' if cuda else 'CPU'), dict(backend='onnxruntime')))
    except ExportError as exc:
        rows.append({'test': 'Predictor onnxruntime', 'ms': float('nan'), 'note': _error(exc)})
    for name, kw in cases:
        try:
            if kw.get('half') and not cuda:
                raise ValueError('half runs on CUDA only')
            pred = ref if not kw else Predictor(model=copy.deepcopy(model), device=str(dev),
                                                warmup_shape=shape, **kw)
            diff = float(np.nanmax(np.abs(pred.predict(counts) - want)))
            ms = _ms(lambda: pred.predict(counts), args.repeats, cuda=False)
            rows.append({'test': f'Predictor {name} (numpy in/out)', 'ms': ms,
                         'max |diff| m': diff})
        except Exception as exc:
            rows.append({'test': f'Predictor {name}', 'ms': float('nan'), 'note': _error(exc)})
    base_ms = rows[0]['ms'] if rows and 'torch fp32' in rows[0]['test'] else float('nan')
    for r in rows:
        if r['ms'] == r['ms'] and base_ms == base_ms:
            r['speedup vs fp32'] = base_ms / r['ms']
    return rows


def training_rows(args: argparse.Namespace, x32: torch.Tensor) -> list[dict]:
    """One optimiser step (forward, loss, backward, Adam), fp32 and bf16 autocast."""
    dev, cuda = x32.device, x32.device.type == 'cuda'
    rows = []
    backend = 'spikingjelly' if spikingjelly_available() else 'torch'
    gt = torch.rand(x32.shape[0], *x32.shape[2:], device=dev) * 5 + 1
    for name, dt in (('fp32', None), ('bf16 autocast', torch.bfloat16)):
        model = _model(args, dev, neuron_backend=backend).train()
        opt = torch.optim.Adam(model.parameters(), lr=2e-4)

        def step():
            with torch.autocast(dev.type, dtype=dt, enabled=dt is not None):
                out = model(x32)
            loss = sum((d.float() - gt).abs().mean() for d in out.depths)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        try:
            rows.append({'test': f'train step {name} ({backend})',
                         'ms': _ms(step, max(3, args.repeats // 5), cuda)})
        except Exception as exc:
            rows.append({'test': f'train step {name}', 'ms': float('nan'), 'note': _error(exc)})
    return rows


def node_rows(args: argparse.Namespace, dev: torch.device) -> list[dict]:
    """The depth node at rate_hz 100 (50 ms sliding windows) on ``dev``, fed over real DDS."""
    try:
        import bench_node
        import dvs_msgs.msg  # noqa: F401
        import rclpy  # noqa: F401
    except ImportError as exc:
        return [{'test': 'node at 100 Hz', 'ms': float('nan'), 'note': _error(exc)}]
    from stereospike_ros.nn.checkpoint import save_checkpoint
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    os.environ.setdefault('ROS_DOMAIN_ID', str(random.SystemRandom().randint(101, 200)))
    cuda = dev.type == 'cuda'
    cases = [('fp32', dict())] + ([('fp16', dict(half=True))] if cuda else []) + \
        [('onnxruntime', dict(backend='onnxruntime'))]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(tmp) / 'net.pt'
        save_checkpoint(ckpt, _model(args, 'cpu'), {'note': 'gpu_bench, random weights'})
        for name, kw in cases:
            label = f'node rate_hz 100, 50 ms windows, width {args.width:g}, {dev.type} {name}'
            try:
                r = bench_node.bench_latency('raw', str(ckpt), args.node_rate, args.node_seconds,
                                             rate_hz=100.0, device=str(dev), what=label, **kw)
                rows.append({'test': label, 'p50 ms': r['p50 ms'], 'p95 ms': r['p95 ms'],
                             'windows': r['windows'],
                             'windows dropped': r['windows'] - r['depth received']})
            except Exception as exc:
                rows.append({'test': label, 'ms': float('nan'), 'note': _error(exc)})
    return rows


def _table(rows: list[dict]) -> str:
    """Markdown table of ``rows``, the error notes in the last column."""
    from run_all import format_table
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols and k != 'note']
    if any('note' in r for r in rows):
        cols.append('note')
    return format_table([{c: rows[0].get(c, '') for c in cols}] + rows[1:])


def write_results(rows: list[dict], path: Path, machine: str) -> None:
    """Put the ``gpu_bench`` section (replacing an earlier one) into ``path``, atomically."""
    text = path.read_text() if path.exists() else '# Benchmark results\n'
    text = re.sub(rf'\n{SECTION}\n.*?(?=\n## |\Z)', '', text, flags=re.S).rstrip('\n')
    section = (f'{SECTION}\n\n{__doc__.splitlines()[0]}\n\nMachine: {machine}\n'
               f'Run: {time.strftime("%Y-%m-%d %H:%M")}\n\n{_table(rows)}\n')
    atomic.write_text(path, f'{text}\n\n{section}')


def main(argv: list[str] | None = None) -> int:
    """Run the sections (or the CPU smoke pass), print the table, write the results section."""
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--batch', type=int, default=1)
    p.add_argument('--repeats', type=int, default=50)
    p.add_argument('--height', type=int, default=SENSOR_HEIGHT)
    p.add_argument('--width-px', type=int, default=SENSOR_WIDTH, dest='width_px')
    p.add_argument('--width', type=float, default=1.0, help='channel multiplier of the net')
    p.add_argument('--node-rate', type=float, default=1e6, help='events/s per camera')
    p.add_argument('--node-seconds', type=float, default=5.0)
    p.add_argument('--no-compile', action='store_true')
    p.add_argument('--no-train', action='store_true')
    p.add_argument('--no-node', action='store_true')
    p.add_argument('--results', type=Path, default=HERE / 'results.md',
                   help='markdown file whose gpu_bench section is written')
    p.add_argument('--no-write', action='store_true', help='print only')
    p.add_argument('--smoke', action='store_true',
                   help='CPU, toy sizes: checks that every section runs (nothing written '
                        'unless --results is given)')
    args = p.parse_args(argv)
    explicit_results = any(a == '--results' or a.startswith('--results=')
                           for a in (argv if argv is not None else sys.argv[1:]))
    print(f'torch {torch.__version__}, spikingjelly available: {spikingjelly_available()}')
    if args.smoke:
        dev = torch.device('cpu')
        args.repeats, args.height, args.width_px, args.width = 2, 48, 64, 1 / 16
        args.no_compile, args.node_rate, args.node_seconds = True, 2e5, 1.0
        args.no_write = args.no_write or not explicit_results
        machine = 'CPU smoke pass (numbers meaningless)'
    elif not torch.cuda.is_available():
        print('CUDA is not available: nothing to measure (use --smoke to check the script on '
              'the CPU).')
        return 0
    else:
        dev = torch.device('cuda')
        torch.backends.cudnn.benchmark = True
        props = torch.cuda.get_device_properties(dev)
        machine = (f'{torch.cuda.get_device_name()} ({props.total_memory / 2**30:.0f} GiB), '
                   f'torch {torch.__version__}, CUDA {torch.version.cuda}')
    print(f'device: {machine}')
    torch.manual_seed(0)
    shape = (args.batch, 4, args.height, args.width_px)
    x32 = torch.poisson(torch.full(shape, 0.3)).to(dev)
    counts = x32[0].cpu().numpy().astype(np.uint16)
    print(f'net: width {args.width:g}, {count_parameters(_model(args, "cpu")):,} parameters, '
          f'input {shape}', flush=True)
    rows = inference_rows(args, x32)
    rows += predictor_rows(args, counts, dev)
    if not args.no_train:
        rows += training_rows(args, x32)
    if not args.no_node:
        rows += node_rows(args, dev)
    table = _table(rows)
    print(table)
    if not args.no_write:
        write_results(rows, args.results, machine)
        print(f'wrote section "gpu_bench" of {args.results}')
    return 0


if __name__ == '__main__':
    t0 = time.perf_counter()
    status = main()
    print(f'({time.perf_counter() - t0:.0f} s)')
    sys.exit(status)
