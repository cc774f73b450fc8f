"""Fixtures for lock-board tests: simulated Kerong / 0x8A buses on real ptys, opened by the driver factory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from drivers.factory import BoardSet, open_boards
from drivers.rawbus import RawSerialBus
from lockerd.config import Board, Hardware, SerialPort

NATIVE_BAUD = {"kerong-cu16": 19200, "rs485-8a": 9600}


@dataclass
class RawRig:
    """The simulator and the drivers the factory built for it."""

    boards: BoardSet

    @property
    def sim(self) -> Any:
        """The running simulator."""
        assert self.boards.sim is not None
        return self.boards.sim

    @property
    def bus(self) -> RawSerialBus:
        """The driver side of bus0."""
        bus = self.boards.buses["bus0"]
        assert isinstance(bus, RawSerialBus)
        return bus

    @property
    def frontend(self) -> Any:
        """The simulated boards' protocol front end on bus0."""
        return self.sim.bus("bus0").frontend

    def frames(self) -> list[bytes]:
        """Request frames the simulator received, in order."""
        return [f for _, f in self.sim.bus("bus0").rx_frames]

    def pulses(self, address: int) -> list[int]:
        """Pulses each channel of a board received."""
        return list(self.sim.board("bus0", address).pulse_counts())


@pytest.fixture
async def raw_rig() -> AsyncIterator[Callable[..., Any]]:
    """Build boards of one raw profile on one simulated bus; closed afterwards."""
    made: list[RawRig] = []

    async def build(profile: str, *, addresses: tuple[int, ...] = (1,), channels: int = 8,
                    read_timeout_ms: int = 150, write_timeout_ms: int = 200,
                    close_after_s: float | None = 1.0, active_low: bool = False) -> RawRig:
        hw = Hardware(buses=[SerialPort(baudrate=NATIVE_BAUD[profile], read_timeout_ms=read_timeout_ms,
                                        write_timeout_ms=write_timeout_ms)],
                      boards=[Board(address=a, channels=channels, profile=profile,  # type: ignore[arg-type]
                                    inputs_active_low=active_low) for a in addresses])
        rig = RawRig(await open_boards(hw, sim_close_after_s=close_after_s))
        made.append(rig)
        return rig

    yield build
    for rig in made:
        await rig.boards.close()
