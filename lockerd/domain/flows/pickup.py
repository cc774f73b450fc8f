"""Pickup and refusal (Art. 25, 26): a recipient's code opens the door; the parcel is taken or refused."""

from __future__ import annotations

from typing import Any

from lockerd.domain import limiter, rules
from lockerd.domain.decision import Decision, DomainEvent, Record
from lockerd.domain.errors import ErrorCode
from lockerd.domain.flows.core import CabinetCore, emptied, panel_actor, refuse
from lockerd.domain.model import (
    CODE_STATUSES,
    CompartmentState,
    ParcelStatus,
    Pending,
    PendingOp,
    SetCompartment,
    SetParcel,
)
from lockerd.domain.requests import RefusalReason
from lockerd.domain.timefmt import format_ts


class PickupFlow(CabinetCore):
    """Begin a pickup, then confirm it or the refusal."""

    def begin_pickup(self, panel: str, code: str) -> Decision:
        """A recipient's code opens its compartment; wrong codes count against the panel."""
        kind = "pickup.begin"
        actor = panel_actor(panel)
        now = self.now()
        body: dict[str, Any] = {"panel": panel}
        until = limiter.locked_until(self.state.limiters.get(panel), now)
        if until is not None:
            return refuse(kind, actor, ErrorCode.LOCKED_OUT, "too many wrong codes; try later",
                          body, result={"locked_until": format_ts(until)})
        parcel = self.state.parcel_by_code(self._digest(code))
        if parcel is not None and parcel.status not in CODE_STATUSES:
            parcel = None
        if parcel is None:
            return self._wrong_credential(kind, actor, panel, code=ErrorCode.WRONG_CODE,
                                          message="unknown pickup code", body=body)
        comp = self.state.compartments[parcel.compartment]
        if comp.state is CompartmentState.BLOCKED:
            return refuse(kind, actor, ErrorCode.COMPARTMENT_BLOCKED,
                          "compartment out of service; staff are notified", body, comp.id, parcel.id)
        if comp.state is not CompartmentState.OCCUPIED:
            return refuse(kind, actor, ErrorCode.BAD_STATE, "compartment busy", body, comp.id,
                          parcel.id)
        assert parcel.deadline is not None
        fee = rules.fee_cents(parcel.deadline, now, self.spec.policy)
        opening = comp.model_copy(update={
            "state": CompartmentState.OPENING,
            "pending": Pending(op=PendingOp.PICKUP, actor=actor, panel=panel, since=now)})
        return Decision(Record(kind, actor, {**body, "fee_cents": fee}, comp.id, parcel.id),
                        changes=(*self._limiter_success(panel), SetCompartment(value=opening)),
                        open_door=comp.id,
                        result={"compartment": comp.id, "parcel_id": parcel.id, "fee_cents": fee,
                                "overdue": parcel.status is ParcelStatus.OVERDUE})

    def confirm_pickup(self, compartment_id: int) -> Decision:
        """Door closed with the parcel taken: picked_up, compartment free."""
        kind = "pickup.confirm"
        now = self.now()
        got = self._pending(kind, compartment_id, (PendingOp.PICKUP,))
        if isinstance(got, Decision):
            return got
        comp, pending, parcel = got
        assert parcel.deadline is not None
        fee = rules.fee_cents(parcel.deadline, now, self.spec.policy)
        done = parcel.model_copy(update={"status": ParcelStatus.PICKED_UP, "code": None,
                                         "closed_at": now, "fee_cents": fee})
        event = DomainEvent(parcel.carrier, "parcel.picked_up", {
            "parcel_id": parcel.id, "waybill": parcel.waybill, "compartment": comp.id,
            "picked_up_at": format_ts(now), "fee_cents": fee,
            "overdue": parcel.status is ParcelStatus.OVERDUE})
        return Decision(Record(kind, pending.actor, {"fee_cents": fee}, comp.id, parcel.id),
                        changes=(SetParcel(value=done), SetCompartment(value=emptied(comp))),
                        events=(event,), result={"parcel_id": parcel.id, "fee_cents": fee})

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
            "reason": reason.value, "refused_at": format_ts(now)})
        return Decision(Record(kind, pending.actor, {"reason": reason.value}, comp.id, parcel.id),
                        changes=(SetParcel(value=refused), SetCompartment(value=back)),
                        events=(event,), result={"parcel_id": parcel.id, "reason": reason.value})

