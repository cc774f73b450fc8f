"""The part of an RS-485 line driver that does not depend on the wire protocol (Modbus or raw frames).

Both bus drivers (drivers/lockboard_modbus.py `ModbusBus`, drivers/rawbus.py `RawSerialBus`)
keep their line settings and counters here, record every frame in a short trace, run each
exchange inside the line's `BusScheduler`, settle the line the same way (wait until nothing
has arrived for a quiet period, then discard input) and retry only reads, the same way. What
differs is how bytes are sent, received and discarded, which each subclass provides.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TypeVar

from lockerd.drivers.bus import BusScheduler, Priority, char_time, frame_gap
from lockerd.drivers.errors import DriverError, DriverTimeout, FrameError

R = TypeVar("R")

SETTLE_MAX_S = 0.5
"""A line that keeps chattering is settled anyway after this long (the next reply will tell)."""
TRACE_FRAMES = 32
"""Frames kept in `trace` for diagnostics."""


class SerialLine(ABC):
    """One serial port shared by the boards of one bus; subclasses speak the wire protocol."""

    def __init__(self, name: str, port: str, *, baudrate: int = 9600, parity: str = "N",
                 stopbits: int = 1, read_timeout_s: float = 0.2, write_timeout_s: float = 0.3,
                 quiet_s: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.port = port
        self.baudrate = baudrate
        self.parity = parity
        self.stopbits = stopbits
        self.read_timeout_s = read_timeout_s
        self.write_timeout_s = write_timeout_s
        self._clock = clock
        self.quiet_s = quiet_s if quiet_s is not None else max(4 * frame_gap(baudrate), 0.01)
        self._last_rx = 0.0
        self.trace: deque[tuple[float, str, bytes]] = deque(maxlen=TRACE_FRAMES)
        self.scheduler = BusScheduler(name, self, gap_s=frame_gap(baudrate), clock=clock)
        self.timeouts = 0
        self.garbled = 0

    # What each wire protocol provides

    @property
    @abstractmethod
    def is_open(self) -> bool:
        """True while the port is open."""

    @abstractmethod
    async def open(self) -> None:
        """Open the port (without blocking the loop) and settle the line."""

    @abstractmethod
    def close(self) -> None:
        """Close the port (idempotent)."""

    @abstractmethod
    def _discard_input(self) -> None:
        """Drop every byte received and not yet consumed (driver buffer and OS buffer)."""

    # Shared

    def wire_time(self, request_len: int, reply_len: int) -> float:
        """Seconds a request/reply pair occupies the line (characters plus two frame gaps)."""
        return (request_len + reply_len) * char_time(self.baudrate) + 2 * frame_gap(self.baudrate)

    def _traced(self, direction: str, data: bytes) -> float:
        """Record a frame (or chunk) in the trace; a received one also marks the line busy."""
        now = self._clock()
        if direction == "rx":
            self._last_rx = now
        self.trace.append((now, direction, bytes(data)))
        return now

    async def settle(self) -> None:
        """Wait until no byte has arrived for `quiet_s` (at most 0.5 s), then discard input."""
        start = self._clock()
        while self._clock() - start < SETTLE_MAX_S:
            idle = self._clock() - max(self._last_rx, start)
            if idle >= self.quiet_s:
                break
            await asyncio.sleep(self.quiet_s - idle)
        self._discard_input()

    async def _transaction(self, priority: Priority, attempts: int,
                           once: Callable[[], Awaitable[R]]) -> R:
        """Run `once()` with exclusive use of the line; retried `attempts` - 1 times.

        Only idempotent reads pass `attempts` > 1: an unlock is sent exactly once, whatever
        happens to its reply. After a timeout or garbage the line is marked dirty (settled
        before the next exchange) and settled before a retry.
        """
        last: DriverError = DriverTimeout("no attempt made")
        async with self.scheduler.transaction(priority):
            for attempt in range(attempts):
                if attempt:
                    await self.settle()
                try:
                    result = await once()
                except (DriverTimeout, FrameError) as exc:
                    last = exc
                    self.scheduler.mark_dirty()
                    continue
                _raise_swallowed_cancel()
                return result
        raise last


def _raise_swallowed_cancel() -> None:
    """Re-raise a cancellation the transport swallowed, so the cancelled task really ends.

    pymodbus waits for a reply with `asyncio.wait_for`, which on Python 3.11 returns the reply
    and drops a cancellation that arrives together with it (fixed in 3.12). A door poll loop
    cancelled at shutdown then polled on for ever and the daemon never stopped. The task still
    counts the request (`cancelling()`), which is what this checks.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
