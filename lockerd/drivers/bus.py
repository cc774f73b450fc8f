"""Exclusive, prioritised access to one shared serial line (RS-485 bus), for any board protocol.

A bus has one master and one transaction at a time. Every line driver (drivers/line.py: Modbus
via pymodbus, Kerong and 0x8A frames via pyserial) runs its request/reply exchange inside
`BusScheduler.transaction(priority)`: unlocks go ahead of polls, frames never interleave, the
inter-frame gap is kept, and after a timeout or garbage the next transaction first waits for
the line to be quiet and flushes the input (`Line.settle`).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from enum import IntEnum
from typing import Protocol

log = logging.getLogger(__name__)


GAP_SPIN_S = 0.0015
"""The end of an inter-frame gap shorter than this is waited by yielding, not by a timer."""


class Priority(IntEnum):
    """Lower runs first; FIFO within a priority."""

    UNLOCK = 0
    CONTROL = 1
    POLL = 2


class Line(Protocol):
    """The physical line under a scheduler."""

    async def settle(self) -> None:
        """Wait until no byte has arrived for a quiet period, then discard buffered input."""


def char_time(baudrate: int) -> float:
    """Seconds per character on the wire (11 bits: start, 8 data, parity or 2nd stop, stop)."""
    return 11.0 / baudrate


def frame_gap(baudrate: int) -> float:
    """t3.5: the silence that delimits RTU frames (1.75 ms fixed above 19200 baud)."""
    return 3.5 * char_time(baudrate) if baudrate <= 19200 else 0.00175


class BusScheduler:
    """A priority lock for one line; `transaction()` holds it for one request/reply exchange."""

    def __init__(self, name: str, line: Line, *, gap_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self._line = line
        self._gap = gap_s
        self._clock = clock
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._busy = False
        self._dirty = False
        self._last_end = 0.0
        self.transactions = 0
        self.settles = 0
        self.max_queue = 0
        self.preemptions = 0

    @property
    def queued(self) -> int:
        """Transactions waiting for the line."""
        return sum(1 for _, _, f in self._waiters if not f.done())

    def mark_dirty(self) -> None:
        """The last exchange ended in a timeout or garbage: settle the line before the next."""
        self._dirty = True

    @asynccontextmanager
    async def transaction(self, priority: Priority) -> AsyncIterator[None]:
        """Exclusive use of the line for one exchange, granted in priority order.

        Nothing is on the wire while the holder settles the line or keeps the inter-frame
        gap, so a more urgent exchange queued meanwhile (an unlock behind a poll) takes the
        line over then; the holder goes back to the queue at its old place. Once a frame is
        sent, its exchange runs to the end: frames never interleave.
        """
        seq = next(self._seq)
        await self._acquire(priority, seq)
        held, sent = True, False
        try:
            while True:
                if self._dirty:
                    self._dirty = False
                    self.settles += 1
                    await self._line.settle()
                await self._keep_gap()
                if not self._more_urgent_than(priority):
                    break
                self.preemptions += 1
                held = False
                self._release()
                await self._acquire(priority, seq)
                held = True
            self.transactions += 1
            sent = True
            yield
        finally:
            if held:
                if sent:
                    self._last_end = self._clock()
                self._release()

    async def _keep_gap(self) -> None:
        """Wait until t3.5 after the last exchange, to a fraction of a millisecond.

        The event loop's selector rounds timeouts up to whole milliseconds (a 4 ms gap
        became 5); the last stretch is waited by yielding to the loop instead.
        """
        deadline = self._last_end + self._gap
        wait = deadline - self._clock()
        if wait > GAP_SPIN_S:
            await asyncio.sleep(wait - GAP_SPIN_S)
        while self._clock() < deadline:  # noqa: ASYNC110 - sub-ms wait; no event to await
            await asyncio.sleep(0)

    def _more_urgent_than(self, priority: Priority) -> bool:
        return any(p < priority and not f.done() for p, _, f in self._waiters)

    async def _acquire(self, priority: Priority, seq: int) -> None:
        if not self._busy and not self._waiters:
            self._busy = True
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (int(priority), seq, fut))
        self.max_queue = max(self.max_queue, len(self._waiters))
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self._release()  # granted just as we were cancelled: pass it on
            raise

    def _release(self) -> None:
        while self._waiters:
            _, _, fut = heapq.heappop(self._waiters)
            if not fut.done():
                fut.set_result(None)
                return
        self._busy = False
