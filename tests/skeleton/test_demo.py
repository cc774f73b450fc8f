"""`lockerd demo` runs end to end on the simulator with no broker and no root."""

from __future__ import annotations

import subprocess
import sys


def test_demo_runs_and_prints_a_timeline() -> None:
    proc = subprocess.run([sys.executable, "-m", "lockerd", "demo"], capture_output=True,
                          text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "is ready" in proc.stdout
    assert "clean shutdown, exit code 0" in proc.stdout
    assert lines[-1].startswith("demo finished: ")
    assert "Traceback" not in proc.stderr
