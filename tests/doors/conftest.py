"""Fixtures for door tests: a simulated bus on a real pty and the real Modbus driver on it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest

import sim
from drivers.base import ManagedBoard
from drivers.factory import open_boards
from drivers.lockboard_modbus import CoilBoard, ModbusBus, WaveshareBoard
from drivers.raw_factory import RAW_PROFILES
from drivers.rawbus import RawSerialBus
from lockerd.config import Board, Hardware, SerialPort


@dataclass
class Rig:
    """The simulator and the driver objects talking to it."""

    sim: sim.SimHandle
    bus: ModbusBus | RawSerialBus
    boards: dict[int, ManagedBoard]

    def frames(self) -> list[bytes]:
        """Request frames the simulator received, in order."""
        return [f for _, f in self.sim.bus("bus0").rx_frames]


RigFactory = Callable[..., "object"]


CONTROLLER_PROFILES = ("modbus-waveshare", "kerong-cu16", "rs485-8a")
NATIVE_BAUD = {"kerong-cu16": 19200, "rs485-8a": 9600}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run the door-controller suite once per board profile (issue 8), the tests unchanged."""
    if "controller" in metafunc.fixturenames and "board_profile" in metafunc.fixturenames:
        metafunc.parametrize("board_profile", CONTROLLER_PROFILES)


@pytest.fixture
def board_profile() -> str:
    """Profile of the rig's boards when a test does not name one."""
    return "modbus-waveshare"


@pytest.fixture
async def make_rig(board_profile: str) -> AsyncIterator[Callable[..., object]]:
    """Build a rig: n boards x m channels on one pty bus; everything is closed afterwards."""
    made: list[Rig] = []

    async def build(*, boards: int = 1, channels: int = 8, baudrate: int | None = None,
                    profile: str | None = None, read_timeout_s: float = 0.15,
                    write_timeout_s: float = 0.2, close_after_s: float | None = 0.5,
                    active_low: bool = False, start: bool = True) -> Rig:
        profile = profile or board_profile
        baudrate = baudrate or NATIVE_BAUD.get(profile, 115200)
        if profile in RAW_PROFILES:  # Kerong / 0x8A: built by the driver factory (issue 8)
            rig = await _raw_rig(profile, boards, channels, baudrate, read_timeout_s,
                                 write_timeout_s, close_after_s, active_low)
            made.append(rig)
            return rig
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


async def _raw_rig(profile: str, boards: int, channels: int, baudrate: int, read_timeout_s: float,
                   write_timeout_s: float, close_after_s: float | None, active_low: bool) -> Rig:
    hw = Hardware(buses=[SerialPort(baudrate=baudrate, read_timeout_ms=round(read_timeout_s * 1000),
                                    write_timeout_ms=round(write_timeout_s * 1000))],
                  boards=[Board(address=a, channels=channels, profile=profile,  # type: ignore[arg-type]
                                inputs_active_low=active_low) for a in range(1, boards + 1)])
    board_set = await open_boards(hw, sim_close_after_s=close_after_s)
    assert board_set.sim is not None
    frontend = board_set.sim.bus("bus0").frontend
    if hasattr(frontend, "unlock_reply_s"):
        # 0x8A boards answer an open ~500 ms late; these tests close doors 0.3 s after they
        # open, faster than any person, so the board answers quickly here (tests/boards covers 0.5 s).
        frontend.unlock_reply_s = 0.05
    return Rig(board_set.sim, board_set.buses["bus0"], dict(board_set.boards))
