"""What every lock-board driver shares, whatever its wire protocol: identity, channel checks,
door-input polarity and status output."""

from __future__ import annotations

from typing import Any, Generic, Protocol, TypeVar

from lockerd.drivers.base import BoardSnapshot, DoorState


class BusIdentity(Protocol):
    """The part of a bus that status output names."""

    name: str
    port: str
    baudrate: int


BusT = TypeVar("BusT", bound=BusIdentity)


class LockBoardBase(Generic[BusT]):
    """A board at `address` on `bus`; subclasses implement `pulse()` and `read()`."""

    profile = "board"

    def __init__(self, bus: BusT, address: int, channels: int, *,
                 inputs_active_low: bool = False) -> None:
        self.bus = bus
        self.address = address
        self.channels = channels
        self.inputs_active_low = inputs_active_low
        self.pulses_sent = 0

    def _check_channel(self, channel: int) -> None:
        if not 0 <= channel < self.channels:
            raise ValueError(f"board {self.address} has no channel {channel}")

    def _doors(self, bits: tuple[bool, ...] | list[bool]) -> tuple[DoorState, ...]:
        """Input bits to door states, polarity applied (boards and locks differ)."""
        return tuple(DoorState.OPEN if bit != self.inputs_active_low else DoorState.CLOSED
                     for bit in bits[:self.channels])

    async def pulse(self, channel: int, duration_ms: int) -> None:
        """Fire one relay; implemented per profile."""
        raise NotImplementedError

    async def read(self) -> BoardSnapshot:
        """Read the board; implemented per profile."""
        raise NotImplementedError

    def info(self) -> dict[str, Any]:
        """Identity and counters for status output."""
        return {"address": self.address, "profile": self.profile, "channels": self.channels,
                "bus": self.bus.name, "port": self.bus.port, "baudrate": self.bus.baudrate,
                "inputs_active_low": self.inputs_active_low, "pulses_sent": self.pulses_sent}
