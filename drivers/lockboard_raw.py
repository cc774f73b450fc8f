"""What the Kerong and 0x8A lock-board drivers share: identity, channel checks, status, no-op relay reset."""

from __future__ import annotations

from typing import Any

from drivers.base import BoardSnapshot, DoorState
from drivers.rawbus import RawSerialBus


class RawLockBoard:
    """A board on a `RawSerialBus`; subclasses implement `pulse()` and `read()`.

    Both profiles time the relay pulse on the board itself, so no relay can be left energised
    by a lost "off" command: `start()` (relays forced off, DESIGN section 2) has nothing to send.
    """

    profile = "raw"

    def __init__(self, bus: RawSerialBus, address: int, channels: int, *,
                 inputs_active_low: bool = False) -> None:
        self.bus = bus
        self.address = address
        self.channels = channels
        self.inputs_active_low = inputs_active_low
        self.pulses_sent = 0

    def _check_channel(self, channel: int) -> None:
        if not 0 <= channel < self.channels:
            raise ValueError(f"board {self.address} has no channel {channel}")

    def _doors(self, bits: tuple[bool, ...]) -> tuple[DoorState, ...]:
        return tuple(DoorState.OPEN if bit != self.inputs_active_low else DoorState.CLOSED
                     for bit in bits[:self.channels])

    async def pulse(self, channel: int, duration_ms: int) -> None:
        """Fire one relay; implemented per profile."""
        raise NotImplementedError

    async def read(self) -> BoardSnapshot:
        """Read the board; implemented per profile."""
        raise NotImplementedError

    async def start(self) -> None:
        """Nothing to force off: the board ends every pulse itself."""

    async def stop(self) -> None:
        """Nothing pending."""

    def info(self) -> dict[str, Any]:
        """Identity and counters for status output."""
        return {"address": self.address, "profile": self.profile, "channels": self.channels,
                "bus": self.bus.name, "port": self.bus.port, "baudrate": self.bus.baudrate,
                "inputs_active_low": self.inputs_active_low, "pulses_sent": self.pulses_sent,
                "line": self.bus.counters()}
