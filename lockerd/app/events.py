"""In-process typed event bus: components publish facts, others subscribe without knowing each other."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

log = logging.getLogger(__name__)


class AlertKind(StrEnum):
    """Alert kinds of docs/mqtt.md (plus GPIO tamper and power, and the cabinet-wide
    wrong-code/PIN ceiling reached: `brute_force`, a damaged log file: `oplog_corrupt`, and a
    deposit a restart left open held for staff with its parcel inside: `deposit_unconfirmed`)."""

    CAMERA_DOWN = "camera_down"
    CAMERA_OBSTRUCTED = "camera_obstructed"
    DOOR_JAMMED = "door_jammed"
    DOOR_FORCED = "door_forced"
    DOOR_LEFT_OPEN = "door_left_open"
    BOARD_OFFLINE = "board_offline"
    STORAGE_FULL = "storage_full"
    SYNC_BACKLOG = "sync_backlog"
    TAMPER = "tamper"
    POWER = "power"
    BRUTE_FORCE = "brute_force"
    INCIDENT_ESCALATED = "incident_escalated"
    OPLOG_CORRUPT = "oplog_corrupt"
    DEPOSIT_UNCONFIRMED = "deposit_unconfirmed"


class Severity(StrEnum):
    """How urgent an alert is for the carrier's operations desk."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


def utc_now() -> datetime:
    """Wall-clock time in UTC (events carry RFC 3339 UTC times)."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Alert:
    """An anomaly raised (active=True) or cleared (active=False); reported to carriers (Art. 12)."""

    kind: AlertKind
    severity: Severity
    active: bool
    detail: str
    compartment: int | None = None
    board: int | None = None
    ts: datetime = field(default_factory=utc_now)
    #: incident_escalated: which incident (`lockerctl incidents` key) and its tier.
    incident: str | None = None
    tier: int | None = None


Listener = Callable[[Any], None]


class Subscription:
    """A bounded queue of events of the subscribed types; iterate with `async for`."""

    def __init__(self, bus: EventBus, types: tuple[type, ...], maxsize: int) -> None:
        self._bus = bus
        self.types = types
        self.queue: asyncio.Queue[Any] = asyncio.Queue(maxsize)
        self.dropped = 0

    def offer(self, event: Any) -> None:
        """Queue an event; a full queue drops the oldest one (and counts it)."""
        if self.types and not isinstance(event, self.types):
            return
        if self.queue.full():
            self.queue.get_nowait()
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("event subscriber too slow: %d events dropped", self.dropped)
        self.queue.put_nowait(event)

    async def get(self) -> Any:
        """The next event."""
        return await self.queue.get()

    def close(self) -> None:
        """Stop receiving events."""
        self._bus.unsubscribe(self)

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._iter()

    async def _iter(self) -> AsyncIterator[Any]:
        while True:
            yield await self.queue.get()


class EventBus:
    """Publish/subscribe within the daemon; publish never blocks and never raises."""

    def __init__(self) -> None:
        self._subs: list[Subscription] = []
        self._listeners: list[tuple[tuple[type, ...], Listener]] = []

    def subscribe(self, *types: type, maxsize: int = 1000) -> Subscription:
        """A queue receiving events that are instances of `types` (all events when none)."""
        sub = Subscription(self, types, maxsize)
        self._subs.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Remove a subscription."""
        if sub in self._subs:
            self._subs.remove(sub)

    def listen(self, callback: Listener, *types: type) -> None:
        """Call `callback(event)` synchronously on publish (keep it short, no I/O)."""
        self._listeners.append((types, callback))

    def publish(self, event: Any) -> None:
        """Deliver an event to every matching subscriber and listener."""
        for sub in list(self._subs):
            sub.offer(event)
        for types, callback in list(self._listeners):
            if types and not isinstance(event, types):
                continue
            try:
                callback(event)
            except Exception:
                log.exception("event listener failed on %s", type(event).__name__)
