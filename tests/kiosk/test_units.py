"""deploy/kiosk's units verify; the kiosk's runs as its own user with the panel role, loopback only."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.paths import REPO

UNITS = REPO / "deploy" / "kiosk"
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze not installed "
                                                           "(scripts/test installs it)")


def copy(tmp_path: Path, name: str) -> Path:
    """The unit with its programs pointing at an existing binary (nothing is installed here)."""
    text = (UNITS / name).read_text()
    text = text.replace("/opt/lockerd/venv/bin/lockerd", "/bin/true").replace("/usr/bin/cage",
                                                                              "/bin/true")
    path = tmp_path / name
    path.write_text(text)
    return path


@needs_analyze
@pytest.mark.parametrize("name", ["lockerd-kiosk.service", "lockerd-screen.service"])
def test_units_verify(tmp_path: Path, name: str) -> None:
    assert ANALYZE is not None
    proc = subprocess.run([ANALYZE, "verify", str(copy(tmp_path, name))],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert name not in proc.stderr, proc.stderr


@needs_analyze
def test_kiosk_unit_security_score(tmp_path: Path) -> None:
    assert ANALYZE is not None
    proc = subprocess.run([ANALYZE, "security", "--offline=true", "--no-pager",
                           str(copy(tmp_path, "lockerd-kiosk.service"))],
                          capture_output=True, text=True, timeout=60, check=False)
    match = re.search(r"Overall exposure level for lockerd-kiosk.service: (\d+\.\d+)", proc.stdout)
    assert match, proc.stdout + proc.stderr
    assert float(match.group(1)) <= 2.0


def test_kiosk_runs_unprivileged_in_the_panel_group_on_loopback() -> None:
    text = (UNITS / "lockerd-kiosk.service").read_text()
    for line in ("User=lockerd-kiosk", "SupplementaryGroups=lockerd-api lockerd-panel",
                 "IPAddressDeny=any", "IPAddressAllow=localhost", "NoNewPrivileges=yes",
                 "CapabilityBoundingSet=\n", "LimitCORE=0", "lockerd kiosk --socket "):
        assert line in text, line
    assert "lockerd-tech" not in text
    assert "lockerd-audit" not in text
    screen = (UNITS / "lockerd-screen.service").read_text()
    assert "--kiosk" in screen
    assert "--app=http://127.0.0.1:8080/" in screen
