"""PEP 8 (flake8, line length 99 as ROS 2 uses) over every Python file of the repository."""
import subprocess
import sys

from support import ROOT


def test_flake8_clean():
    result = subprocess.run(
        [sys.executable, '-m', 'flake8', '--config', str(ROOT / 'setup.cfg'), str(ROOT)],
        capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, 'flake8 found problems:\n' + result.stdout + result.stderr
