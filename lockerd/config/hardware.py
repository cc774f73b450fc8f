"""[hardware]: the backend (simulator or real ports), the RS-485 buses and the lock boards."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from lockerd.config.base import Strict
from lockerd.drivers.profiles import MAX_ADDRESS, MAX_CHANNELS, BoardProfile, bus_line, profile


class SerialPort(Strict):
    """One RS-485 bus: a serial port with its line settings."""

    name: str = Field(default="bus0", description="Bus name referenced by boards.",
                      pattern=r"^[A-Za-z0-9_-]{1,32}$")
    port: str = Field(default="/dev/ttyUSB0",
                      description="Device path (prefer /dev/serial/by-id/...); ignored by the sim "
                                  "backend, which creates a pseudo-terminal.")
    baudrate: int = Field(default=9600, description="Line speed in baud.", ge=1200, le=921600)
    parity: Literal["N", "E", "O"] = Field(default="N", description="Parity bit.")
    stopbits: Literal[1, 2] = Field(default=1, description="Stop bits.")
    read_timeout_ms: int = Field(default=200, ge=20, le=2000,
                                 description="Reply timeout for door-state reads (a read is "
                                             "retried at most once; 150-300 ms suits 9600 baud).")
    write_timeout_ms: int = Field(default=300, ge=20, le=3000,
                                  description="Reply timeout for unlock pulses (never retried).")


class Board(Strict):
    """One lock-control board on a bus."""

    address: int = Field(description="Unit id / board address on the bus (the profile's range).",
                         ge=0, le=MAX_ADDRESS)
    bus: str = Field(default="bus0", description="Name of the serial bus the board hangs on.")
    profile: BoardProfile = Field(default="modbus-waveshare",
                                  description="Wire protocol of the board (docs/boards.md).")
    channels: int = Field(default=8, description="Number of lock channels (at most the "
                                                 "profile's).", ge=1, le=MAX_CHANNELS)
    inputs_active_low: bool = Field(
        default=False,
        description="True when the door-input bit reads 0 for an open door (locks differ).")


class Hardware(Strict):
    """Which implementation runs the hardware, and the bus layout."""

    backend: Literal["sim", "real"] = Field(
        default="sim", description="'sim' runs the built-in simulator on pseudo-terminals.")
    buses: list[SerialPort] = Field(default_factory=lambda: [SerialPort()],
                                    description="RS-485 buses.")
    boards: list[Board] = Field(default_factory=list, description="Lock-control boards.")

    @model_validator(mode="after")
    def _boards_on_known_buses(self) -> Hardware:
        names = [b.name for b in self.buses]
        if len(set(names)) != len(names):
            raise ValueError("bus names must be unique")
        seen: set[int] = set()
        for board in self.boards:
            if board.bus not in names:
                raise ValueError(f"board {board.address} is on unknown bus {board.bus!r}")
            # Compartments name their board by address alone, so addresses are cabinet-wide.
            if board.address in seen:
                raise ValueError(f"two boards share address {board.address} (board addresses "
                                 "must be unique across buses)")
            seen.add(board.address)
        for board in self.boards:
            profile(board.profile).check(board.address, board.channels)
        for bus in names:
            bus_line(bus, (b.profile for b in self.boards if b.bus == bus))
        return self
