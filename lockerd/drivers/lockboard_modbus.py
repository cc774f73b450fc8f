"""Modbus RTU lock boards (`modbus-waveshare`, `modbus-coil` profiles of docs/boards.md) on pymodbus.

pymodbus 3.16.1 `AsyncModbusSerialClient` with the RTU framer does the framing and CRC of relay
writes; this module decides timeouts and retries (pymodbus's defaults, 3 s and 3 re-sends, are
wrong for locks), keeps all access to a bus in one `BusScheduler`, and never retries an unlock.
The door poll (FC02), made all day long, bypasses pymodbus's client: its fixed frames are built
and checked by drivers/frames_modbus.py and sent raw on the same port (drivers/modbus_tap.py,
drivers/modbus_poll.py: awaited, or sent now and read at the next slot), for a fraction of the CPU.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import struct
import time
from collections.abc import Callable
from pathlib import Path

from pymodbus.client import AsyncModbusSerialClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.framer import FramerType
from pymodbus.pdu import ModbusPDU
from pymodbus.pdu.bit_message import WriteMultipleCoilsRequest

from lockerd.drivers.base import BoardSnapshot
from lockerd.drivers.bus import Priority
from lockerd.drivers.errors import DriverError, DriverTimeout, DriverUnavailable, FrameError
from lockerd.drivers.line import SerialLine
from lockerd.drivers.lockboard_common import LockBoardBase
from lockerd.drivers.modbus_poll import PollResult, RawPolls
from lockerd.drivers.modbus_tap import RawTap

log = logging.getLogger(__name__)

FLASH_BASE = 0x0200
"""Waveshare: FC05 to coil 0x0200+ch with the pulse length in 100 ms units (board-timed)."""
ALL_RELAYS = 0x00FF
"""Waveshare: FC05 to coil 0x00FF, value 0x0000 = every relay off."""
COIL_ON = 0xFF00
COIL_OFF = 0x0000


class CoilWrite(ModbusPDU):
    """FC05 with a raw 16-bit value: pymodbus's own WriteSingleCoil only knows on/off.

    Registered on the client's decoder for FC05 so the board's echo keeps its value and can
    be checked byte for byte against what was sent.
    """

    function_code = 5
    rtu_frame_size = 8

    def __init__(self, dev_id: int = 0, address: int = 0, value: int = 0) -> None:
        super().__init__(dev_id=dev_id, address=address)
        self.value = value

    def encode(self) -> bytes:
        """PDU body: coil address, value."""
        return struct.pack(">HH", self.address, self.value)

    def decode(self, data: bytes) -> None:
        """Parse the echo."""
        self.address, self.value = struct.unpack(">HH", data[:4])


class ModbusBus(SerialLine):
    """One RS-485 port with Modbus boards on it: the pymodbus client behind the line's scheduler."""

    def __init__(self, name: str, port: str, *, baudrate: int = 9600, parity: str = "N",
                 stopbits: int = 1, read_timeout_s: float = 0.2, write_timeout_s: float = 0.3,
                 quiet_s: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(name, port, baudrate=baudrate, parity=parity, stopbits=stopbits,
                         read_timeout_s=read_timeout_s, write_timeout_s=write_timeout_s,
                         quiet_s=quiet_s, clock=clock)
        self.client = AsyncModbusSerialClient(
            port, framer=FramerType.RTU, baudrate=baudrate, parity=parity, stopbits=stopbits,
            timeout=write_timeout_s, retries=0, reconnect_delay=0, name=f"bus:{name}",
            trace_packet=self._trace_packet)
        self.client.register(CoilWrite)
        self.client.set_max_no_responses(1 << 30)
        self._tap: RawTap | None = None
        self.stale_bytes = 0
        self.polls = RawPolls(self)

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        self._traced("tx" if sending else "rx", data)
        return data

    @property
    def is_open(self) -> bool:
        """True while pymodbus holds the port open."""
        return bool(self.client.connected)

    async def open(self) -> None:
        """Open the port (pyserial opens non-blocking, so this does not stall the loop)."""
        if self.client.connected:
            return
        ok = await self.client.connect()
        if not ok:
            raise DriverUnavailable(f"bus {self.name}: cannot open {self.port}")
        await asyncio.sleep(0)  # let the transport's setup (call_soon) run
        self._install_tap()
        await self.settle()

    def _install_tap(self) -> RawTap:
        """The tap on the current transport (a reconnect makes a new transport)."""
        transport = self.client.ctx.transport
        if transport is None:
            raise DriverUnavailable(f"bus {self.name}: port closed")
        tap = self._tap
        if tap is None or transport.get_protocol() is not tap:
            tap = RawTap(transport.get_protocol(), lambda data: self._traced("rx", data))
            transport.set_protocol(tap)
            self._tap = tap
        return tap

    def close(self) -> None:
        """Close the port."""
        self.client.close()

    async def settle(self) -> None:
        """Settle the line (drivers/line.py) with the port watched, so chatter is seen."""
        if self._tap is not None:
            self.polls.watch()
        await super().settle()

    def _discard_input(self) -> None:
        self.client.ctx.recv_buffer = b""
        if self._tap is not None:
            self._tap.buf.clear()
        transport = self.client.ctx.transport
        serial_port = getattr(transport, "sync_serial", None)
        if serial_port is not None:
            with contextlib.suppress(Exception):
                serial_port.reset_input_buffer()

    async def transact(self, priority: Priority, request: ModbusPDU, *, timeout_s: float,
                       attempts: int) -> ModbusPDU:
        """One exchange with exclusive use of the bus; `attempts` > 1 only for idempotent reads."""
        return await self._transaction(priority, attempts,
                                       lambda: self._exchange(request, timeout_s))

    async def _exchange(self, request: ModbusPDU, timeout_s: float) -> ModbusPDU:
        if not self.client.connected:
            await self.open()
        self.client.ctx.comm_params.timeout_connect = timeout_s
        unit = request.dev_id
        tap = self._install_tap()
        self.polls.watch()
        tap.to_inner = True
        try:
            reply: ModbusPDU = await self.client.execute(False, request)
        except ModbusIOException as exc:
            self.timeouts += 1
            raise DriverTimeout(f"bus {self.name} unit {unit}: no reply in "
                                f"{timeout_s * 1000:.0f} ms") from exc
        except ConnectionException as exc:
            raise DriverUnavailable(f"bus {self.name}: {exc}") from exc
        except (ModbusException, ValueError, struct.error) as exc:
            self.garbled += 1
            raise FrameError(f"bus {self.name} unit {unit}: bad reply: {exc}") from exc
        finally:
            tap.to_inner = False
        if reply.function_code != request.function_code:
            self.garbled += 1
            raise FrameError(f"bus {self.name} unit {unit}: reply for FC{reply.function_code} "
                             f"to FC{request.function_code}")
        if reply.isError():
            raise DriverError(f"bus {self.name} unit {unit}: board refused FC"
                              f"{request.function_code} (exception {reply.exception_code})")
        return reply

    async def read_inputs(self, unit: int, count: int, *, timeout_s: float,
                          attempts: int) -> tuple[bool, ...]:
        """FC02 inputs 0..count-1 of `unit`, raw on the line (the door poll; idempotent)."""
        return await self.polls.read_inputs(unit, count, timeout_s=timeout_s, attempts=attempts)

    def send_poll(self, unit: int, count: int, deliver: Callable[[PollResult], None]) -> bool:
        """Send an idle FC02 poll now if the line is free; its reply is read later (modbus_poll)."""
        return self.polls.send(unit, count, deliver)

    def harvest(self) -> bool:
        """Read the reply of the poll in flight if it has arrived; True when none is left."""
        return self.polls.harvest()

    def min_interval(self) -> float:
        """Shortest sensible time between polls sent to be read later (modbus_poll)."""
        return self.polls.min_interval()

    async def finish_poll(self) -> None:
        """Wait for the reply of the poll in flight (up to the read timeout), if any."""
        await self.polls.finish()

class EnergisedStore:
    """Persists which plain-coil relays are on, so a restart knows a relay may be left energised."""

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self.on: set[tuple[str, int, int]] = set()

    def load(self) -> set[tuple[str, int, int]]:
        """Relays recorded as energised when the process last ran (blocking: call in a thread)."""
        if self._path is None or not self._path.exists():
            return set()
        try:
            return {(str(b), int(u), int(c)) for b, u, c in json.loads(self._path.read_text())}
        except (OSError, ValueError, TypeError) as exc:
            log.warning("cannot read %s: %s", self._path, exc)
            return set()

    async def save(self) -> None:
        """Write the current set (in a worker thread)."""
        if self._path is None:
            return
        data = json.dumps(sorted(self.on))
        path = self._path
        await asyncio.to_thread(_atomic_write, path, data)


def _atomic_write(path: Path, data: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(data)
    tmp.replace(path)


class ModbusLockBoard(LockBoardBase[ModbusBus]):
    """Common part of both Modbus profiles: door inputs by FC02, one request per board."""

    def __init__(self, bus: ModbusBus, address: int, channels: int, *,
                 inputs_active_low: bool = False) -> None:
        super().__init__(bus, address, channels, inputs_active_low=inputs_active_low)
        self._last_bits: tuple[bool, ...] = ()
        self._last: BoardSnapshot | None = None

    @property
    def line(self) -> ModbusBus:
        """The bus, which reads the replies of polls sent by `poll_later()` (doors/bus_round.py)."""
        return self.bus

    async def read(self) -> BoardSnapshot:
        """FC02 inputs 0..n-1 in one request; a read is retried at most once."""
        bits = await self.bus.read_inputs(self.address, self.channels,
                                          timeout_s=self.bus.read_timeout_s, attempts=2)
        return self._snapshot(bits)

    def poll_later(self, deliver: Callable[[BoardSnapshot | DriverError], None]) -> bool:
        """Send an idle poll now if the line is free (False if not); `deliver` gets the
        snapshot, or the error, when the bus reads the reply (`harvest`, `finish_poll`)."""
        def done(result: PollResult) -> None:
            deliver(result if isinstance(result, DriverError) else self._snapshot(result))
        return self.bus.send_poll(self.address, self.channels, done)

    def _snapshot(self, bits: tuple[bool, ...]) -> BoardSnapshot:
        if bits != self._last_bits or self._last is None:
            self._last_bits, self._last = bits, BoardSnapshot(self._doors(bits))
        return self._last  # the same snapshot while nothing changed: cheap to compare

    async def start(self) -> None:
        """Force every relay off (best effort; docs/boards.md)."""

    async def stop(self) -> None:
        """Leave relays off."""

    async def _write_coil(self, priority: Priority, address: int, value: int, *,
                          attempts: int) -> None:
        request = CoilWrite(self.address, address, value)
        reply = await self.bus.transact(priority, request, timeout_s=self.bus.write_timeout_s,
                                        attempts=attempts)
        assert isinstance(reply, CoilWrite)
        if (reply.address, reply.value) != (address, value):
            raise FrameError(f"board {self.address}: echo {reply.address:#06x}/{reply.value:#06x} "
                             f"for {address:#06x}/{value:#06x}")


class WaveshareBoard(ModbusLockBoard):
    """Waveshare "Modbus RTU Relay": the board times the pulse itself (flash write)."""

    profile = "modbus-waveshare"

    async def _pulse(self, channel: int, duration_ms: int) -> None:
        """FC05 coil 0x0200+ch, value = pulse in 100 ms units; sent once, never re-sent."""
        units = max(1, min(255, round(duration_ms / 100)))
        await self._write_coil(Priority.UNLOCK, FLASH_BASE + channel, units, attempts=1)

    async def start(self) -> None:
        """All relays off: FC05 to 0x00FF with value 0."""
        await self._write_coil(Priority.CONTROL, ALL_RELAYS, COIL_OFF, attempts=2)


class CoilBoard(ModbusLockBoard):
    """Plain Modbus relay board: coil on, then off after the pulse (the driver times it)."""

    profile = "modbus-coil"

    def __init__(self, bus: ModbusBus, address: int, channels: int, *,
                 inputs_active_low: bool = False, store: EnergisedStore | None = None) -> None:
        super().__init__(bus, address, channels, inputs_active_low=inputs_active_low)
        self._store = store or EnergisedStore(None)
        self._off_tasks: set[asyncio.Task[None]] = set()

    async def _pulse(self, channel: int, duration_ms: int) -> None:
        """Coil on (sent once, never re-sent); the off is scheduled even if the ack is lost."""
        key = (self.bus.name, self.address, channel)
        self._store.on.add(key)
        await self._store.save()
        try:
            await self._write_coil(Priority.UNLOCK, channel, COIL_ON, attempts=1)
        finally:
            task = asyncio.create_task(self._off_after(channel, duration_ms / 1000),
                                       name=f"relay-off:{self.bus.name}:{self.address}:{channel}")
            self._off_tasks.add(task)
            task.add_done_callback(self._off_tasks.discard)

    async def _off_after(self, channel: int, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        for attempt in range(5):  # switching off is idempotent: retrying is safe
            try:
                await self._write_coil(Priority.UNLOCK, channel, COIL_OFF, attempts=2)
            except DriverError as exc:
                log.warning("board %d relay %d off failed (%s), attempt %d", self.address,
                            channel, exc, attempt + 1)
                await asyncio.sleep(0.2 * (attempt + 1))
                continue
            self._store.on.discard((self.bus.name, self.address, channel))
            await self._store.save()
            return
        log.error("board %d relay %d may still be energised", self.address, channel)

    async def start(self) -> None:
        """Force all coils off with FC0F; relays recorded as energised at the last run are logged."""
        left = {k for k in await asyncio.to_thread(self._store.load)
                if k[:2] == (self.bus.name, self.address)}
        if left:
            log.warning("board %d: relays %s were energised when the daemon last stopped",
                        self.address, sorted(k[2] for k in left))
        request = WriteMultipleCoilsRequest(address=0, bits=[False] * self.channels,
                                            dev_id=self.address)
        await self.bus.transact(Priority.CONTROL, request, timeout_s=self.bus.write_timeout_s,
                                attempts=2)
        self._store.on -= left
        await self._store.save()

    async def stop(self) -> None:
        """Let pending relay-off writes finish (bounded), then cancel what is left."""
        if self._off_tasks:
            _, pending = await asyncio.wait(set(self._off_tasks), timeout=3.5)
            for task in pending:
                task.cancel()
            for task in pending:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
