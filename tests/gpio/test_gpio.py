"""GPIO through gpiozero's MockFactory (the one allowed mock): debounce, door switches, tamper, mains-fail,
LED, buzzer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory

from lockerd.app.events import Alert, AlertKind, EventBus, Severity
from lockerd.config import Gpio, GpioDoorSwitch, GpioInput
from lockerd.gpio.monitor import GpioMonitor, PowerChanged

CFG = Gpio(enabled=True, debounce_ms=30,
           door_switches=[GpioDoorSwitch(compartment=3, pin=5, active_low=True)],
           tamper=GpioInput(pin=22, active_low=True),
           mains_fail=GpioInput(pin=23, active_low=False),
           status_led=17, buzzer=27)


class Switches:
    """The door controller's side of the door switches: what it was told, in order."""

    def __init__(self) -> None:
        self.reports: list[tuple[int, bool | None]] = []

    def door_switch(self, compartment_id: int, is_open: bool | None) -> None:
        self.reports.append((compartment_id, is_open))


@pytest.fixture
def switches() -> Switches:
    return Switches()


@pytest.fixture
async def monitor(switches: Switches) -> AsyncIterator[tuple[GpioMonitor, EventBus, MockFactory]]:
    factory = MockFactory()
    bus = EventBus()
    mon = GpioMonitor(CFG, bus, doors=switches, pin_factory=factory)
    await mon.start()
    yield mon, bus, factory
    await mon.stop()
    factory.reset()


def pin(factory: MockFactory, number: int) -> Any:
    return factory.pin(number)


async def drain(sub: Any, wait: float = 0.15) -> list[Any]:
    await asyncio.sleep(wait)
    out = []
    while not sub.queue.empty():
        out.append(sub.queue.get_nowait())
    return out


async def test_bounces_are_filtered(monitor: tuple[GpioMonitor, EventBus, MockFactory],
                                    switches: Switches) -> None:
    mon, _bus, factory = monitor
    assert switches.reports == [(3, False)]  # the level at start: pulled up, switch open = closed
    door = pin(factory, 5)
    # Contact chatter: 7 edges within a few ms, ending low (= door switch active = open).
    for level in (0, 1, 0, 1, 0, 1, 0):
        if level:
            door.drive_high()
        else:
            door.drive_low()
        await asyncio.sleep(0.002)
    await asyncio.sleep(0.15)
    assert switches.reports[1:] == [(3, True)]
    door.drive_high()
    await asyncio.sleep(0.15)
    assert switches.reports[1:] == [(3, True), (3, False)]
    await mon.stop()
    assert switches.reports[-1] == (3, None)  # pins released: the door is unknown again


def test_door_switches_need_someone_to_report_to() -> None:
    with pytest.raises(ValueError, match="nothing takes their reports"):
        GpioMonitor(CFG, EventBus(), pin_factory=MockFactory())


async def test_glitch_shorter_than_debounce_is_ignored(
        monitor: tuple[GpioMonitor, EventBus, MockFactory]) -> None:
    mon, bus, factory = monitor
    sub = bus.subscribe(Alert)
    tamper = pin(factory, 22)
    tamper.drive_low()
    await asyncio.sleep(0.005)
    tamper.drive_high()
    assert await drain(sub) == []
    assert mon.bank is not None
    assert mon.bank.bounces >= 1


async def test_tamper_raises_and_clears_alert(
        monitor: tuple[GpioMonitor, EventBus, MockFactory]) -> None:
    _mon, bus, factory = monitor
    sub = bus.subscribe(Alert)
    pin(factory, 22).drive_low()
    (raised,) = await drain(sub)
    assert (raised.kind, raised.severity, raised.active) == (AlertKind.TAMPER,
                                                             Severity.CRITICAL, True)
    pin(factory, 22).drive_high()
    (cleared,) = await drain(sub)
    assert (cleared.kind, cleared.active) == (AlertKind.TAMPER, False)


async def test_mains_fail_alerts_and_announces_battery(
        monitor: tuple[GpioMonitor, EventBus, MockFactory]) -> None:
    _mon, bus, factory = monitor
    sub = bus.subscribe(Alert, PowerChanged)
    pin(factory, 23).drive_high()  # active-high UPS signal
    events = await drain(sub)
    assert PowerChanged(on_battery=True) in events
    alert = next(e for e in events if isinstance(e, Alert))
    assert (alert.kind, alert.active) == (AlertKind.POWER, True)
    pin(factory, 23).drive_low()
    events = await drain(sub)
    assert PowerChanged(on_battery=False) in events


async def test_left_open_drives_buzzer_and_led(
        monitor: tuple[GpioMonitor, EventBus, MockFactory]) -> None:
    mon, bus, factory = monitor
    assert mon.bank is not None
    led, buzzer = pin(factory, 17), pin(factory, 27)
    assert led.state is True  # steady on: all well
    bus.publish(Alert(AlertKind.DOOR_LEFT_OPEN, Severity.WARNING, True, "door 3 open 30 s",
                      compartment=3))
    await asyncio.sleep(1.2)
    # The buzzer beeps (0.2 s on / 0.8 s off) and the LED blinks: several edges each.
    assert len([s for s in buzzer.states if s.state]) >= 2
    assert len([s for s in led.states if not s.state]) >= 2
    bus.publish(Alert(AlertKind.DOOR_LEFT_OPEN, Severity.INFO, False, "door 3 closed",
                      compartment=3))
    await asyncio.sleep(0.3)
    assert buzzer.state is False
    assert led.state is True


async def test_pins_released_on_stop(switches: Switches) -> None:
    factory = MockFactory()
    mon = GpioMonitor(CFG, EventBus(), doors=switches, pin_factory=factory)
    await mon.start()
    await mon.stop()
    # The same pins can be claimed again once released.
    again = GpioMonitor(CFG, EventBus(), doors=switches, pin_factory=factory)
    await again.start()
    await again.stop()
    factory.reset()


def test_duplicate_pins_rejected() -> None:
    with pytest.raises(ValueError, match="GPIO pins used twice"):
        Gpio(tamper=GpioInput(pin=22), mains_fail=GpioInput(pin=22))
    with pytest.raises(ValueError, match="two GPIO door switches"):
        Gpio(door_switches=[GpioDoorSwitch(compartment=3, pin=5), GpioDoorSwitch(compartment=3, pin=6)])


def test_switched_compartments_only_while_gpio_is_enabled() -> None:
    assert CFG.switched_compartments() == [3]
    assert CFG.model_copy(update={"enabled": False}).switched_compartments() == []
