"""`lockerd demo` runs end to end on the simulator, with its own broker and without one."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

from lockerd.demo.day import (
    Timeline,
    demo_day,
    scene_broker_back,
    scene_broker_down,
    scene_maintenance,
    scene_start,
)


def test_demo_runs_and_prints_a_timeline() -> None:
    proc = subprocess.run([sys.executable, "-m", "lockerd", "demo"], capture_output=True,
                          text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "is ready" in proc.stdout
    assert "blocked compartments: [8]" in proc.stdout
    # The jam alert was raised during the broker outage and still reached the carriers.
    assert "carriers <- alert door_jammed raised (compartment 8)" in proc.stdout
    # an offline pass logs a courier in with no network, and is refused once revoked
    assert "c-301 shows an offline pass" in proc.stdout
    assert "c-301 shows it again: pass_revoked" in proc.stdout
    assert re.search(r"platform receives the signed report: [1-9][0-9]* deliveries", proc.stdout)
    assert "clean shutdown, exit code 0" in proc.stdout
    assert lines[-1].startswith("demo finished: ")
    assert "Traceback" not in proc.stderr


async def test_demo_offline_without_broker(tmp_path: Path) -> None:
    out = io.StringIO()
    scenes = [scene_start, scene_broker_down, scene_maintenance, scene_broker_back]
    tl = await demo_day(tmp_path, own_broker=False, timeline=Timeline(out), scenes=scenes)
    text = "\n".join(tl.lines)
    assert "the cabinet runs offline" in text
    assert "carrier link offline (no broker)" in text
    # The jam alert waits in the outbox for a broker.
    assert "outbox holds 1 message(s) (not connected)" in text
