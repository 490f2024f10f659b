"""Synthetic generator speed: seconds of compute per second of sequence, one core (target < 12).

Runs ``train/synthesize.py`` in a child process pinned to one CPU with one BLAS/OpenMP thread, so
the number is what one core gives (the issue's target: 5 s of sequence in under a minute).
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(quick: bool = False) -> list[dict]:
    """Generate a default room sequence once and report its cost per sequence second."""
    seconds = 1.0 if quick else 5.0
    env = dict(os.environ, OMP_NUM_THREADS='1', OPENBLAS_NUM_THREADS='1', MKL_NUM_THREADS='1')
    pin = ['taskset', '-c', str(min(os.sched_getaffinity(0)))] \
        if subprocess.run(['which', 'taskset'], capture_output=True).returncode == 0 else []
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        subprocess.run(pin + [sys.executable, str(ROOT / 'train' / 'synthesize.py'), '--out', tmp,
                              '--seconds', str(seconds), '--seed', '0', '--quiet'],
                       check=True, env=env, capture_output=True)
        wall = time.perf_counter() - start
        import h5py
        with h5py.File(Path(tmp) / 'synthetic_data.hdf5', 'r') as f:
            events = sum(f[f'davis/{s}/events'].shape[0] for s in ('left', 'right'))
    return [{'case': f'room scene, {seconds:g} s at 1 kHz rendering, both cameras',
             'pinned to one core': bool(pin), 'wall s': wall, 's per sequence s': wall / seconds,
             'events': events, 'target': '< 12 s per s', 'met': wall / seconds < 12}]


if __name__ == '__main__':
    for row in run('--quick' in sys.argv):
        print(row)
