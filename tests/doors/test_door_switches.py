"""A GPIO door switch (gpiozero MockFactory pins) reports its door to the controller instead of the board."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory

from lockerd.app.events import Alert, AlertKind, EventBus
from lockerd.config import Compartment, Doors, Gpio, GpioDoorSwitch, Size
from lockerd.doors.controller import DoorController, UnknownCompartment
from lockerd.doors.events import DoorClosed, DoorFault, Outcome
from lockerd.drivers.base import DoorState
from lockerd.gpio.monitor import GpioMonitor
from tests.fixtures.door_rig import GivenBoards

FAST = Doors(open_confirm_s=0.6, poll_moving_ms=20, poll_idle_ms=100, pulse_ms=300,
             left_open_prompt_s=5, left_open_alert_s=6, left_open_incident_s=7)
SWITCHED = 3
PIN = 5
GPIO = Gpio(enabled=True, debounce_ms=10,
            door_switches=[GpioDoorSwitch(compartment=SWITCHED, pin=PIN, active_low=True)])


@dataclass
class Cabinet:
    ctl: DoorController
    gpio: GpioMonitor
    pins: MockFactory
    rig: Any
    events: list[Any]

    def switch(self, is_open: bool) -> None:
        """The door moves its switch: active-low contact, closed to ground while open."""
        pin = self.pins.pin(PIN)
        if is_open:
            pin.drive_low()
        else:
            pin.drive_high()

    async def until(self, pred: Any, limit_s: float = 5.0) -> None:
        async with asyncio.timeout(limit_s):
            while not pred():  # noqa: ASYNC110 - driven by the simulator's and the pins' threads
                await asyncio.sleep(0.01)


@pytest.fixture
async def cabinet(make_rig: Any) -> AsyncIterator[Cabinet]:
    rig = await make_rig(boards=1, channels=4, close_after_s=0.3)
    comps = [Compartment(id=ch + 1, size=Size.S, board=1, channel=ch) for ch in range(4)]
    events = EventBus()
    seen: list[Any] = []
    events.listen(seen.append)
    ctl = DoorController(FAST, comps, events, GivenBoards(rig.boards),
                         door_switches=GPIO.switched_compartments())
    pins = MockFactory()
    gpio = GpioMonitor(GPIO, events, doors=ctl, pin_factory=pins)
    await ctl.start()
    task = asyncio.create_task(ctl.run())
    await gpio.start()
    cab = Cabinet(ctl, gpio, pins, rig, seen)
    try:
        await cab.until(lambda: all(ctl.state(c.id) is DoorState.CLOSED for c in comps))
        yield cab
    finally:
        await gpio.stop()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await ctl.stop()
        pins.reset()


async def test_an_open_is_confirmed_by_the_gpio_switch(cabinet: Cabinet) -> None:
    opening = asyncio.create_task(cabinet.ctl.open(SWITCHED, "test", "tester"))
    model = cabinet.rig.sim.board("bus0", 1)
    await cabinet.until(lambda: model.pulse_counts()[SWITCHED - 1] == 1)
    cabinet.switch(is_open=True)
    result = await opening
    assert result.outcome is Outcome.OPENED
    assert result.pulses == 1
    cabinet.switch(is_open=False)
    assert await cabinet.ctl.wait_closed(SWITCHED, 2.0)
    assert any(isinstance(e, DoorClosed) and e.compartment == SWITCHED for e in cabinet.events)
    rows = {d["compartment"]: d for d in cabinet.ctl.describe()["doors"]}
    assert (rows[SWITCHED]["sensor"], rows[1]["sensor"]) == ("gpio", "board")


async def test_the_board_input_of_a_switched_door_is_not_used(cabinet: Cabinet) -> None:
    sim = cabinet.rig.sim
    sim.faults.force_open("bus0", 1, SWITCHED - 1, sim.now())  # the board's input says open
    sim.faults.force_open("bus0", 1, 0, sim.now())
    await cabinet.until(lambda: cabinet.ctl.state(1) is DoorState.OPEN)
    await asyncio.sleep(0.3)  # several polls of the board
    assert cabinet.ctl.state(SWITCHED) is DoorState.CLOSED  # the switch says closed


async def test_a_door_opened_without_a_command_on_its_switch_is_forced(cabinet: Cabinet) -> None:
    cabinet.switch(is_open=True)
    await cabinet.until(lambda: cabinet.ctl.state(SWITCHED) is DoorState.OPEN)
    forced = [e for e in cabinet.events if isinstance(e, Alert) and e.kind is AlertKind.DOOR_FORCED]
    assert [a.compartment for a in forced] == [SWITCHED]
    faults = [(e.compartment, e.fault) for e in cabinet.events if isinstance(e, DoorFault)]
    assert faults == [(SWITCHED, "door_forced")]  # the fact; the domain records the block


async def test_released_pins_make_the_switched_door_unknown(cabinet: Cabinet) -> None:
    await cabinet.gpio.stop()
    assert cabinet.ctl.state(SWITCHED) is DoorState.UNKNOWN
    assert cabinet.ctl.state(1) is DoorState.CLOSED


def test_a_switch_on_an_unknown_compartment_is_refused() -> None:
    comps = [Compartment(id=1, size=Size.S, board=1, channel=0)]
    with pytest.raises(UnknownCompartment, match=r"\[9\]"):
        DoorController(FAST, comps, EventBus(), GivenBoards({}), door_switches=[9])
