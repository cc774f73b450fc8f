"""`lockerctl backup` against a running daemon subprocess, `lockerctl restore` once it stopped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tarfile
from pathlib import Path

import pytest

from lockerd.cli import lockerctl
from lockerd.oplog import backup
from tests.fixtures.daemon_proc import make_config, start_daemon, wait_for


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = lockerctl.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_backup_then_restore_through_lockerctl(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    config = make_config(tmp_path)
    sock = tmp_path / "api.sock"
    archive = tmp_path / "cabinet.tar"
    proc = start_daemon(config)
    try:
        wait_for(sock, proc)
        code, out, err = run(capsys, "backup", "--out", str(archive), "-c", str(config), "--json")
        assert code == 0, err
        summary = json.loads(out)
        assert os.stat(archive).st_mode & 0o777 == 0o600
        with tarfile.open(archive) as tar:
            assert sorted(tar.getnames()) == sorted([backup.MANIFEST, backup.LOG_FILE,
                                                     backup.EVIDENCE_FILE])
        assert summary["verified"] is True
        # the stage inside the state directory is gone once packed
        assert list((tmp_path / "state" / backup.STAGING_DIR).iterdir()) == []
        code, _, err = run(capsys, "backup", "--out", str(archive), "-c", str(config))
        assert code == 1
        assert "cannot_write" in err
        code, out, _ = run(capsys, "log", "--json", "--kind", "oplog.backup", "-c", str(config))
        assert [op["seq"] for op in json.loads(out)["operations"]] == [summary["recorded_as"]]
        # a running daemon's files are never replaced
        code, _, err = run(capsys, "restore", str(archive), "-c", str(config))
        assert code == 1
        assert "daemon_running" in err
    finally:
        _stop(proc)

    code, out, err = run(capsys, "restore", str(archive), "-c", str(config), "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["restored_head_seq"] == summary["head_seq"]
    assert report["lost_operations"] == 1  # the backup's own record came after it
    assert (Path(report["kept_aside"]) / "oplog.db").exists()

    proc = start_daemon(config)
    try:
        wait_for(sock, proc)
        code, out, _ = run(capsys, "verify-log", "-c", str(config))
        assert code == 0
        assert out.startswith("chain OK:")
        code, out, _ = run(capsys, "log", "--json", "--kind", "oplog.restored", "-c", str(config))
        restored = json.loads(out)["operations"]
        assert [op["body"]["head_seq"] for op in restored] == [summary["head_seq"]]
    finally:
        _stop(proc)


def test_restore_is_for_root_only(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    archive = tmp_path / "x.tar"
    archive.write_bytes(b"")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    code, _, err = run(capsys, "restore", str(archive), "-c", str(make_config(tmp_path)))
    assert code == 1
    assert "forbidden" in err


def test_restore_refuses_a_file_that_is_not_a_backup(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    config = make_config(tmp_path)
    (tmp_path / "state").mkdir(mode=0o700)
    archive = tmp_path / "x.tar"
    archive.write_bytes(b"not a tar archive at all")
    code, _, err = run(capsys, "restore", str(archive), "-c", str(config))
    assert code == 1
    assert "not a readable tar archive" in err
    assert "nothing was replaced" in err
