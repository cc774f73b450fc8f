"""GPIO monitor: tamper and mains-fail alerts, GPIO door switches, LED and buzzer for door prompts."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Protocol

from lockerd.app.events import Alert, AlertKind, EventBus, Severity
from lockerd.app.supervisor import Component
from lockerd.app.ticks import next_tick
from lockerd.config import Gpio as GpioConfig
from lockerd.drivers.gpio import GpioBank, InputSpec

log = logging.getLogger(__name__)

TAMPER = "tamper"
MAINS_FAIL = "mains_fail"
DOOR_PREFIX = "door:"


class DoorSwitches(Protocol):
    """Where door-switch levels go: the door controller, which takes them over its board inputs."""

    def door_switch(self, compartment_id: int, is_open: bool | None) -> None:
        """A switch reads open (True) or closed (False); None when the pin is no longer read."""
        ...


@dataclass(frozen=True, slots=True)
class PowerChanged:
    """Mains power lost (on_battery=True) or back; components keep outputs safe on battery."""

    on_battery: bool


def input_specs(cfg: GpioConfig) -> list[InputSpec]:
    """The inputs a config asks for, named for the monitor."""
    specs = [InputSpec(f"{DOOR_PREFIX}{sw.compartment}", sw.pin, sw.active_low)
             for sw in cfg.door_switches]
    if cfg.tamper is not None:
        specs.append(InputSpec(TAMPER, cfg.tamper.pin, cfg.tamper.active_low))
    if cfg.mains_fail is not None:
        specs.append(InputSpec(MAINS_FAIL, cfg.mains_fail.pin, cfg.mains_fail.active_low))
    return specs


class GpioMonitor(Component):
    """Turns GPIO inputs into alerts and door-switch reports; drives the LED and buzzer.

    Door switches: every debounced level (and the level at start) goes to `doors`; when the
    pins are released the doors are reported unknown. LED: steady on while the cabinet is
    fine, blinking while any alert is active. Buzzer: beeps while a door-left-open alert is
    active (the panel prompt's sound).
    """

    name = "gpio"

    def __init__(self, cfg: GpioConfig, events: EventBus, *, doors: DoorSwitches | None = None,
                 pin_factory: Any = None) -> None:
        """`pin_factory`: gpiozero's pin factory (None: the real header; the driver factory
        hands mock pins to a simulated cabinet)."""
        super().__init__()
        if cfg.door_switches and doors is None:
            raise ValueError("GPIO door switches are configured but nothing takes their reports")
        self._cfg = cfg
        self._events = events
        self._doors = doors
        self._factory = pin_factory
        self._bank: GpioBank | None = None
        self._active_alerts: set[tuple[AlertKind, int | None]] = set()
        self._left_open: set[int | None] = set()

    @property
    def bank(self) -> GpioBank | None:
        """The open pin bank (tests drive its mock pins)."""
        return self._bank

    async def start(self) -> None:
        """Claim the pins and report the inputs' initial state."""
        bank = GpioBank(input_specs(self._cfg), debounce_ms=self._cfg.debounce_ms,
                        led_pin=self._cfg.status_led, buzzer_pin=self._cfg.buzzer,
                        pin_factory=self._factory)
        bank.open(asyncio.get_running_loop())
        bank.on_change(self._on_input)
        self._bank = bank
        self._events.listen(self._on_alert, Alert)
        for name in bank.names:
            if bank.value(name) or name.startswith(DOOR_PREFIX):
                self._on_input(name, bank.value(name))
        self._update_outputs()

    async def run(self) -> None:
        """Nothing to poll: inputs are edge-driven. Progress is fed for the watchdog."""
        while True:
            self.progress()
            await next_tick(1.0)

    async def stop(self) -> None:
        """Outputs off, pins released; the doors on switches become unknown."""
        if self._bank is not None:
            self._bank.close()
            self._bank = None
            if self._doors is not None:
                for switch in self._cfg.door_switches:
                    self._doors.door_switch(switch.compartment, None)

    def status(self) -> dict[str, Any]:
        """Input levels and counters; no personal data."""
        bank = self._bank
        if bank is None:
            return {"open": False}
        return {"open": True, "inputs": {n: bank.value(n) for n in bank.names},
                "edges": bank.edges, "bounces_filtered": bank.bounces}

    def _on_input(self, name: str, active: bool) -> None:
        if name == TAMPER:
            self._events.publish(Alert(
                AlertKind.TAMPER, Severity.CRITICAL, active,
                "cabinet tamper switch opened" if active else "cabinet tamper switch closed"))
            log.warning("tamper switch %s", "opened" if active else "closed")
        elif name == MAINS_FAIL:
            self._events.publish(PowerChanged(on_battery=active))
            self._events.publish(Alert(
                AlertKind.POWER, Severity.CRITICAL if active else Severity.INFO, active,
                "mains power lost, running on UPS" if active else "mains power restored"))
            log.warning("mains power %s", "lost, on UPS" if active else "restored")
        elif name.startswith(DOOR_PREFIX) and self._doors is not None:
            self._doors.door_switch(int(name.removeprefix(DOOR_PREFIX)), active)

    def _on_alert(self, alert: Alert) -> None:
        key = (alert.kind, alert.compartment)
        if alert.active:
            self._active_alerts.add(key)
        else:
            self._active_alerts.discard(key)
        if alert.kind == AlertKind.DOOR_LEFT_OPEN:
            if alert.active:
                self._left_open.add(alert.compartment)
            else:
                self._left_open.discard(alert.compartment)
        self._update_outputs()

    def _update_outputs(self) -> None:
        bank = self._bank
        if bank is None:
            return
        if bank.led is not None:
            if self._active_alerts:
                bank.led.blink(on_time=0.25, off_time=0.25)
            else:
                bank.led.on()
        if bank.buzzer is not None:
            if self._left_open:
                bank.buzzer.beep(on_time=0.2, off_time=0.8)
            else:
                bank.buzzer.off()
