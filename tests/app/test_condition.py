"""Honest health: the cabinet is `degraded` with dated reasons while boards, camera, carrier link or
log writer are unwell, and the API, systemd's STATUS= and the retained health message agree."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from lockerd.api.client import AsyncApiClient
from lockerd.app.condition import CabinetCondition, Sources
from lockerd.app.supervisor import CabinetState
from lockerd.config import load_config
from lockerd.sync.link import LinkCallbacks, MqttLink
from lockerd.testing.broker import LocalBroker
from tests.fixtures.cabinet import Cabinet
from tests.fixtures.daemon_proc import make_config, start_daemon
from tests.sync.contract import errors


class World:
    """Facts the condition reads, set by the test."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
        self.components: dict[str, str] = {"oplog": "running", "doors": "running"}
        self.boards: dict[str, dict[str, Any]] = {"1": {"online": True}, "2": {"online": True}}
        self.verdict: str | None = "ok"
        self.link: bool | None = True
        self.timing: tuple[float, float, float] | None = (0.0, 0.01, 1.0)
        self.own: list[str] = []  # components' own reasons (the log's integrity check)

    def cabinet_state(self) -> CabinetState:
        if all(s == "running" for s in self.components.values()):
            return CabinetState.READY
        return CabinetState.DEGRADED

    def status(self) -> dict[str, Any]:
        return {name: {"state": s} for name, s in self.components.items()}

    def degraded_reasons(self) -> list[str]:
        return list(self.own)

    def board_map(self) -> Mapping[str, Any]:
        return self.boards

    def condition(self, link_grace_s: float = 60.0) -> CabinetCondition:
        return CabinetCondition(
            Sources(supervisor=self, boards=self.board_map, camera_verdict=lambda: self.verdict,
                    link_up=lambda: self.link, writer_timing=lambda: self.timing),
            link_down_degraded_s=link_grace_s, slow_commit_s=2.0, clock=lambda: self.now)

    def later(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def test_ready_only_when_all_is_well_and_each_reason_keeps_its_start() -> None:
    w = World()
    cond = w.condition()
    assert cond.reasons() == []
    assert cond.state() == CabinetState.READY
    assert cond.summary() == "ready"
    w.boards["2"]["online"] = False
    start = w.now
    cond.reasons()
    w.later(30)
    w.verdict = "covered"
    reasons = cond.reasons()
    assert [(r.code, r.subject) for r in reasons] == [("board_offline", "2"),
                                                      ("camera_covered", "camera")]
    assert reasons[0].since == start
    assert reasons[0].age_s(w.now) == 30.0
    assert cond.state() == CabinetState.DEGRADED
    assert cond.summary() == "degraded: board 2 offline; camera covered (covered)"
    # the board comes back: its reason goes, the camera's keeps its own start
    w.boards["2"]["online"] = True
    w.later(5)
    assert [r.code for r in cond.reasons()] == ["camera_covered"]
    assert cond.reasons()[0].since == start + timedelta(seconds=30)
    # a board that goes offline again starts a new reason
    w.verdict, w.boards["2"]["online"] = "ok", False
    assert cond.reasons()[0].since == w.now


def test_camera_down_learning_and_no_camera() -> None:
    w = World()
    cond = w.condition()
    for verdict, expected in [("down", ["camera_down"]), ("frozen", ["camera_down"]),
                              ("dark", ["camera_covered"]), ("sprayed", ["camera_covered"]),
                              ("learning", []), (None, [])]:
        w.verdict = verdict
        assert [r.code for r in cond.reasons()] == expected, verdict


def test_the_carrier_link_counts_after_its_grace_and_is_dated_from_the_drop() -> None:
    w = World()
    cond = w.condition(link_grace_s=60.0)
    w.link = False
    dropped = w.now
    assert cond.reasons() == []
    w.later(59)
    assert cond.reasons() == []
    w.later(2)
    (reason,) = cond.reasons()
    assert (reason.code, reason.since) == ("carrier_link_down", dropped)
    w.link = None  # MQTT disabled: nothing to miss
    assert cond.reasons() == []


def test_a_slow_log_writer_degrades_until_commits_are_quick_for_a_minute() -> None:
    w = World()
    cond = w.condition()
    w.timing = (3.5, 0.01, 10.0)  # a commit running for 3.5 s now
    assert [r.detail for r in cond.reasons()] == ["log writer slow (3.5 s per commit)"]
    w.timing = (0.0, 3.5, 20.0)  # it finished 20 s ago
    assert [r.code for r in cond.reasons()] == ["log_writer_slow"]
    w.timing = (0.0, 3.5, 61.0)
    assert cond.reasons() == []
    w.timing = None  # log not open: the oplog component's own state says so
    assert cond.reasons() == []


def test_a_component_not_running_is_a_reason() -> None:
    w = World()
    cond = w.condition()
    w.components["doors"] = "backoff"
    assert [(r.code, r.detail) for r in cond.reasons()] == [("component_down", "doors backoff")]
    assert cond.state() == CabinetState.DEGRADED


def test_a_components_own_reason_is_a_reason() -> None:
    world = World()
    cond = world.condition()
    assert cond.state().value == "ready"
    world.own = ["oplog_corrupt"]  # every component runs, but the log failed its check
    assert [(r.code, r.detail) for r in cond.reasons()] == [("oplog_corrupt", "oplog_corrupt")]
    assert cond.summary() == "degraded: oplog_corrupt"
    world.own = []
    assert cond.state().value == "ready"


async def test_simulator_with_a_board_unplugged_and_the_camera_covered(tmp_path: Path) -> None:
    cab = Cabinet(tmp_path)
    await cab.start()
    try:
        await cab.wait_camera()
        st = await cab.call("status")
        assert (st["state"], st["reasons"]) == ("ready", [])
        board = cab.cfg.hardware.boards[-1]
        sim = cab.d.doors.board_set.sim if cab.d.doors.board_set else None
        assert sim is not None
        sim.faults.unplug(board.bus, board.address)
        camera = cab.d.camera
        assert camera is not None
        camera.source.set_mode("covered")  # type: ignore[attr-defined]
        deadline = time.monotonic() + 20
        while {r["code"] for r in st["reasons"]} != {"board_offline", "camera_covered"}:
            assert time.monotonic() < deadline, st["reasons"]
            await asyncio.sleep(0.2)
            st = await cab.call("status")
        assert st["state"] == "degraded"
        offline = next(r for r in st["reasons"] if r["code"] == "board_offline")
        assert offline["subject"] == str(board.address)
        assert offline["age_s"] >= 0
        sim.faults.unplug(board.bus, board.address, unplugged=False)
        camera.source.set_mode("normal")  # type: ignore[attr-defined]
        deadline = time.monotonic() + 20
        while st["reasons"]:
            assert time.monotonic() < deadline, st["reasons"]
            await asyncio.sleep(0.2)
            st = await cab.call("status")
        assert st["state"] == "ready"
    finally:
        await cab.stop()


class Health:
    """Keeps the retained health messages of one cabinet."""

    def __init__(self, port: int, topic: str) -> None:
        self.topic = topic
        self.got: list[dict[str, Any]] = []
        self.link = MqttLink(host="127.0.0.1", port=port, client_id="health-watch",
                             callbacks=LinkCallbacks(on_connect=self._connected,
                                                     on_message=self._message))

    def _connected(self, _sp: bool) -> None:
        self.link.subscribe(self.topic, 1)

    def _message(self, _topic: str, payload: bytes, mid: int, qos: int) -> None:
        self.got.append(json.loads(payload))
        self.link.ack(mid, qos)


async def _datagrams(sock: socket.socket, until: float) -> list[str]:
    loop = asyncio.get_running_loop()
    out: list[str] = []
    while time.monotonic() < until:
        try:
            async with asyncio.timeout(0.3):
                out += (await loop.sock_recv(sock, 4096)).decode().splitlines()
        except TimeoutError:
            continue
        if any(m.startswith("STATUS=degraded: ") and "board" in m and "camera" in m for m in out):
            break
    return out


async def test_real_backend_without_devices_is_degraded_everywhere(
        tmp_path: Path, broker: LocalBroker) -> None:
    """The daemon as installed on a cabinet whose boards and camera are not plugged in: the API,
    systemd's STATUS= line and the retained health message all say degraded, with one list."""
    config = make_config(tmp_path, hardware={"backend": "real"},
                         mqtt={"enabled": True, "host": "127.0.0.1", "port": broker.port,
                               "tls": False, "health_min_interval_s": 0.2})
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify.sock"))
    notify.setblocking(False)
    watcher = Health(broker.port, "lockers/CAB-0001/health")
    await watcher.link.start()
    proc = start_daemon(config, env={"NOTIFY_SOCKET": str(tmp_path / "notify.sock")})
    try:
        messages = await _datagrams(notify, time.monotonic() + 40)
        assert "READY=1" in messages, messages  # READY still means started
        status_line = next(m for m in reversed(messages) if m.startswith("STATUS=degraded: "))
        async with AsyncApiClient(tmp_path / "api.sock") as api:
            st = await api.call("status")
        assert st["state"] == "degraded"
        codes = {(r["code"], r["subject"]) for r in st["reasons"]}
        boards = {str(b.address) for b in load_config(config).hardware.boards}
        assert {("board_offline", b) for b in boards} <= codes, codes
        assert ("camera_down", "camera") in codes, codes
        for r in st["reasons"]:
            assert r["detail"] in status_line
            assert r["age_s"] >= 0
        deadline = time.monotonic() + 20
        while not (watcher.got and {(r["code"], r["subject"]) for r in watcher.got[-1]["reasons"]}
                   >= codes):
            assert time.monotonic() < deadline, watcher.got[-1:]
            await asyncio.sleep(0.1)
        health = watcher.got[-1]
        assert health["state"] == "degraded"
        assert errors("Health", health) == []
    finally:
        await watcher.link.stop()
        notify.close()
        proc.terminate()
        await asyncio.to_thread(proc.communicate, timeout=30)
