"""Synthetic generator speed: seconds of compute per second of sequence, one core (target < 12).

Runs ``train/synthesize.py`` in a child process pinned to one CPU with one BLAS/OpenMP thread, so
the number is what one core gives (the issue's target: 5 s of sequence in under a minute), for the
room scene and each scene family (offline/scenes.py). The child's CPU time is reported too: on a
shared machine the wall time also counts waiting for the core; ``met`` uses the CPU time.
"""
from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from stereospike_ros.offline.scenes import FAMILIES  # noqa: E402  (after the path line)


def _timed(cmd: list[str], env: dict) -> tuple[float, float]:
    """(wall s, CPU s of the child) of one generator run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, capture_output=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def run(quick: bool = False) -> list[dict]:
    """Generate a default room sequence and scene-family sequences; cost per sequence second."""
    seconds = 1.0 if quick else 5.0
    env = dict(os.environ, OMP_NUM_THREADS='1', OPENBLAS_NUM_THREADS='1', MKL_NUM_THREADS='1')
    pin = ['taskset', '-c', str(min(os.sched_getaffinity(0)))] if shutil.which('taskset') else []
    cases = [('room scene, 1 kHz rendering', [], 'synthetic')]
    families = ('clutter',) if quick else FAMILIES
    cases += [(f'{f} family (seed 1), 500 Hz rendering', ['--family', f, '--seed', '1'], f'{f}1')
              for f in families]
    rows = []
    import h5py
    for label, extra, name in cases:
        with tempfile.TemporaryDirectory() as tmp:
            cmd = pin + [sys.executable, str(ROOT / 'train' / 'synthesize.py'), '--out', tmp,
                         '--seconds', str(seconds), '--seed', '0', '--quiet'] + extra
            wall, cpu = _timed(cmd, env)
            with h5py.File(Path(tmp) / f'{name}_data.hdf5', 'r') as f:
                events = sum(f[f'davis/{s}/events'].shape[0] for s in ('left', 'right'))
        rows.append({'case': f'{label}, {seconds:g} s, both cameras',
                     'pinned to one core': bool(pin), 'wall s': wall,
                     'CPU s per sequence s': cpu / seconds, 's per sequence s': wall / seconds,
                     'events': events, 'target': '< 12 s per s', 'met': cpu / seconds < 12})
    return rows


if __name__ == '__main__':
    for row in run('--quick' in sys.argv):
        print(row)
