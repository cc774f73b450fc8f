"""What the door controller keeps per door and per board between polls (its working state)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lockerd.config import Compartment
from lockerd.domain.timefmt import format_ts
from lockerd.doors.events import LeftOpenLevel
from lockerd.doors.ports import BlockNote
from lockerd.drivers.base import BoardSnapshot, DoorState, ManagedBoard


@dataclass(eq=False)
class TrackedDoor:
    """One compartment door: last sensor state, when it opened, a command in flight, escalation."""

    comp: Compartment
    state: DoorState = DoorState.UNKNOWN
    opened_at: float | None = None
    changed_at: float = 0.0
    moved_at: float = float("-inf")
    """When the door last opened or closed (a board read after an outage is not a movement)."""
    command_pending: bool = False
    expect_open_until: float = 0.0
    """Until then an opening counts as commanded (the door may spring open after the pulse)."""
    left_open: LeftOpenLevel | None = None
    waiters: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class Wakeup:
    """A poll loop's sleep that a door command can cut short: one future and one timer per sleep.

    `asyncio.timeout` around `Event.wait()` did the same with a cancellation and two exceptions
    per idle poll, a noticeable part of a poll's CPU.
    """

    __slots__ = ("_flag", "_waiter")

    def __init__(self) -> None:
        self._flag = False
        self._waiter: asyncio.Future[None] | None = None

    def set(self) -> None:
        """Wake the sleeper now (or make its next sleep return at once)."""
        self._flag = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def is_set(self) -> bool:
        """A wake-up is pending."""
        return self._flag

    def clear(self) -> None:
        """Forget a pending wake-up."""
        self._flag = False

    async def wait(self) -> None:
        """Sleep until `set()` (no timer: a board its bus round polls); clears the flag."""
        if self._flag:
            self._flag = False
            return
        waiter = self._waiter = asyncio.get_running_loop().create_future()
        try:
            await waiter
        finally:
            self._waiter = None
            self._flag = False

    async def sleep(self, delay: float) -> None:
        """Sleep `delay` seconds or until `set()`; clears the flag either way."""
        if self._flag:
            self._flag = False
            return
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        timer = loop.call_later(delay, _done, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None
            self._flag = False


def _done(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


@dataclass(eq=False)
class PolledBoard:
    """One board's poll loop state: its doors by channel, whether it answers, a wake-up."""

    board: ManagedBoard
    doors: dict[int, TrackedDoor]
    online: bool | None = None
    failures: int = 0
    offline_since: float | None = None
    """Controller clock time of the first failed poll of the current outage (for incidents)."""
    kick: Wakeup = field(default_factory=Wakeup)
    occupied: tuple[bool, ...] | None = None
    """Infrared occupancy bits (Kerong boards), None where the board has none."""
    applied: BoardSnapshot | None = None
    """The last snapshot applied to the doors (a driver returns the same one while nothing changed)."""
    open_doors: int = 0
    """Doors of the board reading open (left-open escalation runs only while there are some)."""
    polls: int = 0
    """Reads made by the poll loop (status, and the tests of the adaptive rate)."""
    switched_only: bool = False
    """Every door of the board has a GPIO switch: polled only to know the board is alive."""
    in_round: bool = False
    """The board's bus round (doors/bus_round.py) can poll it while it is idle."""
    later: bool = False
    """Its bus round polls it now (it is idle and answers); its own loop sleeps until kicked."""


def door_incidents(boards: Mapping[int, PolledBoard], doors: Iterable[TrackedDoor],
                   now: float) -> list[dict[str, Any]]:
    """What needs a person on the door side: boards offline, doors whose state is unknown (on
    boards that answer; an offline board's doors are counted in its row), with ages in seconds."""
    rows: list[dict[str, Any]] = []
    for addr, b in sorted(boards.items()):
        if b.online is False:
            rows.append({"kind": "board_offline", "board": addr,
                         "age_s": None if b.offline_since is None else round(now - b.offline_since, 1),
                         "detail": f"board {addr} does not answer; {len(b.doors)} door(s) unknown"})
    offline = {a for a, b in boards.items() if b.online is False}
    for d in sorted(doors, key=lambda d: d.comp.id):
        if d.state is DoorState.UNKNOWN and d.comp.board not in offline:
            rows.append({"kind": "door_unknown", "compartment": d.comp.id,
                         "age_s": round(now - d.changed_at, 1) if d.changed_at else None,
                         "detail": "door sensor state unknown"})
    return rows


def block_fields(note: BlockNote | None) -> dict[str, Any]:
    """The `doors.list` columns of a compartment's block (the domain's, read through the port)."""
    since = None if note is None or note.blocked_since is None else format_ts(note.blocked_since)
    return {"blocked": note is not None,
            "blocked_reason": None if note is None else note.blocked_reason,
            "blocked_since": since, "blocked_by": None if note is None else note.blocked_by}
