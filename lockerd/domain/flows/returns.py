"""Returns and overdue parcels: storage runs out, a carrier recalls, its courier takes deliveries back."""

from __future__ import annotations

from typing import Any

from lockerd.domain import limiter
from lockerd.domain.decision import Decision, DomainEvent, Record
from lockerd.domain.errors import ErrorCode
from lockerd.domain.flows.core import RETURNABLE, CabinetCore, courier_of, parcel_left, refuse
from lockerd.domain.model import (
    CODE_STATUSES,
    Change,
    ParcelKind,
    ParcelStatus,
    PendingOp,
    SetExpectation,
    SetParcel,
    expectation_key,
)
from lockerd.domain.requests import CourierAuth
from lockerd.domain.timefmt import format_ts


class ReturnFlow(CabinetCore):
    """Sweep overdue parcels, recall one, begin and confirm a return."""

    def sweep_overdue(self) -> Decision:
        """Parcels past their storage period become overdue (one event each to their carrier);
        stale wrong-credential limiters are dropped on the same round.

        The state holds live parcels only, so this touches at most one parcel per compartment
        however long the cabinet has run. Limiters are otherwise pruned only when a wrong
        credential is counted; the periodic sweep forgets those whose ladder has faded even when
        nobody guesses again (a lockout of a caller that never came back)."""
        now = self.now()
        changes: list[Change] = list(limiter.prune(self.state.limiters, now, self.spec.policy,
                                                   frozenset()))
        ids: list[str] = []
        events: list[DomainEvent] = []
        for parcel in sorted(self.state.parcels.values(), key=lambda p: p.id):
            if parcel.status is not ParcelStatus.IN_LOCKER or parcel.deadline is None \
                    or parcel.deadline > now:
                continue
            changes.append(SetParcel(value=parcel.model_copy(update={"status": ParcelStatus.OVERDUE})))
            ids.append(parcel.id)
            events.append(DomainEvent(parcel.carrier, "parcel.overdue", {
                "parcel_id": parcel.id, "waybill": parcel.waybill, "compartment": parcel.compartment,
                **self._deadline(parcel), "overdue_at": format_ts(now)}))
        return Decision(Record("overdue.sweep", "system", {"parcels": ids}), changes=tuple(changes),
                        events=tuple(events), result={"overdue": ids})

    def recall_parcel(self, carrier: str, waybill: str) -> Decision:
        """`parcel.recall`: forget an expectation, or stop the code of a waiting parcel so the
        carrier's courier can take it back."""
        kind = "parcel.recall"
        actor = f"carrier:{carrier}"
        body: dict[str, Any] = {"waybill": waybill}
        if carrier not in self.spec.carriers:
            return refuse(kind, actor, ErrorCode.UNKNOWN_CARRIER, "carrier not authorised here", body)
        key = expectation_key(carrier, waybill)
        if key in self.state.expected:
            return Decision(Record(kind, actor, body), changes=(SetExpectation(key=key, value=None),),
                            result={"waybill": waybill, "recalled": "expectation"})
        parcel = self._live_delivery(carrier, waybill)
        if parcel is None:
            return refuse(kind, actor, ErrorCode.UNKNOWN_PARCEL, "no such waybill waiting here", body)
        comp = self.state.compartments[parcel.compartment]
        if parcel.status not in CODE_STATUSES or comp.pending is not None:
            return refuse(kind, actor, ErrorCode.BAD_STATE, f"parcel is {parcel.status.value}", body,
                          comp.id, parcel.id)
        recalled = parcel.model_copy(update={"status": ParcelStatus.RECALLED, "code": None})
        return Decision(Record(kind, actor, body, comp.id, parcel.id),
                        changes=(SetParcel(value=recalled),),
                        result={"waybill": waybill, "recalled": "parcel", "parcel_id": parcel.id,
                                "compartment": comp.id})

    def begin_return(self, auth: CourierAuth, panel: str, parcel_id: str) -> Decision:
        """The carrier's courier takes back a refused, overdue or recalled delivery."""
        return self._begin_courier_open("return.begin", PendingOp.RETURN, auth, panel,
                                        parcel_id=parcel_id, parcel_kind=ParcelKind.DELIVERY,
                                        statuses=tuple(RETURNABLE))

    def confirm_return(self, compartment_id: int) -> Decision:
        """Door closed after the courier took the parcel: returned, compartment free."""
        kind = "return.confirm"
        now = self.now()
        got = self._pending(kind, compartment_id, (PendingOp.RETURN,))
        if isinstance(got, Decision):
            return got
        comp, pending, parcel = got
        event = DomainEvent(parcel.carrier, "parcel.returned", {
            "parcel_id": parcel.id, "waybill": parcel.waybill, "compartment": comp.id,
            "courier_id": courier_of(pending.actor), "from_status": parcel.status.value,
            "returned_at": format_ts(now), **self._deadline(parcel)})
        return parcel_left(Record(kind, pending.actor, {"from_status": parcel.status.value},
                                  comp.id, parcel.id), parcel, comp, ParcelStatus.RETURNED,
                           now=now, events=(event,),
                           result={"parcel_id": parcel.id, "status": "returned"})

