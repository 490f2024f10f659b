"""GPU benchmark of StereoSpike: fp32/bf16/fp16, channels_last, torch.compile, CUDA graphs, train.

Self-contained: needs only torch and this repository's ``stereospike_ros/nn/model.py``. That module
imports spikingjelly lazily and carries a pure-torch stateless IF neuron
(``neuron_backend='torch'``, numerically identical for one time step with reset), used here
whenever spikingjelly is missing, so the script runs on a bare machine with only torch.
Without CUDA it runs a tiny CPU sanity pass, says so, and exits 0. Prints one table (median ms
over repeats at 260 x 346, batch 1 by default).

    python bench/gpu_bench.py [--batch 1] [--repeats 50] [--no-compile]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

from stereospike_ros.nn.model import build_model, count_parameters, spikingjelly_available


def _cuda_ms(fn, repeats: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def _inference_rows(args, x32) -> list[dict]:
    rows = []
    base_model = build_model(neuron_backend='torch').cuda().eval()
    ref = None

    def add(name, fn, model_dtype=torch.float32):
        nonlocal ref
        try:
            with torch.inference_mode():
                out = fn()
                ms = _cuda_ms(fn, args.repeats)
            diff = float((out.float() - ref).abs().mean()) if ref is not None else 0.0
            if ref is None:
                ref = out.float()
            rows.append({'test': f'inference {name}', 'ms': ms, 'mean|diff| m': diff})
        except Exception as exc:  # one failing mode must not hide the others
            rows.append({'test': f'inference {name}', 'ms': float('nan'),
                         'note': f'{type(exc).__name__}: {str(exc).splitlines()[0][:80]}'})

    add('fp32', lambda: base_model(x32).depths[-1])
    for name, dt in (('bf16 autocast', torch.bfloat16), ('fp16 autocast', torch.float16)):
        def fn(dt=dt):
            with torch.autocast('cuda', dtype=dt):
                return base_model(x32).depths[-1]
        add(name, fn)
    half = build_model(neuron_backend='torch').cuda().eval().half()
    half.load_state_dict(base_model.state_dict())
    xh = x32.half()
    add('fp16 weights', lambda: half(xh).depths[-1])
    cl = build_model(neuron_backend='torch').cuda().eval().to(memory_format=torch.channels_last)
    cl.load_state_dict(base_model.state_dict())
    xcl = x32.contiguous(memory_format=torch.channels_last)
    add('fp32 channels_last', lambda: cl(xcl).depths[-1])
    add('fp16 channels_last', lambda: _cl_half(cl, xcl))
    if not args.no_compile:
        compiled = torch.compile(base_model)
        add('torch.compile fp32', lambda: compiled(x32).depths[-1])
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
                     'note': f'{type(exc).__name__}: {str(exc).splitlines()[0][:80]}'})
    return rows


_cl_half_cache: dict = {}


def _cl_half(model, x):
    if 'm' not in _cl_half_cache:
        m = build_model(neuron_backend='torch').cuda().eval().half()
        m.load_state_dict(model.state_dict())
        _cl_half_cache['m'] = m.to(memory_format=torch.channels_last)
    return _cl_half_cache['m'](x.half()).depths[-1]


def _training_rows(args, x32) -> list[dict]:
    rows = []
    backend = 'spikingjelly' if spikingjelly_available() else 'torch'
    gt = torch.rand(x32.shape[0], *x32.shape[2:], device='cuda') * 5 + 1
    for name, dt in (('fp32', None), ('bf16 autocast', torch.bfloat16)):
        model = build_model(neuron_backend=backend).cuda().train()
        opt = torch.optim.Adam(model.parameters(), lr=2e-4)

        def step():
            with torch.autocast('cuda', dtype=dt, enabled=dt is not None):
                out = model(x32)
            loss = sum((d.float() - gt).abs().mean() for d in out.depths)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        try:
            rows.append({'test': f'train step {name} ({backend})',
                         'ms': _cuda_ms(step, max(3, args.repeats // 5))})
        except Exception as exc:
            rows.append({'test': f'train step {name}', 'ms': float('nan'),
                         'note': f'{type(exc).__name__}: {str(exc).splitlines()[0][:80]}'})
    return rows


def _print_table(rows: list[dict]) -> None:
    cols = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    print(' | '.join(f'{c:>28}' if c == 'test' else f'{c:>14}' for c in cols))
    for r in rows:
        cells = []
        for c in cols:
            v = r.get(c, '')
            w = 28 if c == 'test' else 14
            cells.append(f'{v:>{w}.4g}' if isinstance(v, float) else f'{str(v):>{w}}')
        print(' | '.join(cells))


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (or the CPU sanity pass without CUDA); returns the exit status."""
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--batch', type=int, default=1)
    p.add_argument('--repeats', type=int, default=50)
    p.add_argument('--height', type=int, default=260)
    p.add_argument('--width', type=int, default=346)
    p.add_argument('--no-compile', action='store_true')
    p.add_argument('--no-train', action='store_true')
    args = p.parse_args(argv)
    print(f'torch {torch.__version__}, spikingjelly available: {spikingjelly_available()}')
    if not torch.cuda.is_available():
        print('CUDA is not available: running a tiny CPU sanity pass instead of the benchmark.')
        model = build_model(width=0.125).eval()
        with torch.inference_mode():
            depth = model(torch.zeros(1, 4, 32, 48)).depths[-1]
        print(f'CPU sanity pass ok: {count_parameters(model):,} parameters, '
              f'output {tuple(depth.shape)}')
        return 0
    torch.backends.cudnn.benchmark = True
    print(f'device: {torch.cuda.get_device_name()}')
    x32 = torch.poisson(torch.full((args.batch, 4, args.height, args.width), 0.3,
                                   device='cuda'))
    rows = _inference_rows(args, x32)
    if not args.no_train:
        rows += _training_rows(args, x32)
    base = rows[0]['ms']
    for r in rows:
        if r['test'].startswith('inference') and r['ms'] == r['ms']:
            r['speedup vs fp32'] = base / r['ms']
    _print_table(rows)
    return 0


if __name__ == '__main__':
    t0 = time.perf_counter()
    status = main()
    print(f'({time.perf_counter() - t0:.0f} s)')
    sys.exit(status)
