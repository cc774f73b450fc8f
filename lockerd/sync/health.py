"""Fleet health telemetry: the retained `lockers/{cab}/health` payload and its publisher.

Why a message of its own: `status` says only online/offline and `state` is what a carrier needs
to route parcels; an operator with thousands of cabinets needs to see which ones need a person
(a board offline, a camera closing intake, a backlog, a clock that never synced) without
logging in to each. The payload is counts, states and ages only: never personal data.

The publisher does not reach into the daemon: it is fed by a `HealthSource` port (the daemon's
snapshot builder, lockerd/app/health.py). It publishes on connect, every `health_interval_s`,
and when the snapshot's significant part (`HealthPayload.signature`) changes, at most once per
`health_min_interval_s` (a flapping board is reported once per gap, with its latest state).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from lockerd.sync.link import MqttLink
from lockerd.sync.payloads import UtcTime

log = logging.getLogger(__name__)

#: How often the source is asked whether something significant changed.
CHECK_EVERY_S = 1.0

ClockSync = Literal["synced", "unsynced", "unknown"]


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ComponentHealth(_Part):
    """One supervised subsystem."""

    state: str = Field(description="starting, running, backoff, failed or stopped.")
    restarts: int = Field(ge=0, description="Restarts within the supervisor's window.")


class BoardHealth(_Part):
    """One lock board on the RS-485 bus."""

    address: int = Field(description="Board address (unique cabinet-wide).")
    online: bool = Field(description="Answered its last poll.")
    failures: int = Field(ge=0, description="Failed transactions counted by the controller.")


class CameraHealth(_Part):
    """The intake camera (Art. 19): its verdict and how long intake was closed today."""

    verdict: str | None = Field(description="Last verdict (ok, dark, covered ...); null without a camera.")
    intake_open: bool = Field(description="Drop-offs accepted now.")
    reason: str | None = Field(description="Why intake is closed; null when open.")
    closed_today_s: float = Field(ge=0, description="Seconds intake was closed since local midnight.")


class OutboxHealth(_Part):
    """Messages recorded and not yet acknowledged by the broker."""

    backlog: int = Field(ge=0, description="Unsent messages.")
    oldest_age_s: float = Field(ge=0, description="Age of the oldest unsent message (0 when none).")


class StorageHealth(_Part):
    """The operation log's size and the free space beside it."""

    log_bytes: int = Field(ge=0, description="Operation log file and its WAL.")
    disk_free_bytes: int = Field(ge=0, description="Free bytes on the state directory's file system.")


class ClockHealth(_Part):
    """Whether the system clock is synchronised (times in the log depend on it)."""

    sync: ClockSync = Field(description="synced, unsynced or unknown (no way to ask).")
    source: str | None = Field(description="What answered: timedatectl or adjtimex; null when unknown.")


class HealthReason(_Part):
    """One reason the cabinet is degraded (the same list `lockerctl status` shows)."""

    code: str = Field(description="component_down, board_offline, camera_down, camera_covered, "
                                  "carrier_link_down or log_writer_slow.")
    subject: str = Field(description="A component name, board address, camera, mqtt or oplog.")
    detail: str = Field(description="One short line for people.")
    since: UtcTime = Field(description="When the daemon first saw it.")


class HealthPayload(BaseModel):
    """Retained on `lockers/{cab}/health`; no personal data."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    v: Literal[1] = Field(default=1, description="Payload version.")
    ts: UtcTime
    state: str = Field(description="Cabinet state: starting, ready, degraded or shutdown.")
    reasons: list[HealthReason] = Field(description="Why the cabinet is degraded (empty when ready).")
    components: dict[str, ComponentHealth]
    boards: list[BoardHealth]
    camera: CameraHealth
    outbox: OutboxHealth
    storage: StorageHealth
    clock: ClockHealth
    uptime_s: float = Field(ge=0)
    version: str
    incidents: dict[str, int] = Field(description="Open incidents by kind (lockerctl incidents).")

    def signature(self) -> tuple[object, ...]:
        """What counts as a change: states, reasons, boards up/down, camera, clock, incidents,
        whether there is a backlog. Ages, sizes, counters and the time do not."""
        return (self.state, tuple((r.code, r.subject) for r in self.reasons),
                tuple((n, c.state) for n, c in sorted(self.components.items())),
                tuple((b.address, b.online) for b in self.boards),
                (self.camera.verdict, self.camera.intake_open, self.camera.reason),
                self.clock.sync, tuple(sorted(self.incidents.items())),
                self.outbox.backlog > 0)


class HealthSource(Protocol):
    """Whoever holds the data (the daemon): a fresh snapshot on request."""

    async def health_snapshot(self) -> HealthPayload:
        """The cabinet's health now."""
        ...


class HealthPublisher:
    """Publishes the retained health on connect, periodically and on (debounced) change."""

    def __init__(self, source: HealthSource, link: Callable[[], MqttLink | None], topic: str, *,
                 interval_s: float, min_gap_s: float) -> None:
        self._source = source
        self._link = link
        self.topic = topic
        self.interval_s = interval_s
        self.min_gap_s = min_gap_s
        self._due = asyncio.Event()
        self._last_sent = -float("inf")
        self._last_signature: tuple[object, ...] | None = None
        self._force = False
        self.published = 0
        self.last: HealthPayload | None = None
        self.last_error: str | None = None

    def connected(self) -> None:
        """A (re)connect: the retained copy may be stale, publish at once."""
        self._force = True
        self._due.set()

    async def run(self) -> None:
        """Check every CHECK_EVERY_S; publish when due, changed (after the gap) or connected."""
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CHECK_EVERY_S):
                    await self._due.wait()
            self._due.clear()
            link = self._link()
            if link is None or not link.connected:
                continue
            try:
                snap = await self._source.health_snapshot()
            except Exception as exc:
                self.last_error = f"health snapshot failed: {exc}"
                log.error("cannot build the health snapshot: %s", exc)
                continue
            now = time.monotonic()
            since = now - self._last_sent
            changed = snap.signature() != self._last_signature
            if self._force or since >= self.interval_s or (changed and since >= self.min_gap_s):
                self._force = False
                self.publish(link, snap, now)

    def publish(self, link: MqttLink, snap: HealthPayload, now: float) -> None:
        """Send one snapshot, retained, QoS 1."""
        try:
            link.publish(self.topic, snap.model_dump_json().encode("utf-8"), 1, True)
        except Exception as exc:
            self.last_error = f"health not published: {exc}"
            log.error("cannot publish health: %s", exc)
            return
        self._last_sent = now
        self._last_signature = snap.signature()
        self.last = snap
        self.published += 1
