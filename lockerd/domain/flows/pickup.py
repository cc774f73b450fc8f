"""Pickup and refusal (Art. 25, 26): a recipient's code opens the door; the parcel is taken or refused.

A government document the carrier marked `handover: id_check` opens only when the card on the
reader is the recipient's (its carrier-keyed hash equals the announced one) or a proxy's with the
relation stated (特投 spec, 投递 item 3); each such handover sends `parcel.receipt` (回执).

The same code entry serves a sender whose drop-off was rejected (Art. 21): their retrieval code
opens its compartment (a `retrieve` operation, confirmed in the drop-off flow).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from lockerd.domain import rules
from lockerd.domain.decision import Decision, DomainEvent, Record
from lockerd.domain.errors import ErrorCode
from lockerd.domain.flows.core import RULE_MESSAGES, CabinetCore, panel_actor, parcel_left, refuse
from lockerd.domain.identity import Handover, IdentityCheck, IdOutcome, Relation
from lockerd.domain.limiter import Credential
from lockerd.domain.model import (
    CompartmentState,
    ParcelKind,
    ParcelStatus,
    Pending,
    PendingOp,
    SetCompartment,
    SetParcel,
    claimable_by_code,
)
from lockerd.domain.requests import RefusalReason
from lockerd.domain.timefmt import format_ts


class PickupFlow(CabinetCore):
    """Begin a pickup, then confirm it or the refusal."""

    def id_check_carrier(self, code: str) -> str | None:
        """The carrier of the live ID-checked parcel this code claims, None for any other code
        (the use case reads the card only for those; the answer opens nothing)."""
        digest = self._digest(code)
        parcel = next((p for p in self.live_parcels()
                       if p.code == digest and claimable_by_code(p)), None)
        return parcel.carrier if parcel is not None and parcel.handover is Handover.ID_CHECK \
            else None

    def _handover_refusal(self, expected: str | None, check: IdentityCheck | None
                          ) -> ErrorCode | None:
        """Why an ID-checked parcel stays shut: no passed card check, or the recipient's own
        card does not match. A proxy's card is taken with the stated relation."""
        if check is None or check.outcome in (IdOutcome.NO_CARD, IdOutcome.NO_READER):
            return ErrorCode.ID_CHECK_REQUIRED
        if check.outcome is IdOutcome.EXPIRED:
            return ErrorCode.ID_CARD_EXPIRED
        if not check.passed:
            return ErrorCode.ID_CHECK_REQUIRED
        if check.relation in (None, Relation.SELF) and (
                expected is None or check.carrier_id_hash != expected):
            return ErrorCode.ID_MISMATCH
        return None

    def begin_pickup(self, panel: str, code: str, accept_fee_cents: int | None = None,
                     handover_check: IdentityCheck | None = None) -> Decision:
        """A recipient's code opens its compartment; wrong codes count against the caller and the
        cabinet.

        A fee (after the free period, Art. 25) is shown before the door opens: the first try
        is refused `fee_due` with the amount, the recipient confirms it by sending it back as
        `accept_fee_cents`; the pickup records the fee accepted then."""
        kind = "pickup.begin"
        actor = panel_actor(panel)
        now = self.now()
        body: dict[str, Any] = {"panel": panel}
        until = self._lockout(panel, Credential.CODE, now)
        if until is not None:
            return refuse(kind, actor, ErrorCode.LOCKED_OUT, "too many wrong codes; try later",
                          body, result={"locked_until": format_ts(until)})
        parcel = self.state.parcel_by_code(self._digest(code))
        if parcel is not None and not claimable_by_code(parcel):
            parcel = None
        comp = None if parcel is None else self.state.compartments[parcel.compartment]
        if parcel is None or comp is None or comp.state is not CompartmentState.OCCUPIED:
            wrong = self._wrong_credential(kind, actor, panel, Credential.CODE,
                                           code=ErrorCode.WRONG_CODE,
                                           message="unknown pickup code", body=body)
            if parcel is None or comp is None:
                return wrong
            # A right code whose compartment cannot open (blocked, or its door already under way)
            # answers exactly like a wrong one and counts: a different answer would tell a guesser
            # it hit a live code. Only the log row (compartment, parcel) and the operator know.
            return replace(wrong, record=replace(wrong.record, compartment=comp.id,
                                                 parcel_id=parcel.id),
                           notify_operator=f"a valid pickup code was entered for compartment "
                                           f"{comp.id}, which is {comp.state.value}")
        if parcel.kind is ParcelKind.DROPOFF:
            # the sender takes back a drop-off its carrier rejected (Art. 21)
            return self._opening(Record(kind, actor, {**body, "retrieval": True}, comp.id,
                                        parcel.id), PendingOp.RETRIEVE, panel, now,
                                 result={"retrieval": True})
        assert parcel.deadline is not None
        changes: tuple[SetParcel, ...] = ()
        if parcel.handover is Handover.ID_CHECK:
            if handover_check is not None:
                body.update(handover_check.facts())
            why = self._handover_refusal(parcel.recipient_id_hash, handover_check)
            if why is not None:
                return refuse(kind, actor, why, RULE_MESSAGES[why], body, comp.id, parcel.id)
            changes = (SetParcel(value=parcel.model_copy(update={"handover_check": handover_check})),)
        fee = self._fee(parcel, now)
        if fee > 0 and accept_fee_cents != fee:
            return refuse(kind, actor, ErrorCode.FEE_DUE,
                          f"a fee of {fee} fen is due; confirm it to open the door", body,
                          comp.id, parcel.id,
                          result={"fee_cents": fee, **rules.deadline_fields(parcel.deadline,
                                                                            self.spec)})
        return self._opening(Record(kind, actor, {**body, "fee_cents": fee}, comp.id, parcel.id),
                             PendingOp.PICKUP, panel, now, changes,
                             result={"fee_cents": fee,
                                     "overdue": parcel.status is ParcelStatus.OVERDUE})

    def _opening(self, record: Record, op: PendingOp, panel: str, since: datetime,
                 changes: tuple[SetParcel, ...] = (), *, result: dict[str, Any]) -> Decision:
        """A right code opens the door: the caller's wrong-code count is cleared and the
        compartment waits in OPENING for the door's outcome (pickup or the sender's retrieval)."""
        assert record.compartment is not None
        assert record.parcel_id is not None
        comp = self.state.compartments[record.compartment]
        opening = comp.model_copy(update={
            "state": CompartmentState.OPENING,
            "pending": Pending(op=op, actor=record.actor, panel=panel, since=since)})
        return Decision(record, changes=(*self._limiter_success(panel), *changes,
                                         SetCompartment(value=opening)),
                        open_door=comp.id,
                        result={"compartment": comp.id, "parcel_id": record.parcel_id, **result})

    def confirm_pickup(self, compartment_id: int) -> Decision:
        """Door closed with the parcel taken: picked_up, compartment free."""
        kind = "pickup.confirm"
        now = self.now()
        got = self._pending(kind, compartment_id, (PendingOp.PICKUP,))
        if isinstance(got, Decision):
            return got
        comp, pending, parcel = got
        assert parcel.deadline is not None
        # the fee the recipient accepted when the door opened, not one grown since
        fee = self._fee(parcel, pending.since)
        event = DomainEvent(parcel.carrier, "parcel.picked_up", {
            "parcel_id": parcel.id, "waybill": parcel.waybill, "compartment": comp.id,
            "picked_up_at": format_ts(now), "fee_cents": fee,
            "overdue": parcel.status is ParcelStatus.OVERDUE,
            **rules.deadline_fields(parcel.deadline, self.spec)})
        events: tuple[DomainEvent, ...] = (event,)
        check = parcel.handover_check
        if parcel.handover is Handover.ID_CHECK and check is not None:
            proxy = check.relation not in (None, Relation.SELF)
            events += (DomainEvent(parcel.carrier, "parcel.receipt", {
                "parcel_id": parcel.id, "waybill": parcel.waybill, "compartment": comp.id,
                "cabinet": self.spec.cabinet_id, "collected_by": "proxy" if proxy else "recipient",
                "relation": (check.relation or Relation.SELF).value,
                "name_masked": check.name_masked, "id_masked": check.id_masked,
                "checked_at": format_ts(check.checked_at), "sam_id": check.sam_id,
                "picked_up_at": format_ts(now)}),)
        return parcel_left(Record(kind, pending.actor, {"fee_cents": fee}, comp.id, parcel.id),
                           parcel, comp, ParcelStatus.PICKED_UP, now=now, events=events,
                           result={"parcel_id": parcel.id, "fee_cents": fee}, fee_cents=fee)

    def confirm_refusal(self, compartment_id: int, reason: RefusalReason) -> Decision:
        """Art. 26: the recipient put the parcel back and closed the door: refused, awaiting the courier."""
        kind = "refuse.confirm"
        now = self.now()
        got = self._pending(kind, compartment_id, (PendingOp.PICKUP,))
        if isinstance(got, Decision):
            return got
        comp, pending, parcel = got
        refused = parcel.model_copy(update={"status": ParcelStatus.REFUSED, "code": None,
                                            "reason": reason.value})
        back = comp.model_copy(update={"state": CompartmentState.OCCUPIED, "pending": None})
        event = DomainEvent(parcel.carrier, "parcel.refused", {
            "parcel_id": parcel.id, "waybill": parcel.waybill, "compartment": comp.id,
            "reason": reason.value, "refused_at": format_ts(now), **self._deadline(parcel)})
        return Decision(Record(kind, pending.actor, {"reason": reason.value}, comp.id, parcel.id),
                        changes=(SetParcel(value=refused), SetCompartment(value=back)),
                        events=(event,), result={"parcel_id": parcel.id, "reason": reason.value})

