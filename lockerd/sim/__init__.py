"""Hardware simulator: the same wire protocols as the real boards and camera, with fault injection."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from lockerd.sim.faults import Faults
from lockerd.sim.frontends import frontend_for
from lockerd.sim.line import LineEngine, SimBus
from lockerd.sim.modbus_rtu import ModbusRtuSlave
from lockerd.sim.physics import BoardModel

if TYPE_CHECKING:
    from lockerd.config import Hardware


class SimHandle:
    """A running simulator: pty paths per bus, fault switches, board models, wire records."""

    def __init__(self, engine: LineEngine, boards: dict[tuple[str, int], BoardModel]) -> None:
        self._engine = engine
        self._boards = boards
        self.faults = engine.faults

    def port(self, bus_name: str) -> str:
        """Path of the pty a driver opens for this bus (like /dev/ttyUSB0)."""
        return self._engine.buses[bus_name].path

    def bus(self, bus_name: str) -> SimBus:
        """The simulated bus with its frame records."""
        return self._engine.buses[bus_name]

    def board(self, bus_name: str, address: int) -> BoardModel:
        """Physics of one board."""
        return self._boards[(bus_name, address)]

    def slave(self, bus_name: str) -> ModbusRtuSlave:
        """The Modbus front end of a bus (pulse log, bad-frame count)."""
        frontend = self._engine.buses[bus_name].frontend
        assert isinstance(frontend, ModbusRtuSlave)
        return frontend

    def now(self) -> float:
        """The simulator's clock (monotonic seconds)."""
        return time.monotonic()

    def wake(self) -> None:
        """Apply injected line noise now."""
        self._engine.wake()

    def close(self) -> None:
        """Stop the simulator thread and close the ptys."""
        self._engine.close()


def start_for_config(hw: Hardware, *, close_after_s: float | None = 1.0,
                     seed: int = 0) -> SimHandle:
    """Simulate every bus and board of a [hardware] config; returns when the ptys exist."""
    boards: dict[tuple[str, int], BoardModel] = {}
    buses: list[SimBus] = []
    for spec in hw.buses:
        on_bus = [b for b in hw.boards if b.bus == spec.name]
        models = {b.address: BoardModel(b.address, b.channels, b.inputs_active_low, close_after_s)
                  for b in on_bus}
        boards.update({(spec.name, a): m for a, m in models.items()})
        buses.append(SimBus(spec.name, spec.baudrate, frontend_for(spec.name, on_bus, models)))
    engine = LineEngine(buses, Faults(boards, seed))
    engine.start()
    return SimHandle(engine, boards)
