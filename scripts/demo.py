"""End-to-end demo: synthetic stereo events -> real ROS 2 depth node -> depth, GIF and metrics.

Generates a synthetic MVSEC-format sequence of a scene family the shipped checkpoint never trained
on (default ``boards``; offline/scenes.py) with a ROS 2 bag, starts the depth node as its own
process, plays the bag into it over DDS with the bag player, collects the published depth and
writes ``demo_out/``: ``demo.gif`` (left events | predicted depth | ground truth), ``frames.csv``
(metrics per depth map) and ``summary.json`` / ``summary.md`` (MDE in cm against a constant-depth
baseline).
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from stereospike_ros.io import atomic
from stereospike_ros.io.calibration import load_calibration
from stereospike_ros.io.events import NS_PER_S, Events, ns_to_seconds, seconds_to_ns
from stereospike_ros.io.mvsec import MvsecData, MvsecGroundTruth
from stereospike_ros.nn import metrics
from stereospike_ros.nn.depth import valid_mask
from stereospike_ros.offline.scenes import FAMILIES, HELD_OUT_FAMILIES, generate_family
from stereospike_ros.ros import dds
from stereospike_ros.ros.processes import stop
from stereospike_ros.windowing.encoding import Rectifier, encode_window

ROOT = Path(__file__).resolve().parents[1]

DEFAULT_CHECKPOINT = ROOT / 'stereospike_ros' / 'checkpoints' / 'stereospike_synthetic_w025.pt'


def log(message: str) -> None:
    """Print a progress line of the demo."""
    print(f'[demo] {message}', flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options of the demo."""
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--checkpoint', type=Path, default=DEFAULT_CHECKPOINT,
                    help='model checkpoint (default: the shipped synthetic one)')
    ap.add_argument('--out', type=Path, default=ROOT / 'demo_out', help='output folder')
    ap.add_argument('--seconds', type=float, default=3.0, help='length of the sequence (s)')
    ap.add_argument('--family', choices=FAMILIES, default=HELD_OUT_FAMILIES[1],
                    help=f'scene family (held out from training: {", ".join(HELD_OUT_FAMILIES)})')
    ap.add_argument('--seed', type=int, default=201,
                    help='sequence seed (training used 1-80 but 51, validation 51 and 90, '
                         'test 101-102)')
    ap.add_argument('--rate', type=float, default=0.25,
                    help='playback speed factor (below 1 lets a slow CPU keep every window)')
    ap.add_argument('--device', default='cpu', help="node device: 'cpu', 'cuda' or 'auto'")
    ap.add_argument('--timeout', type=float, default=240.0, help='give up after this long (s)')
    return ap.parse_args(argv)


def ros_environment() -> dict:
    """Localhost discovery on a demo domain id and the large-data Fast DDS profile, for this
    process and the node and player."""
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    os.environ.setdefault('ROS_DOMAIN_ID', str(random.SystemRandom().randint(1, 100)))
    dds.use_large_data_profile()
    return dict(os.environ)


class DepthCollector:
    """Subscribes to the node's depth/image and keeps every map by stamp (ns)."""

    def __init__(self, namespace: str) -> None:
        import rclpy
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import CameraInfo, Image
        from stereospike_ros.ros.ros_images import image_to_numpy, time_to_ns

        self._rclpy = rclpy
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node('stereospike_demo', context=self.context)
        self.executor = rclpy.executors.SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        qos = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)
        self.depth: dict[int, np.ndarray] = {}
        self.info_stamps: set[int] = set()

        def on_depth(msg: Image) -> None:
            self.depth[time_to_ns(msg.header.stamp)] = image_to_numpy(msg).copy()

        def on_info(msg: CameraInfo) -> None:
            self.info_stamps.add(time_to_ns(msg.header.stamp))

        self.node.create_subscription(Image, f'/{namespace}/depth/image', on_depth, qos)
        self.node.create_subscription(CameraInfo, f'/{namespace}/depth/camera_info', on_info, qos)

    def spin(self, seconds: float) -> None:
        """Process callbacks for about ``seconds``."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=0.05)

    def close(self) -> None:
        """Shut the demo's ROS context down."""
        self.executor.shutdown()
        self.node.destroy_node()
        self._rclpy.shutdown(context=self.context)


def drain(collector: DepthCollector, node: subprocess.Popen, deadline: float,
          quiet_s: float = 3.0) -> None:
    """Collect the node's last maps: until none has come for ``quiet_s`` (a loaded machine may
    still be running its first inference when playback ends), the node exits, or the deadline."""
    count, last_change = len(collector.depth), time.monotonic()
    while time.monotonic() < deadline and node.poll() is None:
        collector.spin(0.25)
        if len(collector.depth) != count:
            count, last_change = len(collector.depth), time.monotonic()
        elif time.monotonic() - last_change > quiet_s and count:
            return


def run_pipeline(args: argparse.Namespace, paths: dict, env: dict) -> DepthCollector:
    """Start the node, play the bag into it and collect the depth maps it publishes."""
    logs = args.out / 'logs'
    logs.mkdir(parents=True, exist_ok=True)
    collector = DepthCollector('davis')
    node_cmd = [sys.executable, '-m', 'stereospike_ros.depth_node', '--ros-args',
                '-r', '__ns:=/davis', '--params-file', str(ROOT / 'config' / 'depth.yaml'),
                '-p', f'checkpoint:={args.checkpoint}', '-p', f'calibration:={paths["calib"]}',
                '-p', f'device:={args.device}']
    player_cmd = [sys.executable, '-m', 'stereospike_ros.play', str(paths['bag_sqlite3']),
                  '--rate', str(args.rate), '--wait-for-subscribers', '60', '--quiet']
    with open(logs / 'node.log', 'w') as node_log, open(logs / 'player.log', 'w') as play_log:
        node = subprocess.Popen(node_cmd, env=env, stdout=node_log, stderr=subprocess.STDOUT)
        player = None
        try:
            log('depth node started (log: demo_out/logs/node.log); waiting for it to subscribe')
            player = subprocess.Popen(player_cmd, env=env, stdout=play_log,
                                      stderr=subprocess.STDOUT)
            deadline = time.monotonic() + args.timeout
            while player.poll() is None and time.monotonic() < deadline:
                if node.poll() is not None:
                    raise RuntimeError('the depth node exited early; see demo_out/logs/node.log')
                collector.spin(0.5)
            if player.poll() is None:
                raise RuntimeError(f'playback did not finish within {args.timeout:.0f} s')
            if player.returncode != 0:
                raise RuntimeError('the player failed; see demo_out/logs/player.log')
            log(f'playback finished; {len(collector.depth)} depth maps so far, draining')
            drain(collector, node, deadline)
        finally:
            if player is not None:
                stop(player)
            stop(node)
    return collector


def left_event_images(paths: dict, stamps_ns: list[int], window_s: float) -> list[np.ndarray]:
    """ON minus OFF counts of the rectified left events in each window ending at a stamp."""
    calib = load_calibration(paths['calib'])
    rect = Rectifier.for_camera(calib, 'left')
    none = Rectifier(calib.width, calib.height)
    images = []
    with MvsecData(paths['data']) as data:
        for stamp in stamps_ns:
            end = float(ns_to_seconds(np.array([stamp]))[0])
            parts = [c.to_events() for c in data.chunks('left', end - window_s, end)]
            counts, _ = encode_window(Events.concatenate(parts), Events.empty(), rect, none)
            images.append(counts[0].astype(np.int32) - counts[1].astype(np.int32))
    return images


def evaluate(paths: dict, depth: dict[int, np.ndarray]) -> tuple[list[dict], list, dict]:
    """Match each published map to the ground truth frame of its stamp and compute metrics."""
    gt = MvsecGroundTruth(paths['gt'])
    gt_ns = seconds_to_ns(gt.timestamps)
    rows, frames = [], []
    all_gt = gt.depth(slice(None))
    constant = float(all_gt[valid_mask(all_gt)].mean())   # the constant-depth baseline
    for stamp in sorted(depth):
        k = int(np.argmin(np.abs(gt_ns - stamp)))
        if abs(int(gt_ns[k]) - stamp) > 1_000_000:     # no ground truth within 1 ms
            continue
        pred, truth = depth[stamp], all_gt[k]
        # The node publishes NaN where its depth is invalid (nn/depth.py, REP 118): the metrics
        # score those pixels as no prediction (not as some depth) and report their share.
        m = metrics.frame_metrics(pred, truth)
        base = metrics.frame_metrics(np.full_like(truth, constant), truth)
        rows.append({'stamp_ns': stamp, 'gt_frame': k, 'mde_cm': 100 * float(m['mde'][0]),
                     'median_cm': 100 * float(m['median'][0]),
                     'disp_error_px': float(m['disp_error'][0]),
                     'one_px': float(m['one_px'][0]),
                     'no_prediction_share': 1.0 - float(m['coverage'][0]),
                     'baseline_mde_cm': 100 * float(base['mde'][0])})
        frames.append((stamp, pred, truth))
    gt.close()
    summary = {'frames_evaluated': len(rows), 'constant_depth_m': constant}
    if rows:
        for key in ('mde_cm', 'median_cm', 'disp_error_px', 'one_px', 'no_prediction_share',
                    'baseline_mde_cm'):
            summary[key] = float(np.nanmean([r[key] for r in rows]))
    return rows, frames, summary


def write_gif(path: Path, frames: list, events: list[np.ndarray], vmax: float) -> None:
    """Animated GIF: left events | predicted depth | ground truth, shared colour scale (m)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from PIL import Image as PILImage

    images = []
    fig, axes = plt.subplots(1, 3, figsize=(11.5, 3.3), dpi=72)
    for (stamp, pred, truth), ev in zip(frames, events):
        for ax in axes:
            ax.clear()
            ax.axis('off')
        lim = max(1, int(np.percentile(np.abs(ev), 99)))
        axes[0].imshow(ev, cmap='bwr', vmin=-lim, vmax=lim)
        axes[0].set_title('left events (ON red, OFF blue)', fontsize=9)
        im = axes[1].imshow(np.ma.masked_invalid(np.clip(pred, 0, vmax)), cmap='turbo_r', vmin=0,
                            vmax=vmax)
        axes[1].set_title('StereoSpike depth (node output; black: none)', fontsize=9)
        axes[1].set_facecolor('black')
        masked = np.ma.masked_invalid(truth)
        axes[2].imshow(masked, cmap='turbo_r', vmin=0, vmax=vmax)
        axes[2].set_title('ground truth (black: none)', fontsize=9)
        axes[2].set_facecolor('black')
        if len(fig.axes) == 3:
            fig.colorbar(im, ax=list(axes[1:]), fraction=0.025, pad=0.02, label='depth (m)')
        fig.suptitle(f't = {stamp * 1e-9 - frames[0][0] * 1e-9:5.2f} s', fontsize=9)
        fig.canvas.draw()
        rgba = np.asarray(fig.canvas.buffer_rgba())
        images.append(PILImage.fromarray(rgba[..., :3].copy()).convert(
            'P', palette=PILImage.ADAPTIVE, colors=255))
    plt.close(fig)
    with atomic.atomic_path(path, suffix='.gif') as tmp:
        images[0].save(tmp, save_all=True, append_images=images[1:], duration=100, loop=0)


def write_reports(out: Path, rows: list[dict], summary: dict) -> None:
    """frames.csv, summary.json and a human-readable summary.md."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    atomic.write_text(out / 'frames.csv', buf.getvalue())
    atomic.write_text(out / 'summary.json', json.dumps(summary, indent=2) + '\n')
    lines = ['# stereospike demo', '',
             f'- checkpoint: `{summary["checkpoint"]}`',
             f'- sequence: synthetic {summary["family"]} family, {summary["seconds"]} s, '
             f'seed {summary["seed"]}',
             f'- depth maps published: {summary["published"]} '
             f'(camera_info with the same stamps: {summary["camera_info_matched"]})',
             f'- frames evaluated: {summary["frames_evaluated"]}',
             f'- MDE: {summary.get("mde_cm", float("nan")):.1f} cm '
             f'(constant-depth baseline: {summary.get("baseline_mde_cm", float("nan")):.1f} cm)',
             f'- median error: {summary.get("median_cm", float("nan")):.1f} cm, '
             f'disparity error {summary.get("disp_error_px", float("nan")):.2f} px, '
             f'one-pixel accuracy {100 * summary.get("one_px", float("nan")):.1f} %',
             f'- pixels with ground truth but no valid prediction (NaN, not scored): '
             f'{100 * summary.get("no_prediction_share", float("nan")):.2f} %']
    atomic.write_text(out / 'summary.md', '\n'.join(lines) + '\n')


def main(argv: list[str] | None = None) -> int:
    """Run the demo; exit status 0 when depth came out and the reports were written."""
    args = parse_args(argv)
    if not args.checkpoint.is_file():
        print(f'[demo] checkpoint not found: {args.checkpoint}', file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    log(f'generating a {args.seconds:g} s synthetic stereo sequence ({args.family} family, '
        f'seed {args.seed})')
    # Start on the node's window grid (multiples of 50 ms) so every depth map it publishes has a
    # ground-truth frame at exactly its stamp.
    paths = generate_family(args.out / 'data', args.family, args.seed, args.seconds, 'demo',
                            progress=True, overwrite=True, bags=('sqlite3',),
                            start_ns=1_500_000_000 * NS_PER_S)
    env = ros_environment()
    collector = run_pipeline(args, paths, env)
    try:
        depth = dict(collector.depth)
        info_matched = len(set(depth) & collector.info_stamps)
    finally:
        collector.close()
    if not depth:
        print(f'[demo] no depth map was published; the last lines of {args.out / "logs"}:',
              file=sys.stderr)
        for name in ('node.log', 'player.log'):
            lines = (args.out / 'logs' / name).read_text(errors='replace').splitlines()
            print(f'--- {name}', *lines[-15:], sep='\n', file=sys.stderr)
        return 1
    rows, frames, summary = evaluate(paths, depth)
    if not rows:
        print('[demo] no published depth map matched a ground-truth timestamp', file=sys.stderr)
        return 1
    summary.update({'checkpoint': str(args.checkpoint), 'seconds': args.seconds,
                    'family': args.family, 'seed': args.seed, 'published': len(depth),
                    'camera_info_matched': info_matched,
                    'wall_time_s': round(time.monotonic() - started, 1)})
    log(f'rendering {len(frames)} frames')
    events = left_event_images(paths, [f[0] for f in frames], 0.05)
    vmax = float(np.nanpercentile(np.stack([f[2] for f in frames]), 99))
    write_gif(args.out / 'demo.gif', frames, events, vmax)
    write_reports(args.out, rows, summary)
    log(f'MDE {summary["mde_cm"]:.1f} cm over {summary["frames_evaluated"]} frames '
        f'(constant-depth baseline {summary["baseline_mde_cm"]:.1f} cm)')
    log(f'outputs in {args.out}: demo.gif, frames.csv, summary.json, summary.md, logs/')
    return 0


if __name__ == '__main__':
    sys.exit(main())
