"""Drop-off and collection (Art. 11, 18-21): a sender leaves a parcel; its carrier collects or rejects it.

At drop-off the sender gets a retrieval code (kept only as a digest, shown once): after a
rejection it opens the compartment so the sender takes the item back (Art. 21).
"""

from __future__ import annotations

from typing import Any

from lockerd.domain import rules
from lockerd.domain.decision import Decision, DomainEvent, Record
from lockerd.domain.errors import ErrorCode
from lockerd.domain.flows.core import (
    RULE_MESSAGES,
    CabinetCore,
    courier_of,
    emptied,
    panel_actor,
    parcel_left,
    refuse,
)
from lockerd.domain.identity import IdentityCheck
from lockerd.domain.model import (
    CompartmentState,
    Parcel,
    ParcelKind,
    ParcelStatus,
    Pending,
    PendingOp,
    SetCompartment,
    SetParcel,
)
from lockerd.domain.requests import CourierAuth, Dropoff, RejectReason
from lockerd.domain.timefmt import format_ts


class DropoffFlow(CabinetCore):
    """Begin and confirm a drop-off; begin and confirm its collection."""

    def begin_dropoff(self, panel: str, req: Dropoff, *, intake_open: bool,
                      intake_reason: str | None = None,
                      identity: IdentityCheck | None = None) -> Decision:
        """Preconditions, then allocation for a sender's parcel addressed to `req.carrier`.

        `identity` is the sender's check made by the adapter (card or signed reference); without
        a passed one nothing opens (Art. 18). The chain keeps its method and outcome, the parcel
        the masked result (Art. 9 para. 2).
        """
        kind = "dropoff.begin"
        actor = panel_actor(panel)
        now = self.now()
        body: dict[str, Any] = {"panel": panel, "carrier": req.carrier, "size": req.size.value,
                                "waybill": req.waybill, "verification_ref": req.verification_ref,
                                "declared_contents": req.declared_contents,
                                "ack_insured_value": req.ack_insured_value,
                                "ack_prohibited_items": req.ack_prohibited_items}
        if identity is not None:
            body.update(identity.facts())
        if rules.looks_like_id_number(req.verification_ref) \
                or rules.looks_like_id_number(req.declared_contents):
            # never record what looks like an ID number, whatever else is refused (Art. 19)
            body["verification_ref"] = body["declared_contents"] = "<withheld>"
        if req.carrier not in self.spec.carriers:
            return refuse(kind, actor, ErrorCode.UNKNOWN_CARRIER, "carrier not authorised here", body)
        code = rules.check_dropoff(req, intake_open, identity)
        if code is not None:
            message = RULE_MESSAGES[code]
            if code is ErrorCode.INTAKE_CLOSED:
                reason = (intake_reason or "unknown")[:100]
                return refuse(kind, actor, code, f"{message} ({reason})", body,
                              result={"intake_reason": reason})
            return refuse(kind, actor, code, message, body)
        comp = rules.allocate(self.state.compartments.values(), req.size)
        if comp is None:
            return refuse(kind, actor, ErrorCode.NO_FREE_COMPARTMENT,
                          f"no free compartment of size {req.size.value} or larger", body)
        parcel = Parcel(id=self._new_parcel_id(), kind=ParcelKind.DROPOFF, carrier=req.carrier,
                        status=ParcelStatus.DEPOSITING, compartment=comp.id, size=comp.size,
                        waybill=req.waybill, created_at=now, declared_contents=req.declared_contents,
                        verification_ref=None if identity is None else identity.reference,
                        identity=identity)
        reserved = comp.model_copy(update={
            "state": CompartmentState.RESERVED, "parcel_id": parcel.id,
            "pending": Pending(op=PendingOp.DROPOFF, actor=actor, panel=panel, since=now)})
        return Decision(Record(kind, actor, body, comp.id, parcel.id),
                        changes=(SetParcel(value=parcel), SetCompartment(value=reserved)),
                        open_door=comp.id,
                        result={"parcel_id": parcel.id, "compartment": comp.id,
                                "size": comp.size.value})

    def confirm_dropoff(self, compartment_id: int) -> Decision:
        """Door closed on the sender's parcel: dropoff_received, the carrier is told."""
        kind = "dropoff.confirm"
        now = self.now()
        got = self._pending(kind, compartment_id, (PendingOp.DROPOFF,))
        if isinstance(got, Decision):
            return got
        comp, pending, parcel = got
        code = self._issue_code()
        if code is None:
            return refuse(kind, pending.actor, ErrorCode.CODE_SPACE_EXHAUSTED,
                          "no unused retrieval code found", {}, compartment_id, parcel.id)
        received = parcel.model_copy(update={"status": ParcelStatus.DROPOFF_RECEIVED,
                                             "deposited_at": now, "code": self._digest(code)})
        occupied = comp.model_copy(update={"state": CompartmentState.OCCUPIED, "pending": None})
        event = DomainEvent(parcel.carrier, "dropoff.received", {
            "parcel_id": parcel.id, "waybill": parcel.waybill, "compartment": comp.id,
            "size": comp.size.value, "received_at": format_ts(now),
            "declared_contents": parcel.declared_contents,
            "verification_ref": parcel.verification_ref,
            "identity_check": None if parcel.identity is None else parcel.identity.masked(),
            "acknowledged": {"insured_value_rules": True, "prohibited_items": True}})
        return Decision(Record(kind, pending.actor, {}, comp.id, parcel.id),
                        changes=(SetParcel(value=received), SetCompartment(value=occupied)),
                        events=(event,),
                        result={"parcel_id": parcel.id, "compartment": comp.id,
                                "received_at": format_ts(now), "retrieval_code": code})

    # ---- collection (Art. 20, 21) ---------------------------------------------------------

    def begin_collect(self, auth: CourierAuth, panel: str, parcel_id: str) -> Decision:
        """The carrier's courier opens a drop-off addressed to its carrier."""
        return self._begin_courier_open("collect.begin", PendingOp.COLLECT, auth, panel,
                                        parcel_id=parcel_id, parcel_kind=ParcelKind.DROPOFF,
                                        statuses=(ParcelStatus.DROPOFF_RECEIVED,))

    def confirm_collect(self, compartment_id: int, accept: bool,
                        reason: RejectReason | None = None) -> Decision:
        """Accept: collected, compartment free. Reject: item back in, door closed, rejected, operator
        notified (the parcel stays until staff clear the compartment)."""
        kind = "collect.confirm"
        now = self.now()
        got = self._pending(kind, compartment_id, (PendingOp.COLLECT,))
        if isinstance(got, Decision):
            return got
        comp, pending, parcel = got
        actor = pending.actor
        if accept:
            done = parcel.model_copy(update={"status": ParcelStatus.COLLECTED, "closed_at": now,
                                             "code": None})
            event = DomainEvent(parcel.carrier, "dropoff.collected", {
                "parcel_id": parcel.id, "waybill": parcel.waybill, "compartment": comp.id,
                "courier_id": courier_of(actor), "collected_at": format_ts(now)})
            return Decision(Record(kind, actor, {"accept": True}, comp.id, parcel.id),
                            changes=(SetParcel(value=done), SetCompartment(value=emptied(comp))),
                            events=(event,), result={"parcel_id": parcel.id, "status": "collected"})
        why = (reason or RejectReason.OTHER).value
        rejected = parcel.model_copy(update={"status": ParcelStatus.REJECTED, "reason": why,
                                             "rejected_at": now})
        back = comp.model_copy(update={"state": CompartmentState.OCCUPIED, "pending": None})
        event = DomainEvent(parcel.carrier, "dropoff.rejected", {
            "parcel_id": parcel.id, "waybill": parcel.waybill, "compartment": comp.id,
            "courier_id": courier_of(actor), "reason": why, "rejected_at": format_ts(now)})
        return Decision(Record(kind, actor, {"accept": False, "reason": why}, comp.id, parcel.id),
                        changes=(SetParcel(value=rejected), SetCompartment(value=back)),
                        events=(event,),
                        notify_operator=f"drop-off in compartment {comp.id} rejected at collection "
                                        f"({why}); its sender's retrieval code now opens it"
                                        if parcel.code is not None else
                                        f"drop-off in compartment {comp.id} rejected at collection "
                                        f"({why}); staff must clear it",
                        result={"parcel_id": parcel.id, "status": "rejected", "reason": why})

    def confirm_retrieval(self, compartment_id: int) -> Decision:
        """Door closed after the sender took back a rejected drop-off with the retrieval code."""
        kind = "retrieve.confirm"
        now = self.now()
        got = self._pending(kind, compartment_id, (PendingOp.RETRIEVE,))
        if isinstance(got, Decision):
            return got
        comp, pending, parcel = got
        event = DomainEvent(parcel.carrier, "dropoff.returned_to_sender", {
            "parcel_id": parcel.id, "waybill": parcel.waybill, "compartment": comp.id,
            "reason": parcel.reason, "returned_at": format_ts(now)})
        return parcel_left(Record(kind, pending.actor, {}, comp.id, parcel.id), parcel, comp,
                           ParcelStatus.RETURNED_TO_SENDER, now=now, events=(event,),
                           result={"parcel_id": parcel.id, "compartment": comp.id,
                            "status": ParcelStatus.RETURNED_TO_SENDER.value})

