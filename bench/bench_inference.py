"""Full-size (260 x 346) batch-1 CPU inference latency: Predictor vs a straightforward eager run.

Baseline, in the same process: the reference-width network with spikingjelly neurons in eval mode
but with autograd enabled (what a plain ``model(x)`` does), default threads. Predictor: stateless
IF neurons, ``torch.inference_mode``, uint16 numpy in and float32 numpy out (conversion included).
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from stereospike_ros.nn.inference import Predictor
from stereospike_ros.nn.model import build_model

ROOT = Path(__file__).resolve().parents[1]


def _time(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000.0)
    return out


def run(quick: bool = False) -> list[dict]:
    """Median latency (ms) of each path and its speed-up over the eager baseline."""
    repeats = 3 if quick else 10
    torch.manual_seed(0)
    model = build_model().eval()  # reference width, spikingjelly neurons (when installed)
    counts = np.random.default_rng(0).poisson(0.3, (4, 260, 346)).astype(np.uint16)
    x = torch.from_numpy(counts.astype(np.float32))[None]

    def eager():
        return model(x).depths[-1].detach().numpy()  # autograd on: builds the graph

    predictor = Predictor(model=model, device='cpu', warmup_shape=(260, 346))
    eager()  # warm-up of the baseline too
    np.testing.assert_allclose(predictor.predict(counts), eager()[0], rtol=1e-4, atol=1e-4)
    rows = []
    base = statistics.median(_time(eager, repeats))
    rows.append({'path': 'eager, autograd on (baseline)', 'threads': torch.get_num_threads(),
                 'median_ms': base, 'speedup': 1.0})
    ms = statistics.median(_time(lambda: predictor.predict(counts), repeats))
    rows.append({'path': 'Predictor (inference_mode, stateless IF)',
                 'threads': torch.get_num_threads(), 'median_ms': ms, 'speedup': base / ms})
    return rows


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--quick', action='store_true')
    for row in run(parser.parse_args().quick):
        print(row)
