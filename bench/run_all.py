"""Run every benchmark in one process and write ``bench/results.md`` (also printed).

Each ``bench/bench_*.py`` module exposes ``run(quick: bool) -> list[dict]``; every ratio in a row
is measured against a baseline run in the same process, so the numbers compare on any machine.
"""
from __future__ import annotations

import argparse
import importlib
import os
import platform
import re
import sys
import time
from pathlib import Path

from stereospike_ros.io import atomic

HERE = Path(__file__).resolve().parent

BENCHES = ['bench_wire', 'bench_codecs', 'bench_convert', 'bench_synthetic', 'bench_inference',
           'bench_node', 'bench_outputs', 'bench_live']


def machine_description() -> str:
    """One line naming CPU, cores, Python, numpy and torch versions."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'):
                cpu = line.split(':', 1)[1].strip()
                break
    except OSError:
        pass
    import numpy
    import torch
    return (f'{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, '
            f'numpy {numpy.__version__}, torch {torch.__version__}')


def format_table(rows: list[dict]) -> str:
    """Render rows (dicts, possibly with different keys) as one markdown table."""
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]

    def cell(value) -> str:
        if isinstance(value, float):
            return f'{value:.3g}' if abs(value) < 1000 else f'{value:,.0f}'
        return str(value)

    lines = ['| ' + ' | '.join(columns) + ' |', '|' + '---|' * len(columns)]
    lines += ['| ' + ' | '.join(cell(row.get(c, '')) for c in columns) + ' |' for row in rows]
    return '\n'.join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks, print and write the report; non-zero exit if one failed."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--quick', action='store_true', help='shorter runs (smoke check)')
    parser.add_argument('--only', nargs='*', default=None, help='benchmark modules to run')
    parser.add_argument('--out', type=Path, default=HERE / 'results.md')
    args = parser.parse_args(argv)

    sections = [f'# Benchmark results\n\nMachine: {machine_description()}\n'
                f'Run: {time.strftime("%Y-%m-%d %H:%M")} ({"quick" if args.quick else "full"})\n']
    failed = []
    for name in args.only or BENCHES:
        start = time.perf_counter()
        try:
            module = importlib.import_module(name)
            rows = module.run(quick=args.quick)
        except Exception as exc:  # report and go on: one broken benchmark must not hide the rest
            failed.append(name)
            sections.append(f'## {name}\n\nFAILED: {type(exc).__name__}: {exc}\n')
            print(f'{name}: FAILED: {exc}', file=sys.stderr)
            continue
        doc = (module.__doc__ or '').strip().splitlines()[0] if module.__doc__ else ''
        sections.append(f'## {name}\n\n{doc}\n\n{format_table(rows)}\n\n'
                        f'({time.perf_counter() - start:.0f} s)\n')
        print(sections[-1], flush=True)
    gpu = re.search(r'\n## gpu_bench\n.*?(?=\n## |\Z)', args.out.read_text(), re.S) \
        if args.out.exists() else None
    if gpu:  # measured on another machine by gpu_bench.py: kept until that script reruns
        sections.append(gpu.group(0).strip('\n') + '\n')
    report = '\n'.join(sections)
    atomic.write_text(args.out, report)
    print(f'wrote {args.out}')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
