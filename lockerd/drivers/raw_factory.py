"""Factory entries for the raw-frame board profiles (`kerong-cu16`, `rs485-8a`) of drivers/factory.py."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lockerd.drivers.lockboard_8a import Board8A
from lockerd.drivers.lockboard_kerong import KerongBoard
from lockerd.drivers.lockboard_raw import RawLockBoard
from lockerd.drivers.rawbus import RawSerialBus

if TYPE_CHECKING:
    from lockerd.config import Board, SerialPort

RAW_PROFILES = frozenset({"kerong-cu16", "rs485-8a"})


def raw_bus(spec: SerialPort, port: str, boards: list[Board]) -> RawSerialBus | None:
    """A raw serial bus when the bus's boards speak Kerong or 0x8A frames, else None (Modbus)."""
    profiles = {b.profile for b in boards if b.bus == spec.name}
    if not profiles & RAW_PROFILES:
        return None
    if len(profiles) > 1:
        raise ValueError(f"bus {spec.name!r} mixes board profiles {sorted(profiles)}: one wire "
                         "protocol per bus")
    return RawSerialBus(spec.name, port, baudrate=spec.baudrate, parity=spec.parity,
                        stopbits=spec.stopbits, read_timeout_s=spec.read_timeout_ms / 1000,
                        write_timeout_s=spec.write_timeout_ms / 1000)


def raw_board(b: Board, bus: RawSerialBus) -> RawLockBoard:
    """The driver for one raw-profile board."""
    if b.profile == "kerong-cu16":
        return KerongBoard(bus, b.address, b.channels, inputs_active_low=b.inputs_active_low)
    if b.profile == "rs485-8a":
        return Board8A(bus, b.address, b.channels, inputs_active_low=b.inputs_active_low)
    raise ValueError(f"board {b.address}: {b.profile!r} is not a raw-frame profile")
