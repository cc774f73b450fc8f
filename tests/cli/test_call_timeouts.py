"""lockerctl's reply timeouts: a stuck daemon is given up on, a walk of the whole log is not."""

from __future__ import annotations

import argparse
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lockerd.api import client
from lockerd.cli.lockerctl import Ctx

DELAY_S = 0.6


@pytest.fixture
def slow_daemon(tmp_path: Path) -> Iterator[Path]:
    """A unix socket that answers every request after DELAY_S (a daemon busy with a long walk)."""
    path = tmp_path / "api.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(4)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                buf = b""
                while not stop.is_set():
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    buf += chunk
                    while b"\n" in buf:
                        line, buf = buf.split(b"\n", 1)
                        req = json.loads(line)
                        time.sleep(DELAY_S)
                        reply = {"id": req["id"], "ok": True, "result": {"method": req["method"]}}
                        try:
                            conn.sendall(json.dumps(reply).encode() + b"\n")
                        except OSError:
                            return

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield path
    finally:
        stop.set()
        server.close()
        thread.join(5)


def ctx(path: Path) -> Ctx:
    return Ctx(argparse.Namespace(socket=str(path), json=True, config=None))


def test_a_verify_of_a_long_log_outlasts_the_ordinary_timeout(
        slow_daemon: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client, "CALL_TIMEOUT_S", DELAY_S / 3)
    c = ctx(slow_daemon)
    try:
        assert c.call("log.verify") == {"method": "log.verify"}
    finally:
        c.close()


def test_an_ordinary_request_to_a_stuck_daemon_times_out(
        slow_daemon: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client, "CALL_TIMEOUT_S", DELAY_S / 3)
    c = ctx(slow_daemon)
    try:
        with pytest.raises(TimeoutError):
            c.call("status")
    finally:
        c.close()
