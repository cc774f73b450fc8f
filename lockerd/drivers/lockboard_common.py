"""What every lock-board driver shares, whatever its wire protocol: identity, profile limits,
the guarded relay pulse, door-input polarity and status output."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from typing import Any, Generic, Protocol, TypeVar

from lockerd.drivers.base import BoardSnapshot, DoorState
from lockerd.drivers.profiles import ProfileSpec, profile

log = logging.getLogger(__name__)


class BusIdentity(Protocol):
    """The part of a bus that status output names."""

    name: str
    port: str
    baudrate: int


BusT = TypeVar("BusT", bound=BusIdentity)


class LockBoardBase(ABC, Generic[BusT]):
    """A board at `address` on `bus`; subclasses implement `_pulse()` and `read()`.

    `profile` names the board's row in drivers/profiles.py; the address and channel count are
    checked against it, and so is every pulse (see `pulse()`).
    """

    profile: str = ""

    def __init__(self, bus: BusT, address: int, channels: int, *,
                 inputs_active_low: bool = False) -> None:
        self.spec: ProfileSpec = profile(self.profile)
        self.spec.check(address, channels)
        self.bus = bus
        self.address = address
        self.channels = channels
        self.inputs_active_low = inputs_active_low
        self.pulses_sent = 0
        self.pulses_capped = 0

    async def pulse(self, channel: int, duration_ms: int) -> None:
        """Fire one relay once: the one door through which every driver's pulse passes.

        A channel the board does not have is refused before anything is sent. The duration is
        capped at the profile's maximum pulse (a relay must never stay energised, whatever a
        caller asks), with a warning. Returns when the board acknowledged; never retried.
        """
        if not 0 <= channel < self.channels:
            raise ValueError(f"board {self.address} has no channel {channel}")
        if duration_ms <= 0:
            raise ValueError(f"board {self.address}: pulse of {duration_ms} ms")
        limit = self.spec.max_pulse_ms
        if duration_ms > limit:
            self.pulses_capped += 1
            log.warning("board %d channel %d: pulse of %d ms capped at the %s maximum of %d ms",
                        self.address, channel, duration_ms, self.profile, limit)
            duration_ms = limit
        self.pulses_sent += 1
        log.info("board %d channel %d: relay pulse, %d ms", self.address, channel, duration_ms)
        await self._pulse(channel, duration_ms)

    @abstractmethod
    async def _pulse(self, channel: int, duration_ms: int) -> None:
        """Send the profile's pulse for a checked channel and capped duration."""

    @abstractmethod
    async def read(self) -> BoardSnapshot:
        """Read all door inputs of the board in one transaction (polarity applied)."""

    def _doors(self, bits: tuple[bool, ...] | list[bool]) -> tuple[DoorState, ...]:
        """Input bits to door states, polarity applied (boards and locks differ)."""
        return tuple(DoorState.OPEN if bit != self.inputs_active_low else DoorState.CLOSED
                     for bit in bits[:self.channels])

    def info(self) -> dict[str, Any]:
        """Identity and counters for status output."""
        return {"address": self.address, "profile": self.profile, "channels": self.channels,
                "bus": self.bus.name, "port": self.bus.port, "baudrate": self.bus.baudrate,
                "inputs_active_low": self.inputs_active_low, "pulses_sent": self.pulses_sent,
                "pulses_capped": self.pulses_capped, "max_pulse_ms": self.spec.max_pulse_ms}
