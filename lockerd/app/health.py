"""The cabinet's health snapshot, built where the data lives (the daemon) for lockerd/sync/health.py.

The state and its reasons come from lockerd/app/condition.py, the same source as `lockerctl
status` and systemd's STATUS= line. Each other figure comes from its owner's public face,
passed in as a small port: the supervisor (component states), the door controller (boards and
their failure counters), the camera guard (verdict, intake), the parcel flows (open
incidents), the sync component (outbox backlog), the file system (log size, disk free) and
the clock. Incidents are counted by kind only; no parcel id, compartment owner or any
personal field leaves in this message.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from lockerd.app.clocksync import Sync, clock_sync
from lockerd.app.condition import CabinetCondition
from lockerd.app.events import EventBus
from lockerd.camera.intake import IntakeChanged
from lockerd.sync.health import (
    BoardHealth,
    CameraHealth,
    ClockHealth,
    ComponentHealth,
    HealthPayload,
    HealthReason,
    OutboxHealth,
    StorageHealth,
)

#: Asking timedatectl costs a process: its answer is kept this long.
CLOCK_CACHE_S = 60.0


class Supervised(Protocol):
    """The supervisor's view of the subsystems."""

    def cabinet_state(self) -> Any:
        """ready, degraded, starting or shutdown (a StrEnum)."""
        ...

    def status(self) -> dict[str, Any]:
        """Per component: state, restarts and its own status."""
        ...

    def degraded_reasons(self) -> list[str]:
        """Running components' own reasons for degraded (e.g. oplog_corrupt)."""
        ...


class Incidents(Protocol):
    """`lockerctl incidents`: rows with a `kind`."""

    def incidents(self) -> list[dict[str, Any]]:
        """What needs a person now."""
        ...


class Camera(Protocol):
    """The intake camera's public face."""

    def is_open(self) -> bool:
        """Drop-offs accepted now."""
        ...

    def reason(self) -> str | None:
        """Why intake is closed."""
        ...

    def status(self) -> dict[str, Any]:
        """Verdict and scores."""
        ...


class Backlog(Protocol):
    """The sync component's outbox figures."""

    def backlog(self) -> tuple[int, float]:
        """(unsent messages, oldest age in seconds)."""
        ...


class IntakeDay:
    """Seconds intake was closed since local midnight, from the IntakeChanged events."""

    def __init__(self, closed_now: bool, clock: Callable[[], datetime]) -> None:
        self._clock = clock
        now = clock()
        self._day = now.astimezone().date()
        self._closed_s = 0.0
        self._closed_since: datetime | None = now if closed_now else None

    def changed(self, event: IntakeChanged) -> None:
        """Intake opened or closed."""
        now = self._clock()
        if event.open and self._closed_since is not None:
            self._closed_s += self._span(self._closed_since, now)
            self._closed_since = None
        elif not event.open and self._closed_since is None:
            self._closed_since = now

    def _midnight(self, now: datetime) -> datetime:
        local = now.astimezone()
        return local.replace(hour=0, minute=0, second=0, microsecond=0)

    def _span(self, since: datetime, now: datetime) -> float:
        """Closed seconds between `since` and `now` that fall today (the day may have turned)."""
        if now.astimezone().date() != self._day:
            self._day = now.astimezone().date()
            self._closed_s = 0.0
        return max(0.0, (now - max(since, self._midnight(now))).total_seconds())

    def closed_today_s(self) -> float:
        """Closed time today, including a closure still going on."""
        now = self._clock()
        running = 0.0 if self._closed_since is None else self._span(self._closed_since, now)
        if now.astimezone().date() != self._day:
            self._day, self._closed_s = now.astimezone().date(), 0.0
        return round(self._closed_s + running, 1)


def _storage(log_path: Path) -> StorageHealth:
    size = 0
    for suffix in ("", "-wal"):
        with contextlib.suppress(FileNotFoundError):
            size += (log_path.parent / (log_path.name + suffix)).stat().st_size
    st = os.statvfs(log_path.parent)
    return StorageHealth(log_bytes=size, disk_free_bytes=st.f_bavail * st.f_frsize)


class HealthSnapshots:
    """The daemon's `HealthSource`: one snapshot per call, from the owners' public faces."""

    def __init__(self, *, supervisor: Supervised, condition: CabinetCondition,
                 boards: Callable[[], Mapping[str, Any]],
                 camera: Camera | None, incidents: Incidents, backlog: Backlog, log_path: Path,
                 version: str, bus: EventBus, clock: Callable[[], datetime],
                 clock_sync: Callable[[], tuple[Sync, str | None]] = clock_sync) -> None:
        self._supervisor = supervisor
        self._condition = condition
        self._boards = boards
        self._camera = camera
        self._incidents = incidents
        self._backlog = backlog
        self._log_path = log_path
        self._version = version
        self._clock = clock
        self._clock_sync = clock_sync
        self._clock_answer: tuple[Sync, str | None] | None = None
        self._clock_at = -float("inf")
        self._started = time.monotonic()
        self.intake = IntakeDay(camera is None or not camera.is_open(), clock)
        bus.listen(self.intake.changed, IntakeChanged)

    async def _clock_state(self) -> ClockHealth:
        if self._clock_answer is None or time.monotonic() - self._clock_at > CLOCK_CACHE_S:
            self._clock_answer = await asyncio.to_thread(self._clock_sync)
            self._clock_at = time.monotonic()
        sync, source = self._clock_answer
        return ClockHealth(sync=sync, source=source)

    async def health_snapshot(self) -> HealthPayload:
        """The cabinet's health now (`lockers/{cab}/health`)."""
        status = self._supervisor.status()
        components = {name: ComponentHealth(state=str(st["state"]), restarts=int(st["restarts"]))
                      for name, st in status.items()}
        boards = [BoardHealth(address=int(addr), online=bool(b["online"]),
                              failures=int(b["failures"]))
                  for addr, b in sorted(self._boards().items(), key=lambda kv: int(kv[0]))]
        cam = self._camera
        camera = CameraHealth(
            verdict=None if cam is None else str(cam.status()["verdict"]),
            intake_open=False if cam is None else cam.is_open(),
            reason="camera_disabled" if cam is None else cam.reason(),
            closed_today_s=self.intake.closed_today_s())
        count, age = self._backlog.backlog()
        incidents = dict(Counter(str(row["kind"]) for row in self._incidents.incidents()))
        found = self._condition.reasons()
        reasons = [HealthReason(code=r.code, subject=r.subject, detail=r.detail, since=r.since)
                   for r in found]
        storage = await asyncio.to_thread(_storage, self._log_path)
        return HealthPayload(
            ts=self._clock(), state=self._condition.state(found).value, reasons=reasons,
            components=components, boards=boards, camera=camera,
            outbox=OutboxHealth(backlog=count, oldest_age_s=round(age, 1)),
            storage=storage, clock=await self._clock_state(),
            uptime_s=round(time.monotonic() - self._started, 1), version=self._version,
            incidents=incidents)
