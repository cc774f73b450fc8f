"""Parcel use cases: decide in the domain, record write-ahead in the operation log, then move the door.

Order for every step (DESIGN section 1, write-ahead rule):
  1. under the cabinet lock: the domain decides, the decision (its changes and its carrier events
     for the outbox) is appended to the operation log in one transaction, then applied in memory;
  2. only then the door is pulsed (outside the lock: a door may take minutes to close, and the
     compartment is already reserved/opening, so no other decision can touch it);
  3. the door's outcome is fed back as the confirm or rollback command, recorded the same way.
A failed append leaves the in-memory state untouched and no door moves.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from lockerd.domain import (
    Cabinet,
    CompartmentState,
    CourierAuth,
    Decision,
    Delivery,
    DomainEvent,
    DoorFailure,
    Dropoff,
    ErrorCode,
    Expect,
    PendingOp,
    RefusalReason,
    RejectReason,
)
from lockerd.domain.rules import rfc3339

log = logging.getLogger(__name__)

EVENT_VERSION = 1


class OpenResultLike(Protocol):
    """What `doors.open` returns; `outcome` is acknowledged/opened/already_open/jammed/failed."""

    @property
    def outcome(self) -> str:
        """Outcome name (a StrEnum value compares equal to its string)."""
        ...


class DoorControl(Protocol):
    """lockerd/doors.py as the use cases need it."""

    async def open(self, compartment_id: int, reason: str, actor: str) -> OpenResultLike:
        """Pulse the lock once (never retried at transport level) and report what happened."""
        ...

    async def wait_closed(self, compartment_id: int, timeout: float) -> bool:  # noqa: ASYNC109 -- doors.py's agreed signature
        """True once the door reads closed, False after `timeout` seconds."""
        ...


class OperationLog(Protocol):
    """lockerd/oplog as the use cases need it: one transaction per call."""

    async def append(self, kind: str, *, actor: str, body: dict[str, Any], compartment: int | None,
                     parcel_id: str | None, outbox: Sequence[Any],
                     mutate: Callable[[Any], None] | None = None) -> Any:
        """Append an operation row, its outbox messages and domain-table rows atomically."""
        ...


class IntakeGate(Protocol):
    """The camera guard's drop-off gate."""

    def is_open(self) -> bool:
        """True while drop-offs may be accepted (camera healthy)."""
        ...

    def reason(self) -> str | None:
        """Why the gate is closed (for the panel), or None."""
        ...


#: Builds the outbox row for one carrier event: (stream=carrier, topic, payload).
MessageFactory = Callable[[str, str, dict[str, Any]], Any]
#: Optional hook told when staff must look (rejected drop-off, blocked compartment).
OperatorNotice = Callable[[str, Decision], None]

_OPENED = frozenset({"acknowledged", "opened", "already_open"})


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    """Knobs of the use cases."""

    cabinet_id: str
    prefix: str = "lockers"
    close_timeout_s: float = 120.0


class ParcelService:
    """The use cases of DESIGN section 3 over the pure Cabinet, the doors, the log and the gate."""

    def __init__(self, cabinet: Cabinet, doors: DoorControl, oplog: OperationLog, gate: IntakeGate, *,
                 cfg: ServiceConfig, message: MessageFactory,
                 on_operator_notice: OperatorNotice | None = None) -> None:
        self.cabinet = cabinet
        self._doors = doors
        self._log = oplog
        self._gate = gate
        self._cfg = cfg
        self._message = message
        self._notice = on_operator_notice
        self._lock = asyncio.Lock()
        # what the person at an open door declared before closing it (refusal, collection verdict)
        self._intents: dict[int, tuple[str, Any]] = {}

    # ---- recording -------------------------------------------------------------------------------

    def events_topic(self, carrier: str) -> str:
        """Topic of a carrier's event stream (DESIGN section 4)."""
        return f"{self._cfg.prefix}/{self._cfg.cabinet_id}/carriers/{carrier}/events"

    def _outbox(self, events: Sequence[DomainEvent], ts: datetime) -> list[Any]:
        # seq is assigned per carrier stream by the outbox in the same transaction
        return [self._message(e.carrier, self.events_topic(e.carrier), {
            "v": EVENT_VERSION, "event_id": secrets.token_hex(16), "ts": rfc3339(ts),
            "type": e.type, "body": e.body}) for e in events]

    async def _commit(self, decide: Callable[[], Decision], *, threaded: bool = False) -> Decision:
        """Decide, record, apply: one atomic step under the cabinet lock.

        `threaded` runs the decision in a worker thread: courier commands verify a PBKDF2 PIN hash
        (tens of ms on a Pi) and must not stall the loop. State is only changed under the lock, in
        the loop thread, so the worker reads a stable state.
        """
        async with self._lock:
            decision = await asyncio.to_thread(decide) if threaded else decide()
            await self._record(decision)
        return decision

    async def _record(self, decision: Decision) -> None:
        """Append the decision (changes + carrier events to the outbox), then apply it. Lock held."""
        rec = decision.record
        await self._log.append(
            rec.kind, actor=rec.actor,
            body={**rec.body, "ok": decision.ok, "changes": decision.changes_json()},
            compartment=rec.compartment, parcel_id=rec.parcel_id,
            outbox=self._outbox(decision.events, self.cabinet.now()))
        self.cabinet.apply(decision)
        if decision.notify_operator and self._notice is not None:
            self._notice(decision.notify_operator, decision)
        if not decision.ok:
            log.info("%s refused: %s", rec.kind, decision.error)

    # ---- the door phase --------------------------------------------------------------------------

    async def _through_door(self, begin: Decision, finish: Callable[[int], Callable[[], Decision]]
                            ) -> Decision:
        """Open the door the recorded `begin` decided on, wait for it to close, record the end."""
        if not begin.ok or begin.open_door is None:
            return begin
        cid = begin.open_door
        failure: DoorFailure | None = None
        try:
            result = await self._doors.open(cid, begin.record.kind, begin.record.actor)
            outcome = str(result.outcome)
            if outcome == "jammed":
                failure = DoorFailure.JAMMED
            elif outcome not in _OPENED:
                failure = DoorFailure.NOT_OPENED
            elif not await self._doors.wait_closed(cid, self._cfg.close_timeout_s):
                failure = DoorFailure.NOT_CLOSED
        except asyncio.CancelledError:
            # shutting down mid-flow: the door state is unknown, so block it for staff to check
            await asyncio.shield(self._fail(cid, DoorFailure.NOT_CLOSED))
            raise
        except Exception:
            log.exception("door %d failed during %s", cid, begin.record.kind)
            failure = DoorFailure.NOT_CLOSED
        if failure is not None:
            self._intents.pop(cid, None)
            return await self._fail(cid, failure)
        return await self._commit(finish(cid))

    async def _fail(self, cid: int, failure: DoorFailure) -> Decision:
        return await self._commit(lambda: self.cabinet.door_failed(cid, failure))

    # ---- use cases -------------------------------------------------------------------------------

    async def courier_login(self, auth: CourierAuth, panel: str) -> Decision:
        """Check a courier at a panel (recorded, failures count against the panel)."""
        return await self._commit(lambda: self.cabinet.courier_login(auth, panel), threaded=True)

    async def deliver(self, auth: CourierAuth, panel: str, req: Delivery) -> Decision:
        """Courier deposits one parcel: rules, allocation, door, in_locker (or rolled back)."""
        begin = await self._commit(lambda: self.cabinet.begin_deposit(auth, panel, req), threaded=True)
        return await self._through_door(begin, lambda cid: lambda: self.cabinet.confirm_deposit(cid))

    async def pickup(self, panel: str, code: str) -> Decision:
        """Recipient opens with the code; on close: picked_up, or refused if `refuse` was called."""
        begin = await self._commit(lambda: self.cabinet.begin_pickup(panel, code))

        def finish(cid: int) -> Callable[[], Decision]:
            intent = self._intents.pop(cid, None)
            if intent is not None and intent[0] == "refuse":
                reason: RefusalReason = intent[1]
                return lambda: self.cabinet.confirm_refusal(cid, reason)
            return lambda: self.cabinet.confirm_pickup(cid)

        return await self._through_door(begin, finish)

    def refuse(self, panel: str, compartment_id: int, reason: RefusalReason) -> ErrorCode | None:
        """Art. 26: while the pickup door is open, the recipient declares a refusal."""
        return self._declare(panel, compartment_id, PendingOp.PICKUP, ("refuse", reason))

    async def dropoff(self, panel: str, req: Dropoff) -> Decision:
        """Sender drops a parcel off while intake is open."""
        is_open, reason = self._gate.is_open(), self._gate.reason()
        begin = await self._commit(lambda: self.cabinet.begin_dropoff(
            panel, req, intake_open=is_open, intake_reason=reason))
        return await self._through_door(begin, lambda cid: lambda: self.cabinet.confirm_dropoff(cid))

    async def collect(self, auth: CourierAuth, panel: str, parcel_id: str) -> Decision:
        """Courier opens a drop-off; on close: collected, or rejected if `collect_verdict` said so."""
        begin = await self._commit(lambda: self.cabinet.begin_collect(auth, panel, parcel_id), threaded=True)

        def finish(cid: int) -> Callable[[], Decision]:
            intent = self._intents.pop(cid, None)
            if intent is not None and intent[0] == "reject":
                reason: RejectReason = intent[1]
                return lambda: self.cabinet.confirm_collect(cid, accept=False, reason=reason)
            return lambda: self.cabinet.confirm_collect(cid, accept=True)

        return await self._through_door(begin, finish)

    def collect_verdict(self, panel: str, compartment_id: int, accept: bool,
                        reason: RejectReason | None) -> ErrorCode | None:
        """Art. 20-21: while the drop-off door is open, the courier accepts or rejects it."""
        intent = ("accept", None) if accept else ("reject", reason or RejectReason.OTHER)
        return self._declare(panel, compartment_id, PendingOp.COLLECT, intent)

    async def return_parcel(self, auth: CourierAuth, panel: str, parcel_id: str) -> Decision:
        """Courier takes back a refused or overdue parcel."""
        begin = await self._commit(lambda: self.cabinet.begin_return(auth, panel, parcel_id), threaded=True)
        return await self._through_door(begin, lambda cid: lambda: self.cabinet.confirm_return(cid))

    async def grant_courier(self, carrier: str, courier_id: str, expires: datetime, *,
                            pin: str | None = None, pin_hash: str | None = None) -> Decision:
        """Carrier command courier.grant (decided in a thread: PBKDF2 takes tens of ms)."""
        return await self._commit(lambda: self.cabinet.grant_courier(
            carrier, courier_id, expires, pin=pin, pin_hash=pin_hash), threaded=True)

    async def revoke_courier(self, carrier: str, courier_id: str) -> Decision:
        """Carrier command courier.revoke: effective on the courier's next command."""
        return await self._commit(lambda: self.cabinet.revoke_courier(carrier, courier_id))

    async def expect_parcel(self, carrier: str, req: Expect) -> Decision:
        """Carrier command parcel.expect: consent and flags for a coming delivery."""
        return await self._commit(lambda: self.cabinet.expect_parcel(carrier, req))

    async def recall_parcel(self, carrier: str, waybill: str) -> Decision:
        """Carrier command parcel.recall: drop an expectation or stop a waiting parcel's code."""
        return await self._commit(lambda: self.cabinet.recall_parcel(carrier, waybill))

    async def sweep_overdue(self) -> Decision | None:
        """Mark parcels past their storage period overdue; recorded only when something changed."""
        async with self._lock:
            probe = self.cabinet.sweep_overdue()
        if not probe.changes:
            return None
        return await self._commit(self.cabinet.sweep_overdue)

    async def recover(self) -> list[Decision]:
        """After a restart: operations left open by a crash have an unknown door state, so they are
        closed as `not_closed` (deposits rolled back, compartments blocked for staff to check)."""
        stuck = [c.id for c in self.cabinet.state.compartments.values() if c.pending is not None]
        return [await self._fail(cid, DoorFailure.NOT_CLOSED) for cid in stuck]

    def state_summary(self) -> dict[str, Any]:
        """Free compartments per size and blocked ids (no personal data), for the `state` topic."""
        return {"free": self.cabinet.free_counts(), "blocked": self.cabinet.blocked()}

    # ---- helpers -------------------------------------------------------------------------------

    def _declare(self, panel: str, compartment_id: int, op: PendingOp,
                 intent: tuple[str, Any]) -> ErrorCode | None:
        comp = self.cabinet.state.compartments.get(compartment_id)
        if comp is None:
            return ErrorCode.UNKNOWN_COMPARTMENT
        if comp.state is not CompartmentState.OPENING or comp.pending is None \
                or comp.pending.op is not op or comp.pending.panel != panel:
            return ErrorCode.BAD_STATE
        self._intents[compartment_id] = intent
        return None
