"""Builds the hardware of a config: lock boards on their buses, the camera, the GPIO pins, the ID reader.

This is the one place that chooses between the simulator and real hardware (`simulated()`);
nothing else tests `backend == "sim"`. Which bus class and driver class a board needs comes
from the profile registry (drivers/profiles.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lockerd.drivers.base import FrameSource, ManagedBoard
from lockerd.drivers.errors import DriverError
from lockerd.drivers.line import SerialLine
from lockerd.drivers.lockboard_modbus import EnergisedStore, ModbusBus
from lockerd.drivers.profiles import LineKind, bus_line, profile
from lockerd.drivers.rawbus import RawSerialBus

if TYPE_CHECKING:
    from lockerd.config import Board, Camera, Gpio, Hardware, SerialPort
    from lockerd.drivers.idcard import SamSerialReader
    from lockerd.sim import SimHandle
    from lockerd.sim.idcard import IdCardSim

log = logging.getLogger(__name__)

ENERGISED_FILE = "relays-energised.json"
"""Inside the state directory: driver-timed relays that were on when the daemon last ran."""

LINES: dict[LineKind, type[ModbusBus] | type[RawSerialBus]] = {
    LineKind.MODBUS: ModbusBus, LineKind.RAW: RawSerialBus}


def simulated(hw: Hardware) -> bool:
    """True when the config asks for the built-in simulator instead of real hardware."""
    return hw.backend == "sim"


@dataclass
class BoardSet:
    """The opened buses and boards (by board address), and the simulator when it runs them."""

    boards: dict[int, ManagedBoard] = field(default_factory=dict)
    buses: dict[str, SerialLine] = field(default_factory=dict)
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


def make_line(spec: SerialPort, port: str, boards: list[Board]) -> SerialLine:
    """The bus driver for one [[hardware.buses]] entry: Modbus or raw serial, by its boards' profiles."""
    kind = bus_line(spec.name, (b.profile for b in boards if b.bus == spec.name))
    cls = LINES[kind or LineKind.MODBUS]
    return cls(spec.name, port, baudrate=spec.baudrate, parity=spec.parity,
               stopbits=spec.stopbits, read_timeout_s=spec.read_timeout_ms / 1000,
               write_timeout_s=spec.write_timeout_ms / 1000)


def make_board(b: Board, bus: SerialLine, energised: EnergisedStore) -> ManagedBoard:
    """The driver for one [[hardware.boards]] entry, of the class its profile names."""
    spec = profile(b.profile)
    kwargs: dict[str, Any] = {"inputs_active_low": b.inputs_active_low}
    if not spec.board_timed:
        kwargs["store"] = energised  # the driver switches the relay off: remember it is on
    board = spec.load_board_class()(bus, b.address, b.channels, **kwargs)
    if not isinstance(board, ManagedBoard):
        raise TypeError(f"{spec.board_class} is not a lock-board driver")
    return board


async def open_boards(hw: Hardware, *, sim_close_after_s: float | None = 3.0,
                      energised_file: Path | None = None) -> BoardSet:
    """Open every bus and board; simulated hardware starts the simulator first and uses its ptys.

    A bus or board that cannot be reached is logged and kept: the door controller marks its
    doors unknown and retries, the other boards work.
    """
    out = BoardSet()
    if simulated(hw):
        from lockerd import sim  # the simulator is only loaded when configured

        out.sim = await asyncio.to_thread(sim.start_for_config, hw, close_after_s=sim_close_after_s)
    store = EnergisedStore(energised_file)
    try:
        for spec in hw.buses:
            port = out.sim.port(spec.name) if out.sim is not None else spec.port
            bus = make_line(spec, port, hw.boards)
            out.buses[spec.name] = bus
            try:
                await bus.open()
            except DriverError as exc:
                log.error("bus %s unavailable: %s", spec.name, exc)
        for b in hw.boards:
            board = make_board(b, out.buses[b.bus], store)
            out.boards[b.address] = board
            try:
                await board.start()
            except DriverError as exc:
                log.warning("board %d: relays not forced off at start: %s", b.address, exc)
    except BaseException:
        await out.close()
        raise
    return out


class ConfiguredBoards:
    """The boards of a [hardware] section, opened when the door controller starts."""

    def __init__(self, hw: Hardware, *, energised_file: Path | None = None,
                 sim_close_after_s: float | None = 3.0) -> None:
        self.hw = hw
        self.energised_file = energised_file
        """Where driver-timed relays that are on are remembered (None: not remembered)."""
        self.sim_close_after_s = sim_close_after_s

    async def open(self) -> BoardSet:
        """Open buses and boards (and the simulator, when configured); relays forced off."""
        return await open_boards(self.hw, sim_close_after_s=self.sim_close_after_s,
                                 energised_file=self.energised_file)


@dataclass(frozen=True)
class HardwareKit:
    """Everything physical the daemon drives, real or simulated.

    `pin_factory` is gpiozero's pin factory: None means gpiozero's default (the real header).
    """

    simulated: bool
    boards: ConfiguredBoards
    frame_source: FrameSource | None
    pin_factory: Any = None


def build_hardware(hw: Hardware, camera: Camera, gpio: Gpio, *, state_dir: Path) -> HardwareKit:
    """The lock boards, the camera (when enabled) and the GPIO pin factory of a config.

    Simulated hardware: the boards run on the simulator's ptys, the camera is a synthetic
    scene, the pins are gpiozero mock pins. Real hardware: the configured serial ports, the
    OpenCV camera source and gpiozero's default pins; driver-timed relays are remembered in
    the state directory so a restart knows one may have been left on.
    """
    sim = simulated(hw)
    boards = ConfiguredBoards(hw, energised_file=None if sim else state_dir / ENERGISED_FILE)
    source: FrameSource | None = None
    if camera.enabled:
        if sim:
            from lockerd.sim.camera import SimCamera

            source = SimCamera(camera.width, camera.height, decode_hz=camera.sample_hz)
        else:
            from lockerd.drivers.camera import OpenCVCamera

            source = OpenCVCamera(camera.source, width=camera.width, height=camera.height,
                                  decode_hz=camera.sample_hz,
                                  sample_size=(camera.analysis_width, camera.analysis_height))
    pins: Any = None
    if gpio.enabled and sim:
        from gpiozero.pins.mock import MockFactory

        pins = MockFactory()  # the simulator has no pins: mock ones stand in
    return HardwareKit(simulated=sim, boards=boards, frame_source=source, pin_factory=pins)


@dataclass
class IdReaderSet:
    """The opened ID-card reader and, on the simulator, the simulated reader behind it (tests
    and the demo lay cards on it: `sim.present(card)`)."""

    reader: SamSerialReader
    sim: IdCardSim | None = None

    async def close(self) -> None:
        """Close the port, stop the simulated reader."""
        await self.reader.close()
        if self.sim is not None:
            await asyncio.to_thread(self.sim.close)
            self.sim = None


async def open_id_reader(hw: Hardware) -> IdReaderSet | None:
    """The [hardware.idcard] reader when enabled (the simulated one on the sim backend), opened.

    A reader whose port is missing is logged and kept: each check then fails as unreadable and
    no drop-off is accepted without one (Art. 18), until the port comes back.
    """
    spec = hw.idcard
    if not spec.enabled:
        return None
    from lockerd.drivers.idcard import SamSerialReader

    sim: IdCardSim | None = None
    port = spec.port
    if simulated(hw):
        from lockerd.sim.idcard import IdCardSim

        sim = await asyncio.to_thread(IdCardSim(baudrate=spec.baudrate).start)
        port = sim.port
    reader = SamSerialReader(port, baudrate=spec.baudrate, timeout_s=spec.timeout_ms / 1000,
                             read_timeout_s=spec.read_timeout_ms / 1000)
    try:
        await reader.open()
    except DriverError as exc:
        log.error("id reader unavailable: %s", exc)
    return IdReaderSet(reader, sim)
