"""Chooses the simulator front end of a bus from the wire protocol its boards' profiles speak.

The profile registry (drivers/profiles.py) says which wire protocol each board profile speaks;
this table says which simulated front end speaks it. One wire protocol per bus: boards of
different protocols on one line would misread each other's frames, so a mixed bus is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from lockerd.drivers.profiles import bus_line, profile
from lockerd.sim.board_8a import Board8AFrontEnd
from lockerd.sim.kerong import KerongFrontEnd
from lockerd.sim.line import FrontEnd
from lockerd.sim.modbus_rtu import ModbusBoard, ModbusRtuSlave
from lockerd.sim.physics import BoardModel

if TYPE_CHECKING:
    from lockerd.config import Board

FrontEndMaker = Callable[[Sequence["Board"], dict[int, BoardModel]], FrontEnd]


def _modbus(boards: Sequence[Board], models: dict[int, BoardModel]) -> FrontEnd:
    return ModbusRtuSlave(boards={b.address: ModbusBoard(b.profile, models[b.address])
                                  for b in boards})


FRONT_ENDS: dict[str, FrontEndMaker] = {
    "modbus-rtu": _modbus,
    "kerong": lambda _boards, models: KerongFrontEnd(models),
    "0x8a": lambda _boards, models: Board8AFrontEnd(models),
}
"""Simulated front end by the registry's wire protocol."""

EMPTY_BUS_WIRE = "modbus-rtu"
"""A bus without boards gets a Modbus front end that answers nobody (the driver default)."""


def frontend_for(bus_name: str, boards: Sequence[Board],
                 models: dict[int, BoardModel]) -> FrontEnd:
    """The front end for one bus carrying `boards` (their physics in `models`, by address)."""
    bus_line(bus_name, (b.profile for b in boards))  # refuses a bus of mixed protocols
    wire = profile(boards[0].profile).wire if boards else EMPTY_BUS_WIRE
    try:
        make = FRONT_ENDS[wire]
    except KeyError:
        raise ValueError(f"the simulator does not speak the {wire!r} wire protocol") from None
    return make(boards, models)
