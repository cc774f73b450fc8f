"""Exclusive, prioritised access to one shared serial line (RS-485 bus), for any board protocol.

A bus has one master and one transaction at a time. Every line driver (drivers/line.py: Modbus
via pymodbus, Kerong and 0x8A frames via pyserial) runs its request/reply exchange inside
`BusScheduler.transaction(priority)`: unlocks go ahead of polls, frames never interleave, the
inter-frame gap is kept, and after a timeout or garbage the next transaction first waits for
the line to be quiet and flushes the input (`Line.settle`). An idle door poll may also be sent
outside a transaction, when the line is free, and its reply read later (`pending`, see
`ModbusBus.send_poll`): every transaction first finishes such a poll, so frames still never
interleave and the gap is kept.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from enum import IntEnum
from typing import Protocol

log = logging.getLogger(__name__)


SPIN_MAX_S = 0.001
"""An urgent exchange waits the last fraction of a millisecond of a gap by yielding, not by a timer."""


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
        self._gap_wait: asyncio.Future[None] | None = None  # a poll sleeping out the gap
        self._seq = itertools.count()
        self._busy = False
        self._dirty = False
        self._last_end = 0.0
        self.transactions = 0
        self.settles = 0
        self.max_queue = 0
        self.preemptions = 0
        self.pending: Callable[[], Awaitable[None]] | None = None
        """Finishes a poll sent outside a transaction whose reply is still to be read (set by
        the line); a transaction granted the line awaits it before anything else."""

    def free(self) -> bool:
        """Nothing holds, wants or owes the line and the gap is kept: a poll may go out now."""
        return (not self._busy and not self._waiters and not self._dirty and self.pending is None
                and self._clock() >= self._last_end + self._gap)

    def sent_outside(self) -> None:
        """A poll went out outside a transaction (counted like one)."""
        self.transactions += 1

    def ended_at(self, t: float) -> None:
        """An exchange made outside a transaction ended at `t` (for the inter-frame gap)."""
        self._last_end = max(self._last_end, t)

    @property
    def gap_s(self) -> float:
        """The inter-frame gap kept between exchanges."""
        return self._gap

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
                while self.pending is not None:  # a poll's reply is on the line: read it first
                    await self.pending()
                if self._dirty:
                    self._dirty = False
                    self.settles += 1
                    await self._line.settle()
                await self._keep_gap(priority)
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

    async def _keep_gap(self, priority: Priority) -> None:
        """Wait until t3.5 after the last exchange, or until a more urgent exchange queues.

        The loop's timers fire on whole milliseconds, rounded up (epoll), so a timer alone may
        overshoot the gap by up to a millisecond. A poll accepts that (no CPU spent waiting) and
        is woken early when an unlock queues, to hand the line over at once. An unlock or a
        control exchange sleeps the whole milliseconds and yields to the loop for the rest
        (at most SPIN_MAX_S), so it goes out at the end of the gap, not up to 1 ms later.
        Yielding in a loop for the whole gap cost a poll about 10-25 % of its CPU.
        """
        while True:
            deadline = self._last_end + self._gap
            remaining = deadline - self._clock()
            if remaining <= 0:
                return
            if priority is not Priority.POLL:
                await self._sleep_precisely(deadline, remaining)
                return
            if self._more_urgent_than(priority):
                return  # the caller hands the line over; the gap is kept by the next holder
            await self._sleep_or_preempted(remaining)

    async def _sleep_precisely(self, deadline: float, remaining: float) -> None:
        whole_ms = math.floor(remaining * 1000) / 1000
        if whole_ms > 0:
            await asyncio.sleep(whole_ms)
        while self._clock() < deadline:  # noqa: ASYNC110 - under SPIN_MAX_S; no event to await
            await asyncio.sleep(0)

    async def _sleep_or_preempted(self, remaining: float) -> None:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        timer = loop.call_later(remaining, _wake, fut)
        self._gap_wait = fut
        try:
            await fut
        finally:
            timer.cancel()
            self._gap_wait = None

    def _more_urgent_than(self, priority: Priority) -> bool:
        return any(p < priority and not f.done() for p, _, f in self._waiters)

    async def _acquire(self, priority: Priority, seq: int) -> None:
        if not self._busy and not self._waiters:
            self._busy = True
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (int(priority), seq, fut))
        if priority is not Priority.POLL and self._gap_wait is not None:
            _wake(self._gap_wait)  # a poll sleeping out the gap hands the line over now
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


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
