"""Parcel use cases: decide in the domain, record write-ahead, then move the door.

Order for every step (docs/lifecycle.md, write-ahead):
  1. under the cabinet lock: the domain decides, the decision (its changes and its carrier events
     for the outbox) is appended to the operation log in one transaction, then applied in memory;
  2. only then the door is pulsed (outside the lock: a door may take minutes to close, and the
     compartment is already reserved/opening, so no other decision can touch it);
  3. the door's outcome is fed back as the confirm or rollback command, recorded the same way.
A failed append raises `RecordFailed`: the in-memory state is untouched and no door moves. A
full disk is refused `disk_full`. What the door came to, the end of a door cycle on a full disk,
door faults and restart recovery are lockerd/parcels/door_outcomes.py's job.

What is recorded where is decided in lockerd/parcels/store.py: the chain gets facts only, the
encrypted tables get the personal fields and the live state, the outbox gets carrier events.
Every operation through a door also records the camera state and an evidence snapshot (its
SHA-256) at door open and at door close. The collaborators are the ports of
lockerd/parcels/ports.py (tests/parcels/test_write_ahead.py runs these rules on fakes).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from functools import partial
from typing import Any

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
from lockerd.domain.errors import Refused
from lockerd.domain.identity import Relation
from lockerd.oplog import OutboxMessage
from lockerd.oplog.clockguard import ClockNotSet
from lockerd.oplog.errors import is_disk_full
from lockerd.parcels.door_outcomes import DoorOutcomes
from lockerd.parcels.kept_file import Entry
from lockerd.parcels.passes import PassVerifier
from lockerd.parcels.ports import (
    Camera,
    CarrierEvents,
    Committer,
    Doors,
    Identity,
    IntakeGate,
    LogHandle,
    Observer,
    OperationLog,
)
from lockerd.parcels.store import chain_body, plan_writes

log = logging.getLogger(__name__)

#: Operations that may move on to another compartment when their door jams (nothing is inside yet).
_MOVABLE = frozenset({"deliver", "dropoff"})
#: At most this many jammed doors in one operation before it is rolled back.
MAX_REDIRECTS = 2
_NO_OPERATION = "no matching door operation under way at this panel"


#: Told each time a door operation's begin is recorded, just before its door is pulsed (the
#: kiosk's asynchronous panel operations, lockerd/parcels/panel_ops.py, learn the compartment here).
OnBegin = Callable[[Decision], None]


class RecordFailed(Exception):
    """The operation log refused or failed an append: nothing changed, no door moved."""


class ParcelService:
    """The use cases of docs/lifecycle.md over the pure Cabinet, the doors, the log and the gate."""

    def __init__(self, cabinet: Cabinet, *, log: LogHandle, doors: Doors, gate: IntakeGate,
                 events: CarrierEvents, camera: Camera | None = None,
                 observer: Observer | None = None, close_timeout_s: float = 120.0,
                 identity: Identity | None = None) -> None:
        self.cabinet = cabinet
        self._log_handle = log
        self._gate = gate
        self._events = events
        self._camera = camera
        self._observer = observer
        # identity checks (reader or signed token); None: every drop-off is refused (Art. 18)
        self.identity = identity
        # how long a flow waits for its door to be closed (the demo shortens it)
        self.close_timeout_s = close_timeout_s
        self._lock = asyncio.Lock()
        # what the person at an open door declared before closing it (refusal, collection verdict)
        self._intents: dict[int, tuple[str, Any]] = {}
        self.recorded = 0
        #: offline courier passes are verified at the edge with this (None: no carrier's key)
        self.passes: PassVerifier | None = None
        #: door-cycle ends on a full disk, door faults, doors read again, restart recovery
        self.outcomes = DoorOutcomes(cabinet, self._lock, record=self._record,
                                     append=self._append, commit=self._commit,
                                     doors=doors, camera=camera, intents=self._intents)
        #: door-cycle ends kept while the disk is full (lockerd/parcels/late.py)
        self.late = self.outcomes.late

    @property
    def _log(self) -> OperationLog:
        # asked at each use: the daemon's log is open only once the oplog component has started
        return self._log_handle.store

    # ---- recording -------------------------------------------------------------------------------

    def _outbox(self, events: Sequence[DomainEvent]) -> list[OutboxMessage]:
        # seq, event_id, v and ts are assigned per carrier stream by the outbox in the transaction
        return [self._events.event(e.carrier, e.type, e.body) for e in events]

    async def _commit(self, decide: Callable[[], Decision], *, threaded: bool = False,
                      extra: dict[str, Any] | None = None) -> Decision:
        """Decide, record, apply: one atomic step under the cabinet lock.

        `threaded` runs the decision in a worker thread: courier commands verify a PBKDF2 PIN hash
        (tens of ms on a Pi) and must not stall the loop. State is only changed under the lock, in
        the loop thread, so the worker reads a stable state.
        """
        async with self._lock:
            decision = await asyncio.to_thread(decide) if threaded else decide()
            await self._record(decision, extra)
        return decision

    async def _record(self, decision: Decision, extra: dict[str, Any] | None = None,
                      committer: Committer | None = None) -> None:
        """Record the kept door-cycle ends first (in order), then this decision. Lock held."""
        await self.late.flush()
        await self._append(decision, extra, committer)

    async def _append(self, decision: Decision, extra: dict[str, Any] | None = None,
                      committer: Committer | None = None) -> None:
        """Append the decision (facts to the chain, personal fields and live state to the tables,
        carrier events to the outbox) in one transaction, then apply it. Lock held."""
        rec = decision.record
        body = {**chain_body(decision), **(extra or {})}
        mutate = plan_writes(self.cabinet.state, decision.changes, self.cabinet.now())
        outbox = self._outbox(decision.events)
        try:
            if committer is not None:
                await committer(rec.kind, body=body, result=decision.result, outbox=outbox,
                                compartment=rec.compartment, parcel_id=rec.parcel_id, mutate=mutate)
            else:
                await self._log.append(rec.kind, actor=rec.actor, body=body,
                                       compartment=rec.compartment, parcel_id=rec.parcel_id,
                                       outbox=outbox, mutate=mutate)
        except ClockNotSet:
            raise  # a Refused: the caller answers clock_not_set (the condition reports it)
        except Exception as exc:
            log.error("could not record %s: %s", rec.kind, exc)
            if is_disk_full(exc):
                raise Refused(ErrorCode.DISK_FULL, "the operation log's disk is full; nothing "
                              "was recorded and no door moved") from exc
            raise RecordFailed(f"could not record {rec.kind}") from exc
        self.cabinet.apply(decision)
        self.recorded += 1
        if self._observer is not None:
            self._observer.recorded(decision)
        if not decision.ok:
            log.info("%s refused: %s", rec.kind, decision.error)

    async def command(self, decide: Callable[[], Decision], committer: Committer, *,
                      threaded: bool = False) -> Decision:
        """A carrier command: decide under the lock and, when accepted, record it through the
        command's own commit (its reply and remembered id join the same transaction). A refusal
        changes nothing here; the caller reports it (the sync layer records it with its code)."""
        async with self._lock:
            decision = await asyncio.to_thread(decide) if threaded else decide()
            if decision.ok:
                await self._record(decision, committer=committer)
        return decision

    # ---- the door phase --------------------------------------------------------------------------

    async def _through_door(self, begin: Decision, finish: Callable[[int], Callable[[], Decision]],
                            on_begin: OnBegin | None = None) -> Decision:
        """Open the door the recorded `begin` decided on, wait for it to close, record the end
        with the camera state and evidence at door open and door close.

        A deposit or drop-off whose door jams moves on to another fitting compartment in the
        same operation (recorded as `*.redirect`); the reply names the door that opened in the
        end and the jammed ones, which are blocked.
        """
        if not begin.ok or begin.open_door is None:
            return begin
        op = begin.record.kind.split(".", 1)[0]
        step, jammed = begin, list[int]()
        while True:
            cid = step.open_door
            assert cid is not None
            if on_begin is not None:
                on_begin(step)  # a screen shows this door (again after a jam: another one)
            evidence: dict[str, Any] = {}
            failure = await self.outcomes.read(step, cid, op, evidence, self.close_timeout_s)
            if failure is DoorFailure.JAMMED and op in _MOVABLE and len(jammed) < MAX_REDIRECTS:
                self._intents.pop(cid, None)
                moved = await self._commit(partial(self.cabinet.redirect_after_jam, cid),
                                           extra={"evidence": evidence})
                if moved.ok:
                    jammed.append(cid)
                    await self.outcomes.after_door(cid)
                    step = moved
                    continue
            if failure is not None:
                self._intents.pop(cid, None)
                end: Callable[[], Decision] = partial(self.cabinet.door_failed, cid, failure)
            else:
                end = finish(cid)
            try:
                done = await self.outcomes.end(end, {"evidence": evidence})
            finally:
                await self.outcomes.after_door(cid)
            if jammed:
                done = replace(done, result={**done.result, "jammed_compartments": jammed})
            return done

    # ---- use cases -------------------------------------------------------------------------------

    async def courier_login(self, auth: CourierAuth, panel: str) -> Decision:
        """Check a courier at a panel (recorded, failures count against the panel)."""
        return await self._commit(lambda: self.cabinet.courier_login(auth, panel), threaded=True)

    async def deliver(self, auth: CourierAuth, panel: str, req: Delivery, *,
                      on_begin: OnBegin | None = None) -> Decision:
        """Courier deposits one parcel: rules, allocation, door, in_locker (or rolled back)."""
        begin = await self._commit(lambda: self.cabinet.begin_deposit(auth, panel, req), threaded=True)
        return await self._through_door(begin, lambda cid: lambda: self.cabinet.confirm_deposit(cid),
                                        on_begin)

    async def pickup(self, panel: str, code: str, accept_fee_cents: int | None = None, *,
                     on_begin: OnBegin | None = None, relation: Relation | None = None,
                     card_wait_s: float = 0.0) -> Decision:
        """Recipient opens with the code (and the fee shown, when one is due); on close:
        picked_up, or refused if `refuse` was called. A sender's retrieval code opens a rejected
        drop-off the same way (returned_to_sender). An ID-checked parcel first reads the card on
        the reader (the recipient's, or a proxy's with `relation`), waiting up to `card_wait_s`
        for one to be laid on it."""
        check = None
        carrier = self.cabinet.id_check_carrier(code)
        if carrier is not None and self.identity is not None:
            check = await self.identity.check_card(carrier=carrier,
                                                   relation=relation or Relation.SELF,
                                                   wait_s=card_wait_s)
        begin = await self._commit(lambda: self.cabinet.begin_pickup(panel, code, accept_fee_cents,
                                                                     check))

        def finish(cid: int) -> Callable[[], Decision]:
            intent = self._intents.pop(cid, None)
            if intent is not None and intent[0] == "refuse":
                reason: RefusalReason = intent[1]
                return lambda: self.cabinet.confirm_refusal(cid, reason)
            pending = self.cabinet.state.compartments[cid].pending
            if pending is not None and pending.op is PendingOp.RETRIEVE:
                return lambda: self.cabinet.confirm_retrieval(cid)
            return lambda: self.cabinet.confirm_pickup(cid)

        return await self._through_door(begin, finish, on_begin)

    def refuse(self, panel: str, compartment_id: int, reason: RefusalReason) -> None:
        """Art. 26: while the pickup door is open, the recipient declares a refusal (recorded
        with the close). Raises Refused when no pickup is under way at that door and panel."""
        self._declare(panel, compartment_id, PendingOp.PICKUP, ("refuse", reason))

    async def dropoff(self, panel: str, req: Dropoff, *, on_begin: OnBegin | None = None,
                      terms_version: str | None = None, card_wait_s: float = 0.0) -> Decision:
        """Sender drops a parcel off while intake is open; `terms_version` names the contract
        text the sender was shown and acknowledged (Art. 11), recorded with the begin. The
        sender's identity is checked first, outside the lock (a card read takes up to a second):
        the card on the reader (waiting up to `card_wait_s` for one), or the carrier-signed token
        on a cabinet without one."""
        identity = None if self.identity is None else \
            await self.identity.for_dropoff(req.carrier, req.verification_ref, card_wait_s)
        is_open, reason = self._gate.is_open(), self._gate.reason()
        camera = self._camera.camera_state() if self._camera is not None else None
        begin = await self._commit(lambda: self.cabinet.begin_dropoff(
            panel, req, intake_open=is_open, intake_reason=reason, identity=identity),
            extra={"camera": camera, "intake_reason": reason,
                   **({} if terms_version is None else {"terms_version": terms_version})})
        return await self._through_door(begin, lambda cid: lambda: self.cabinet.confirm_dropoff(cid),
                                        on_begin)

    async def collect(self, auth: CourierAuth, panel: str, parcel_id: str, *,
                      on_begin: OnBegin | None = None) -> Decision:
        """Courier opens a drop-off; on close: collected, or rejected if `collect_verdict` said so."""
        begin = await self._commit(lambda: self.cabinet.begin_collect(auth, panel, parcel_id), threaded=True)

        def finish(cid: int) -> Callable[[], Decision]:
            intent = self._intents.pop(cid, None)
            if intent is not None and intent[0] == "reject":
                reason: RejectReason = intent[1]
                return lambda: self.cabinet.confirm_collect(cid, accept=False, reason=reason)
            return lambda: self.cabinet.confirm_collect(cid, accept=True)

        return await self._through_door(begin, finish, on_begin)

    def collect_verdict(self, panel: str, compartment_id: int, accept: bool,
                        reason: RejectReason | None) -> None:
        """Art. 20-21: while the drop-off door is open, the courier accepts or rejects it.
        Raises Refused when no collection is under way at that door and panel."""
        intent = ("accept", None) if accept else ("reject", reason or RejectReason.OTHER)
        self._declare(panel, compartment_id, PendingOp.COLLECT, intent)

    async def return_parcel(self, auth: CourierAuth, panel: str, parcel_id: str, *,
                            on_begin: OnBegin | None = None) -> Decision:
        """Courier takes back a refused or overdue parcel."""
        begin = await self._commit(lambda: self.cabinet.begin_return(auth, panel, parcel_id), threaded=True)
        return await self._through_door(begin, lambda cid: lambda: self.cabinet.confirm_return(cid),
                                        on_begin)

    async def grant_courier(self, carrier: str, courier_id: str, expires: datetime, committer: Committer,
                            *, pin: str | None = None, pin_hash: str | None = None) -> Decision:
        """Carrier command courier.grant (decided in a thread: PBKDF2 takes tens of ms)."""
        return await self.command(lambda: self.cabinet.grant_courier(
            carrier, courier_id, expires, pin=pin, pin_hash=pin_hash), committer, threaded=True)

    async def revoke_passes(self, carrier: str, passes: Sequence[tuple[str, datetime]],
                            committer: Committer) -> Decision:
        """Carrier command courier.revoke_pass: the listed offline passes are refused from now."""
        return await self.command(lambda: self.cabinet.revoke_passes(carrier, passes), committer)

    async def pass_refused(self, kind: str, code: ErrorCode, panel: str, pass_id: str | None,
                           carrier: str | None) -> Decision:
        """Record a pass the edge refused (lockerd/parcels/passes.py)."""
        return await self._commit(lambda: self.cabinet.pass_refused(kind, code, panel, pass_id,
                                                                    carrier))

    async def revoke_courier(self, carrier: str, courier_id: str, committer: Committer) -> Decision:
        """Carrier command courier.revoke: effective on the courier's next command."""
        return await self.command(lambda: self.cabinet.revoke_courier(carrier, courier_id), committer)

    async def expect_parcel(self, carrier: str, req: Expect, committer: Committer) -> Decision:
        """Carrier command parcel.expect: consent and flags for a coming delivery."""
        return await self.command(lambda: self.cabinet.expect_parcel(carrier, req), committer)

    async def recall_parcel(self, carrier: str, waybill: str, committer: Committer) -> Decision:
        """Carrier command parcel.recall: drop an expectation or stop a waiting parcel's code."""
        return await self.command(lambda: self.cabinet.recall_parcel(carrier, waybill), committer)

    async def notice_parcel(self, carrier: str, waybill: str, committer: Committer) -> Decision:
        """Carrier command parcel.notice: the Art. 24 notice again, with the current deadline."""
        return await self.command(lambda: self.cabinet.notice_parcel(carrier, waybill), committer)

    async def extend_parcel(self, carrier: str, waybill: str, hours: int,
                            committer: Committer) -> Decision:
        """Carrier command parcel.extend: push the storage deadline back."""
        return await self.command(lambda: self.cabinet.extend_parcel(carrier, waybill, hours),
                                  committer)

    # ---- blocked compartments: door facts and technicians ------------------------------------

    async def door_fault(self, compartment_id: int, reason: str) -> Decision | None:
        """A door fault from the door controller (DoorOutcomes.door_fault)."""
        return await self.outcomes.door_fault(compartment_id, reason)

    async def door_state_known(self, compartment_id: int, is_open: bool) -> Decision | None:
        """A door read again after its state was unknown (DoorOutcomes.door_state_known)."""
        return await self.outcomes.door_state_known(compartment_id, is_open)

    async def block(self, compartment_id: int, reason: str, actor: str) -> Decision:
        """A technician takes a compartment out of customer use (reason recorded)."""
        return await self._commit(lambda: self.cabinet.block(compartment_id, reason, actor))

    async def unblock(self, compartment_id: int, actor: str, reason: str) -> Decision:
        """A technician returns a repaired compartment to service (refused while it holds a
        parcel its code cannot claim)."""
        return await self._commit(lambda: self.cabinet.unblock(compartment_id, actor, reason))

    async def clear(self, compartment_id: int, actor: str, reason: str, *,
                    keep_blocked: bool = False) -> Decision:
        """A technician removed what was inside: parcels `removed_by_staff`, carriers told."""
        return await self._commit(lambda: self.cabinet.clear(compartment_id, actor, reason,
                                                             keep_blocked=keep_blocked))

    async def sweep_overdue(self) -> Decision | None:
        """Mark parcels past their storage period overdue; recorded only when something changed."""
        async with self._lock:
            probe = self.cabinet.sweep_overdue()
        if not probe.changes:
            return None
        return await self._commit(self.cabinet.sweep_overdue)

    async def recover(self, kept: Sequence[Entry] = ()) -> list[Decision]:
        """After a restart: record the door-cycle ends a stop on a full disk left in the side
        file, close the operations left open (DoorOutcomes.recover)."""
        return await self.outcomes.recover(kept)

    # ---- helpers -------------------------------------------------------------------------------

    def _declare(self, panel: str, compartment_id: int, op: PendingOp,
                 intent: tuple[str, Any]) -> None:
        """Note what the person at an open door declared. Only the caller that began the
        operation may (`panel` is the kernel's caller identity, Caller.identity); anyone else
        gets the same refusal as when no operation is under way."""
        comp = self.cabinet.state.compartments.get(compartment_id)
        if comp is None:
            raise Refused(ErrorCode.UNKNOWN_COMPARTMENT, _NO_OPERATION)
        if comp.state is not CompartmentState.OPENING or comp.pending is None \
                or comp.pending.op is not op or comp.pending.panel != panel:
            raise Refused(ErrorCode.BAD_STATE, _NO_OPERATION)
        self._intents[compartment_id] = intent
