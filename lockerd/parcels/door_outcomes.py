"""The door facts around a door operation, besides its normal confirm: one job, the door truth.

The use cases (lockerd/parcels/service.py) record a begin, pulse the door, and record the end
the door came to. What the door came to, and what can go wrong around it, is decided here:
- `read`: the board's reply, the close, the occupancy sensor give the door failure (or none),
  with the camera state and an evidence snapshot at door open and close;
- the end cannot be recorded because the disk is full: it is kept (lockerd/parcels/late.py) and
  the caller told `disk_full`; the door has moved all the same;
- a door fault (jam, forced, left open) that arrives while an operation is under way waits for
  that operation's end, then blocks the compartment;
- a door whose state was unknown (a lost board reply) is read again: closed, it returns to
  service; open, staff must look;
- operations a restart left open are closed at start (`recover`), the ends a stop on a full disk
  left in the side file (lockerd/parcels/kept_file.py) recorded first; a deposit left open
  without a kept end whose door reads closed on an item the sensor sees is held for staff.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import partial
from typing import Any, Protocol

from lockerd.domain import Cabinet, CompartmentState, Decision, DoorFailure, ErrorCode, PendingOp
from lockerd.domain.errors import Refused
from lockerd.domain.flows.maintenance import DOOR_STATE_UNKNOWN, DOORS_ACTOR
from lockerd.parcels.kept_file import Entry, entry, redecide
from lockerd.parcels.late import Append, LateRecords
from lockerd.parcels.ports import Camera, Doors

log = logging.getLogger(__name__)

#: What a board reports when the door did open (or was open already).
_OPENED = frozenset({"acknowledged", "opened", "already_open"})

#: The open operations whose parcel is inside once their door closed on it.
_DEPOSITS = frozenset({PendingOp.DEPOSIT, PendingOp.DROPOFF})
#: How long recovery at start waits for a door's first reading (the poll is kicked at once).
START_READ_S = 2.0

#: Records a decision under the cabinet lock (kept late ends first).
Record = Callable[[Decision, dict[str, Any] | None], Awaitable[None]]


class Commit(Protocol):
    """Decides, records and applies one decision under the cabinet lock (ParcelService._commit)."""

    def __call__(self, decide: Callable[[], Decision], *, threaded: bool = False,
                 extra: dict[str, Any] | None = None) -> Awaitable[Decision]: ...


class DoorOutcomes:
    """What a door cycle came to; its end on a full disk, door faults, doors read again,
    restart recovery."""

    def __init__(self, cabinet: Cabinet, lock: asyncio.Lock, *, record: Record, append: Append,
                 commit: Commit, doors: Doors, camera: Camera | None,
                 intents: Mapping[int, tuple[str, Any]]) -> None:
        """`intents`: what the person at an open door declared (the service's, read at close)."""
        self._cabinet = cabinet
        self._doors = doors
        self._camera = camera
        self._intents = intents
        self._lock = lock
        self._record = record
        self._commit = commit
        # door faults that arrived during a door operation, recorded once it has ended
        self._deferred: dict[int, str] = {}
        #: door-cycle ends kept while the disk is full, recorded first once it has space again
        self.late = LateRecords(append, lock, recorded=self._late_recorded)
        self._late_tasks: set[asyncio.Task[None]] = set()

    async def end(self, decide: Callable[[], Decision], extra: dict[str, Any]) -> Decision:
        """Record the end of a door cycle. On a full disk the door has moved all the same: the
        decision is kept (its compartment stays `opening` in memory, so nothing else touches it)
        and recorded once the disk has space again; the caller is told `disk_full`."""
        async with self._lock:
            decision = decide()
            try:
                await self._record(decision, extra)
            except Refused as exc:
                if exc.code is not ErrorCode.DISK_FULL:
                    raise
                self.late.keep(decision, extra, self._entry(decision))
                raise Refused(ErrorCode.DISK_FULL, "the door cycle happened and is kept; it is "
                              "recorded as soon as the disk has space again",
                              {"compartment": decision.record.compartment,
                               "parcel_id": decision.record.parcel_id, "recorded": False}
                              ) from exc
        return decision

    async def evidence(self, label: str) -> dict[str, Any]:
        """Camera state and a snapshot's reference (SHA-256) at a door event."""
        if self._camera is None:
            return {"camera": None, "snapshot": None}
        state = self._camera.camera_state()
        try:
            ref = await self._camera.snapshot_ref(label)
        except Exception as exc:  # evidence must never stop a customer's door
            log.warning("evidence snapshot %s failed: %s", label, exc)
            ref = None
        return {"camera": state, "snapshot": None if ref is None else ref.as_dict()}

    async def read(self, begin: Decision, cid: int, op: str, evidence: dict[str, Any],
                   close_timeout_s: float) -> DoorFailure | None:
        """Pulse, wait for the close, check occupancy; the failure to record, None when all went
        well. Fills `evidence` with the camera state and snapshots at door open and close."""
        try:
            result = await self._doors.open(cid, begin.record.kind, begin.record.actor)
            outcome = str(result.outcome)
            evidence["door_open"] = await self.evidence(f"{op}.open.c{cid}")
            if outcome == "jammed":
                failure: DoorFailure | None = DoorFailure.JAMMED
            elif outcome == "unknown":  # reply lost, door unreadable: it may be open, hold it
                failure = DoorFailure.STATE_UNKNOWN
            elif outcome not in _OPENED:
                failure = DoorFailure.NOT_OPENED
            elif not await self._doors.wait_closed(cid, close_timeout_s):
                failure = DoorFailure.NOT_CLOSED
            else:
                failure = self._occupancy(op, cid)
            if failure is not DoorFailure.NOT_OPENED:
                evidence["door_close"] = await self.evidence(f"{op}.close.c{cid}")
        except asyncio.CancelledError:
            # shutting down mid-flow: the door state is unknown, so block it for staff to check
            await asyncio.shield(self.fail(cid, DoorFailure.NOT_CLOSED, {"evidence": evidence}))
            raise
        except Exception:
            log.exception("door %d failed during %s", cid, begin.record.kind)
            failure = DoorFailure.NOT_CLOSED  # the door state is unknown
        return failure

    def _occupancy(self, op: str, cid: int) -> DoorFailure | None:
        """Where the board sees occupancy (docs/lifecycle.md): a deposit or drop-off needs the
        item seen, a plain pickup the compartment seen empty (a refusal puts it back)."""
        seen = self._doors.occupied(cid)
        if seen is None:
            return None
        if op in ("deliver", "dropoff") and not seen:
            return DoorFailure.ITEM_NOT_SEEN
        intent = self._intents.get(cid)
        if op == "pickup" and seen and (intent is None or intent[0] != "refuse"):
            return DoorFailure.ITEM_STILL_INSIDE
        return None

    def _entry(self, decision: Decision) -> Entry | None:
        """What the side file keeps of an end (its operation still open in memory)."""
        cid = decision.record.compartment
        comp = None if cid is None else self._cabinet.state.compartments.get(cid)
        if comp is None or comp.pending is None:
            return None
        return entry(decision, comp.pending.since, self._cabinet.now())

    async def fail(self, cid: int, failure: DoorFailure, extra: dict[str, Any] | None = None
                   ) -> Decision:
        """Record a door failure of the operation under way at `cid` (rollback or block)."""
        return await self._commit(lambda: self._cabinet.door_failed(cid, failure), extra=extra)

    async def door_fault(self, compartment_id: int, reason: str) -> Decision | None:
        """The door controller saw a jam, a forced door or a door left open: block the
        compartment (recorded). While a door operation is under way on it, the block waits for
        that operation's end (its flow records the door's fate first); a compartment already
        blocked stays as it is. None when nothing was recorded now."""
        async with self._lock:
            comp = self._cabinet.state.compartments.get(compartment_id)
            if comp is None or comp.state is CompartmentState.BLOCKED:
                return None
            if comp.pending is not None:
                self._deferred.setdefault(compartment_id, reason)
                return None
            decision = self._cabinet.block(compartment_id, reason, DOORS_ACTOR)
            await self._record(decision, None)
        return decision

    async def door_state_known(self, compartment_id: int, is_open: bool) -> Decision | None:
        """The door controller reads a door again. A compartment held as `door_state_unknown`
        (a lost reply, an unreadable door) is settled: read closed, it returns to service with
        its parcel and code as before; read open, the pulse did act and staff must look
        (`door_opened_unrecorded`). None when nothing was recorded."""
        async with self._lock:
            comp = self._cabinet.state.compartments.get(compartment_id)
            if comp is None or comp.state is not CompartmentState.BLOCKED \
                    or comp.blocked_reason != DOOR_STATE_UNKNOWN:
                return None
            decision = self._cabinet.block(compartment_id, "door_opened_unrecorded", DOORS_ACTOR) \
                if is_open else self._cabinet.unblock(compartment_id, DOORS_ACTOR,
                                                      "door read closed again")
            await self._record(decision, None)
        return decision

    async def after_door(self, compartment_id: int) -> None:
        """A door operation ended: record a door fault that arrived while it was under way."""
        reason = self._deferred.pop(compartment_id, None)
        if reason is not None:
            await self.door_fault(compartment_id, reason)

    def _late_recorded(self, compartment_id: int) -> None:
        """A kept door-cycle end was recorded late: a door fault that waited for it is now."""
        if compartment_id in self._deferred:
            task = asyncio.get_running_loop().create_task(self.after_door(compartment_id))
            self._late_tasks.add(task)
            task.add_done_callback(self._late_tasks.discard)

    async def recover(self, kept: Sequence[Entry] = ()) -> list[Decision]:
        """After a restart. First the door-cycle ends a stop left in the side file (the disk was
        full): each is decided again and recorded when its operation is still open (kept again
        when the disk is still full). The operations left open otherwise have an unknown door
        state: closed as `not_closed` (deposits rolled back, compartments blocked for staff) -
        except a deposit or drop-off whose door reads closed on an item its occupancy sensor
        sees: the parcel is inside, so it is held for staff (`deposit_unconfirmed`), never
        `rolled_back`."""
        done: list[Decision] = []
        for k in kept:
            async with self._lock:
                decision = redecide(self._cabinet, k)
                if decision is None:
                    continue
                extra = {"kept_at": k.get("at"), "after_restart": True}
                try:
                    await self._record(decision, extra)
                except Refused as exc:
                    if exc.code is not ErrorCode.DISK_FULL:
                        raise
                    self.late.keep(decision, extra, k)
                    continue
                log.warning("%s of compartment %s recorded after the restart", decision.record.kind,
                            decision.record.compartment)
                done.append(decision)
        self.late.save()
        waiting = set(self.late.compartments())
        stuck = [c for c in self._cabinet.state.compartments.values()
                 if c.pending is not None and c.id not in waiting]
        for comp in stuck:
            assert comp.pending is not None
            if comp.pending.op in _DEPOSITS and await self._item_inside(comp.id):
                log.warning("compartment %d: a %s left open reads closed on an item; held for "
                            "staff", comp.id, comp.pending.op.value)
                done.append(await self._commit(partial(self._cabinet.hold_unconfirmed, comp.id),
                                               extra={"after_restart": True}))
            else:
                done.append(await self.fail(comp.id, DoorFailure.NOT_CLOSED))
        return done

    async def _item_inside(self, cid: int) -> bool:
        """At start, for a deposit left open without a kept end: the door reads closed and the
        occupancy sensor sees an item. False where the board has no sensor, the sensor sees the
        compartment empty, or the door is open or cannot be read: the rollback stays."""
        try:
            closed = await self._doors.wait_closed(cid, START_READ_S)
        except Exception as exc:  # an unreadable door is not a closed one
            log.warning("door %d could not be read at start: %s", cid, exc)
            return False
        return closed and self._doors.occupied(cid) is True
