"""Door-cycle ends that happened but could not be recorded yet, because the disk is full.

Why a module of its own: the write-ahead rule (lockerd/parcels/service.py) records a decision
before it is applied, and the begin of a door operation is refused while the log cannot append.
But once a door has opened, its outcome (a parcel deposited or taken) is a physical fact that
must not be lost, nor turned into a rollback while the parcel is inside. Such an end is kept
here, in order, with its compartment still `opening` in memory (so no other decision touches it),
and recorded as soon as an append goes through again: before the next decision is recorded, and
by a retry timer meanwhile (docs/oplog.md "Disk full between begin and confirm"). Each kept end
is also mirrored in a side file (lockerd/parcels/kept_file.py), so a stop before space returns
does not lose it: the next start records it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from lockerd.domain import Decision, ErrorCode
from lockerd.domain.errors import Refused
from lockerd.parcels.kept_file import Entry, KeptFile

log = logging.getLogger(__name__)

#: How often a kept door-cycle end is tried again while nothing else is recorded.
RETRY_S = 2.0

Append = Callable[[Decision, dict[str, Any] | None], Awaitable[None]]


class LateRecords:
    """Kept decisions in the order they were made; `flush` records them (cabinet lock held)."""

    def __init__(self, append: Append, lock: asyncio.Lock, *, retry_s: float = RETRY_S,
                 recorded: Callable[[int], None] = lambda compartment: None) -> None:
        """`recorded(compartment)` is told after a kept end was recorded (lock still held)."""
        self._append = append
        self._lock = lock
        self._recorded = recorded
        self.retry_s = retry_s
        self._kept: list[tuple[Decision, dict[str, Any] | None, Entry | None]] = []
        #: the side file mirroring the kept ends (None: memory only)
        self.file: KeptFile | None = None
        self._timer: asyncio.Task[None] | None = None
        self.recorded_late = 0

    def __len__(self) -> int:
        return len(self._kept)

    def compartments(self) -> list[int]:
        """Compartments whose door cycle waits to be recorded."""
        return [c for d, _, _ in self._kept if (c := d.record.compartment) is not None]

    def keep(self, decision: Decision, extra: dict[str, Any] | None,
             entry: Entry | None = None) -> None:
        """Keep an end that could not be recorded (`entry`: what the side file keeps of it);
        start the retry timer."""
        self._kept.append((decision, extra, entry))
        self.save()
        log.error("%s of compartment %s kept in memory until the log can append again",
                  decision.record.kind, decision.record.compartment)
        if self._timer is None or self._timer.done():
            self._timer = asyncio.get_running_loop().create_task(self._retry(),
                                                                 name="parcels:late-records")

    async def flush(self) -> None:
        """Record the kept ends in order (lock held). Raises the `disk_full` refusal, keeping the
        rest, when the disk is still full."""
        while self._kept:
            decision, extra, _ = self._kept[0]
            await self._append(decision, extra)
            self._kept.pop(0)
            self.save()
            self.recorded_late += 1
            if decision.record.compartment is not None:
                self._recorded(decision.record.compartment)
            log.warning("%s of compartment %s recorded late (disk space returned)",
                        decision.record.kind, decision.record.compartment)

    def save(self) -> None:
        """Mirror the kept ends in the side file (an end already in the log but still in the
        file is skipped at start: its operation is no longer open)."""
        if self.file is not None:
            self.file.write([e for _, _, e in self._kept if e is not None])

    async def _retry(self) -> None:
        while self._kept:
            await asyncio.sleep(self.retry_s)
            async with self._lock:
                try:
                    await self.flush()
                except Refused as exc:
                    if exc.code is not ErrorCode.DISK_FULL:
                        log.error("a kept door-cycle end cannot be recorded: %s", exc)
                except Exception as exc:
                    log.error("a kept door-cycle end cannot be recorded yet: %s", exc)

    async def stop(self) -> None:
        """One last try (the daemon stops), then end the timer. What is still kept stays in the
        side file and is recorded at the next start (DoorOutcomes.recover)."""
        if self._kept:
            async with self._lock:
                with contextlib.suppress(Exception):
                    await self.flush()
            if self._kept:
                log.critical("%d door-cycle end(s) could not be recorded before the stop; %s",
                             len(self._kept), "kept in the side file for the next start"
                             if self.file is not None and self.file.current else "lost")
        if self._timer is not None:
            self._timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer
