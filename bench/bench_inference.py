"""Full-size (260 x 346) batch-1 CPU inference latency: Predictor backends vs a plain eager run.

Baseline, in the same process: the reference-width network with spikingjelly neurons in eval mode
but with autograd enabled (what a plain ``model(x)`` does), default threads. Predictor torch:
stateless IF neurons, ``torch.inference_mode``, channels_last memory format. Predictor
onnxruntime: the same weights exported to ONNX (spikes as a plain step) and run by ONNX
Runtime's CPU provider with all graph optimisations, on the same number of threads. Both include
uint16 numpy in and float32 numpy out.
The three paths are timed in turn, round after round, so a load from other processes hits all of
them alike; each ratio is the median over rounds of baseline time / path time in that round.
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from stereospike_ros.io.events import SENSOR_HEIGHT, SENSOR_WIDTH
from stereospike_ros.nn.export import PARITY_TOLERANCE_M, ExportError
from stereospike_ros.nn.inference import Predictor
from stereospike_ros.nn.model import build_model

ROOT = Path(__file__).resolve().parents[1]


def _ms(fn) -> float:
    """Wall milliseconds of one call of ``fn``."""
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000.0


def run(quick: bool = False) -> list[dict]:
    """Median latency (ms) of each path and its speed-up over the eager baseline."""
    rounds = 3 if quick else 10
    torch.manual_seed(0)
    model = build_model().eval()  # reference width, spikingjelly neurons (when installed)
    shape = (4, SENSOR_HEIGHT, SENSOR_WIDTH)
    counts = np.random.default_rng(0).poisson(0.3, shape).astype(np.uint16)
    x = torch.from_numpy(counts.astype(np.float32))[None]

    def eager():
        return model(x).depths[-1].detach().numpy()  # autograd on: builds the graph

    paths = {'eager, autograd on (baseline)': eager}
    predictor = Predictor(model=model, device='cpu', warmup_shape=(SENSOR_HEIGHT, SENSOR_WIDTH))
    name = 'Predictor torch (inference_mode, stateless IF, channels_last)'
    paths[name] = lambda: predictor.predict(counts)
    want = eager()[0]  # also the baseline's warm-up
    np.testing.assert_allclose(predictor.predict(counts), want, rtol=1e-4, atol=1e-4)
    diffs = {}
    try:
        fast = Predictor(model=model, device='cpu', warmup_shape=(SENSOR_HEIGHT, SENSOR_WIDTH),
                         backend='onnxruntime')
    except ExportError as exc:  # onnxruntime missing: report the other rows
        print(f'bench_inference: onnxruntime backend skipped: {exc}')
    else:
        name = 'Predictor onnxruntime (ONNX Runtime CPU, graph opt. all)'
        paths[name] = lambda: fast.predict(counts)
        diffs[name] = float(np.abs(fast.predict(counts) - want).max())
        if not diffs[name] <= PARITY_TOLERANCE_M:
            raise AssertionError(f'onnxruntime depth differs from torch by {diffs[name]} m')
    times: dict = {name: [] for name in paths}
    for _ in range(rounds):
        for name, fn in paths.items():
            times[name].append(_ms(fn))
    base = times['eager, autograd on (baseline)']
    rows = []
    for name, ms in times.items():
        row = {'path': name, 'threads': torch.get_num_threads(),
               'median_ms': statistics.median(ms),
               'speedup': statistics.median(b / t for b, t in zip(base, ms)),
               'speedup range': f'{min(b / t for b, t in zip(base, ms)):.2f}-'
                                f'{max(b / t for b, t in zip(base, ms)):.2f}'}
        if name in diffs:
            row['max |diff| m'] = diffs[name]
        rows.append(row)
    return rows


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--quick', action='store_true')
    for row in run(parser.parse_args().quick):
        print(row)
