"""`lockerd fleet-watch`: the table from retained health, through the real CLI against mosquitto."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.publish as publish

from lockerd.domain.timefmt import format_ts
from lockerd.sync.fleet import FleetTable, parse_broker
from lockerd.testing.broker import LocalBroker, free_port
from tests.sync.contract import errors

NOW = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def _health(state: str = "ready", *, boards: tuple[bool, ...] = (True, True),
            incidents: dict[str, int] | None = None, backlog: int = 0,
            intake: bool = True, at: datetime = NOW) -> dict[str, Any]:
    return {"v": 1, "ts": format_ts(at), "state": state, "reasons": [],
            "components": {"doors": {"state": "running", "restarts": 0}},
            "boards": [{"address": i + 1, "online": up, "failures": 0 if up else 7}
                       for i, up in enumerate(boards)],
            "camera": {"verdict": "ok" if intake else "covered", "intake_open": intake,
                       "reason": None if intake else "camera_obstructed", "closed_today_s": 0},
            "outbox": {"backlog": backlog, "oldest_age_s": 0},
            "storage": {"log_bytes": 1, "disk_free_bytes": 1},
            "clock": {"sync": "unknown", "source": None}, "uptime_s": 5, "version": "1.0",
            "incidents": incidents or {}}


def test_the_table_puts_cabinets_needing_a_person_first() -> None:
    table = FleetTable()
    table.feed("lockers/CAB-A/health", json.dumps(_health()).encode())
    table.feed("lockers/CAB-B/health", json.dumps(_health(
        "degraded", boards=(True, False), incidents={"board_offline": 1}, backlog=12,
        intake=False, at=NOW - timedelta(minutes=5))).encode())
    table.feed("lockers/CAB-C/status", b'{"v":1,"online":false,"ts":"2026-03-01T07:00:00.000Z"}')
    table.feed("lockers/CAB-D/health", b"not json")
    table.feed("other/CAB-E/health", json.dumps(_health()).encode())
    assert errors("Health", _health()) == []
    lines = table.lines(NOW)
    assert lines[0] == "3 cabinets: 1 degraded, 1 offline, 1 ready"
    assert [line.split()[0] for line in lines[2:]] == ["CAB-B", "CAB-C", "CAB-A"]
    b = lines[2].split()
    assert b[1:] == ["degraded", "1/2", "closed:camera_obst", "12", "board_offline=1", "5m"]
    assert lines[3].split()[1] == "offline"
    assert lines[4].split()[1:3] == ["ready", "2/2"]
    assert table.rejected == 1


def test_broker_argument() -> None:
    assert parse_broker("central.example.com", tls=True) == ("central.example.com", 8883)
    assert parse_broker("10.0.0.5:1884", tls=False) == ("10.0.0.5", 1884)
    assert parse_broker("broker", tls=False) == ("broker", 1883)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lockerd", "fleet-watch", *args],
                          capture_output=True, text=True, timeout=60, check=False)


async def test_the_cli_shows_every_cabinet_from_retained_health(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    broker = LocalBroker(tmp_path / "b")
    await broker.start()
    try:
        msgs = [{"topic": f"lockers/CAB-{i:04d}/health", "payload": json.dumps(
                    _health(at=datetime.now(UTC))), "qos": 1, "retain": True}
                for i in range(200)]
        await asyncio.to_thread(publish.multiple, msgs, hostname="127.0.0.1", port=broker.port)
        done = await asyncio.to_thread(_cli, "--broker", f"127.0.0.1:{broker.port}",
                                       "--once", "2")
    finally:
        await broker.stop()
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "200 cabinets: 200 ready"
    assert {line.split()[0] for line in lines[2:]} == {f"CAB-{i:04d}" for i in range(200)}


async def test_an_unreachable_broker_is_exit_2() -> None:
    done = await asyncio.to_thread(_cli, "--broker", f"127.0.0.1:{free_port()}", "--once", "1")
    assert done.returncode == 2
    assert "cannot reach the broker" in done.stderr
