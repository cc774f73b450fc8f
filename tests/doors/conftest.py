"""Fixtures for door tests: a simulated bus on a real pty and the real Modbus driver on it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest

import sim
from drivers.lockboard_modbus import CoilBoard, ModbusBus, ModbusLockBoard, WaveshareBoard
from lockerd.config import Board, Hardware, SerialPort


@dataclass
class Rig:
    """The simulator and the driver objects talking to it."""

    sim: sim.SimHandle
    bus: ModbusBus
    boards: dict[int, ModbusLockBoard]

    def frames(self) -> list[bytes]:
        """Request frames the simulator received, in order."""
        return [f for _, f in self.sim.bus("bus0").rx_frames]


RigFactory = Callable[..., "object"]


@pytest.fixture
async def make_rig() -> AsyncIterator[Callable[..., object]]:
    """Build a rig: n boards x m channels on one pty bus; everything is closed afterwards."""
    made: list[Rig] = []

    async def build(*, boards: int = 1, channels: int = 8, baudrate: int = 115200,
                    profile: str = "modbus-waveshare", read_timeout_s: float = 0.15,
                    write_timeout_s: float = 0.2, close_after_s: float | None = 0.5,
                    active_low: bool = False, start: bool = True) -> Rig:
        hw = Hardware(buses=[SerialPort(baudrate=baudrate)],
                      boards=[Board(address=a, channels=channels, profile=profile,  # type: ignore[arg-type]
                                    inputs_active_low=active_low)
                              for a in range(1, boards + 1)])
        handle = sim.start_for_config(hw, close_after_s=close_after_s)
        bus = ModbusBus("bus0", handle.port("bus0"), baudrate=baudrate,
                        read_timeout_s=read_timeout_s, write_timeout_s=write_timeout_s)
        rig = Rig(handle, bus, {})
        made.append(rig)
        await bus.open()
        for a in range(1, boards + 1):
            cls = WaveshareBoard if profile == "modbus-waveshare" else CoilBoard
            board = cls(bus, a, channels, inputs_active_low=active_low)
            if start:
                await board.start()
            rig.boards[a] = board
        return rig

    yield build
    for rig in made:
        for board in rig.boards.values():
            await board.stop()
        rig.bus.close()
        rig.sim.close()
