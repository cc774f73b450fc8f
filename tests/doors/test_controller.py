"""Door controller against the real driver and the simulator over a pty: outcomes, faults, alerts."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from lockerd.app.events import Alert, AlertKind, EventBus
from lockerd.config import Compartment, Doors, Size
from lockerd.doors.controller import CompartmentIsBlocked, DoorController
from lockerd.doors.events import DoorFault, DoorLeftOpen, DoorOpened, LeftOpenLevel, Outcome
from lockerd.drivers.base import DoorState
from tests.fixtures.door_rig import GivenBoards

FAST = Doors(open_confirm_s=0.6, poll_moving_ms=20, poll_idle_ms=100, pulse_ms=300,
             left_open_prompt_s=0.3, left_open_alert_s=0.6, left_open_incident_s=0.9)


@dataclass(frozen=True)
class Note:
    """A block as the domain keeps it (lockerd.doors.ports.BlockNote)."""

    blocked_reason: str | None
    blocked_since: datetime | None
    blocked_by: str | None


class Blocks:
    """The domain's blocked set as the controller reads it, held in a dict by the test."""

    def __init__(self) -> None:
        self.notes: dict[int, Note] = {}

    def blocks(self) -> dict[int, Note]:
        return dict(self.notes)


class Ctl:
    """A running controller with the events it published."""

    def __init__(self, ctl: DoorController, events: list[Any], rig: Any) -> None:
        self.ctl = ctl
        self.events = events
        self.rig = rig

    def alerts(self, kind: AlertKind) -> list[Alert]:
        return [e for e in self.events if isinstance(e, Alert) and e.kind is kind]

    def faults(self) -> list[tuple[int, str]]:
        return [(e.compartment, e.fault) for e in self.events if isinstance(e, DoorFault)]

    async def until(self, pred: Callable[[], bool], limit_s: float = 10.0) -> None:
        async with asyncio.timeout(limit_s):
            while not pred():  # noqa: ASYNC110 - the sim changes state in its own thread
                await asyncio.sleep(0.02)


@pytest.fixture
async def controller(make_rig: Any) -> AsyncIterator[Callable[..., Any]]:
    running: list[tuple[DoorController, asyncio.Task[None]]] = []

    async def build(boards: int = 2, channels: int = 4, cfg: Doors = FAST,
                    close_after_s: float | None = 0.3) -> Ctl:
        rig = await make_rig(boards=boards, channels=channels, close_after_s=close_after_s)
        comps = [Compartment(id=(a - 1) * channels + ch + 1, size=Size.S, board=a, channel=ch)
                 for a in range(1, boards + 1) for ch in range(channels)]
        bus = EventBus()
        seen: list[Any] = []
        bus.listen(seen.append)

        ctl = DoorController(cfg, comps, bus, GivenBoards(rig.boards))
        await ctl.start()
        task = asyncio.create_task(ctl.run())
        running.append((ctl, task))
        c = Ctl(ctl, seen, rig)
        await c.until(lambda: all(ctl.state(x.id) is DoorState.CLOSED for x in comps))
        return c

    yield build
    for ctl, task in running:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await ctl.stop()


def pulses(c: Ctl, board: int) -> list[int]:
    return c.rig.sim.board("bus0", board).pulse_counts()


async def test_open_confirms_by_sensor_then_closes(controller: Any) -> None:
    c = await controller()
    result = await c.ctl.open(6, "test", "tester")
    assert result.outcome is Outcome.OPENED
    assert result.pulses == 1
    assert pulses(c, 2) == [0, 1, 0, 0]
    assert pulses(c, 1) == [0, 0, 0, 0]
    assert await c.ctl.wait_closed(6, 5.0)
    assert [e.commanded for e in c.events if isinstance(e, DoorOpened)] == [True]
    assert not c.alerts(AlertKind.DOOR_FORCED)


async def test_already_open_still_fires_relay(controller: Any) -> None:
    c = await controller(close_after_s=None)
    c.rig.sim.faults.hold_open("bus0", 1, 0)
    assert (await c.ctl.open(1, "t", "x")).outcome is Outcome.OPENED
    result = await c.ctl.open(1, "t", "x")
    assert result.outcome is Outcome.ALREADY_OPEN
    assert pulses(c, 1)[0] == 2


async def test_jammed_latch_two_pulses_then_reported(controller: Any) -> None:
    c = await controller()
    c.rig.sim.faults.jam("bus0", 1, 2)
    result = await c.ctl.open(3, "t", "x")
    assert result.outcome is Outcome.JAMMED
    assert pulses(c, 1) == [0, 0, 2, 0]
    assert [a.active for a in c.alerts(AlertKind.DOOR_JAMMED)] == [True]
    assert c.faults() == [(3, "door_jammed")]
    assert c.ctl.blocked == {}  # the controller reports the fact; it blocks nothing itself


async def test_the_blocked_set_is_read_from_the_domain(controller: Any) -> None:
    c = await controller()
    view = Blocks()
    c.ctl.attach_blocks(view)
    since = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    view.notes[3] = Note("door_jammed", since, "doors")
    assert c.ctl.blocked == {3: "door_jammed"}
    with pytest.raises(CompartmentIsBlocked, match="door_jammed"):
        await c.ctl.open(3, "t", "x")
    assert pulses(c, 1) == [0, 0, 0, 0]
    row = next(d for d in c.ctl.describe()["doors"] if d["compartment"] == 3)
    assert (row["blocked"], row["blocked_reason"], row["blocked_since"], row["blocked_by"]) == (
        True, "door_jammed", "2026-03-01T08:00:00.000Z", "doors")
    assert c.ctl.status()["blocked"] == [3]
    # a technician's maintenance open may still fire it; a released one opens for anybody
    assert (await c.ctl.open(3, "t", "x", allow_blocked=True)).outcome is Outcome.OPENED
    assert await c.ctl.wait_closed(3, 5.0)
    del view.notes[3]
    assert (await c.ctl.open(3, "t", "x")).outcome is Outcome.OPENED


async def test_lost_pulse_reply_is_not_resent_and_door_still_opens(controller: Any) -> None:
    c = await controller()
    c.rig.sim.faults.configure("bus0", 1, drop_next=1, drop_writes_only=True)
    result = await c.ctl.open(2, "t", "x")
    assert result.outcome is Outcome.OPENED
    assert pulses(c, 1) == [0, 1, 0, 0]


async def test_lost_pulse_reply_with_an_unreadable_door_is_unknown_not_failed(
        controller: Any) -> None:
    c = await controller()
    c.rig.sim.faults.drop_reply_after_act("bus0", 1, then_silent=True)
    result = await c.ctl.open(2, "t", "x")
    assert result.outcome is Outcome.UNKNOWN  # it may have opened: never "nothing happened"
    assert result.pulses == 1  # no second pulse into a door that may be open
    assert pulses(c, 1) == [0, 1, 0, 0]
    c.rig.sim.faults.restore_replies("bus0", 1)
    await c.until(lambda: c.ctl.state(2) is DoorState.CLOSED, 15.0)


async def test_crc_noise_on_pulse_reply_never_duplicates(controller: Any) -> None:
    c = await controller()
    c.rig.sim.faults.corrupt_crc("bus0", 2, 1)
    c.ctl._boards[2].kick.set()
    result = await c.ctl.open(5, "t", "x")
    assert result.outcome is Outcome.OPENED
    assert pulses(c, 2) == [1, 0, 0, 0]


async def test_unplugged_board_goes_offline_quickly_others_keep_working(controller: Any) -> None:
    c = await controller()
    loop = asyncio.get_running_loop()
    c.rig.sim.faults.unplug("bus0", 2)
    t0 = loop.time()
    await c.until(lambda: bool(c.alerts(AlertKind.BOARD_OFFLINE)), 5.0)
    assert loop.time() - t0 < 1.5  # an unlock lands within 1 s; slack for a loaded CI machine
    assert c.ctl.state(5) is DoorState.UNKNOWN
    assert c.ctl.state(1) is DoorState.CLOSED
    assert (await c.ctl.open(1, "t", "x")).outcome is Outcome.OPENED
    failed = await c.ctl.open(6, "t", "x")
    assert failed.outcome is Outcome.FAILED
    assert pulses(c, 2) == [0, 0, 0, 0]
    [row] = c.ctl.incidents()  # its four doors are counted in the board's row, not listed
    assert (row["kind"], row["board"]) == ("board_offline", 2)
    assert row["age_s"] >= 0
    assert "4 door(s) unknown" in row["detail"]
    c.rig.sim.faults.unplug("bus0", 2, False)
    await c.until(lambda: c.ctl.state(5) is DoorState.CLOSED, 15.0)
    assert [a.active for a in c.alerts(AlertKind.BOARD_OFFLINE)] == [True, False]
    assert c.ctl.incidents() == []


async def test_forced_door_raises_alert_and_is_reported(controller: Any) -> None:
    c = await controller()
    c.rig.sim.faults.force_open("bus0", 1, 3, c.rig.sim.now())
    await c.until(lambda: bool(c.alerts(AlertKind.DOOR_FORCED)))
    assert c.alerts(AlertKind.DOOR_FORCED)[0].compartment == 4
    assert c.faults() == [(4, "door_forced")]
    assert [e.commanded for e in c.events if isinstance(e, DoorOpened)] == [False]
    assert sum(pulses(c, 1)) == 0


async def test_left_open_escalates_and_clears(controller: Any) -> None:
    c = await controller(close_after_s=None)
    assert (await c.ctl.open(2, "t", "x")).outcome is Outcome.OPENED
    await c.until(lambda: any(isinstance(e, DoorLeftOpen) and e.level is LeftOpenLevel.INCIDENT
                              for e in c.events))
    levels = [e.level for e in c.events if isinstance(e, DoorLeftOpen)]
    assert levels == [LeftOpenLevel.PROMPT, LeftOpenLevel.ALERT, LeftOpenLevel.INCIDENT]
    assert c.faults() == [(2, "door_left_open")]
    assert not await c.ctl.wait_closed(2, 0.2)
    c.rig.sim.board("bus0", 1).close(1)
    assert await c.ctl.wait_closed(2, 5.0)
    assert [a.active for a in c.alerts(AlertKind.DOOR_LEFT_OPEN)] == [True, True, False]
