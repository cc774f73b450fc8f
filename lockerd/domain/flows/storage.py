"""Storage periods as carriers run them (Art. 24, 25): resend the notice, extend the storage period."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from lockerd.domain import rules
from lockerd.domain.decision import Decision, DomainEvent, Record
from lockerd.domain.errors import ErrorCode
from lockerd.domain.flows.core import CabinetCore, refuse
from lockerd.domain.model import CODE_STATUSES, Parcel, ParcelStatus, SetParcel


class StorageFlow(CabinetCore):
    """`parcel.notice` and `parcel.extend`: only the carrier's own parcels still waiting for pickup."""

    def _waiting(self, kind: str, carrier: str, waybill: str, body: dict[str, Any]
                 ) -> Parcel | Decision:
        actor = f"carrier:{carrier}"
        if carrier not in self.spec.carriers:
            return refuse(kind, actor, ErrorCode.UNKNOWN_CARRIER, "carrier not authorised here", body)
        parcel = self._live_delivery(carrier, waybill)
        if parcel is None:
            return refuse(kind, actor, ErrorCode.UNKNOWN_PARCEL, "no such waybill waiting here", body)
        if parcel.status not in CODE_STATUSES or parcel.deadline is None:
            return refuse(kind, actor, ErrorCode.BAD_STATE, f"parcel is {parcel.status.value}", body,
                          parcel.compartment, parcel.id)
        return parcel

    def notice_parcel(self, carrier: str, waybill: str) -> Decision:
        """Send the Art. 24 notice again with the current deadline and fee (e.g. the recipient
        lost the message): a `parcel.notice_resent` event; the pickup code stays the one already sent."""
        kind = "parcel.notice"
        body: dict[str, Any] = {"waybill": waybill}
        got = self._waiting(kind, carrier, waybill, body)
        if isinstance(got, Decision):
            return got
        parcel = got
        assert parcel.deadline is not None
        deadline = rules.deadline_fields(parcel.deadline, self.spec)
        event = DomainEvent(carrier, "parcel.notice_resent", {
            "parcel_id": parcel.id, "waybill": waybill, "compartment": parcel.compartment,
            **deadline, "overdue": parcel.status is ParcelStatus.OVERDUE,
            "fee_cents": self._fee(parcel, self.now()),
            "notice": rules.notice(self.spec, parcel.size, parcel.deadline)})
        return Decision(Record(kind, f"carrier:{carrier}", body, parcel.compartment, parcel.id),
                        events=(event,), result={"waybill": waybill, "parcel_id": parcel.id,
                                                 **deadline})

    def extend_parcel(self, carrier: str, waybill: str, hours: int) -> Decision:
        """Push the storage deadline back by `hours` (repeatable up to the policy's total); an
        overdue parcel whose new deadline is still ahead waits for its recipient again."""
        kind = "parcel.extend"
        body: dict[str, Any] = {"waybill": waybill, "hours": hours}
        got = self._waiting(kind, carrier, waybill, body)
        if isinstance(got, Decision):
            return got
        parcel = got
        assert parcel.deadline is not None
        limit = int(self.spec.policy.max_extension / timedelta(hours=1))
        total = parcel.extended_hours + hours
        if hours < 1 or total > limit:
            return refuse(kind, f"carrier:{carrier}", ErrorCode.BAD_REQUEST,
                          f"a parcel's storage can be extended by at most {limit} hours in total "
                          f"({parcel.extended_hours} used)", body, parcel.compartment, parcel.id)
        now = self.now()
        deadline = parcel.deadline + timedelta(hours=hours)
        status = ParcelStatus.IN_LOCKER if deadline > now else parcel.status
        extended = parcel.model_copy(update={"deadline": deadline, "extended_hours": total,
                                             "status": status})
        facts = {"parcel_id": parcel.id, "waybill": waybill, "compartment": parcel.compartment,
                 "hours": hours, "extended_hours": total, "status": status.value,
                 **rules.deadline_fields(deadline, self.spec)}
        event = DomainEvent(carrier, "parcel.extended", {
            **facts, "notice": rules.notice(self.spec, parcel.size, deadline)})
        return Decision(Record(kind, f"carrier:{carrier}",
                               {**body, "extended_hours": total, "status": status.value},
                               parcel.compartment, parcel.id),
                        changes=(SetParcel(value=extended),), events=(event,), result=facts)
