"""deploy/upgrade.sh's decisions and exit codes, with systemctl, venv and pip replaced by recorders.

What runs for real: the script, its backup and rollback of the state files, the venv swap.
What is replaced: `systemctl` (a recorder whose `start` lets the installed release "migrate"
the log by appending to it), `python -m venv` (makes a venv whose lockerd/lockerctl report the
new version) and pip. The install itself is tested by tests/test_lock.py and scripts/venv.sh.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.paths import REPO

SCRIPT = REPO / "deploy" / "upgrade.sh"

LOCKERCTL = """#!/bin/sh
# $VERSION's lockerctl: status answers, verify-log fails when $MODE says this release is bad
case "$*" in
  *"status --json"*) echo '{"state": "ready", "version": "%(version)s"}' ;;
  *status*) exit 0 ;;
  *verify-log*) [ "$MODE" = bad_new ] && [ "%(version)s" = 9.9.9 ] && exit 1; exit 0 ;;
esac
"""
LOCKERD = '#!/bin/sh\necho "lockerd %(version)s"\n'
PIP = '#!/bin/sh\n[ "$MODE" = bad_install ] && [ "$1" = install ] && exit 1\nexit 0\n'
SYSTEMCTL = """#!/bin/sh
echo "$1" >> "%(calls)s"
# a started release "migrates" the log: the new one leaves its mark in it
if [ "$1" = start ] && "$VENV/bin/lockerd" --version | grep -q 9.9.9; then
  echo migrated-by-9.9.9 >> "%(state)s/oplog.db"
fi
"""
PYTHON = """#!/bin/sh
if [ "$1" = -m ] && [ "$2" = venv ]; then
  mkdir -p "$3/bin"
  %(make_bin)s
  exit 0
fi
exec %(python)s "$@"
"""


def _bin(directory: Path, version: str) -> None:
    (directory / "bin").mkdir(parents=True, exist_ok=True)
    for name, text in (("lockerctl", LOCKERCTL), ("lockerd", LOCKERD), ("pip", PIP)):
        path = directory / "bin" / name
        path.write_text(text % {"version": version})
        path.chmod(0o755)
    (directory / "bin" / "python").symlink_to(sys.executable)


@pytest.fixture
def cabinet(tmp_path: Path) -> dict[str, Path]:
    state = tmp_path / "state"
    state.mkdir()
    (state / "oplog.db").write_bytes(b"log of 0.1.0")
    (state / "oplog.db-wal").write_bytes(b"wal")
    (state / "evidence.db").write_bytes(b"evidence")
    (tmp_path / "lockerd.toml").write_text(f'[paths]\nstate_dir = "{state}"\n')
    _bin(tmp_path / "venv", "0.1.0")
    template = tmp_path / "new-bin"
    _bin(template, "9.9.9")
    fakes = tmp_path / "fakes"
    fakes.mkdir()
    calls = tmp_path / "calls.txt"
    (fakes / "systemctl").write_text(SYSTEMCTL % {"calls": calls, "state": state})
    (fakes / "python").write_text(PYTHON % {
        "make_bin": f'cp -a "{template}/bin/." "$3/bin/"', "python": sys.executable})
    for fake in fakes.iterdir():
        fake.chmod(0o755)
    release = tmp_path / "release"
    release.mkdir()
    (release / "requirements.lock").write_text("")
    (release / "lockerd-9.9.9-py3-none-any.whl").write_bytes(b"")
    return {"root": tmp_path, "state": state, "venv": tmp_path / "venv", "fakes": fakes,
            "calls": calls, "release": release}


def _upgrade(c: dict[str, Path], mode: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MODE": mode, "VENV": str(c["venv"]),
           "CONFIG": str(c["root"] / "lockerd.toml"), "BACKUP_DIR": str(c["root"] / "backups"),
           "SYSTEMCTL": str(c["fakes"] / "systemctl"), "PYTHON": str(c["fakes"] / "python"),
           "READY_TIMEOUT_S": "5"}
    return subprocess.run(["bash", str(SCRIPT), *(args or (str(c["release"]),))], env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def _version(venv: Path) -> str:
    return subprocess.run([str(venv / "bin" / "lockerd"), "--version"], capture_output=True,
                          text=True, check=True).stdout.split()[1]


@pytest.mark.skipif(os.geteuid() != 0, reason="the script runs as root on the cabinet")
def test_a_good_release_is_kept(cabinet: dict[str, Path]) -> None:
    done = _upgrade(cabinet, "good")
    assert done.returncode == 0, done.stderr
    assert _version(cabinet["venv"]) == "9.9.9"
    assert _version(Path(f"{cabinet['venv']}.prev")) == "0.1.0"
    assert cabinet["calls"].read_text().split() == ["stop", "start"]
    (backup,) = (cabinet["root"] / "backups").iterdir()
    assert (backup / "oplog.db").read_bytes() == b"log of 0.1.0"
    assert (backup / "oplog.db-wal").read_bytes() == b"wal"


@pytest.mark.skipif(os.geteuid() != 0, reason="the script runs as root on the cabinet")
def test_a_release_that_does_not_verify_is_rolled_back_with_the_backup(
        cabinet: dict[str, Path]) -> None:
    done = _upgrade(cabinet, "bad_new")
    assert done.returncode == 4, done.stderr
    assert _version(cabinet["venv"]) == "0.1.0"
    assert cabinet["calls"].read_text().split() == ["stop", "start", "stop", "start"]
    assert (cabinet["state"] / "oplog.db").read_bytes() == b"log of 0.1.0"
    assert (cabinet["state"] / "oplog.db-wal").read_bytes() == b"wal"
    (failed,) = (cabinet["root"] / "backups").glob("*/failed-9.9.9")
    assert b"migrated-by-9.9.9" in (failed / "oplog.db").read_bytes()


@pytest.mark.skipif(os.geteuid() != 0, reason="the script runs as root on the cabinet")
def test_a_failed_install_starts_the_old_release_again(cabinet: dict[str, Path]) -> None:
    done = _upgrade(cabinet, "bad_install")
    assert done.returncode == 3, done.stderr
    assert _version(cabinet["venv"]) == "0.1.0"
    assert cabinet["calls"].read_text().split() == ["stop", "start"]
    assert (cabinet["state"] / "oplog.db").read_bytes() == b"log of 0.1.0"


def test_usage_and_preflight_change_nothing(cabinet: dict[str, Path]) -> None:
    assert _upgrade(cabinet, "good", "/nonexistent").returncode == 1
    (cabinet["release"] / "requirements.lock").unlink()
    if os.geteuid() == 0:
        assert _upgrade(cabinet, "good").returncode == 1
    assert not cabinet["calls"].exists()
