"""Door physics of simulated lock boards, independent of any wire protocol.

A wire-protocol front end (Modbus RTU, Kerong or 0x8A frames; sim/frontends.py) turns requests
into calls on `BoardModel`: energise a relay, read the door inputs. Time is passed in explicitly
(monotonic seconds) so the physics is deterministic and testable without sleeping.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

SPRING_S = 0.1
"""Time from latch release to the door reading open (the spring pushes it out)."""


@dataclass(slots=True)
class Door:
    """One compartment door: latch, relay and the person who closes it."""

    close_after_s: float | None = 1.0
    is_open: bool = False
    jammed: bool = False
    held_open: bool = False
    relay_on_until: float = 0.0
    opens_at: float | None = None
    closes_at: float | None = None
    pulses: int = 0
    last_pulse_at: float | None = None

    def advance(self, now: float) -> None:
        """Apply whatever happened up to `now` (door springing open, person closing it)."""
        if self.opens_at is not None and now >= self.opens_at:
            self.opens_at = None
            if not self.is_open:
                self.is_open = True
                self.closes_at = (None if self.close_after_s is None
                                  else now + self.close_after_s)
        if (self.is_open and not self.held_open and self.closes_at is not None
                and now >= self.closes_at):
            self.is_open = False
            self.closes_at = None


@dataclass(slots=True)
class BoardModel:
    """N channels of one board: relays, latches and doors; thread-safe."""

    address: int
    channels: int
    inputs_active_low: bool = False
    close_after_s: float | None = 1.0
    doors: list[Door] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if not self.doors:
            self.doors = [Door(close_after_s=self.close_after_s) for _ in range(self.channels)]

    def energise(self, channel: int, duration_s: float, now: float) -> None:
        """Turn a relay on for `duration_s`; the latch releases unless it is jammed."""
        with self._lock:
            door = self.doors[channel]
            door.advance(now)
            door.pulses += 1
            door.last_pulse_at = now
            door.relay_on_until = max(door.relay_on_until, now + duration_s)
            if not door.jammed and not door.is_open and door.opens_at is None:
                door.opens_at = now + SPRING_S

    def set_relay(self, channel: int, on: bool, now: float) -> None:
        """Plain coil write: on releases the latch (counted as a pulse), off ends it."""
        if on:
            self.energise(channel, 3600.0, now)
            return
        with self._lock:
            self.doors[channel].relay_on_until = min(self.doors[channel].relay_on_until, now)

    def relays(self, now: float) -> list[bool]:
        """Relay (coil) states."""
        with self._lock:
            return [d.relay_on_until > now for d in self.doors]

    def door_open(self, now: float) -> list[bool]:
        """Physical door states (True = open)."""
        with self._lock:
            for d in self.doors:
                d.advance(now)
            return [d.is_open for d in self.doors]

    def input_bits(self, now: float) -> list[bool]:
        """Door-input bits as the board reports them (polarity applied)."""
        return [o != self.inputs_active_low for o in self.door_open(now)]

    # Physical interventions, used by fault injection and scripted people.

    def jam(self, channel: int, jammed: bool = True) -> None:
        """A jammed latch does not release on a pulse."""
        with self._lock:
            self.doors[channel].jammed = jammed

    def force_open(self, channel: int, now: float) -> None:
        """Someone pries the door open without a command."""
        with self._lock:
            door = self.doors[channel]
            door.is_open = True
            door.opens_at = None
            door.closes_at = None if door.close_after_s is None else now + door.close_after_s

    def hold_open(self, channel: int, held: bool = True) -> None:
        """Someone keeps the door open (nobody closes it while held)."""
        with self._lock:
            self.doors[channel].held_open = held

    def close(self, channel: int) -> None:
        """Someone shuts the door now."""
        with self._lock:
            door = self.doors[channel]
            door.is_open = False
            door.closes_at = None
            door.held_open = False

    def set_close_after(self, channel: int, seconds: float | None) -> None:
        """How long the simulated person leaves this door open (None: never closes it)."""
        with self._lock:
            self.doors[channel].close_after_s = seconds

    def pulse_counts(self) -> list[int]:
        """Pulses received per channel since start."""
        with self._lock:
            return [d.pulses for d in self.doors]
