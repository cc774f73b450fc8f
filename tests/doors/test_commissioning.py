"""lockerctl commission / test-all logic against a real API socket, real drivers and the Kerong simulator."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import tempfile
import time
import tomllib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lockerd import sim
from lockerd.api.client import ApiClient
from lockerd.api.server import ApiServer
from lockerd.app.events import Alert, AlertKind, EventBus
from lockerd.cli import commission as cm
from lockerd.config import Api as ApiConfig
from lockerd.config import Board, Compartment, Doors, Hardware, SerialPort, Size
from lockerd.doors.api import DoorsApi
from lockerd.doors.commissioning import BoardCommissioning
from lockerd.doors.controller import DoorController
from lockerd.drivers.factory import BoardSet
from lockerd.drivers.lockboard_kerong import KerongBoard
from lockerd.drivers.rawbus import RawSerialBus
from tests.fixtures.door_rig import GivenBoards

# Physical truth: which compartment door hangs on (board, channel); None = nothing wired.
WIRING: dict[tuple[int, int], int | None] = {(1, 0): 7, (1, 1): 3, (1, 2): None, (1, 3): 1,
                                             (2, 0): 2, (2, 1): 8, (2, 2): 5, (2, 3): 4}
FAST = Doors(open_confirm_s=0.6, poll_moving_ms=20, poll_idle_ms=100, pulse_ms=300,
             left_open_prompt_s=5, left_open_alert_s=6, left_open_incident_s=7)


@dataclass
class Opened:
    """The commissioning methods' view of boards the test opened itself."""

    board_set: BoardSet


@dataclass
class Recorder:
    """An operation log that keeps what it was asked to record."""

    records: list[tuple[str, str, dict[str, Any], int | None]]

    async def record(self, kind: str, *, actor: str, body: dict[str, Any],
                     compartment: int | None) -> None:
        self.records.append((kind, actor, body, compartment))


@dataclass
class Daemon:
    handle: sim.SimHandle
    boards: BoardSet
    api: ApiServer
    socket: Path
    events: list[Any]
    controller: DoorController | None
    recorder: Recorder


@pytest.fixture
async def daemon() -> AsyncIterator[Any]:
    """API server + commissioning methods (+ door controller) over Kerong boards on the simulator."""
    made: list[tuple[Daemon, asyncio.Task[None] | None, tempfile.TemporaryDirectory[str]]] = []

    async def build(*, physical_active_low: bool, configured_active_low: bool,
                    compartments: list[Compartment] | None = None,
                    close_after_s: float = 0.5) -> Daemon:
        hw = Hardware(buses=[SerialPort(baudrate=19200)],
                      boards=[Board(address=a, channels=4, profile="kerong-cu16",
                                    inputs_active_low=physical_active_low) for a in (1, 2)])
        handle = await asyncio.to_thread(sim.start_for_config, hw, close_after_s=close_after_s)
        bus = RawSerialBus("bus0", handle.port("bus0"), baudrate=19200, read_timeout_s=0.15,
                           write_timeout_s=0.2)
        await bus.open()
        board_set = BoardSet(boards={a: KerongBoard(bus, a, 4, inputs_active_low=configured_active_low)
                                     for a in (1, 2)}, buses={"bus0": bus}, sim=handle)
        tmp = tempfile.TemporaryDirectory()
        sock = Path(tmp.name) / "api.sock"
        api = ApiServer(ApiConfig(), sock)
        seen: list[Any] = []
        controller = None
        task = None
        if compartments is not None:
            events = EventBus()
            events.listen(seen.append)

            controller = DoorController(FAST, compartments, events, GivenBoards(board_set.boards))
            await controller.start()
            task = asyncio.create_task(controller.run())
            DoorsApi(controller).register(api)
        recorder = Recorder([])
        BoardCommissioning(Opened(board_set), compartments or [], FAST,
                           controller=controller, recorder=recorder).register_api(api)
        await api.start()
        d = Daemon(handle, board_set, api, sock, seen, controller, recorder)
        made.append((d, task, tmp))
        return d

    yield build
    for d, task, tmp in made:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await d.api.stop()
        await d.boards.close()
        tmp.cleanup()


class Technician:
    """Answers the prompts from what physically happened in the simulator."""

    def __init__(self, handle: sim.SimHandle) -> None:
        self.handle = handle
        self.prompts: list[str] = []

    def __call__(self, prompt: str) -> str:
        self.prompts.append(prompt)
        if prompt.startswith("Close every"):
            return "y"
        if prompt.startswith("size of"):
            return "M"
        m = re.match(r"board (\d+) channel (\d+): which door", prompt)
        assert m, prompt
        board, channel = int(m[1]), int(m[2])
        frontend = self.handle.bus("bus0").frontend
        assert frontend.pulse_log[-1][1:] == (board, channel)  # the channel just pulsed
        model = self.handle.board("bus0", board)
        end = time.monotonic() + 5
        while not model.door_open(time.monotonic())[channel] and time.monotonic() < end:
            time.sleep(0.01)  # a person sees the door swing open before answering
        cid = WIRING[(board, channel)]
        return "" if cid is None else str(cid)


async def test_commission_maps_every_door_and_fixes_polarity(daemon: Any, tmp_path: Path) -> None:
    d = await daemon(physical_active_low=True, configured_active_low=False)
    out = tmp_path / "map.toml"
    said: list[str] = []
    tech = Technician(d.handle)

    def run() -> int:
        with ApiClient(d.socket) as client:
            return cm.commission(client.call, tech, said.append, out, poll_s=0.05, close_timeout_s=10)

    assert await asyncio.to_thread(run) == 0, "\n".join(said)
    doc = tomllib.loads(out.read_text())
    boards = [Board.model_validate(b) for b in doc["hardware"]["boards"]]
    assert [(b.address, b.inputs_active_low) for b in boards] == [(1, True), (2, True)]
    comps = [Compartment.model_validate(c) for c in doc["compartments"]]
    assert {(c.board, c.channel): c.id for c in comps} == {k: v for k, v in WIRING.items() if v}
    assert all(c.size is Size.M for c in comps)
    assert any("inputs_active_low set to true" in s for s in said)
    assert d.handle.board("bus0", 1).pulse_counts() == [1, 1, 1, 1]  # one pulse per channel


async def test_commission_reports_a_dead_sensor(daemon: Any, tmp_path: Path) -> None:
    d = await daemon(physical_active_low=False, configured_active_low=False)
    d.handle.faults.jam("bus0", 2, 1)  # the latch of compartment 8 does not release
    said: list[str] = []
    answers = iter(["y"])
    tech = Technician(d.handle)

    def ask(prompt: str) -> str:
        if prompt.startswith("board 2 channel 1"):
            return "8"  # the technician claims the door opened: the sensor disagrees
        return next(answers) if prompt.startswith("Close every") else tech(prompt)

    def run() -> int:
        with ApiClient(d.socket) as client:
            return cm.commission(client.call, ask, said.append, tmp_path / "m.toml", poll_s=0.05,
                              close_timeout_s=10)

    assert await asyncio.to_thread(run) == 1
    assert any("compartment 8" in s and "input reads closed" in s for s in said)


async def test_test_all_reports_each_door_and_mapped_pulses_are_not_forced(daemon: Any) -> None:
    comps = [Compartment(id=cid, size=Size.S, board=b, channel=ch)
             for (b, ch), cid in WIRING.items() if cid is not None]
    d = await daemon(physical_active_low=False, configured_active_low=False, compartments=comps,
                     close_after_s=0.3)
    assert d.controller is not None
    async with asyncio.timeout(10):
        while d.controller.state(1).value != "closed":  # noqa: ASYNC110 - no event for it
            await asyncio.sleep(0.02)
    d.handle.faults.jam("bus0", 2, 2)  # compartment 5
    said: list[str] = []

    def run() -> int:
        with ApiClient(d.socket) as client:
            return cm.test_all(client.call, said.append, poll_s=0.05, close_timeout_s=10)

    assert await asyncio.to_thread(run) == 1
    report = said[-1].splitlines()
    rows = {int(line.split()[0]): line.split() for line in report[2:]}
    assert sorted(rows) == [1, 2, 3, 4, 5, 7, 8]
    assert rows[5][3] == "jammed"
    assert all(rows[c][3] == "opened" and rows[c][-1] == "yes" for c in (1, 2, 3, 4, 7, 8))
    # A commissioning pulse on a mapped channel goes through the door controller: no forced alert.
    with ApiClient(d.socket) as client:
        reply = await asyncio.to_thread(client.call, "boards.pulse",
                                        {"bus": "bus0", "board": 1, "channel": 3, "reason": "check"})
        raw = await asyncio.to_thread(client.call, "boards.pulse",
                                      {"bus": "bus0", "board": 1, "channel": 2, "reason": "check"})
    assert reply["via"] == "doors"
    assert reply["outcome"] == "opened"
    assert raw["via"] == "raw"
    assert raw["acknowledged"] is True
    await asyncio.sleep(0.3)
    assert not [e for e in d.events if isinstance(e, Alert) and e.kind is AlertKind.DOOR_FORCED]


async def test_controller_reports_kerong_occupancy_and_test_all_skips_occupied(daemon: Any) -> None:
    comps = [Compartment(id=cid, size=Size.S, board=b, channel=ch)
             for (b, ch), cid in WIRING.items() if cid is not None]
    d = await daemon(physical_active_low=False, configured_active_low=False, compartments=comps,
                     close_after_s=0.3)
    ctl = d.controller
    assert ctl is not None
    async with asyncio.timeout(10):
        while ctl.occupied(7) is None:  # noqa: ASYNC110 - first poll of the board
            await asyncio.sleep(0.02)
    assert ctl.occupied(7) is False
    d.handle.bus("bus0").frontend.set_occupied(1, 0)  # a parcel lies in compartment 7
    async with asyncio.timeout(10):
        while not ctl.occupied(7):  # noqa: ASYNC110 - next idle poll
            await asyncio.sleep(0.02)
    assert ctl.occupied(3) is False
    said: list[str] = []

    def run() -> int:
        with ApiClient(d.socket) as client:
            return cm.test_all(client.call, said.append, poll_s=0.05, close_timeout_s=10)

    assert await asyncio.to_thread(run) == 0
    rows = {int(line.split()[0]): line.split() for line in said[-1].splitlines()[2:]}
    assert rows[7][3:5] == ["skipped", "occupied"]
    assert d.handle.board("bus0", 1).pulse_counts()[0] == 0


async def test_a_raw_pulse_uses_the_configured_pulse_and_is_recorded(
        daemon: Any, caplog: pytest.LogCaptureFixture) -> None:
    d = await daemon(physical_active_low=False, configured_active_low=False)
    with caplog.at_level(logging.INFO, logger="lockerd.drivers.lockboard_common"), \
            ApiClient(d.socket) as client:
        reply = await asyncio.to_thread(
            client.call, "boards.pulse",
            {"bus": "bus0", "board": 2, "channel": 1, "reason": "call 13812345678 first"})
    assert reply["via"] == "raw"
    assert [r.getMessage() for r in caplog.records if "relay pulse" in r.getMessage()] == [
        f"board 2 channel 1: relay pulse, {FAST.pulse_ms} ms"]
    ((kind, actor, body, compartment),) = d.recorder.records
    assert (kind, compartment) == ("commission.pulse", None)
    assert actor.startswith("uid:")
    assert body["via"] == "raw"
    assert (body["board"], body["channel"], body["acknowledged"]) == (2, 1, True)
    assert "13812345678" not in body["reason"]  # free text is redacted before it is recorded
