"""What the door controller keeps per door and per board between polls (its working state)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from lockerd.config import Compartment
from lockerd.doors.events import LeftOpenLevel
from lockerd.drivers.base import DoorState, ManagedBoard


@dataclass(eq=False)
class TrackedDoor:
    """One compartment door: last sensor state, when it opened, a command in flight, escalation."""

    comp: Compartment
    state: DoorState = DoorState.UNKNOWN
    opened_at: float | None = None
    changed_at: float = 0.0
    command_pending: bool = False
    expect_open_until: float = 0.0
    """Until then an opening counts as commanded (the door may spring open after the pulse)."""
    left_open: LeftOpenLevel | None = None
    waiters: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass(eq=False)
class PolledBoard:
    """One board's poll loop state: its doors by channel, whether it answers, a wake-up."""

    board: ManagedBoard
    doors: dict[int, TrackedDoor]
    online: bool | None = None
    failures: int = 0
    kick: asyncio.Event = field(default_factory=asyncio.Event)
    occupied: tuple[bool, ...] | None = None
    """Infrared occupancy bits (Kerong boards), None where the board has none."""
