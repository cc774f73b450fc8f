"""The cabinet as a pure state machine: each command returns a Decision; only `apply` changes state.

Use: decide (a method below), record the decision in the operation log, `apply` it, then move the
door; the door's outcome is fed back as the matching confirm/`door_failed` command. Decisions are
made against the current state, so the caller serialises decide-record-apply (one lock).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Iterator
from datetime import datetime
from typing import Any

from lockerd.domain import limiter, rules
from lockerd.domain.decision import Decision, DomainEvent, Record
from lockerd.domain.errors import ErrorCode
from lockerd.domain.ids import COURIER_PATTERN, Size
from lockerd.domain.model import (
    CHANGES,
    CODE_STATUSES,
    LIVE_STATUSES,
    CabinetState,
    Change,
    Compartment,
    CompartmentState,
    Courier,
    Expectation,
    Parcel,
    ParcelKind,
    ParcelStatus,
    Pending,
    PendingOp,
    SetCompartment,
    SetCourier,
    SetExpectation,
    SetLimiter,
    SetParcel,
    courier_key,
    expectation_key,
)
from lockerd.domain.pins import (
    MIN_SUPPLIED_ITERATIONS,
    hash_pin,
    pin_hash_is_valid,
    pin_is_acceptable,
    verify_pin,
)
from lockerd.domain.requests import (
    CourierAuth,
    Delivery,
    DoorFailure,
    Dropoff,
    Expect,
    RefusalReason,
    RejectReason,
)
from lockerd.domain.spec import CabinetSpec, Rng
from lockerd.domain.timefmt import format_ts

Clock = Callable[[], datetime]
#: Maps a pickup code to what the state keeps of it (the daemon: a keyed HMAC; tests: identity).
CodeDigest = Callable[[str], str]


def initial_state(spec: CabinetSpec) -> CabinetState:
    """All compartments free, no parcels, no couriers."""
    return CabinetState(compartments={cid: Compartment(id=cid, size=size)
                                      for cid, size in spec.compartments})


def courier_actor(carrier: str, courier_id: str) -> str:
    """Actor string of a courier in the log."""
    return f"courier:{carrier}/{courier_id}"


def panel_actor(panel: str) -> str:
    """Actor string of an anonymous panel user (recipient, sender)."""
    return f"panel:{panel}"


class Cabinet:
    """Pure decisions over a CabinetState; clock and random source are injected."""

    def __init__(self, spec: CabinetSpec, clock: Clock, rng: Rng,
                 state: CabinetState | None = None, *, code_digest: CodeDigest | None = None) -> None:
        self.spec = spec
        self._clock = clock
        self._rng = rng
        # Parcel.code holds digest(code): the clear code only leaves in the carrier's event.
        self._digest: CodeDigest = code_digest or (lambda code: code)
        self.state = state if state is not None else initial_state(spec)

    # ---- persistence -------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-able snapshot of the whole state."""
        return self.state.model_dump(mode="json")

    @classmethod
    def from_dict(cls, spec: CabinetSpec, clock: Clock, rng: Rng, data: dict[str, Any]) -> Cabinet:
        """Rebuild from a snapshot; compartments added to the config since are added free."""
        state = CabinetState.model_validate(data)
        for cid, size in spec.compartments:
            state.compartments.setdefault(cid, Compartment(id=cid, size=size))
        return cls(spec, clock, rng, state)

    @classmethod
    def replay(cls, spec: CabinetSpec, clock: Clock, rng: Rng, recorded: Iterable[Any]) -> Cabinet:
        """Rebuild by applying every decision's logged changes (`Decision.changes_json()`), in order.

        Each item is validated again: a damaged log row fails loudly instead of corrupting state.
        """
        cab = cls(spec, clock, rng)
        for changes in recorded:
            cab.state.apply(CHANGES.validate_python(changes))
        return cab

    def apply(self, decision: Decision) -> None:
        """Make a recorded decision's changes the current state."""
        self.state.apply(decision.changes)

    # ---- queries -------------------------------------------------------------------------------

    def now(self) -> datetime:
        """The injected clock; naive times are a programming error (events carry UTC)."""
        ts = self._clock()
        if ts.tzinfo is None:
            raise ValueError("the domain clock must return timezone-aware datetimes")
        return ts

    def live_parcels(self) -> list[Parcel]:
        """Parcels physically in (or going into) a compartment."""
        return [p for p in self.state.parcels.values() if p.status in LIVE_STATUSES]

    def free_counts(self) -> dict[str, int]:
        """Free compartments per size (for the retained `state` message)."""
        counts = {s.value: 0 for s in Size}
        for comp in self.state.compartments.values():
            if comp.state is CompartmentState.FREE:
                counts[comp.size.value] += 1
        return counts

    def blocked(self) -> list[int]:
        """Ids of blocked compartments."""
        return sorted(c.id for c in self.state.compartments.values()
                      if c.state is CompartmentState.BLOCKED)

    def worklist(self, carrier: str) -> dict[str, list[dict[str, Any]]]:
        """What a carrier's courier should take away: refused/overdue deliveries and drop-offs."""
        to_return = [_brief(p) for p in self.state.parcels.values()
                     if p.carrier == carrier and p.kind is ParcelKind.DELIVERY
                     and p.status in RETURNABLE]
        to_collect = [_brief(p) for p in self.state.parcels.values()
                      if p.carrier == carrier and p.status is ParcelStatus.DROPOFF_RECEIVED]
        return {"to_return": sorted(to_return, key=lambda b: b["compartment"]),
                "to_collect": sorted(to_collect, key=lambda b: b["compartment"])}

    # ---- couriers (Art. 16) --------------------------------------------------------------------

    def grant_courier(self, carrier: str, courier_id: str, expires: datetime, *,
                      pin: str | None = None, pin_hash: str | None = None) -> Decision:
        """A carrier grants (or re-grants) one of its couriers a PIN valid until `expires`."""
        now = self.now()
        actor = f"carrier:{carrier}"
        body: dict[str, Any] = {"carrier": carrier, "courier_id": courier_id,
                                "expires": format_ts(expires) if expires.tzinfo else None}
        kind = "courier.grant"
        if carrier not in self.spec.carriers:
            return _refuse(kind, actor, ErrorCode.UNKNOWN_CARRIER, "carrier not authorised here", body)
        if not _COURIER_ID.match(courier_id):
            body["courier_id"] = "<invalid>"
            return _refuse(kind, actor, ErrorCode.BAD_REQUEST,
                           "courier_id: 1-64 letters, digits, '.', '_' or '-'", body)
        if expires.tzinfo is None or expires <= now:
            return _refuse(kind, actor, ErrorCode.INVALID_EXPIRY, "expiry must be in the future", body)
        if (pin is None) == (pin_hash is None):
            return _refuse(kind, actor, ErrorCode.BAD_PIN_HASH, "give exactly one of pin, pin_hash",
                           body)
        if pin is not None:
            if not pin_is_acceptable(pin):
                return _refuse(kind, actor, ErrorCode.WEAK_PIN,
                               "PIN must be 6-12 digits, not repeated or sequential", body)
            salt = self._rng.getrandbits(128).to_bytes(16, "big")
            encoded = hash_pin(pin, salt, self.spec.policy.pin_hash_iterations)
        else:
            assert pin_hash is not None
            if not pin_hash_is_valid(pin_hash, MIN_SUPPLIED_ITERATIONS):
                return _refuse(kind, actor, ErrorCode.BAD_PIN_HASH,
                               "pin_hash must be pbkdf2_sha256 with at least "
                               f"{MIN_SUPPLIED_ITERATIONS} iterations", body)
            encoded = pin_hash
        courier = Courier(carrier=carrier, courier_id=courier_id, pin_hash=encoded, expires=expires,
                          granted_at=now)
        event = DomainEvent(carrier, "courier.granted",
                            {"courier_id": courier_id, "expires": format_ts(expires)})
        return Decision(Record(kind, actor, body), changes=(SetCourier(value=courier),),
                        events=(event,), result={"courier_id": courier_id,
                                                 "expires": format_ts(expires)})

    def revoke_courier(self, carrier: str, courier_id: str) -> Decision:
        """Revocation takes effect on the courier's next command (every command re-checks)."""
        now = self.now()
        actor = f"carrier:{carrier}"
        body: dict[str, Any] = {"carrier": carrier, "courier_id": courier_id}
        kind = "courier.revoke"
        if carrier not in self.spec.carriers:
            return _refuse(kind, actor, ErrorCode.UNKNOWN_CARRIER, "carrier not authorised here", body)
        courier = self.state.couriers.get(courier_key(carrier, courier_id))
        if courier is None:
            return _refuse(kind, actor, ErrorCode.UNKNOWN_COURIER, "no such courier", body)
        if courier.revoked_at is not None:
            return Decision(Record(kind, actor, {**body, "already": True}),
                            result={"courier_id": courier_id, "revoked_at": format_ts(courier.revoked_at)})
        revoked = courier.model_copy(update={"revoked_at": now})
        event = DomainEvent(carrier, "courier.revoked",
                            {"courier_id": courier_id, "revoked_at": format_ts(now)})
        return Decision(Record(kind, actor, body), changes=(SetCourier(value=revoked),),
                        events=(event,), result={"courier_id": courier_id, "revoked_at": format_ts(now)})

    def courier_login(self, auth: CourierAuth, panel: str) -> Decision:
        """Check a courier's credentials at a panel; the result lists its work at this cabinet."""
        kind = "courier.login"
        actor = courier_actor(auth.carrier, auth.courier_id)
        body: dict[str, Any] = {"panel": panel}
        courier, refusal = self._authenticate(kind, actor, auth, panel, body)
        if refusal is not None:
            return refusal
        assert courier is not None
        return Decision(Record(kind, actor, body), changes=self._limiter_success(panel),
                        result={"carrier": auth.carrier, "courier_id": auth.courier_id,
                                "expires": format_ts(courier.expires), **self.worklist(auth.carrier)})

    # ---- delivery (Art. 22-24) -----------------------------------------------------------------

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
        if expected is not None:
            req = _merge_expectation(req, expected)
            body["expected"] = True
        code = rules.check_consent(req) or rules.check_acceptance(req, self.spec.policy)
        if code is not None:
            return _refuse(kind, actor, code, _RULE_MESSAGES[code], body)
        if self._live_delivery(auth.carrier, req.waybill) is not None:
            return _refuse(kind, actor, ErrorCode.BAD_STATE, "this waybill is already in the cabinet",
                           body)
        comp = rules.allocate(self.state.compartments.values(), req.size)
        if comp is None:
            return _refuse(kind, actor, ErrorCode.NO_FREE_COMPARTMENT,
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
        taken = _Digested({p.code for p in self.live_parcels() if p.code is not None}, self._digest)
        code = rules.new_code(self._rng, self.spec.policy.code_digits, taken)
        if code is None:
            return _refuse(kind, pending.actor, ErrorCode.CODE_SPACE_EXHAUSTED,
                           "no unused pickup code found", {}, compartment_id, parcel.id)
        deadline = rules.storage_deadline(now, self.spec.policy)
        stored = parcel.model_copy(update={"status": ParcelStatus.IN_LOCKER, "code": self._digest(code),
                                           "deposited_at": now, "deadline": deadline})
        occupied = comp.model_copy(update={"state": CompartmentState.OCCUPIED, "pending": None})
        note = rules.notice(self.spec, comp.size, deadline)
        event = DomainEvent(parcel.carrier, "parcel.deposited", {
            "parcel_id": parcel.id, "waybill": parcel.waybill, "courier_id": parcel.courier_id,
            "compartment": comp.id, "size": comp.size.value, "deposited_at": format_ts(now),
            "storage_deadline": format_ts(deadline), "pickup_code": code, "notice": note})
        ekey = expectation_key(parcel.carrier, parcel.waybill or "")
        consumed: tuple[Change, ...] = ((SetExpectation(key=ekey, value=None),)
                                        if ekey in self.state.expected else ())
        return Decision(Record(kind, pending.actor, {"storage_deadline": format_ts(deadline)},
                               comp.id, parcel.id),
                        changes=(SetParcel(value=stored), SetCompartment(value=occupied), *consumed),
                        events=(event,),
                        result={"parcel_id": parcel.id, "compartment": comp.id,
                                "storage_deadline": format_ts(deadline), "notice": note})

    # ---- pickup and refusal (Art. 25, 26) -----------------------------------------------------

    def begin_pickup(self, panel: str, code: str) -> Decision:
        """A recipient's code opens its compartment; wrong codes count against the panel."""
        kind = "pickup.begin"
        actor = panel_actor(panel)
        now = self.now()
        body: dict[str, Any] = {"panel": panel}
        until = limiter.locked_until(self.state.limiters.get(panel), now)
        if until is not None:
            return _refuse(kind, actor, ErrorCode.LOCKED_OUT, "too many wrong codes; try later",
                           body, result={"locked_until": format_ts(until)})
        digest = self._digest(code)
        parcel = next((p for p in self.live_parcels()
                       if p.code is not None and p.status in CODE_STATUSES and p.code == digest), None)
        if parcel is None:
            return self._wrong_credential(kind, actor, panel, code=ErrorCode.WRONG_CODE,
                                          message="unknown pickup code", body=body)
        comp = self.state.compartments[parcel.compartment]
        if comp.state is CompartmentState.BLOCKED:
            return _refuse(kind, actor, ErrorCode.COMPARTMENT_BLOCKED,
                           "compartment out of service; staff are notified", body, comp.id, parcel.id)
        if comp.state is not CompartmentState.OCCUPIED:
            return _refuse(kind, actor, ErrorCode.BAD_STATE, "compartment busy", body, comp.id,
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
                        changes=(SetParcel(value=done), SetCompartment(value=_emptied(comp))),
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

    # ---- drop-off (Art. 11, 18, 19) -------------------------------------------------------------

    def begin_dropoff(self, panel: str, req: Dropoff, *, intake_open: bool,
                      intake_reason: str | None = None) -> Decision:
        """Preconditions, then allocation for a sender's parcel addressed to `req.carrier`."""
        kind = "dropoff.begin"
        actor = panel_actor(panel)
        now = self.now()
        body: dict[str, Any] = {"panel": panel, "carrier": req.carrier, "size": req.size.value,
                                "waybill": req.waybill, "verification_ref": req.verification_ref,
                                "declared_contents": req.declared_contents,
                                "ack_insured_value": req.ack_insured_value,
                                "ack_prohibited_items": req.ack_prohibited_items}
        if rules.looks_like_id_number(req.verification_ref) \
                or rules.looks_like_id_number(req.declared_contents):
            # never record what looks like an ID number, whatever else is refused (Art. 19)
            body["verification_ref"] = body["declared_contents"] = "<withheld>"
        if req.carrier not in self.spec.carriers:
            return _refuse(kind, actor, ErrorCode.UNKNOWN_CARRIER, "carrier not authorised here", body)
        code = rules.check_dropoff(req, intake_open)
        if code is not None:
            message = _RULE_MESSAGES[code]
            if code is ErrorCode.INTAKE_CLOSED:
                reason = (intake_reason or "unknown")[:100]
                return _refuse(kind, actor, code, f"{message} ({reason})", body,
                               result={"intake_reason": reason})
            return _refuse(kind, actor, code, message, body)
        comp = rules.allocate(self.state.compartments.values(), req.size)
        if comp is None:
            return _refuse(kind, actor, ErrorCode.NO_FREE_COMPARTMENT,
                           f"no free compartment of size {req.size.value} or larger", body)
        parcel = Parcel(id=self._new_parcel_id(), kind=ParcelKind.DROPOFF, carrier=req.carrier,
                        status=ParcelStatus.DEPOSITING, compartment=comp.id, size=comp.size,
                        waybill=req.waybill, created_at=now, declared_contents=req.declared_contents,
                        verification_ref=req.verification_ref)
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
        received = parcel.model_copy(update={"status": ParcelStatus.DROPOFF_RECEIVED,
                                             "deposited_at": now})
        occupied = comp.model_copy(update={"state": CompartmentState.OCCUPIED, "pending": None})
        event = DomainEvent(parcel.carrier, "dropoff.received", {
            "parcel_id": parcel.id, "waybill": parcel.waybill, "compartment": comp.id,
            "size": comp.size.value, "received_at": format_ts(now),
            "declared_contents": parcel.declared_contents,
            "verification_ref": parcel.verification_ref,
            "acknowledged": {"insured_value_rules": True, "prohibited_items": True}})
        return Decision(Record(kind, pending.actor, {}, comp.id, parcel.id),
                        changes=(SetParcel(value=received), SetCompartment(value=occupied)),
                        events=(event,),
                        result={"parcel_id": parcel.id, "compartment": comp.id,
                                "received_at": format_ts(now)})

    # ---- collection (Art. 20, 21) and return ----------------------------------------------------

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
            done = parcel.model_copy(update={"status": ParcelStatus.COLLECTED, "closed_at": now})
            event = DomainEvent(parcel.carrier, "dropoff.collected", {
                "parcel_id": parcel.id, "waybill": parcel.waybill, "compartment": comp.id,
                "courier_id": _courier_of(actor), "collected_at": format_ts(now)})
            return Decision(Record(kind, actor, {"accept": True}, comp.id, parcel.id),
                            changes=(SetParcel(value=done), SetCompartment(value=_emptied(comp))),
                            events=(event,), result={"parcel_id": parcel.id, "status": "collected"})
        why = (reason or RejectReason.OTHER).value
        rejected = parcel.model_copy(update={"status": ParcelStatus.REJECTED, "reason": why})
        back = comp.model_copy(update={"state": CompartmentState.OCCUPIED, "pending": None})
        event = DomainEvent(parcel.carrier, "dropoff.rejected", {
            "parcel_id": parcel.id, "waybill": parcel.waybill, "compartment": comp.id,
            "courier_id": _courier_of(actor), "reason": why, "rejected_at": format_ts(now)})
        return Decision(Record(kind, actor, {"accept": False, "reason": why}, comp.id, parcel.id),
                        changes=(SetParcel(value=rejected), SetCompartment(value=back)),
                        events=(event,),
                        notify_operator=f"drop-off in compartment {comp.id} rejected at collection "
                                        f"({why})",
                        result={"parcel_id": parcel.id, "status": "rejected", "reason": why})

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
        done = parcel.model_copy(update={"status": ParcelStatus.RETURNED, "code": None,
                                         "closed_at": now})
        event = DomainEvent(parcel.carrier, "parcel.returned", {
            "parcel_id": parcel.id, "waybill": parcel.waybill, "compartment": comp.id,
            "courier_id": _courier_of(pending.actor), "from_status": parcel.status.value,
            "returned_at": format_ts(now)})
        return Decision(Record(kind, pending.actor, {"from_status": parcel.status.value},
                               comp.id, parcel.id),
                        changes=(SetParcel(value=done), SetCompartment(value=_emptied(comp))),
                        events=(event,), result={"parcel_id": parcel.id, "status": "returned"})

    # ---- carrier commands on parcels (DESIGN section 4) ---------------------------------------------

    def expect_parcel(self, carrier: str, req: Expect) -> Decision:
        """`parcel.expect`: remember the carrier's consent and flags for a coming delivery."""
        kind = "parcel.expect"
        actor = f"carrier:{carrier}"
        body: dict[str, Any] = {"waybill": req.waybill, **req.model_dump(mode="json", exclude={"waybill"})}
        if carrier not in self.spec.carriers:
            return _refuse(kind, actor, ErrorCode.UNKNOWN_CARRIER, "carrier not authorised here", body)
        if self._live_delivery(carrier, req.waybill) is not None:
            return _refuse(kind, actor, ErrorCode.BAD_STATE, "this waybill is already in the cabinet",
                           body)
        exp = Expectation(carrier=carrier, expected_at=self.now(), **req.model_dump())
        return Decision(Record(kind, actor, body), changes=(SetExpectation(key=exp.key, value=exp),),
                        result={"waybill": req.waybill, "expected": True})

    def recall_parcel(self, carrier: str, waybill: str) -> Decision:
        """`parcel.recall`: forget an expectation, or stop the code of a waiting parcel so the
        carrier's courier can take it back."""
        kind = "parcel.recall"
        actor = f"carrier:{carrier}"
        body: dict[str, Any] = {"waybill": waybill}
        if carrier not in self.spec.carriers:
            return _refuse(kind, actor, ErrorCode.UNKNOWN_CARRIER, "carrier not authorised here", body)
        key = expectation_key(carrier, waybill)
        if key in self.state.expected:
            return Decision(Record(kind, actor, body), changes=(SetExpectation(key=key, value=None),),
                            result={"waybill": waybill, "recalled": "expectation"})
        parcel = self._live_delivery(carrier, waybill)
        if parcel is None:
            return _refuse(kind, actor, ErrorCode.UNKNOWN_PARCEL, "no such waybill waiting here", body)
        comp = self.state.compartments[parcel.compartment]
        if parcel.status not in CODE_STATUSES or comp.pending is not None:
            return _refuse(kind, actor, ErrorCode.BAD_STATE, f"parcel is {parcel.status.value}", body,
                           comp.id, parcel.id)
        recalled = parcel.model_copy(update={"status": ParcelStatus.RECALLED, "code": None})
        return Decision(Record(kind, actor, body, comp.id, parcel.id),
                        changes=(SetParcel(value=recalled),),
                        result={"waybill": waybill, "recalled": "parcel", "parcel_id": parcel.id,
                                "compartment": comp.id})

    def _live_delivery(self, carrier: str, waybill: str) -> Parcel | None:
        return next((p for p in self.live_parcels() if p.carrier == carrier and p.waybill == waybill
                     and p.kind is ParcelKind.DELIVERY), None)

    # ---- door failures, time, maintenance -------------------------------------------------------

    def door_failed(self, compartment_id: int, failure: DoorFailure) -> Decision:
        """A begun operation whose door never opened, jammed or never closed.

        Deposits and drop-offs are rolled back (the parcel never counted as stored). For pickup,
        return and collection the parcel keeps its status. A jammed door or one left open blocks
        the compartment so no customer flow uses it until staff have looked.
        """
        comp = self.state.compartments.get(compartment_id)
        op = comp.pending.op.value if comp is not None and comp.pending is not None else "open"
        kind = f"{op}.rollback"
        got = self._pending(kind, compartment_id, tuple(PendingOp))
        if isinstance(got, Decision):
            return got
        comp, pending, parcel = got
        now = self.now()
        # Nothing moved (not opened), or the parcel simply stayed (still inside): no block.
        # A deposit the sensor did not see may still be in there: staff must look.
        block = failure not in (DoorFailure.NOT_OPENED, DoorFailure.ITEM_STILL_INSIDE)
        blocked_reason = {DoorFailure.JAMMED: "door_jammed",
                          DoorFailure.NOT_CLOSED: "door_left_open",
                          DoorFailure.ITEM_NOT_SEEN: "occupancy_mismatch"}.get(failure)
        body = {"failure": failure.value, "blocked": block}
        changes: tuple[Change, ...]
        if pending.op in (PendingOp.DEPOSIT, PendingOp.DROPOFF):
            gone = parcel.model_copy(update={"status": ParcelStatus.ROLLED_BACK, "closed_at": now,
                                             "reason": failure.value})
            after = comp.model_copy(update={
                "state": CompartmentState.BLOCKED if block else CompartmentState.FREE,
                "parcel_id": None, "pending": None, "blocked_reason": blocked_reason})
            changes = (SetParcel(value=gone), SetCompartment(value=after))
            result = {"parcel_id": parcel.id, "status": "rolled_back", "blocked": block}
        else:
            after = comp.model_copy(update={
                "state": CompartmentState.BLOCKED if block else CompartmentState.OCCUPIED,
                "pending": None, "blocked_reason": blocked_reason})
            changes = (SetCompartment(value=after),)
            result = {"parcel_id": parcel.id, "status": parcel.status.value, "blocked": block}
        return Decision(Record(kind, pending.actor, body, comp.id, parcel.id), changes=changes,
                        notify_operator=(f"compartment {comp.id} blocked: {blocked_reason}"
                                         if block else None),
                        result=result)

    def sweep_overdue(self) -> Decision:
        """Parcels past their storage period become overdue (one event each to their carrier)."""
        now = self.now()
        changes: list[Change] = []
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
                "storage_deadline": format_ts(parcel.deadline), "overdue_at": format_ts(now)}))
        return Decision(Record("overdue.sweep", "system", {"parcels": ids}), changes=tuple(changes),
                        events=tuple(events), result={"overdue": ids})

    def block(self, compartment_id: int, reason: str, actor: str) -> Decision:
        """Take a compartment out of customer use (fault, maintenance, forced door)."""
        kind = "compartment.block"
        body = {"reason": reason[:100]}
        comp = self.state.compartments.get(compartment_id)
        if comp is None:
            return _refuse(kind, actor, ErrorCode.UNKNOWN_COMPARTMENT, "no such compartment", body)
        if comp.state not in (CompartmentState.FREE, CompartmentState.OCCUPIED, CompartmentState.BLOCKED):
            return _refuse(kind, actor, ErrorCode.BAD_STATE, "a door operation is under way", body,
                           comp.id)
        after = comp.model_copy(update={"state": CompartmentState.BLOCKED, "blocked_reason": reason[:100]})
        return Decision(Record(kind, actor, body, comp.id, comp.parcel_id),
                        changes=(SetCompartment(value=after),), result={"compartment": comp.id})

    def unblock(self, compartment_id: int, actor: str) -> Decision:
        """Return a blocked compartment to service (occupied if a parcel is still inside)."""
        kind = "compartment.unblock"
        comp = self.state.compartments.get(compartment_id)
        if comp is None:
            return _refuse(kind, actor, ErrorCode.UNKNOWN_COMPARTMENT, "no such compartment", {})
        if comp.state is not CompartmentState.BLOCKED:
            return _refuse(kind, actor, ErrorCode.BAD_STATE, "compartment is not blocked", {}, comp.id)
        state = CompartmentState.OCCUPIED if comp.parcel_id else CompartmentState.FREE
        after = comp.model_copy(update={"state": state, "blocked_reason": None})
        return Decision(Record(kind, actor, {}, comp.id, comp.parcel_id),
                        changes=(SetCompartment(value=after),),
                        result={"compartment": comp.id, "state": state.value})

    def clear(self, compartment_id: int, actor: str) -> Decision:
        """Staff took the parcel out (e.g. a rejected drop-off): removed, compartment emptied."""
        kind = "compartment.clear"
        now = self.now()
        comp = self.state.compartments.get(compartment_id)
        if comp is None:
            return _refuse(kind, actor, ErrorCode.UNKNOWN_COMPARTMENT, "no such compartment", {})
        if comp.pending is not None or comp.parcel_id is None:
            return _refuse(kind, actor, ErrorCode.BAD_STATE, "nothing to clear", {}, comp.id)
        parcel = self.state.parcels[comp.parcel_id]
        removed = parcel.model_copy(update={"status": ParcelStatus.REMOVED, "code": None,
                                            "closed_at": now})
        after = comp.model_copy(update={
            "parcel_id": None,
            "state": CompartmentState.BLOCKED if comp.state is CompartmentState.BLOCKED
            else CompartmentState.FREE})
        return Decision(Record(kind, actor, {"from_status": parcel.status.value}, comp.id, parcel.id),
                        changes=(SetParcel(value=removed), SetCompartment(value=after)),
                        notify_operator=f"parcel removed from compartment {comp.id} by staff",
                        result={"parcel_id": parcel.id, "from_status": parcel.status.value})

    # ---- helpers -------------------------------------------------------------------------------

    def _new_parcel_id(self) -> str:
        while True:
            pid = rules.new_id(self._rng, "p")
            if pid not in self.state.parcels:
                return pid

    def _limiter_success(self, panel: str) -> tuple[Change, ...]:
        cleared = limiter.record_success(self.state.limiters.get(panel))
        return () if cleared is None else (SetLimiter(value=cleared),)

    def _wrong_credential(self, kind: str, actor: str, panel: str, *, code: ErrorCode, message: str,
                          body: dict[str, Any]) -> Decision:
        now = self.now()
        lim = limiter.record_failure(self.state.limiters.get(panel), panel, now, self.spec.policy)
        result: dict[str, Any] = {"attempts_left": max(0, self.spec.policy.wrong_code_limit
                                                       - len(lim.failures))}
        if lim.locked_until is not None and lim.locked_until > now:
            result = {"attempts_left": 0, "locked_until": format_ts(lim.locked_until)}
        return _refuse(kind, actor, code, message, {**body, **result},
                       changes=(SetLimiter(value=lim),), result=result)

    def _authenticate(self, kind: str, actor: str, auth: CourierAuth, panel: str,
                      body: dict[str, Any]) -> tuple[Courier | None, Decision | None]:
        """Art. 16 and the courier's grant, re-checked on every command."""
        now = self.now()
        until = limiter.locked_until(self.state.limiters.get(panel), now)
        if until is not None:
            return None, _refuse(kind, actor, ErrorCode.LOCKED_OUT, "too many wrong attempts; try later",
                                 body, result={"locked_until": format_ts(until)})
        if auth.carrier not in self.spec.carriers:
            return None, _refuse(kind, actor, ErrorCode.UNKNOWN_CARRIER, "carrier not authorised here",
                                 body)
        courier = self.state.couriers.get(courier_key(auth.carrier, auth.courier_id))
        # an unknown courier id and a wrong PIN look the same from the panel (no enumeration)
        if courier is None or not verify_pin(auth.pin, courier.pin_hash):
            return None, self._wrong_credential(kind, actor, panel, code=ErrorCode.BAD_PIN,
                                                message="courier id or PIN wrong", body=body)
        if courier.revoked_at is not None:
            return None, _refuse(kind, actor, ErrorCode.COURIER_REVOKED, "courier revoked by carrier",
                                 body)
        if courier.expires <= now:
            return None, _refuse(kind, actor, ErrorCode.COURIER_EXPIRED, "courier grant expired", body)
        return courier, None

    def _begin_courier_open(self, kind: str, op: PendingOp, auth: CourierAuth, panel: str, *,
                            parcel_id: str, parcel_kind: ParcelKind,
                            statuses: tuple[ParcelStatus, ...]) -> Decision:
        actor = courier_actor(auth.carrier, auth.courier_id)
        now = self.now()
        body: dict[str, Any] = {"panel": panel}
        _, refusal = self._authenticate(kind, actor, auth, panel, body)
        if refusal is not None:
            return refusal
        parcel = self.state.parcels.get(parcel_id)
        if parcel is None:
            return _refuse(kind, actor, ErrorCode.UNKNOWN_PARCEL, "no such parcel", body)
        if parcel.carrier != auth.carrier:
            return _refuse(kind, actor, ErrorCode.NOT_YOUR_PARCEL, "parcel of another carrier", body)
        if parcel.kind is not parcel_kind or parcel.status not in statuses:
            return _refuse(kind, actor, ErrorCode.BAD_STATE,
                           f"parcel is {parcel.status.value}, not {'/'.join(s.value for s in statuses)}",
                           body, parcel.compartment, parcel.id)
        comp = self.state.compartments[parcel.compartment]
        if comp.state is CompartmentState.BLOCKED:
            return _refuse(kind, actor, ErrorCode.COMPARTMENT_BLOCKED, "compartment out of service",
                           body, comp.id, parcel.id)
        if comp.state is not CompartmentState.OCCUPIED:
            return _refuse(kind, actor, ErrorCode.BAD_STATE, "compartment busy", body, comp.id,
                           parcel.id)
        opening = comp.model_copy(update={
            "state": CompartmentState.OPENING,
            "pending": Pending(op=op, actor=actor, panel=panel, since=now)})
        return Decision(Record(kind, actor, body, comp.id, parcel.id),
                        changes=(*self._limiter_success(panel), SetCompartment(value=opening)),
                        open_door=comp.id,
                        result={"parcel_id": parcel.id, "compartment": comp.id})

    def _pending(self, kind: str, compartment_id: int, ops: tuple[PendingOp, ...]
                 ) -> tuple[Compartment, Pending, Parcel] | Decision:
        """The compartment, its open operation and its parcel, or a refusal."""
        comp = self.state.compartments.get(compartment_id)
        if comp is None:
            return _refuse(kind, "system", ErrorCode.UNKNOWN_COMPARTMENT, "no such compartment", {})
        if comp.pending is None or comp.pending.op not in ops or comp.parcel_id is None:
            return _refuse(kind, "system", ErrorCode.BAD_STATE, "no matching door operation under way",
                           {}, comp.id)
        return comp, comp.pending, self.state.parcels[comp.parcel_id]


class _Digested(Collection[str]):
    """Codes taken by live parcels, seen through the digest the state keeps them under."""

    def __init__(self, digests: set[str], digest: CodeDigest) -> None:
        self._digests = digests
        self._digest = digest

    def __contains__(self, code: object) -> bool:
        return isinstance(code, str) and self._digest(code) in self._digests

    def __iter__(self) -> Iterator[str]:
        return iter(self._digests)

    def __len__(self) -> int:
        return len(self._digests)


_COURIER_ID = re.compile(COURIER_PATTERN)
RETURNABLE = frozenset({ParcelStatus.REFUSED, ParcelStatus.OVERDUE, ParcelStatus.RECALLED})


def _merge_expectation(req: Delivery, exp: Expectation) -> Delivery:
    """The carrier's announcement adds consent and flags; it never removes what the courier declared."""
    return req.model_copy(update={
        "consent": req.consent or exp.consent,
        "sender_chose_locker": req.sender_chose_locker or exp.sender_chose_locker,
        "fresh": req.fresh or exp.fresh,
        "valuable": req.valuable or exp.valuable,
        "agreement": req.agreement or exp.agreement,
        "declared_weight_g": req.declared_weight_g if req.declared_weight_g is not None
        else exp.declared_weight_g,
    })


_RULE_MESSAGES: dict[ErrorCode, str] = {
    ErrorCode.NO_CONSENT: "no recipient consent and the sender did not choose a locker (Art. 22)",
    ErrorCode.DAMAGED: "packaging damaged: hand over in person (Art. 23)",
    ErrorCode.WEIGHT_MISMATCH: "weight differs from the waybill (Art. 23)",
    ErrorCode.FRESH: "fresh produce needs an agreement for locker delivery (Art. 23)",
    ErrorCode.VALUABLE: "valuables need an agreement for locker delivery (Art. 23)",
    ErrorCode.INTAKE_CLOSED: "drop-off intake is closed",
    ErrorCode.NO_VERIFICATION: "real-name verification reference required (Art. 19)",
    ErrorCode.ID_NUMBER_NOT_ALLOWED: "give the verification reference, not an ID number",
    ErrorCode.NO_CONTENTS: "declare the contents (Art. 18)",
    ErrorCode.NOT_ACKNOWLEDGED: "acknowledge the insured-value rules and prohibited items (Art. 11)",
}


def _refuse(kind: str, actor: str, code: ErrorCode, message: str, body: dict[str, Any],  # noqa: PLR0917 -- one call shape for every refusal keeps them uniform
            compartment: int | None = None, parcel_id: str | None = None, *,
            changes: tuple[Change, ...] = (), result: dict[str, Any] | None = None) -> Decision:
    return Decision(Record(kind, actor, {**body, "error": code.value}, compartment, parcel_id),
                    error=code, message=message, changes=changes, result=result or {})


def _emptied(comp: Compartment) -> Compartment:
    return comp.model_copy(update={"state": CompartmentState.FREE, "parcel_id": None,
                                   "pending": None})


def _courier_of(actor: str) -> str | None:
    return actor.split("/", 1)[1] if actor.startswith("courier:") and "/" in actor else None


def _flags(req: Delivery) -> dict[str, Any]:
    return req.model_dump(exclude={"waybill", "size"})


def _brief(p: Parcel) -> dict[str, Any]:
    return {"parcel_id": p.id, "compartment": p.compartment, "status": p.status.value,
            "waybill": p.waybill}
