"""A real `lockerd run` subprocess: systemd notifications, the watchdog, clean SIGTERM shutdown."""

from __future__ import annotations

import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lockerd.api.client import ApiClient
from tests.fixtures.daemon_proc import make_config, start_daemon, wait_for


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, Path]]:
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(0.5)
    yield sock, path
    sock.close()


def collect(sock: socket.socket, until: float, stop_at: str | None = None) -> list[str]:
    messages: list[str] = []
    while time.monotonic() < until and (stop_at is None or stop_at not in messages):
        try:
            messages.extend(sock.recv(4096).decode().splitlines())
        except TimeoutError:
            continue
    return messages


def test_sigterm_shuts_down_cleanly(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    sock_path = tmp_path / "api.sock"
    proc = start_daemon(config)
    try:
        wait_for(sock_path, proc)
        with ApiClient(sock_path) as api:
            assert api.call("status")["cabinet"]["id"] == "CAB-0001"
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert not sock_path.exists()
    assert "lockerd stopped" in err


def test_ready_status_and_watchdog(tmp_path: Path,
                                   notify_socket: tuple[socket.socket, Path]) -> None:
    sock, path = notify_socket
    config = make_config(tmp_path)
    started = time.monotonic()
    proc = start_daemon(config, env={"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "400000"})
    try:
        # READY may take a while on a loaded CI machine; then watch the watchdog for 2.5 s.
        messages = collect(sock, started + 30.0, stop_at="READY=1")
        messages += collect(sock, time.monotonic() + 2.5)
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
        messages += collect(sock, time.monotonic() + 0.6)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "READY=1" in messages
    assert any(m.startswith("STATUS=ready") for m in messages)
    # 0.4 s watchdog -> a ping every 0.2 s; several within the remaining seconds.
    assert messages.count("WATCHDOG=1") >= 5
    assert "STOPPING=1" in messages
    assert proc.returncode == 0


@pytest.mark.parametrize("problem", ["missing", "world_readable", "example"])
def test_refuses_to_start_with_a_bad_key(tmp_path: Path, problem: str) -> None:
    from lockerd.oplog import EXAMPLE_KEY_HEX

    config = make_config(tmp_path)
    key = tmp_path / "oplog.key"
    if problem == "missing":
        key.unlink()
    elif problem == "world_readable":
        key.chmod(0o644)
    else:
        key.write_text(EXAMPLE_KEY_HEX + "\n")
    proc = start_daemon(config)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "cannot start: oplog:" in err
    assert "Traceback" not in err
    assert not (tmp_path / "api.sock").exists()
    assert not (tmp_path / "state" / "oplog.db").exists()
