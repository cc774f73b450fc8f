"""The lock-board profile registry: one table read by config validation, the driver factory and the simulator.

Each profile names one kind of board as the config spells it (`[[hardware.boards]] profile =`).
The table says which line it hangs on (a Modbus RTU line run by pymodbus, or a raw serial line
for the short proprietary frames), which wire protocol it speaks (one protocol per bus: boards
of different protocols would misread each other's frames), which driver class runs it, its
factory baud rate, the addresses and channel counts its frames can carry, and the longest relay
pulse the driver may ask for (Klipper's maximum on-time: a relay must never stay energised).

This module imports nothing heavy (no pymodbus, no pyserial): the config package reads it at
validation time. The driver class is named, not imported; the factory loads it.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, get_args

from lockerd.drivers import frames_8a, frames_kerong

BoardProfile = Literal["modbus-waveshare", "modbus-coil", "kerong-cu16", "rs485-8a"]
"""Every profile name the config accepts; `PROFILES` has exactly one row per name."""


class LineKind(StrEnum):
    """Which bus implementation carries a profile's frames."""

    MODBUS = "modbus"
    """Modbus RTU through pymodbus (drivers/lockboard_modbus.py ModbusBus)."""
    RAW = "raw"
    """Raw serial frames through pyserial + asyncio (drivers/rawbus.py RawSerialBus)."""


@dataclass(frozen=True, slots=True)
class ProfileSpec:
    """One row of the registry."""

    name: BoardProfile
    line: LineKind
    wire: str
    """The wire protocol; every board on one bus must speak the same one."""
    board_class: str
    """`module:Class` of the driver; imported only by `load_board_class()` (the factory)."""
    native_baud: int
    """Line speed the boards ship with (the simulator's and the test rigs' default)."""
    min_address: int
    max_address: int
    max_channels: int
    max_pulse_ms: int
    """Longest relay pulse the driver asks for; longer requests are capped (and logged)."""
    board_timed: bool
    """True when the board ends every pulse itself; False when the driver switches the relay off."""

    def check(self, address: int, channels: int) -> None:
        """Raise ValueError when a board's address or channel count does not fit the profile."""
        if not self.min_address <= address <= self.max_address or not 1 <= channels <= self.max_channels:
            raise ValueError(f"board {address}: {self.name} boards have addresses "
                             f"{self.min_address}-{self.max_address} and at most "
                             f"{self.max_channels} channels")

    def load_board_class(self) -> type:
        """The driver class (imported now: drivers pull in pymodbus or pyserial)."""
        module, _, name = self.board_class.partition(":")
        cls = getattr(importlib.import_module(module), name)
        assert isinstance(cls, type)
        return cls


MODBUS_MAX_ADDRESS = 247
"""Highest Modbus RTU unit id (248-255 are reserved by the serial-line spec)."""
MODBUS_MAX_CHANNELS = 64
"""Most relays one Modbus lock board drives in the boards we support."""

PROFILES: dict[BoardProfile, ProfileSpec] = {
    spec.name: spec for spec in (
        ProfileSpec(name="modbus-waveshare", line=LineKind.MODBUS, wire="modbus-rtu",
                    board_class="lockerd.drivers.lockboard_modbus:WaveshareBoard",
                    native_baud=9600, min_address=0, max_address=MODBUS_MAX_ADDRESS,
                    max_channels=MODBUS_MAX_CHANNELS, max_pulse_ms=3000, board_timed=True),
        ProfileSpec(name="modbus-coil", line=LineKind.MODBUS, wire="modbus-rtu",
                    board_class="lockerd.drivers.lockboard_modbus:CoilBoard",
                    native_baud=9600, min_address=0, max_address=MODBUS_MAX_ADDRESS,
                    max_channels=MODBUS_MAX_CHANNELS, max_pulse_ms=3000, board_timed=False),
        ProfileSpec(name="kerong-cu16", line=LineKind.RAW, wire="kerong",
                    board_class="lockerd.drivers.lockboard_kerong:KerongBoard",
                    native_baud=19200, min_address=0, max_address=frames_kerong.MAX_BOARD,
                    max_channels=frames_kerong.MAX_LOCKS, max_pulse_ms=3000, board_timed=True),
        ProfileSpec(name="rs485-8a", line=LineKind.RAW, wire="0x8a",
                    board_class="lockerd.drivers.lockboard_8a:Board8A",
                    native_baud=9600, min_address=0, max_address=frames_8a.MAX_BOARD,
                    max_channels=frames_8a.MAX_LOCKS, max_pulse_ms=3000, board_timed=True),
    )
}

if set(PROFILES) != set(get_args(BoardProfile)):  # pragma: no cover - a registry edit gone wrong
    raise ImportError("drivers.profiles: BoardProfile and PROFILES list different profiles")

MAX_ADDRESS = max(p.max_address for p in PROFILES.values())
"""Highest board address any profile can carry (the config's outer bound)."""
MAX_CHANNELS = max(p.max_channels for p in PROFILES.values())
"""Most channels any profile's board has (the config's outer bound)."""
MAX_PULSE_MS = max(p.max_pulse_ms for p in PROFILES.values())
"""Longest pulse any profile allows."""


def profile(name: str) -> ProfileSpec:
    """The registry row for a profile name; KeyError names the known ones."""
    try:
        return PROFILES[name]  # type: ignore[index]
    except KeyError:
        raise KeyError(f"unknown board profile {name!r} (known: {', '.join(PROFILES)})") from None


def bus_line(bus: str, profiles: Iterable[str]) -> LineKind | None:
    """The line kind a bus needs for the profiles of its boards; None for a bus without boards.

    One wire protocol per bus: a bus whose boards speak different protocols is refused.
    """
    specs = {profile(p) for p in profiles}
    wires = sorted({s.wire for s in specs})
    if len(wires) > 1:
        raise ValueError(f"bus {bus!r} mixes wire protocols {wires}: one per bus")
    return next(iter(specs)).line if specs else None
