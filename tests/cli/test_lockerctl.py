"""lockerctl against a real daemon subprocess: tables, --json, exit codes, audited export."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lockerd.cli import lockerctl
from lockerd.demo.realname import demo_token
from tests.fixtures.daemon_proc import make_config, start_daemon, wait_for


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Path]:
    config = make_config(tmp_path)
    proc = start_daemon(config)
    sock = tmp_path / "api.sock"
    try:
        wait_for(sock, proc)
        yield sock
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


def run(capsys: pytest.CaptureFixture[str], sock: Path, *args: str) -> tuple[int, str, str]:
    code = lockerctl.main([*args, "--socket", str(sock)])
    out, err = capsys.readouterr()
    return code, out, err


def test_status_table_and_json(daemon: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, daemon, "status")
    assert code == 0
    assert "CAB-0001" in out
    assert "oplog" in out
    assert all(len(line) <= 80 for line in out.splitlines()), out
    code, out, _ = run(capsys, daemon, "status", "--json")
    assert code == 0
    assert json.loads(out)["components"]["oplog"]["state"] == "running"


def test_log_verify_export_report(daemon: Path, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, daemon, "log", "--json")
    assert code == 0
    kinds = [op["kind"] for op in json.loads(out)["operations"]]
    assert "oplog.opened" in kinds
    code, out, _ = run(capsys, daemon, "verify-log")
    assert code == 0
    assert out.startswith("chain OK:")
    target = tmp_path / "export.jsonl"
    code, out, _ = run(capsys, daemon, "export", "--out", str(target))
    assert code == 0
    assert "masked" in out
    assert os.stat(target).st_mode & 0o777 == 0o600
    assert target.read_text().count("\n") >= 1
    # The export itself is now in the chain.
    code, out, _ = run(capsys, daemon, "log", "--json", "--kind", "oplog.exported")
    assert code == 0
    exports = json.loads(out)["operations"]
    assert len(exports) == 1
    code, out, _ = run(capsys, daemon, "report")
    assert code == 0
    assert "BJ-HD-2026-0001" in out
    # signed report files: written 0600, verified without the daemon, a changed figure caught
    for fmt in ("json", "csv"):
        target = tmp_path / f"report.{fmt}"
        code, out, _ = run(capsys, daemon, "report", "--format", fmt, "--out", str(target))
        assert code == 0
        assert "recorded as operation" in out
        assert os.stat(target).st_mode & 0o777 == 0o600
        code, out, _ = run(capsys, daemon, "report", "--verify", str(target))
        assert (code, "signature OK" in out) == (0, True)
        text = target.read_text()
        forged = tmp_path / f"forged.{fmt}"
        if fmt == "json":
            doc = json.loads(text)
            doc["report"]["compartments"]["total"] += 1
            forged.write_text(json.dumps(doc))
        else:
            forged.write_text(text.replace("compartments,,,total,,12", "compartments,,,total,,13"))
        code, out, _ = run(capsys, daemon, "report", "--verify", str(forged))
        assert (code, "does not match" in out) == (1, True)
    code, out, _ = run(capsys, daemon, "log", "--json", "--kind", "report.produced")
    assert len(json.loads(out)["operations"]) == 3


def test_refusals_and_usage_exit_codes(daemon: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, daemon, "export", "--out", str(tmp_path / "x"), "--unmasked")
    assert code == 1
    assert "refused" in err
    with pytest.raises(SystemExit) as info:
        lockerctl.main(["open"])
    assert info.value.code == 2
    code, _, err = run(capsys, tmp_path / "nope.sock", "status")
    assert code == 1
    assert "cannot reach lockerd" in err


def test_maintenance_open_is_recorded(daemon: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, daemon, "open", "3", "--reason", "hinge check, call 13812345678")
    assert code == 0
    assert out.strip().startswith("compartment 3: opened")
    code, out, _ = run(capsys, daemon, "doors")
    assert code == 0
    assert "modbus-waveshare" in out
    code, out, _ = run(capsys, daemon, "log", "--json", "--compartment", "3")
    ops = json.loads(out)["operations"]
    kinds = [op["kind"] for op in ops]
    assert kinds == ["maintenance.result", "maintenance.open"]  # newest first
    assert ops[1]["body"]["reason"] == "hinge check, call 138****5678"
    assert ops[0]["body"]["outcome"] == "opened"
    code, _, err = run(capsys, daemon, "open", "99", "--reason", "x")
    assert code == 1
    assert "unknown_compartment" in err


def test_camera_status(daemon: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, daemon, "camera", "--json")
    assert code == 0
    st = json.loads(out)
    assert set(st["intake"]) == {"open", "reason"}
    code, out, _ = run(capsys, daemon, "camera")
    assert code == 0
    assert "verdict:" in out


def test_lockerd_camera_check_cli(tmp_path: Path) -> None:
    import sys

    import cv2

    from lockerd.sim.camera import SimCamera

    ref, good, covered = tmp_path / "ref.png", tmp_path / "good.png", tmp_path / "covered.png"
    cam = SimCamera(640, 480)
    cv2.imwrite(str(ref), cam.render("normal", 0.0))
    cv2.imwrite(str(good), cam.render("normal", 1.0))
    cv2.imwrite(str(covered), cam.render("covered", 1.0))
    proc = subprocess.run([sys.executable, "-m", "lockerd", "camera-check", "--reference",
                           str(ref), str(good), str(covered)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 1, proc.stderr  # a frame that fails makes the check fail
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [(x["file"], x["ok"]) for x in lines] == [(str(good), True), (str(covered), False)]
    assert lines[1]["reason"] in ("covered", "dark")
    only_good = subprocess.run([sys.executable, "-m", "lockerd", "camera-check", "--reference",
                                str(ref), str(good)],
                               capture_output=True, text=True, timeout=120, check=False)
    assert only_good.returncode == 0, only_good.stderr


def test_panel_commands_against_the_daemon(daemon: Path, capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    deadline = time.monotonic() + 30
    while True:  # the camera guard learns the empty scene before intake opens
        code, out, _ = run(capsys, daemon, "camera", "--json")
        if json.loads(out)["intake"]["open"] or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    code, out, err = run(capsys, daemon, "panel", "dropoff", "--json", "--panel", "kiosk-1",
                         "--carrier", "sf", "--size", "S", "--waybill", "SF1234567890",
                         "--verification-ref", demo_token("sf"), "--contents", "books",
                         "--ack-insured-value", "--ack-prohibited-items")
    assert code == 0, (out, err)
    result = json.loads(out)
    assert result["compartment"] >= 1
    assert "SF1234567890" not in out
    monkeypatch.setenv("DEMO_CODE", "00000000")
    code, _, err = run(capsys, daemon, "panel", "pickup", "--panel", "kiosk-1",
                       "--code-env", "DEMO_CODE")
    assert code == 1
    assert "wrong_code" in err
    monkeypatch.setenv("DEMO_PIN", "48213377")
    code, _, err = run(capsys, daemon, "panel", "login", "--panel", "kiosk-1", "--carrier", "sf",
                       "--courier", "c-1", "--pin-env", "DEMO_PIN")
    assert code == 1
    assert "bad_pin" in err
    code, out, _ = run(capsys, daemon, "log", "--json", "--kind", "dropoff.confirm")
    assert len(json.loads(out)["operations"]) == 1


def test_commissioning_pulse_is_recorded(daemon: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from lockerd.api.client import ApiClient

    with ApiClient(daemon) as api:
        # Board 2 channel 7 is wired to no compartment: a raw commissioning pulse.
        result = api.call("boards.pulse", {"bus": "bus0", "board": 2, "channel": 7,
                                           "reason": "commissioning"})
    assert result["via"] == "raw"
    assert result["acknowledged"] is True
    code, out, _ = run(capsys, daemon, "log", "--json", "--kind", "commission.pulse")
    assert code == 0
    (op,) = json.loads(out)["operations"]
    assert (op["body"]["board"], op["body"]["channel"]) == (2, 7)


def test_options_before_the_subcommand_are_kept(daemon: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    code = lockerctl.main(["--json", "--socket", str(daemon), "status"])
    out, _ = capsys.readouterr()
    assert code == 0
    assert json.loads(out)["cabinet"]["id"] == "CAB-0001"


def test_export_never_writes_through_a_symlink_or_into_an_existing_file(
        daemon: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep me\n")
    victim.chmod(0o644)
    link = tmp_path / "link.jsonl"
    link.symlink_to(victim)
    for target in (link, victim, tmp_path / "missing-dir" / "out.jsonl"):
        code, _, err = run(capsys, daemon, "export", "--out", str(target))
        assert code == 1, target
        assert "cannot_write" in err
        assert "Traceback" not in err
    assert victim.read_text() == "keep me\n"
    assert not (tmp_path / "missing-dir").exists()
    # Nothing was written, so nothing was recorded as exported.
    code, out, _ = run(capsys, daemon, "log", "--json", "--kind", "oplog.exported")
    assert code == 0
    assert json.loads(out)["operations"] == []


def test_errors_are_json_with_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = lockerctl.main(["--json", "--socket", str(tmp_path / "none.sock"), "status"])
    out, err = capsys.readouterr()
    assert code == 1
    assert json.loads(out)["error"]["code"] == "unavailable"
    assert err == ""


def test_output_into_a_closed_pipe_is_not_a_traceback(daemon: Path) -> None:
    # The reader has gone before lockerctl writes: the write meets EPIPE, as with `| head -1`.
    script = (f"{shlex.quote(sys.executable)} -m lockerd.cli.lockerctl --socket "
              f"{shlex.quote(str(daemon))} doors | true; echo \"exit=${{PIPESTATUS[0]}}\"")
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60,
                          check=False)
    assert proc.stdout.strip() == "exit=1", (proc.stdout, proc.stderr)
    assert proc.stderr == ""


def test_version_is_the_installed_metadata(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    from lockerd.cli.main import main as lockerd_main

    with pytest.raises(SystemExit) as stop:
        lockerd_main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"lockerd {version('lockerd')}"


def test_panel_login_with_an_offline_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import UTC, datetime, timedelta

    from lockerd.testing.passes import demo_key, issue, public_b64
    config = make_config(tmp_path, carriers=[
        {"id": "sf", "name": "SF Express", "pass_public_key": public_b64(demo_key("sf"))}])
    proc = start_daemon(config)
    sock = tmp_path / "api.sock"
    try:
        wait_for(sock, proc)
        now = datetime.now(UTC)
        token = issue(demo_key("sf"), carrier="sf", courier_id="c-42", not_before=now,
                      expires=now + timedelta(hours=1), cabinets=["CAB-0001"])
        pass_file = tmp_path / "pass.txt"
        pass_file.write_text(token + "\n")
        code, out, _ = run(capsys, sock, "panel", "login", "--pass", str(pass_file), "--json")
        assert code == 0
        assert json.loads(out)["courier_id"] == "c-42"
        # the token never shows: not in argv (a file or stdin), not in the output
        assert token not in out
        forged = tmp_path / "forged.txt"
        head, payload, sig = token.split(".")
        forged.write_text(f"{head}.{payload}.{'B' if sig[0] == 'A' else 'A'}{sig[1:]}")
        code, _, err = run(capsys, sock, "panel", "login", "--pass", str(forged))
        assert code == 1
        assert "pass_bad_signature" in err
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


def test_log_newest_first_in_pages_within_80_columns(
        daemon: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for i in range(3):  # a few more operations: each export is recorded
        assert run(capsys, daemon, "export", "--out", str(tmp_path / f"e{i}.jsonl"))[0] == 0
    code, out, _ = run(capsys, daemon, "log", "--json", "--limit", "2")
    assert code == 0
    first = json.loads(out)
    seqs = [op["seq"] for op in first["operations"]]
    assert seqs == sorted(seqs, reverse=True)
    assert first["operations"][0]["kind"] == "oplog.exported"
    assert first["next_before_seq"] == seqs[-1]
    code, out, _ = run(capsys, daemon, "log", "--json", "--limit", "2", "--before-seq",
                       str(seqs[-1]))
    older = [op["seq"] for op in json.loads(out)["operations"]]
    assert older == [seqs[-1] - 1, seqs[-1] - 2]
    code, out, _ = run(capsys, daemon, "log", "--limit", "4")
    assert code == 0
    lines = out.splitlines()
    assert all(len(line) <= 80 for line in lines), lines
    assert lines[2].split()[0] == str(seqs[0])
    assert lines[-1].startswith("older: lockerctl log --before-seq ")


def test_log_follow_prints_new_operations_until_ctrl_c(daemon: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    follower = subprocess.Popen(
        [sys.executable, "-m", "lockerd.cli.lockerctl", "log", "--follow", "--json", "--limit",
         "2", "--socket", str(daemon)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert follower.stdout is not None
        before = [json.loads(follower.stdout.readline()) for _ in range(2)]
        assert before[0]["seq"] < before[1]["seq"]  # oldest first when following
        assert run(capsys, daemon, "export", "--out", str(tmp_path / "f.jsonl"))[0] == 0
        new = json.loads(follower.stdout.readline())
        assert new["kind"] == "oplog.exported"
        assert new["seq"] > before[1]["seq"]
        follower.send_signal(signal.SIGINT)
        _out, err = follower.communicate(timeout=10)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.communicate()
    assert follower.returncode == 0, err
    assert "Traceback" not in err


def test_export_writes_every_page(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # 1 KiB pages, and earlier exports' records to fill several: the file gets every line, once,
    # in order, and as many as the export's record counted.
    proc = start_daemon(make_config(tmp_path, oplog={"export_page_kib": 1}))
    sock = tmp_path / "api.sock"
    try:
        wait_for(sock, proc)
        for i in range(10):
            assert run(capsys, sock, "export", "--out", str(tmp_path / f"e{i}.jsonl"))[0] == 0
        target = tmp_path / "paged.jsonl"
        code, out, _ = run(capsys, sock, "export", "--json", "--out", str(target))
        assert code == 0, out
        summary = json.loads(out)
        records = [json.loads(line) for line in target.read_text().splitlines()]
        code, out, _ = run(capsys, sock, "log", "--json", "--kind", "oplog.exported")
        body = json.loads(out)["operations"][0]["body"]  # newest first
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert sum(len(json.dumps(r)) for r in records) > 3 * 1024  # more than three pages
    assert summary["rows"] == len(records) == body["rows"]
    seqs = [r["seq"] for r in records if r["type"] == "operation"]
    assert seqs == list(range(1, body["head_seq"] + 1))
