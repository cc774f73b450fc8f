"""The shipped unit passes systemd-analyze verify and scores <= 2.0 on its security check."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.paths import REPO

UNIT = REPO / "deploy" / "systemd" / "lockerd.service"
ANALYZE = shutil.which("systemd-analyze")

pytestmark = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze not installed "
                                                        "(scripts/test installs it)")


def unit_copy(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at an existing binary (the venv is not at /opt here)."""
    text = UNIT.read_text().replace("/opt/lockerd/venv/bin/lockerd", "/bin/true")
    path = tmp_path / "lockerd.service"
    path.write_text(text)
    return path


def test_unit_verifies(tmp_path: Path) -> None:
    assert ANALYZE is not None
    proc = subprocess.run([ANALYZE, "verify", str(unit_copy(tmp_path))],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "lockerd.service" not in proc.stderr, proc.stderr


def test_unit_security_score(tmp_path: Path) -> None:
    assert ANALYZE is not None
    proc = subprocess.run([ANALYZE, "security", "--offline=true", "--no-pager",
                           str(unit_copy(tmp_path))],
                          capture_output=True, text=True, timeout=60, check=False)
    match = re.search(r"Overall exposure level for lockerd.service: (\d+\.\d+)", proc.stdout)
    assert match, proc.stdout + proc.stderr
    assert float(match.group(1)) <= 2.0


def test_unit_has_the_required_settings() -> None:
    text = UNIT.read_text()
    for line in ("Type=notify", "Restart=on-failure", "StateDirectory=lockerd",
                 "RuntimeDirectory=lockerd", "LoadCredential=oplog.key:",
                 "SupplementaryGroups=dialout gpio video", "ProtectSystem=strict",
                 "NoNewPrivileges=yes", "CapabilityBoundingSet=\n",
                 "SystemCallFilter=@system-service", "DevicePolicy=closed", "LimitCORE=0"):
        assert line in text, line
    # PrivateDevices=yes would hide the serial ports, GPIO chips and camera.
    assert not re.search(r"^PrivateDevices=yes", text, re.M)
    assert re.search(r"^WatchdogSec=\d+s$", text, re.M)
