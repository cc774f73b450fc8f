"""Delivery (Art. 22-24): a carrier's announcement, the courier's deposit and the pickup code it issues."""

from __future__ import annotations

from typing import Any

from lockerd.domain import rules
from lockerd.domain.decision import Decision, DomainEvent, Record
from lockerd.domain.errors import ErrorCode
from lockerd.domain.flows.core import RULE_MESSAGES, CabinetCore, courier_actor, refuse
from lockerd.domain.model import (
    Change,
    CompartmentState,
    Expectation,
    Parcel,
    ParcelKind,
    ParcelStatus,
    Pending,
    PendingOp,
    SetCompartment,
    SetExpectation,
    SetParcel,
    expectation_key,
)
from lockerd.domain.requests import CourierAuth, Delivery, Expect
from lockerd.domain.timefmt import format_ts


class DeliveryFlow(CabinetCore):
    """Expect, begin and confirm a deposit."""

    def expect_parcel(self, carrier: str, req: Expect) -> Decision:
        """`parcel.expect`: remember the carrier's consent and flags for a coming delivery."""
        kind = "parcel.expect"
        actor = f"carrier:{carrier}"
        body: dict[str, Any] = {"waybill": req.waybill, **req.model_dump(mode="json", exclude={"waybill"})}
        if carrier not in self.spec.carriers:
            return refuse(kind, actor, ErrorCode.UNKNOWN_CARRIER, "carrier not authorised here", body)
        if self._live_delivery(carrier, req.waybill) is not None:
            return refuse(kind, actor, ErrorCode.BAD_STATE, "this waybill is already in the cabinet",
                          body)
        exp = Expectation(carrier=carrier, expected_at=self.now(), **req.model_dump())
        # Announced either way: a refused one is remembered too, so the courier cannot deliver
        # it (Art. 22-23); the reply says at once that it must go to the recipient in person.
        refusal = rules.check_expectation(exp, self.spec.policy)
        return Decision(Record(kind, actor, {**body, "deliverable": refusal is None}),
                        changes=(SetExpectation(key=exp.key, value=exp),),
                        result={"waybill": req.waybill, "expected": True,
                                "deliverable": refusal is None,
                                "refusal": None if refusal is None else refusal.value})

    def begin_deposit(self, auth: CourierAuth, panel: str, req: Delivery) -> Decision:
        """Rules, then allocation: reserves the compartment whose door is to open."""
        kind = "deliver.begin"
        actor = courier_actor(auth.carrier, auth.courier_id)
        now = self.now()
        body: dict[str, Any] = {"panel": panel, "waybill": req.waybill, "size": req.size.value,
                                "flags": _flags(req)}
        _, refusal = self._authenticate(kind, actor, auth, panel, body)
        if refusal is not None:
            return refusal
        expected = self.state.expected.get(expectation_key(auth.carrier, req.waybill))
        body["expected"] = expected is not None
        if expected is None and auth.carrier in self.spec.expectation_required:
            return refuse(kind, actor, ErrorCode.NOT_EXPECTED, RULE_MESSAGES[ErrorCode.NOT_EXPECTED],
                          body)
        if expected is not None:
            req = rules.with_announcement(req, expected)
        code = rules.check_delivery(req, expected, self.spec.policy)
        if code is not None:
            return refuse(kind, actor, code, RULE_MESSAGES[code], body)
        if self._live_delivery(auth.carrier, req.waybill) is not None:
            return refuse(kind, actor, ErrorCode.BAD_STATE, "this waybill is already in the cabinet",
                          body)
        comp = rules.allocate(self.state.compartments.values(), req.size)
        if comp is None:
            return refuse(kind, actor, ErrorCode.NO_FREE_COMPARTMENT,
                          f"no free compartment of size {req.size.value} or larger", body)
        parcel = Parcel(id=self._new_parcel_id(), kind=ParcelKind.DELIVERY, carrier=auth.carrier,
                        status=ParcelStatus.DEPOSITING, compartment=comp.id, size=comp.size,
                        waybill=req.waybill, courier_id=auth.courier_id, created_at=now)
        reserved = comp.model_copy(update={
            "state": CompartmentState.RESERVED, "parcel_id": parcel.id,
            "pending": Pending(op=PendingOp.DEPOSIT, actor=actor, panel=panel, since=now)})
        return Decision(Record(kind, actor, body, comp.id, parcel.id),
                        changes=(*self._limiter_success(panel), SetParcel(value=parcel),
                                 SetCompartment(value=reserved)),
                        open_door=comp.id,
                        result={"parcel_id": parcel.id, "compartment": comp.id,
                                "size": comp.size.value})

    def confirm_deposit(self, compartment_id: int) -> Decision:
        """Door closed on the parcel: in_locker, pickup code issued, Art. 24 notice to the carrier."""
        kind = "deliver.confirm"
        now = self.now()
        got = self._pending(kind, compartment_id, (PendingOp.DEPOSIT,))
        if isinstance(got, Decision):
            return got
        comp, pending, parcel = got
        code = self._issue_code()
        if code is None:
            return refuse(kind, pending.actor, ErrorCode.CODE_SPACE_EXHAUSTED,
                          "no unused pickup code found", {}, compartment_id, parcel.id)
        deadline = rules.storage_deadline(now, self.spec.policy)
        stored = parcel.model_copy(update={"status": ParcelStatus.IN_LOCKER, "code": self._digest(code),
                                           "deposited_at": now, "deadline": deadline})
        occupied = comp.model_copy(update={"state": CompartmentState.OCCUPIED, "pending": None})
        note = rules.notice(self.spec, comp.size, deadline)
        event = DomainEvent(parcel.carrier, "parcel.deposited", {
            "parcel_id": parcel.id, "waybill": parcel.waybill, "courier_id": parcel.courier_id,
            "compartment": comp.id, "size": comp.size.value, "deposited_at": format_ts(now),
            **rules.deadline_fields(deadline, self.spec), "pickup_code": code, "notice": note})
        ekey = expectation_key(parcel.carrier, parcel.waybill or "")
        consumed: tuple[Change, ...] = ((SetExpectation(key=ekey, value=None),)
                                        if ekey in self.state.expected else ())
        return Decision(Record(kind, pending.actor, {"storage_deadline": format_ts(deadline)},
                               comp.id, parcel.id),
                        changes=(SetParcel(value=stored), SetCompartment(value=occupied), *consumed),
                        events=(event,),
                        result={"parcel_id": parcel.id, "compartment": comp.id,
                                "storage_deadline": format_ts(deadline), "notice": note})




def _flags(req: Delivery) -> dict[str, Any]:
    """The declared flags as the log records them (waybill and size have their own keys)."""
    return req.model_dump(exclude={"waybill", "size"})

