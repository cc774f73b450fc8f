"""`lockerd doctor`: each check finds the problem it is for and names the fix; exit codes."""

from __future__ import annotations

import grp
import json
import os
import socket
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lockerd.cli import doctor
from lockerd.cli.main import main as lockerd_main
from lockerd.config import Config, parse_config
from lockerd.testing.broker import LocalBroker
from tests.fixtures.paths import EXAMPLE_CONFIG

STRANGER = doctor.User("lockerd", 4242, frozenset({4242}))


def _config(tmp_path: Path, **sections: dict[str, Any]) -> Config:
    data = tomllib.loads(EXAMPLE_CONFIG.read_text())
    data["paths"] = {"state_dir": str(tmp_path / "state"), "socket": str(tmp_path / "api.sock"),
                     "key_file": str(tmp_path / "oplog.key")}
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return parse_config(data, EXAMPLE_CONFIG)


@pytest.fixture
def serial_port() -> Iterator[tuple[Path, str]]:
    """A real tty (a pty's slave side) made root:uucp 0660 like a udev-managed adapter (uucp:
    a group the default fix does not name, so the fix must come from the device)."""
    master, slave = os.openpty()
    path = Path(os.ttyname(slave))
    group = "uucp"
    os.chown(path, 0, grp.getgrnam(group).gr_gid)
    os.chmod(path, 0o660)
    try:
        yield path, group
    finally:
        os.close(slave)
        os.close(master)


@pytest.mark.skipif(os.geteuid() != 0, reason="making a tty group-only needs root")
def test_serial_ports_need_the_group(tmp_path: Path, serial_port: tuple[Path, str]) -> None:
    port, group = serial_port
    cfg = _config(tmp_path, hardware={"backend": "real", "buses": [
        {"name": "bus0", "port": str(port)}, {"name": "bus1", "port": "/dev/ttyUSB-missing"}]})
    member = doctor.User("lockerd", 4242, frozenset({os.stat(port).st_gid}))
    first, missing = doctor.check_serial(cfg, member)
    assert first.ok, first
    assert not missing.ok
    assert "does not exist" in missing.detail
    assert "/dev/serial/by-id/" in (missing.fix or "")
    outsider, _ = doctor.check_serial(cfg, STRANGER)
    assert not outsider.ok
    assert f"usermod -aG {group} lockerd" in (outsider.fix or "")


def test_simulated_hardware_needs_no_devices(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    assert all(c.ok for c in [*doctor.check_serial(cfg, STRANGER),
                              *doctor.check_camera(cfg, STRANGER)])


def test_camera_device_and_gpio_backend(tmp_path: Path) -> None:
    cfg = _config(tmp_path, hardware={"backend": "real"}, camera={"source": "/dev/null"},
                  gpio={"enabled": True})
    (cam,) = doctor.check_camera(cfg, STRANGER)
    assert cam.ok, cam  # /dev/null is crw-rw-rw-
    chip, backend = doctor.check_gpio(cfg, STRANGER, chip=tmp_path / "gpiochip0",
                                      has_lgpio=lambda: False)
    assert not chip.ok
    assert not backend.ok
    assert "requirements-pi.lock" in (backend.fix or "")


def test_time_sync_states() -> None:
    assert [c.ok for f in (lambda: True, lambda: False, lambda: None)
            for c in doctor.check_time(f)] == [True, False, False]
    assert doctor.clock_synchronised() in (True, False, None)


def test_key_modes_and_state_directory(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    me = doctor.User.named(None)
    (missing,) = doctor.check_secrets(cfg, me)
    assert not missing.ok
    key = tmp_path / "oplog.key"
    key.write_text("00" * 32)
    key.chmod(0o644)
    (loose,) = doctor.check_secrets(cfg, me)
    assert not loose.ok
    assert loose.fix == f"chmod 600 {key}"
    key.chmod(0o600)
    (good,) = doctor.check_secrets(cfg, me)
    assert good.ok, good
    state, disk = doctor.check_state(cfg, me)
    assert not state.ok
    assert "install -d -m 0700" in (state.fix or "")
    assert disk.name == "disk"
    (tmp_path / "state").mkdir(mode=0o755)
    os.chmod(tmp_path / "state", 0o755)
    state, _ = doctor.check_state(cfg, me)
    assert not state.ok
    os.chmod(tmp_path / "state", 0o700)
    state, _ = doctor.check_state(cfg, me)
    assert state.ok, state


async def test_broker_reachable_or_not(tmp_path: Path, broker: LocalBroker) -> None:
    cfg = _config(tmp_path, mqtt={"enabled": True, "host": "127.0.0.1", "port": broker.port,
                                  "tls": False})
    (up,) = doctor.check_broker(cfg)
    assert up.ok, up
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    cfg = _config(tmp_path, mqtt={"enabled": True, "host": "127.0.0.1", "port": closed,
                                  "tls": False})
    (down,) = doctor.check_broker(cfg, timeout_s=1.0)
    assert not down.ok
    assert "not reachable" in down.detail


def test_lockerd_doctor_lines_json_and_exit_codes(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[nonsense]\n")
    assert lockerd_main(["doctor", "-c", str(bad)]) == 2
    config = tmp_path / "lockerd.toml"
    config.write_text(EXAMPLE_CONFIG.read_text().replace(
        'state_dir = "/var/lib/lockerd"', f'state_dir = "{tmp_path / "nowhere"}"'))
    capsys.readouterr()
    assert lockerd_main(["doctor", "-c", str(config)]) == 1  # no state directory, no key
    lines = capsys.readouterr().out.splitlines()
    assert any(ln.startswith("PROBLEM  state dir:") and "fix:" in ln for ln in lines)
    assert any(ln.startswith("ok       serial:") for ln in lines)
    assert lockerd_main(["doctor", "-c", str(config), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert {c["name"] for c in report["checks"]} >= {"serial", "camera", "gpio", "time",
                                                     "state dir", "disk", "log key", "broker"}
