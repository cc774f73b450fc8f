"""Fleet health telemetry: the retained `health` message of a real daemon over mosquitto, its
debounced republishing on change, intake-closed time, clock sync that degrades to unknown."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from lockerd.app import clocksync
from lockerd.app.events import EventBus
from lockerd.app.health import IntakeDay
from lockerd.camera.guard import IntakeChanged
from lockerd.sync.health import (
    CameraHealth,
    ClockHealth,
    HealthPayload,
    HealthPublisher,
    OutboxHealth,
    StorageHealth,
)
from lockerd.sync.link import LinkCallbacks, MqttLink
from lockerd.testing.broker import LocalBroker
from tests.fixtures.cabinet import PIN, Cabinet, courier, delivery
from tests.sync.contract import errors


class Retained:
    """A subscriber that keeps every message on one topic."""

    def __init__(self, port: int, topic: str) -> None:
        self.topic = topic
        self.got: list[dict[str, Any]] = []
        self.link = MqttLink(host="127.0.0.1", port=port, client_id=f"watch-{id(self)}",
                             callbacks=LinkCallbacks(on_connect=self._connected,
                                                     on_message=self._message))

    def _connected(self, _sp: bool) -> None:
        self.link.subscribe(self.topic, 1)

    def _message(self, topic: str, payload: bytes, mid: int, qos: int) -> None:
        self.got.append(json.loads(payload))
        self.link.ack(mid, qos)

    async def until(self, check: Any, limit_s: float = 20.0) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + limit_s
        while not (self.got and check(self.got[-1])):
            assert asyncio.get_running_loop().time() < deadline, self.got[-1:]
            await asyncio.sleep(0.05)
        return self.got[-1]


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[LocalBroker]:
    (tmp_path / "broker").mkdir()
    b = LocalBroker(tmp_path / "broker")
    await b.start()
    try:
        yield b
    finally:
        await b.stop()


async def test_a_daemon_publishes_retained_health_on_change_without_personal_data(
        tmp_path: Path, broker: LocalBroker) -> None:
    cab = Cabinet(tmp_path, mqtt={"enabled": True, "host": "127.0.0.1", "port": broker.port,
                                  "tls": False, "reconnect_min_s": 0.2, "reconnect_max_s": 1.0,
                                  "health_interval_s": 600.0, "health_min_interval_s": 0.3})
    await cab.start()
    watcher = Retained(broker.port, f"lockers/{cab.cfg.cabinet.id}/health")
    await watcher.link.start()
    try:
        await cab.grant("sf", "c-101", PIN)
        res = await cab.call("panel.deliver", {**courier(), "parcel": delivery("SF5550001234")})
        first = await watcher.until(lambda h: h["state"] == "ready")
        assert errors("Health", first) == []
        assert first["version"]
        assert first["uptime_s"] >= 0
        assert [b["online"] for b in first["boards"]] == [True] * len(cab.cfg.hardware.boards)
        assert first["camera"]["intake_open"] is True
        assert first["clock"]["sync"] in ("synced", "unsynced", "unknown")
        assert first["storage"]["log_bytes"] > 0
        assert first["storage"]["disk_free_bytes"] > 0
        assert set(first["components"]) >= {"oplog", "doors", "camera", "sync", "parcels", "api"}
        # a blocked compartment is an incident: republished on change, long before the interval
        await cab.call("compartments.block", {"compartment": res["compartment"],
                                              "reason": "door sticks"})
        blocked = await watcher.until(lambda h: h["incidents"].get("compartment_blocked") == 1)
        assert blocked["incidents"].get("parcel_stuck") == 1
        assert errors("Health", blocked) == []
        text = json.dumps(watcher.got)
        for personal in ("SF5550001234", PIN, "c-101", res["parcel_id"]):
            assert personal not in text
        # retained: a watcher arriving later gets the latest at once
        late = Retained(broker.port, watcher.topic)
        await late.link.start()
        try:
            got = await late.until(lambda h: True)
            assert got["incidents"] == blocked["incidents"]
        finally:
            await late.link.stop()
    finally:
        await watcher.link.stop()
        await cab.stop()


def _snap(n: int) -> HealthPayload:
    return HealthPayload(
        ts=datetime.now(UTC), state="ready", reasons=[], components={}, boards=[],
        camera=CameraHealth(verdict="ok", intake_open=True, reason=None, closed_today_s=0),
        outbox=OutboxHealth(backlog=0, oldest_age_s=0),
        storage=StorageHealth(log_bytes=1, disk_free_bytes=1),
        clock=ClockHealth(sync="unknown", source=None), uptime_s=0, version="t",
        incidents={"door_unknown": n} if n else {})


class Flapping:
    """A source whose incident count changes on every call (a board flapping)."""

    def __init__(self) -> None:
        self.calls = 0

    async def health_snapshot(self) -> HealthPayload:
        self.calls += 1
        return _snap(self.calls % 2)


async def test_changes_are_debounced_to_one_message_per_gap(broker: LocalBroker) -> None:
    link = MqttLink(host="127.0.0.1", port=broker.port, client_id="cab-debounce")
    watcher = Retained(broker.port, "lockers/X/health")
    source = Flapping()
    pub = HealthPublisher(source, lambda: link, "lockers/X/health", interval_s=3600,
                          min_gap_s=1.5)
    link.callbacks.on_connect = lambda _sp: pub.connected()
    await watcher.link.start()
    await link.start()
    task = asyncio.create_task(pub.run())
    try:
        await asyncio.sleep(4.2)
        # every check saw a change; the first went out at connect, then one per 1.5 s gap
        assert source.calls >= 4
        assert 2 <= pub.published <= 4, (pub.published, source.calls)
        assert pub.published < source.calls
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        for _ in range(100):  # every message published reached the subscriber
            if len(watcher.got) == pub.published:
                break
            await asyncio.sleep(0.05)
        assert len(watcher.got) == pub.published
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await link.stop()
        await watcher.link.stop()


def test_intake_closed_time_counts_today_only() -> None:
    now = [datetime(2026, 3, 1, 23, 0, tzinfo=UTC).astimezone()]
    day = IntakeDay(closed_now=False, clock=lambda: now[0])
    bus = EventBus()
    bus.listen(day.changed, IntakeChanged)
    day.changed(IntakeChanged(False, "camera_down", "lens covered"))
    now[0] += timedelta(minutes=10)
    day.changed(IntakeChanged(True, None, "ok"))
    assert day.closed_today_s() == 600.0
    day.changed(IntakeChanged(False, "camera_down", "dark"))
    now[0] += timedelta(minutes=5)
    assert day.closed_today_s() == 900.0
    # past local midnight only today's part of a closure counts
    midnight = now[0].replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    now[0] = midnight + timedelta(minutes=3)
    assert day.closed_today_s() == 180.0


def test_clock_sync_degrades_to_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clocksync.shutil, "which", lambda _name: None)
    monkeypatch.setattr(clocksync.ctypes.util, "find_library", lambda _name: None)
    assert clocksync.clock_sync() == ("unknown", None)


def test_clock_sync_asks_timedatectl_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "timedatectl"
    fake.write_text('#!/bin/sh\n[ "$1 $2 $3 $4" = "show -p NTPSynchronized --value" ] '
                    '&& echo yes || exit 1\n')
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert clocksync.clock_sync() == ("synced", "timedatectl")
    fake.write_text("#!/bin/sh\necho no\n")
    assert clocksync.clock_sync() == ("unsynced", "timedatectl")
    fake.write_text("#!/bin/sh\necho 'Failed to connect to bus'; exit 1\n")
    assert clocksync.clock_sync()[1] != "timedatectl"  # falls through to the kernel
