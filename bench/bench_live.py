"""Live input: event messages the depth node receives at a real rig's rate, before and after.

600k events/s per camera in 30k-event messages (480 KB), left and right published together at
20 Hz by a separate publisher process (``stereospike_ros.ros.loadgen``), 60 messages a camera,
into the depth node with its default parameters and its default model running on the CPU.
``before``: the defaults before issue 11 (node subscribes best_effort; no Fast DDS profile in
any process). ``after``: today's defaults (input_reliability auto); the reliable publisher uses
the default transport (as ``ros2 bag play`` does), the best-effort one is started as the launch
files start drivers (FASTDDS_DEFAULT_PROFILES_FILE = config/fastdds_large_data.xml); one more
best-effort publisher sends the same events as libcaer_driver does (EventPacket, libcaer_cmp).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from stereospike_ros.ros import dds
from stereospike_ros.ros.loadgen import SIDES, LoadConfig
from stereospike_ros.ros.processes import stop

ROOT = Path(__file__).resolve().parents[1]
NODE_NAME = 'stereospike_depth'
#: The set-ups measured: (name, node parameters, best-effort publishers get the profile,
#: publishers as (reliability, message type)).
SETUPS = (('before (defaults of main before issue 11)', ['input_reliability:=best_effort'],
           False, (('reliable', 'dvs'), ('best_effort', 'dvs'))),
          ('after (defaults now)', [], True,
           (('reliable', 'dvs'), ('best_effort', 'dvs'), ('best_effort', 'event_packet'))))


def ros_env(profile: bool) -> dict:
    """This environment on localhost discovery, with or without the large-data profile."""
    env = dict(os.environ)
    env.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    env.pop(dds.PROFILE_ENV, None)
    return dds.large_data_env(env) if profile else env


def start_node(ns: str, params: list[str], env: dict, log_path: Path,
               timeout: float = 180.0) -> subprocess.Popen:
    """The depth node as its own process (CPU); returns once it logged 'ready:'."""
    cmd = [sys.executable, '-m', 'stereospike_ros.depth_node', '--ros-args', '-r',
           f'__ns:={ns}', '-p', 'device:=cpu']
    for p in params:
        cmd += ['-p', p]
    with open(log_path, 'w') as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    deadline = time.monotonic() + timeout
    while 'ready:' not in log_path.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            stop(proc)
            raise RuntimeError(f'depth node did not start:\n{log_path.read_text()[-3000:]}')
        time.sleep(0.2)
    return proc


def load(ns: str, reliability: str, env: dict, messages: int, kind: str = 'dvs') -> dict:
    """Run the load generator against the node in ``ns``; its JSON report."""
    cfg = LoadConfig()
    cmd = [sys.executable, '-m', 'stereospike_ros.ros.loadgen', '--ns', ns, '--json',
           '--reliability', reliability, '--messages', str(messages), '--type', kind,
           '--node', f'{ns}/{NODE_NAME}']
    out = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True,
                         timeout=cfg.wait_s + cfg.settle_s + messages * cfg.period_s + 60)
    if out.returncode != 0:
        raise RuntimeError(f'loadgen failed ({out.returncode}): {out.stderr[-2000:]}')
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(setup: str, params: list[str], profile: bool, publishers: tuple, messages: int,
            logs: Path) -> list[dict]:
    """One node with ``params``; each of ``publishers`` in turn into it."""
    ns = f'/benchlive{os.getpid()}{len(list(logs.iterdir()))}'
    node_env = ros_env(profile=False)
    if not profile:
        node_env[dds.PROFILE_ENV] = ''       # empty: no profile (the node keeps a set value)
    proc = start_node(ns, params, node_env, logs / f'{ns.strip("/")}.log')
    rows = []
    try:
        for reliability, kind in publishers:
            with_profile = profile and reliability == 'best_effort'
            report = load(ns, reliability, ros_env(with_profile), messages, kind)
            got = {s: report['node'][f'messages_{s}'] for s in SIDES}
            lost = sum(report['node'][f'messages_lost_rmw_{s}'] for s in SIDES)
            sent = sum(report['published'].values())
            rows.append({'bench': 'messages received at 600k ev/s per camera', 'set-up': setup,
                         'publisher': reliability + (' + profile' if with_profile else ''),
                         'messages': 'EventArray' if kind == 'dvs' else 'EventPacket libcaer_cmp',
                         'node input': report['inputs'].get('left', '').split(' ')[-1],
                         'left': f'{got["left"]}/{report["published"]["left"]}',
                         'right': f'{got["right"]}/{report["published"]["right"]}',
                         'received %': 100.0 * sum(got.values()) / sent,
                         'RMW-reported lost': lost,
                         'depth maps': report['node']['windows_published'],
                         'message KB': report['message_bytes'] / 1e3})
            time.sleep(1.0)
    finally:
        stop(proc)
    return rows


def run(quick: bool = True) -> list[dict]:
    """Rows before and after, reliable and best-effort publishers (60 messages even when quick:
    the figures are the issue's)."""
    os.environ.setdefault('ROS_DOMAIN_ID', str(random.SystemRandom().randint(101, 200)))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for setup, params, profile, publishers in SETUPS:
            rows += measure(setup, params, profile, publishers, 60, Path(tmp))
    return rows


def main(argv: list[str] | None = None) -> int:
    """``python bench/bench_live.py`` prints the rows."""
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    for row in run():
        print(', '.join(f'{k}: {v:.3g}' if isinstance(v, float) else f'{k}: {v}'
                        for k, v in row.items()), flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
