"""GPIO on gpiozero: debounced inputs bridged to asyncio, and the status LED and buzzer outputs.

Debounce is done here, not by the pin library: gpiozero's backends differ in how (and whether)
they honour `bounce_time`, and its MockFactory ignores it, so one implementation serves the
cabinet and the tests alike. An input counts as changed once it held its new level for
`debounce_ms` after the last edge.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lockerd.drivers.errors import DriverUnavailable

log = logging.getLogger(__name__)

InputCallback = Callable[[str, bool], None]


@dataclass(frozen=True, slots=True)
class InputSpec:
    """One input: a name the monitor understands, the pin, its polarity."""

    name: str
    pin: int | str
    active_low: bool


class GpioBank:
    """Named, debounced digital inputs plus optional LED and buzzer outputs.

    Pin callbacks arrive on gpiozero's thread; they are handed to the event loop with
    `call_soon_threadsafe`, so `on_change` always runs on the loop.
    """

    def __init__(self, inputs: list[InputSpec], *, debounce_ms: int,
                 led_pin: int | str | None = None, buzzer_pin: int | str | None = None,
                 pin_factory: Any = None) -> None:
        self._specs = {spec.name: spec for spec in inputs}
        self._debounce = debounce_ms / 1000
        self._led_pin = led_pin
        self._buzzer_pin = buzzer_pin
        self._factory = pin_factory
        self._devices: dict[str, Any] = {}
        self._stable: dict[str, bool] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._callbacks: list[InputCallback] = []
        self.led: Any = None
        self.buzzer: Any = None
        self.edges = 0
        self.bounces = 0

    def on_change(self, callback: InputCallback) -> None:
        """Call `callback(name, active)` on the loop after each debounced change."""
        self._callbacks.append(callback)

    def open(self, loop: asyncio.AbstractEventLoop) -> None:
        """Claim the pins; errors are wrapped as DriverUnavailable."""
        from gpiozero import LED, Buzzer, DigitalInputDevice

        self._loop = loop
        try:
            for name, spec in self._specs.items():
                # active_low contacts switch to ground: internal pull-up, active when low.
                dev = DigitalInputDevice(spec.pin, pull_up=spec.active_low,
                                         pin_factory=self._factory)
                dev.when_activated = lambda _d=None, n=name: self._edge(n)
                dev.when_deactivated = lambda _d=None, n=name: self._edge(n)
                self._devices[name] = dev
                self._stable[name] = bool(dev.value)
            if self._led_pin is not None:
                self.led = LED(self._led_pin, pin_factory=self._factory)
            if self._buzzer_pin is not None:
                self.buzzer = Buzzer(self._buzzer_pin, pin_factory=self._factory)
        except Exception as exc:
            self.close()
            raise DriverUnavailable(f"GPIO unavailable: {exc}") from exc

    def value(self, name: str) -> bool:
        """Debounced logical value (True = active) of a named input."""
        return self._stable[name]

    @property
    def names(self) -> list[str]:
        """Names of the configured inputs."""
        return list(self._specs)

    def _edge(self, name: str) -> None:
        """Runs on gpiozero's thread: hand the edge to the loop."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        loop.call_soon_threadsafe(self._on_edge, name)

    def _on_edge(self, name: str) -> None:
        self.edges += 1
        old = self._timers.pop(name, None)
        if old is not None:
            old.cancel()
            self.bounces += 1
        assert self._loop is not None
        self._timers[name] = self._loop.call_later(self._debounce, self._settle, name)

    def _settle(self, name: str) -> None:
        self._timers.pop(name, None)
        dev = self._devices.get(name)
        if dev is None:
            return
        value = bool(dev.value)
        if value == self._stable[name]:
            return
        self._stable[name] = value
        for callback in self._callbacks:
            try:
                callback(name, value)
            except Exception:
                log.exception("GPIO callback failed for %s", name)

    def close(self) -> None:
        """Release every pin; outputs are switched off first (safe state)."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for out in (self.buzzer, self.led):
            if out is not None:
                try:
                    out.off()
                    out.close()
                except Exception as exc:
                    log.warning("GPIO output close failed: %s", exc)
        self.buzzer = self.led = None
        for dev in self._devices.values():
            try:
                dev.close()
            except Exception as exc:
                log.warning("GPIO input close failed: %s", exc)
        self._devices.clear()
