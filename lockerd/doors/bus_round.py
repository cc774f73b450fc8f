"""One poll round per bus for its idle boards, so that an idle poll costs one event-loop wake-up.

Each board's own loop (doors/controller.py) polls it while it is starting, offline or has a
moving door, waiting for each reply. An idle board that answers is handed to its bus's round
instead (`PolledBoard.later`): one timer per bus, not per board, spreads the boards over the
idle period, and at each slot it (1) reads the reply of the poll it sent at the previous slot,
with one non-blocking read (the reply has long arrived), and delivers it (2) sends the next
idle board's request if the line is free (drivers/modbus_poll.py), (3) sets its timer for the
next slot. A busy line (an unlock, a moving door's fast polls) or a reply not complete yet
makes that slot wait the ordinary way: the round reads the board inside a transaction.
The reply's arrival wakes nobody. An unlock or any other exchange that wants the line first
reads that reply (or waits for it), so frames never interleave.

A bus too slow for its boards at the idle rate (192 doors on one 9600-baud line) stretches the
slots to what the line can carry (`min_interval`: the recent request-to-reply time plus the
gap), so that replies still arrive before the next slot: every board is then read a little
less often than `poll_idle_ms`, as it was before, when its polls queued for the line.

The price: an idle board's reading reaches the controller one slot after its reply arrived,
at most `HARVEST_AFTER_S` later (a cabinet of few boards has long slots: the round then wakes
once more to read the reply). A board whose poll fails is handed back to its own loop, which
reads it at once and handles failures (retry, offline, backoff) as always.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from functools import partial
from typing import cast

from lockerd.doors.tracking import PolledBoard
from lockerd.drivers.base import BoardSnapshot, LaterPolled, PollLine
from lockerd.drivers.errors import DriverError

HARVEST_AFTER_S = 0.05
"""Longest wait from an idle poll's request to reading its reply (an FC02 reply of up to 32
inputs takes under 20 ms at 9600 baud): bounds the latency the round adds to a door reading."""

Deliver = Callable[[PolledBoard, "BoardSnapshot | DriverError"], None]


async def run_round(line: PollLine, members: Sequence[PolledBoard], period_s: float,
                    deliver: Deliver) -> None:
    """Poll the idle `members` of one bus, each once per `period_s`, until cancelled."""
    r = _Round(line, members, period_s, deliver)
    r.arm(sent=False)
    try:
        await r.failed  # never set unless the round breaks: then its error ends the component
    finally:
        r.close()


class _Round:
    """The round's state between slots: a chain of timer callbacks, not a task, because a
    task's timer wake-up costs the loop two iterations (the timer, then the task's step) and
    a callback one; a task runs only for a slot that must wait (a reply still arriving, a
    busy line)."""

    def __init__(self, line: PollLine, members: Sequence[PolledBoard], period_s: float,
                 deliver: Deliver) -> None:
        self._loop = asyncio.get_running_loop()
        self._line = line
        self._members = members
        self._slot = period_s / len(members)
        self._deliver = deliver
        self._turn = 0
        self._next_at = self._loop.time()
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self.failed: asyncio.Future[None] = self._loop.create_future()

    def close(self) -> None:
        """Stop: no timer left, a waiting slot cancelled."""
        if self._timer is not None:
            self._timer.cancel()
        if self._task is not None:
            self._task.cancel()
        self._timer = self._task = None

    def arm(self, *, sent: bool) -> None:
        """Schedule the next slot (and, after a poll, reading its reply if the slot is long)."""
        self._next_at += max(self._slot, self._line.min_interval())
        now = self._loop.time()
        if self._next_at < now - self._slot:
            self._next_at = now  # fell behind (a reply waited for): no burst of polls
        if sent and self._next_at - now > HARVEST_AFTER_S:
            self._timer = self._loop.call_at(now + HARVEST_AFTER_S, self._guarded, self._reply)
        else:
            self._timer = self._loop.call_at(self._next_at, self._guarded, self._slot_due)

    def _guarded(self, step: Callable[[], None]) -> None:
        self._timer = None
        try:
            step()
        except Exception as exc:  # a broken round must not die silently in a callback
            self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        if not self.failed.done():
            self.failed.set_exception(exc)

    def _reply(self) -> None:
        """A long slot's poll: read its reply now, then sleep to the next slot."""
        if self._line.harvest():
            self._timer = self._loop.call_at(self._next_at, self._guarded, self._slot_due)
        else:
            self._wait(self._finish_then_slot())

    def _slot_due(self) -> None:
        """Read the last poll's reply (it has arrived by now), send the next board's poll."""
        if not self._line.harvest():
            self._wait(self._slow_slot(None))
            return
        b = self._due()
        if b is None:
            self.arm(sent=False)
        elif self._send(b):
            self.arm(sent=True)
        else:  # the line is busy: read this board the awaited way
            self._wait(self._slow_slot(b))

    def _due(self) -> PolledBoard | None:
        """The board whose slot this is, if its round polls it now (else the slot stays empty)."""
        b = self._members[self._turn % len(self._members)]
        self._turn += 1
        return b if b.later else None

    def _send(self, b: PolledBoard) -> bool:
        board = cast(LaterPolled, b.board)  # members are chosen by isinstance once, at start
        try:
            sent = board.poll_later(partial(self._deliver, b))
        except DriverError as exc:
            self._deliver(b, exc)  # the controller hands the board back to its own loop
            return True
        if sent:
            b.polls += 1
        return sent

    def _wait(self, step: Coroutine[None, None, None]) -> None:
        self._task = task = self._loop.create_task(step)
        task.add_done_callback(self._waited)

    def _waited(self, task: asyncio.Task[None]) -> None:
        if self._task is task:
            self._task = None
        if not task.cancelled() and task.exception() is not None:
            self._fail(task.exception() or RuntimeError("bus round"))

    async def _finish_then_slot(self) -> None:
        await self._line.finish_poll()
        self._timer = self._loop.call_at(self._next_at, self._guarded, self._slot_due)

    async def _slow_slot(self, b: PolledBoard | None) -> None:
        await self._line.finish_poll()
        if b is None:
            b = self._due()
            if b is None or self._send(b):
                self.arm(sent=b is not None)
                return
        b.polls += 1
        try:
            result: BoardSnapshot | DriverError = await b.board.read()
        except DriverError as exc:
            result = exc
        self._deliver(b, result)
        self.arm(sent=False)
