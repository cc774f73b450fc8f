"""`lockerctl config check` checks the files the config names (issue 12), and `lockerd doctor` the
device identity key (issue 17): each missing, wrongly moded or unreadable file is one clear line
and exit 1; a good set is exit 0.

Real files in a temporary directory: keys written 0600, a 0644 key, a FIFO where a key should be
(the check must not block on it), a regular file where a serial port should be, a pty that is a
real character device, a device identity created by the daemon's own code.
"""

from __future__ import annotations

import json
import os
import secrets
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lockerd.cli import config_files, doctor, lockerctl
from lockerd.config import parse_config
from lockerd.oplog.backup import LOG_FILE
from lockerd.oplog.identity import IDENTITY_FILE, fingerprint, load_or_create
from tests.fixtures.daemon_proc import dump_toml
from tests.fixtures.paths import EXAMPLE_CONFIG

ME = doctor.User.named(None)
STRANGER = doctor.User("lockerd", 4242, frozenset({4242}))


def _secret(path: Path, mode: int = 0o600) -> Path:
    path.write_text(secrets.token_hex(32) + "\n")
    path.chmod(mode)
    return path


@pytest.fixture
def good(tmp_path: Path) -> dict[str, Any]:
    """A config whose every named file exists with the right modes: state dir, log key, two
    carrier keys, MQTT TLS files and password, the camera reference image."""
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    (tmp_path / "client.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    (tmp_path / "ref.png").write_bytes(b"\x89PNG")
    data = tomllib.loads(EXAMPLE_CONFIG.read_text())
    data["paths"] = {"state_dir": str(state), "socket": str(tmp_path / "api.sock"),
                     "key_file": str(_secret(tmp_path / "oplog.key"))}
    data["carriers"] = [{"id": "sf", "name": "SF Express",
                         "hmac_key_file": str(_secret(tmp_path / "sf.key")),
                         "id_hash_key_file": str(_secret(tmp_path / "sf.idkey"))}]
    data["mqtt"] = {**data.get("mqtt", {}), "enabled": True, "tls": True,
                    "ca_file": str(tmp_path / "ca.pem"),
                    "cert_file": str(tmp_path / "client.pem"),
                    "key_file": str(_secret(tmp_path / "client.key")),
                    "username": "cab", "password_file": str(_secret(tmp_path / "mqtt.pass"))}
    data.setdefault("camera", {})["reference_file"] = str(tmp_path / "ref.png")
    return data


def _write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "lockerd.toml"
    path.write_text(dump_toml(data), encoding="utf-8")
    parse_config(data, path)  # the config itself is valid: only files are judged below
    return path


def _check(tmp_path: Path, data: dict[str, Any], capsys: pytest.CaptureFixture[str]
           ) -> tuple[int, list[str]]:
    code = lockerctl.main(["config", "check", str(_write(tmp_path, data))])
    return code, capsys.readouterr().out.splitlines()


def test_a_good_set_of_files_passes(tmp_path: Path, good: dict[str, Any],
                                    capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = _check(tmp_path, good, capsys)
    assert code == 0, lines
    names = [line.split(":")[0].split(None, 1)[1] for line in lines[:-1]]
    assert names == ["state dir (log, evidence)", "identity dir", "device identity", "log key",
                     "carrier sf hmac key", "carrier sf id_hash key", "mqtt CA file",
                     "mqtt client certificate", "mqtt client key", "mqtt password file",
                     "camera reference"]
    assert all(line.startswith("ok ") for line in lines[:-1]), lines
    assert ": OK (cabinet" in lines[-1]
    # no line shows a key
    text = "\n".join(lines)
    for key in ("oplog.key", "sf.key", "sf.idkey", "client.key", "mqtt.pass"):
        assert (tmp_path / key).read_text().strip() not in text


def test_a_missing_file_is_one_line_and_exit_1(tmp_path: Path, good: dict[str, Any],
                                               capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "sf.idkey").unlink()
    (tmp_path / "ca.pem").unlink()
    code, lines = _check(tmp_path, good, capsys)
    assert code == 1
    problems = [line for line in lines if line.startswith("PROBLEM")]
    assert problems == [
        f"PROBLEM  carrier sf id_hash key: {tmp_path / 'sf.idkey'} is missing; fix: create it "
        f"readable by {ME.name} only, e.g. (umask 077; openssl rand -hex 32 > "
        f"{tmp_path / 'sf.idkey'}) for a key (deploy/systemd/README.md)",
        f"PROBLEM  mqtt CA file: {tmp_path / 'ca.pem'} is missing; fix: put the mqtt CA file "
        f"at {tmp_path / 'ca.pem'}, or correct the path in the config"]
    assert "PROBLEMS" in lines[-1]


def test_a_world_readable_key_and_a_fifo_are_refused(tmp_path: Path, good: dict[str, Any],
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "sf.key").chmod(0o644)
    fifo = tmp_path / "oplog.key"
    fifo.unlink()
    os.mkfifo(fifo, 0o600)  # opening it for a read would block: the check must not
    code, lines = _check(tmp_path, good, capsys)
    assert code == 1
    problems = [line for line in lines if line.startswith("PROBLEM")]
    assert problems == [
        f"PROBLEM  log key: {fifo} is a FIFO, not a regular file; fix: replace it with a "
        "regular file holding the log key",
        f"PROBLEM  carrier sf hmac key: {tmp_path / 'sf.key'} mode 0644 lets group or others "
        f"access it (a secret); fix: chmod 600 {tmp_path / 'sf.key'}"]


def test_json_lists_each_file(tmp_path: Path, good: dict[str, Any],
                              capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "mqtt.pass").write_text("")
    code = lockerctl.main(["--json", "config", "check", str(_write(tmp_path, good))])
    out = json.loads(capsys.readouterr().out)
    assert code == 1
    assert out["ok"] is False
    [bad] = [f for f in out["files"] if not f["ok"]]
    assert (bad["name"], bad["detail"]) == ("mqtt password file",
                                            f"{tmp_path / 'mqtt.pass'} is empty")


def test_access_is_judged_for_the_service_user(tmp_path: Path, good: dict[str, Any]) -> None:
    """Files owned by root 0600 (or by this test's user): a service user who is neither cannot
    read them, and cannot write the state directory."""
    cfg = parse_config(good, tmp_path / "lockerd.toml")
    checks = {c.name: c for c in config_files.check_config_files(cfg, STRANGER)}
    if ME.uid != 0:  # owned by someone else than root and the stranger: refused for that
        assert "neither root nor lockerd" in checks["log key"].detail
    else:
        assert "cannot be read by lockerd" in checks["log key"].detail
        assert "LoadCredential=" in (checks["log key"].fix or "")
    assert not checks["state dir (log, evidence)"].ok
    assert "not writable by lockerd" in checks["state dir (log, evidence)"].detail
    # a public certificate readable by everyone is fine for anyone
    (tmp_path / "ca.pem").chmod(0o644)
    assert config_files.public_file("ca", tmp_path / "ca.pem", STRANGER).ok


def test_a_missing_state_dir_is_fine_only_where_it_can_be_made(tmp_path: Path,
                                                               good: dict[str, Any]) -> None:
    good["paths"]["state_dir"] = str(tmp_path / "new" / "state")
    cfg = parse_config(good, tmp_path / "lockerd.toml")
    first = config_files.check_config_files(cfg, ME)[:3]
    assert [c.ok for c in first] == [True, True, True], first
    assert "creates it at its first start" in first[0].detail
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    good["paths"]["state_dir"] = str(locked / "state")
    cfg = parse_config(good, tmp_path / "lockerd.toml")
    state = config_files.check_config_files(cfg, STRANGER)[0]
    assert not state.ok
    assert "cannot create it" in state.detail


@pytest.fixture
def not_a_tty(tmp_path: Path) -> Path:
    path = tmp_path / "ttyUSB0"
    path.write_text("")
    return path


@pytest.fixture
def pty() -> Iterator[Path]:
    master, slave = os.openpty()
    try:
        yield Path(os.ttyname(slave))
    finally:
        os.close(slave)
        os.close(master)


def test_serial_ports_must_be_character_devices(tmp_path: Path, good: dict[str, Any],
                                                not_a_tty: Path, pty: Path) -> None:
    good["hardware"] = {**good.get("hardware", {}), "backend": "real", "buses": [
        {"name": "bus0", "port": str(pty)}, {"name": "bus1", "port": str(not_a_tty)},
        {"name": "bus2", "port": str(tmp_path / "ttyUSB9")}],
        "idcard": {"enabled": True, "port": str(not_a_tty)}}
    good["hardware"]["boards"] = [{**b, "bus": "bus0"} for b in good["hardware"]["boards"]]
    cfg = parse_config(good, tmp_path / "lockerd.toml")
    checks = {c.name: c for c in config_files.check_config_files(cfg, ME)}
    assert checks["serial bus0"].ok, checks["serial bus0"]
    assert checks["serial bus1"].detail == f"{not_a_tty} is not a character device"
    assert checks["serial bus2"].detail == f"{tmp_path / 'ttyUSB9'} does not exist"
    assert not checks["id-card reader"].ok


# ---- lockerd doctor: the device identity key (issue 17) ---------------------------------------

def _doctor_identity(tmp_path: Path, good: dict[str, Any]) -> list[doctor.Check]:
    return list(doctor.check_device_identity(parse_config(good, tmp_path / "lockerd.toml"), ME))


def test_doctor_prints_the_identity_fingerprint(tmp_path: Path, good: dict[str, Any]) -> None:
    # identity_dir defaults to the log key's directory when paths.key_file is set
    identity, created = load_or_create(tmp_path)
    assert created
    directory, key = _doctor_identity(tmp_path, good)
    assert directory.ok, directory
    assert key.ok, key
    assert key.detail.endswith(f"fingerprint {fingerprint(identity.public_raw)}")
    names = [c.name for c in doctor.run_checks(parse_config(good, tmp_path / "x.toml"), ME)]
    assert "device identity" in names


def test_doctor_refuses_a_readable_or_broken_identity_key(tmp_path: Path,
                                                          good: dict[str, Any]) -> None:
    load_or_create(tmp_path)
    key_path = tmp_path / IDENTITY_FILE
    key_path.chmod(0o644)
    _, key = _doctor_identity(tmp_path, good)
    assert not key.ok
    assert "mode 0644" in key.detail
    assert key.fix is not None
    assert key.fix.startswith(f"chown {ME.name} {key_path} && chmod 600 {key_path}")
    key_path.chmod(0o600)
    key_path.write_text("not a key\n")
    _, key = _doctor_identity(tmp_path, good)
    assert not key.ok
    assert "hex digits" in key.detail


def test_doctor_wants_the_identity_once_a_log_exists(tmp_path: Path,
                                                     good: dict[str, Any]) -> None:
    _, before = _doctor_identity(tmp_path, good)
    assert before.ok
    assert "first start" in before.detail
    (Path(good["paths"]["state_dir"]) / LOG_FILE).write_bytes(b"")
    _, after = _doctor_identity(tmp_path, good)
    assert not after.ok
    assert "missing" in after.detail
    assert "start lockerd once" in (after.fix or "")


def test_a_log_key_passed_as_a_credential_is_read_by_systemd(
        tmp_path: Path, good: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """paths.key_file unset: the key is systemd's credential (root 0600 is right, systemd reads
    it for the daemon); a 0644 one is still refused."""
    creds = tmp_path / "creds"
    creds.mkdir(mode=0o700)
    key = _secret(creds / "oplog.key")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    del good["paths"]["key_file"]
    cfg = parse_config(good, tmp_path / "lockerd.toml")
    [log_key] = [c for c in config_files.check_config_files(cfg, STRANGER) if c.name == "log key"]
    assert log_key.ok, log_key
    assert log_key.detail == f"{key} mode 0600, root (LoadCredential=) can read it"
    key.chmod(0o644)
    [log_key] = [c for c in config_files.check_config_files(cfg, STRANGER) if c.name == "log key"]
    assert not log_key.ok
