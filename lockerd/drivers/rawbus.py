"""A raw RS-485 line for the short proprietary lock-board protocols (Kerong, 0x8A) on pyserial + asyncio.

pyserial opens the port (in a worker thread: opening a USB adapter can stall) non-blocking;
the loop watches its file descriptor with `add_reader`, so no thread sits in a read and there
is no extra dependency (pyserial-asyncio-fast would add a transport layer we would have to
bypass anyway to measure line quiet and flush input). Every exchange runs inside the shared
`BusScheduler` of drivers/bus.py: unlocks ahead of polls, no interleaving, frame gap kept, and
after a timeout or garbage the line is settled (quiet, then input flushed) before the next frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import TypeVar

import serial

from lockerd.drivers.bus import Priority
from lockerd.drivers.errors import DriverTimeout, DriverUnavailable, FrameError
from lockerd.drivers.framing import StreamDecoder
from lockerd.drivers.line import SerialLine

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


class RawSerialBus(SerialLine):
    """One serial port shared by raw-frame boards; `exchange()` is one request/reply transaction."""

    def __init__(self, name: str, port: str, *, baudrate: int = 9600, parity: str = "N",
                 stopbits: int = 1, read_timeout_s: float = 0.2, write_timeout_s: float = 0.3,
                 quiet_s: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(name, port, baudrate=baudrate, parity=parity, stopbits=stopbits,
                         read_timeout_s=read_timeout_s, write_timeout_s=write_timeout_s,
                         quiet_s=quiet_s, clock=clock)
        self._serial: serial.Serial | None = None
        self._fd = -1
        self._rx = bytearray()
        self._rx_event = asyncio.Event()
        self.echo_mismatches = 0
        self.stale_bytes = 0
        self.bad_frames = 0

    @property
    def is_open(self) -> bool:
        """True while the port is open."""
        return self._serial is not None

    async def open(self) -> None:
        """Open the port in a worker thread and start watching it."""
        if self._serial is not None:
            return
        try:
            port = await asyncio.to_thread(
                serial.serial_for_url, self.port, baudrate=self.baudrate, bytesize=8,
                parity=self.parity, stopbits=self.stopbits, timeout=0, write_timeout=0.5)
            fd = port.fileno()
        except (serial.SerialException, OSError, ValueError, AttributeError) as exc:
            raise DriverUnavailable(f"bus {self.name}: cannot open {self.port}: {exc}") from exc
        self._serial, self._fd = port, fd
        asyncio.get_running_loop().add_reader(fd, self._on_readable)
        await self.settle()

    def close(self) -> None:
        """Stop watching and close the port."""
        port, self._serial = self._serial, None
        if port is None:
            return
        with contextlib.suppress(Exception):
            asyncio.get_running_loop().remove_reader(self._fd)
        with contextlib.suppress(Exception):
            port.close()
        self._fd = -1

    def _on_readable(self) -> None:
        port = self._serial
        if port is None:
            return
        try:
            data = port.read(4096)
        except (serial.SerialException, OSError) as exc:
            log.error("bus %s: read failed, closing the port: %s", self.name, exc)
            self.close()
            self._rx_event.set()
            return
        if data:
            self._traced("rx", data)
            self._rx += data
            self._rx_event.set()

    def _discard_input(self) -> None:
        self._rx.clear()
        if self._serial is not None:
            with contextlib.suppress(Exception):
                self._serial.reset_input_buffer()

    def _send(self, request: bytes) -> None:
        if self._serial is None:
            raise DriverUnavailable(f"bus {self.name}: port closed")
        if self._rx:
            # Bytes nobody asked for (a late reply, noise): never let them answer this request.
            self.stale_bytes += len(self._rx)
            self._rx.clear()
        try:
            self._serial.write(request)
        except (serial.SerialException, OSError) as exc:
            self.close()
            raise DriverUnavailable(f"bus {self.name}: write failed: {exc}") from exc
        self._traced("tx", request)

    async def exchange(self, priority: Priority, request: bytes, decoder: StreamDecoder[T],
                       match: Callable[[T], R], *, timeout_s: float, attempts: int = 1) -> R:
        """Send `request` and return `match(frame)` for the first valid frame it accepts.

        `match` raises FrameError for a valid frame that is not the answer (wrong board or lock
        echo, wrong command): it is counted and ignored. `attempts` > 1 only for idempotent
        reads; an unlock is sent exactly once, whatever happens to its reply.
        """
        return await self._transaction(
            priority, attempts, lambda: self._one(request, decoder, match, timeout_s))

    async def _one(self, request: bytes, decoder: StreamDecoder[T], match: Callable[[T], R],
                   timeout_s: float) -> R:
        if self._serial is None:
            await self.open()
        decoder.reset()
        bad_before = decoder.bad_frames
        self._rx_event.clear()
        self._send(request)
        mismatched: list[FrameError] = []
        deadline = self._clock() + timeout_s
        try:
            while True:
                if self._rx:
                    data = bytes(self._rx)
                    self._rx.clear()
                    for frame in decoder.feed(data):
                        try:
                            return match(frame)
                        except FrameError as exc:
                            self.echo_mismatches += 1
                            mismatched.append(exc)
                if self._serial is None:
                    raise DriverUnavailable(f"bus {self.name}: port closed")
                remaining = deadline - self._clock()
                if remaining <= 0:
                    break
                self._rx_event.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(remaining):
                        await self._rx_event.wait()
        finally:
            self.bad_frames += decoder.bad_frames - bad_before
        if mismatched or decoder.bad_frames > bad_before or decoder.pending:
            self.garbled += 1
            why = mismatched[-1] if mismatched else FrameError(
                f"{decoder.bad_frames - bad_before} bad frame(s), {decoder.pending} byte(s) "
                "of an incomplete frame")
            raise FrameError(f"bus {self.name}: no valid reply to {request.hex(' ')}: {why}")
        self.timeouts += 1
        raise DriverTimeout(f"bus {self.name}: no reply to {request.hex(' ')} in "
                            f"{timeout_s * 1000:.0f} ms")

    def counters(self) -> dict[str, int]:
        """Line statistics for status output."""
        return {"transactions": self.scheduler.transactions, "settles": self.scheduler.settles,
                "timeouts": self.timeouts, "garbled": self.garbled, "bad_frames": self.bad_frames,
                "echo_mismatches": self.echo_mismatches, "stale_bytes": self.stale_bytes}
