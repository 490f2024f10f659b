"""README's first command, shortened: the demo runs end to end with a tiny checkpoint."""
import json
import subprocess
import sys

import pytest

from support import ROOT


@pytest.mark.ros
@pytest.mark.slow
def test_demo_writes_gif_metrics_and_summary(tmp_path, tiny_checkpoint):
    out = tmp_path / 'demo_out'
    proc = subprocess.run([sys.executable, str(ROOT / 'scripts' / 'demo.py'), '--checkpoint',
                           tiny_checkpoint, '--seconds', '0.5', '--rate', '0.5', '--out',
                           str(out), '--timeout', '120'],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((out / 'summary.json').read_text())
    # 0.5 s of sequence at 20 Hz: windows end every 50 ms once both cameras have events.
    assert summary['published'] >= 5
    assert summary['frames_evaluated'] == summary['published']
    assert summary['camera_info_matched'] == summary['published']
    assert summary['mde_cm'] > 0 and summary['baseline_mde_cm'] > 0
    assert 0 <= summary['no_prediction_share'] < 1      # NaN pixels: not scored, counted
    rows = (out / 'frames.csv').read_text().splitlines()
    assert len(rows) == summary['frames_evaluated'] + 1
    from PIL import Image
    with Image.open(out / 'demo.gif') as gif:
        assert gif.n_frames == summary['frames_evaluated']
    assert 'MDE' in (out / 'summary.md').read_text()
    assert f'outputs in {out}' in proc.stdout
