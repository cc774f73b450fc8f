"""Builds the buses and lock boards of a [hardware] config: the simulator's ptys or the real ports."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from lockerd.drivers.base import ManagedBoard
from lockerd.drivers.errors import DriverError
from lockerd.drivers.lockboard_modbus import (
    CoilBoard,
    EnergisedStore,
    ModbusBus,
    WaveshareBoard,
)
from lockerd.drivers.raw_factory import raw_board, raw_bus
from lockerd.drivers.rawbus import RawSerialBus

if TYPE_CHECKING:
    from lockerd.config import Hardware
    from lockerd.sim import SimHandle

log = logging.getLogger(__name__)


@dataclass
class BoardSet:
    """The opened buses and boards (by board address), and the simulator when it runs them."""

    boards: dict[int, ManagedBoard] = field(default_factory=dict)
    buses: dict[str, ModbusBus | RawSerialBus] = field(default_factory=dict)
    sim: SimHandle | None = None

    async def close(self) -> None:
        """Stop boards (relays off), close ports, stop the simulator."""
        for board in self.boards.values():
            with contextlib.suppress(Exception):
                await board.stop()
        for bus in self.buses.values():
            bus.close()
        if self.sim is not None:
            await asyncio.to_thread(self.sim.close)
            self.sim = None


async def open_boards(hw: Hardware, *, sim_close_after_s: float | None = 3.0,
                      energised_file: Path | None = None) -> BoardSet:
    """Open every bus and board; with backend "sim", start the simulator first and use its ptys.

    A bus or board that cannot be reached is logged and kept: the door controller marks its
    doors unknown and retries, the other boards work.
    """
    out = BoardSet()
    if hw.backend == "sim":
        from lockerd import sim  # the simulator is only loaded when configured

        out.sim = await asyncio.to_thread(sim.start_for_config, hw, close_after_s=sim_close_after_s)
    store = EnergisedStore(energised_file)
    try:
        for spec in hw.buses:
            port = out.sim.port(spec.name) if out.sim is not None else spec.port
            bus: ModbusBus | RawSerialBus | None = raw_bus(spec, port, hw.boards)  # Kerong/0x8A
            if bus is None:
                bus = ModbusBus(spec.name, port, baudrate=spec.baudrate, parity=spec.parity,
                                stopbits=spec.stopbits, read_timeout_s=spec.read_timeout_ms / 1000,
                                write_timeout_s=spec.write_timeout_ms / 1000)
            out.buses[spec.name] = bus
            try:
                await bus.open()
            except DriverError as exc:
                log.error("bus %s unavailable: %s", spec.name, exc)
        for b in hw.boards:
            bus = out.buses[b.bus]
            board: ManagedBoard
            if isinstance(bus, RawSerialBus):
                board = raw_board(b, bus)
            elif b.profile == "modbus-waveshare":
                board = WaveshareBoard(bus, b.address, b.channels,
                                       inputs_active_low=b.inputs_active_low)
            elif b.profile == "modbus-coil":
                board = CoilBoard(bus, b.address, b.channels,
                                  inputs_active_low=b.inputs_active_low, store=store)
            else:
                raise DriverError(f"board {b.address}: profile {b.profile!r} has no driver yet")
            out.boards[b.address] = board
            try:
                await board.start()
            except DriverError as exc:
                log.warning("board %d: relays not forced off at start: %s", b.address, exc)
    except BaseException:
        await out.close()
        raise
    return out
