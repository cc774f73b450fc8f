"""What every cabinet flow shares: the state, the injected clock and random source, queries and checks.

`CabinetCore` holds the state and the helpers the flows call (courier authentication, the
wrong-credential limiter, the pending door operation); each flow module adds its commands as a
subclass, and `lockerd.domain.cabinet.Cabinet` combines them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Set
from datetime import datetime
from typing import Any, Self

from lockerd.domain import limiter, rules
from lockerd.domain.decision import Decision, DomainEvent, Record
from lockerd.domain.errors import ErrorCode
from lockerd.domain.ids import Size
from lockerd.domain.limiter import Credential
from lockerd.domain.model import (
    CHANGES,
    CabinetState,
    Change,
    Compartment,
    CompartmentState,
    Courier,
    Parcel,
    ParcelKind,
    ParcelStatus,
    Pending,
    PendingOp,
    SetCompartment,
    SetLimiter,
    SetParcel,
    courier_key,
    pass_key,
)
from lockerd.domain.pins import spend_pin_check, verify_pin
from lockerd.domain.requests import CourierAuth, PassClaim
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


#: Delivery statuses a carrier's courier may take back (`begin_return`, the worklist).
RETURNABLE = frozenset({ParcelStatus.REFUSED, ParcelStatus.OVERDUE, ParcelStatus.RECALLED})


class CabinetCore:
    """The state and what every flow needs of it; the commands live in the flow subclasses."""

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
    def from_dict(cls, spec: CabinetSpec, clock: Clock, rng: Rng, data: dict[str, Any]) -> Self:
        """Rebuild from a snapshot; compartments added to the config since are added free."""
        state = CabinetState.model_validate(data)
        for cid, size in spec.compartments:
            state.compartments.setdefault(cid, Compartment(id=cid, size=size))
        return cls(spec, clock, rng, state)

    @classmethod
    def replay(cls, spec: CabinetSpec, clock: Clock, rng: Rng, recorded: Iterable[Any]) -> Self:
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
        """Parcels physically in (or going into) a compartment: the state keeps no others."""
        return list(self.state.parcels.values())

    def free_counts(self) -> dict[str, int]:
        """Free compartments per size (for the retained `state` message)."""
        counts = {s.value: 0 for s in Size}
        for comp in self.state.compartments.values():
            if comp.state is CompartmentState.FREE:
                counts[comp.size.value] += 1
        return counts

    def blocked(self) -> list[int]:
        """Ids of blocked compartments."""
        return sorted(self.blocks())

    def blocks(self) -> dict[int, Compartment]:
        """Blocked compartments with why, since when and by whom (what the door controller,
        the technician's door view and the retained `state` topic all read)."""
        return {c.id: c for c in sorted(self.state.compartments.values(), key=lambda c: c.id)
                if c.state is CompartmentState.BLOCKED}

    def worklist(self, carrier: str) -> dict[str, list[dict[str, Any]]]:
        """What a carrier's courier should take away: refused/overdue deliveries and drop-offs."""
        to_return = [brief(p) for p in self.state.parcels.values()
                     if p.carrier == carrier and p.kind is ParcelKind.DELIVERY
                     and p.status in RETURNABLE]
        to_collect = [brief(p) for p in self.state.parcels.values()
                      if p.carrier == carrier and p.status is ParcelStatus.DROPOFF_RECEIVED]
        return {"to_return": sorted(to_return, key=lambda b: b["compartment"]),
                "to_collect": sorted(to_collect, key=lambda b: b["compartment"])}

    # ---- helpers -------------------------------------------------------------------------------

    def _new_parcel_id(self) -> str:
        # Finished parcels are no longer in the state, so only live ids are checked here; 64
        # random bits make a clash with a finished parcel's id (whose row the log keeps, and
        # whose insert would then fail and be refused) about 1 in 10^9 after a million parcels.
        while True:
            pid = rules.new_id(self._rng, "p")
            if pid not in self.state.parcels:
                return pid

    def _lockout(self, panel: str, credential: Credential, now: datetime) -> datetime | None:
        """When the caller may guess this credential again: the later of its own lockout and the
        cabinet-wide one; None when it may try now."""
        ends = [limiter.locked_until(self.state.limiters.get(key), now)
                for key in (panel, limiter.CABINET_KEYS[credential])]
        return max((end for end in ends if end is not None), default=None)

    def _issue_code(self) -> str | None:
        """A fresh door code (pickup or retrieval) no live parcel uses; None when none is found."""
        taken = DigestedCodes(self.state.code_digests(), self._digest)
        return rules.new_code(self._rng, self.spec.policy.code_digits, taken)

    def _limiter_success(self, panel: str) -> tuple[Change, ...]:
        cleared = limiter.record_success(self.state.limiters.get(panel))
        return () if cleared is None else (SetLimiter(value=cleared),)

    def _wrong_credential(self, kind: str, actor: str, panel: str, credential: Credential, *,
                          code: ErrorCode, message: str, body: dict[str, Any]) -> Decision:
        """A wrong code or PIN: counted against the caller and cabinet-wide (never cleared by a
        success), stale limiters pruned in the same decision."""
        now = self.now()
        policy = self.spec.policy
        everyone_key = limiter.CABINET_KEYS[credential]
        mine = limiter.record_failure(self.state.limiters.get(panel), panel, now,
                                      limiter.caller_ladder(policy))
        everyone = limiter.record_failure(self.state.limiters.get(everyone_key), everyone_key, now,
                                          limiter.cabinet_ladder(policy))
        left = min(policy.wrong_code_limit - len(mine.failures),
                   policy.cabinet_wrong_limit - len(everyone.failures))
        result: dict[str, Any] = {"attempts_left": max(0, left)}
        until = max((t for t in (mine.locked_until, everyone.locked_until)
                     if t is not None and t > now), default=None)
        if until is not None:
            result = {"attempts_left": 0, "locked_until": format_ts(until)}
        stale = limiter.prune(self.state.limiters, now, policy, frozenset({panel, everyone_key}))
        return refuse(kind, actor, code, message, {**body, **result},
                      changes=(*stale, SetLimiter(value=mine), SetLimiter(value=everyone)),
                      result=result)

    def _authenticate(self, kind: str, actor: str, auth: CourierAuth, panel: str,
                      body: dict[str, Any]) -> tuple[Courier | None, Decision | None]:
        """Art. 16 and the courier's grant, re-checked on every command."""
        now = self.now()
        until = self._lockout(panel, Credential.PIN, now)
        if until is not None:
            return None, refuse(kind, actor, ErrorCode.LOCKED_OUT, "too many wrong attempts; try later",
                                body, result={"locked_until": format_ts(until)})
        if auth.pass_claim is not None:
            return self._authenticate_pass(kind, actor, auth.pass_claim, body)
        if auth.carrier not in self.spec.carriers:
            return None, refuse(kind, actor, ErrorCode.UNKNOWN_CARRIER, "carrier not authorised here",
                                body)
        assert auth.pin is not None
        courier = self.state.couriers.get(courier_key(auth.carrier, auth.courier_id))
        # an unknown courier id and a wrong PIN look the same from the panel, in answer and in time
        # (an unknown id costs one PBKDF2 of the configured strength too): no enumeration
        if courier is None:
            spend_pin_check(auth.pin, self.spec.policy.pin_hash_iterations)
        if courier is None or not verify_pin(auth.pin, courier.pin_hash):
            return None, self._wrong_credential(kind, actor, panel, Credential.PIN,
                                                code=ErrorCode.BAD_PIN,
                                                message="courier id or PIN wrong", body=body)
        if courier.revoked_at is not None:
            return None, refuse(kind, actor, ErrorCode.COURIER_REVOKED, "courier revoked by carrier",
                                body)
        if courier.expires <= now:
            return None, refuse(kind, actor, ErrorCode.COURIER_EXPIRED, "courier grant expired", body)
        return courier, None

    def _authenticate_pass(self, kind: str, actor: str, claim: PassClaim, body: dict[str, Any]
                           ) -> tuple[Courier | None, Decision | None]:
        """An offline pass whose signature the edge checked: carrier, cabinet, time, revocation.

        Its use is recorded by pass id (`body["pass_id"]`), never the token. No wrong-credential
        count: a pass that reaches the domain is genuinely signed by its carrier."""
        body["pass_id"] = claim.pass_id
        now = self.now()
        if claim.carrier not in self.spec.carriers:
            return None, refuse(kind, actor, ErrorCode.PASS_WRONG_CARRIER,
                                "the pass's carrier is not authorised here", body)
        if self.spec.cabinet_id not in claim.cabinets and (
                claim.group is None or claim.group not in self.spec.groups):
            return None, refuse(kind, actor, ErrorCode.PASS_WRONG_CABINET,
                                "the pass is not valid at this cabinet", body)
        if now < claim.not_before:
            return None, refuse(kind, actor, ErrorCode.PASS_NOT_YET_VALID,
                                "the pass is not valid yet", body)
        if now >= claim.expires:
            return None, refuse(kind, actor, ErrorCode.PASS_EXPIRED, "the pass expired", body)
        if pass_key(claim.carrier, claim.pass_id) in self.state.revoked_passes:
            return None, refuse(kind, actor, ErrorCode.PASS_REVOKED,
                                "the pass was revoked by its carrier", body)
        return Courier(carrier=claim.carrier, courier_id=claim.courier_id, pin_hash="",
                       expires=claim.expires, granted_at=claim.not_before), None

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
            return refuse(kind, actor, ErrorCode.UNKNOWN_PARCEL, "no such parcel", body)
        if parcel.carrier != auth.carrier:
            return refuse(kind, actor, ErrorCode.NOT_YOUR_PARCEL, "parcel of another carrier", body)
        if parcel.kind is not parcel_kind or parcel.status not in statuses:
            return refuse(kind, actor, ErrorCode.BAD_STATE,
                          f"parcel is {parcel.status.value}, not {'/'.join(s.value for s in statuses)}",
                          body, parcel.compartment, parcel.id)
        comp = self.state.compartments[parcel.compartment]
        if comp.state is CompartmentState.BLOCKED:
            return refuse(kind, actor, ErrorCode.COMPARTMENT_BLOCKED, "compartment out of service",
                          body, comp.id, parcel.id)
        if comp.state is not CompartmentState.OCCUPIED:
            return refuse(kind, actor, ErrorCode.BAD_STATE, "compartment busy", body, comp.id,
                          parcel.id)
        opening = comp.model_copy(update={
            "state": CompartmentState.OPENING,
            "pending": Pending(op=op, actor=actor, panel=panel, since=now)})
        return Decision(Record(kind, actor, body, comp.id, parcel.id),
                        changes=(*self._limiter_success(panel), SetCompartment(value=opening)),
                        open_door=comp.id,
                        result={"parcel_id": parcel.id, "compartment": comp.id})

    def _open_deposit(self, compartment_id: int, step: str
                      ) -> tuple[str, tuple[Compartment, Pending, Parcel] | Decision]:
        """The deposit or drop-off under way in a compartment, and the record kind of `step`
        for it (`deposit.redirect`, `dropoff.held` ...): a door fault ends either the same way."""
        comp = self.state.compartments.get(compartment_id)
        op = comp.pending.op.value if comp is not None and comp.pending is not None else "deposit"
        kind = f"{op}.{step}"
        return kind, self._pending(kind, compartment_id, (PendingOp.DEPOSIT, PendingOp.DROPOFF))

    def _pending(self, kind: str, compartment_id: int, ops: tuple[PendingOp, ...]
                 ) -> tuple[Compartment, Pending, Parcel] | Decision:
        """The compartment, its open operation and its parcel, or a refusal."""
        comp = self.state.compartments.get(compartment_id)
        if comp is None:
            return refuse(kind, "system", ErrorCode.UNKNOWN_COMPARTMENT, "no such compartment", {})
        if comp.pending is None or comp.pending.op not in ops or comp.parcel_id is None:
            return refuse(kind, "system", ErrorCode.BAD_STATE, "no matching door operation under way",
                          {}, comp.id)
        return comp, comp.pending, self.state.parcels[comp.parcel_id]

    def _deadline(self, parcel: Parcel) -> dict[str, str]:
        """The parcel's storage deadline in UTC and local time for its events (none: empty)."""
        return {} if parcel.deadline is None else rules.deadline_fields(parcel.deadline, self.spec)

    def _fee(self, parcel: Parcel, at: datetime) -> int:
        """The pickup fee of a stored parcel at `at` (Art. 25: none within the storage period)."""
        if parcel.deadline is None or parcel.deposited_at is None:
            return 0
        return rules.fee_cents(parcel.deposited_at, parcel.deadline, at, self.spec.policy)

    def _live_delivery(self, carrier: str, waybill: str) -> Parcel | None:
        return self.state.live_delivery(carrier, waybill)


class DigestedCodes(Collection[str]):
    """Codes taken by live parcels, seen through the digest the state keeps them under."""

    def __init__(self, digests: Set[str], digest: CodeDigest) -> None:
        self._digests = digests
        self._digest = digest

    def __contains__(self, code: object) -> bool:
        return isinstance(code, str) and self._digest(code) in self._digests

    def __iter__(self) -> Iterator[str]:
        return iter(self._digests)

    def __len__(self) -> int:
        return len(self._digests)


#: Why a rule of `rules` refused, in the words the panel shows.
RULE_MESSAGES: dict[ErrorCode, str] = {
    ErrorCode.NO_CONSENT: "no recipient consent and the sender did not choose a locker (Art. 22)",
    ErrorCode.DAMAGED: "packaging damaged: hand over in person (Art. 23)",
    ErrorCode.WEIGHT_MISMATCH: "weight differs from the waybill (Art. 23)",
    ErrorCode.FRESH: "fresh produce needs an agreement for locker delivery (Art. 23)",
    ErrorCode.VALUABLE: "valuables need an agreement for locker delivery (Art. 23)",
    ErrorCode.NOT_EXPECTED: "this carrier delivers only waybills it announced (parcel.expect)",
    ErrorCode.INTAKE_CLOSED: "drop-off intake is closed",
    ErrorCode.NO_VERIFICATION: "a passed identity check is required: an ID card on the reader, "
                               "or the carrier's signed real-name code (Art. 18)",
    ErrorCode.ID_CARD_EXPIRED: "the ID card has expired",
    ErrorCode.ID_CHECK_REQUIRED: "this parcel is handed over only against a valid ID card",
    ErrorCode.ID_MISMATCH: "the ID card is not the recipient's; a proxy states the relation",
    ErrorCode.NO_ID_READER: "ID-checked handover needs a cabinet with an ID-card reader",
    ErrorCode.ID_NUMBER_NOT_ALLOWED: "give the verification reference, not an ID number",
    ErrorCode.NO_CONTENTS: "declare the contents (Art. 18)",
    ErrorCode.NOT_ACKNOWLEDGED: "acknowledge the insured-value rules and prohibited items (Art. 11)",
}


def refuse(kind: str, actor: str, code: ErrorCode, message: str, body: dict[str, Any],  # noqa: PLR0917 -- one call shape for every refusal keeps them uniform
           compartment: int | None = None, parcel_id: str | None = None, *,
           changes: tuple[Change, ...] = (), result: dict[str, Any] | None = None) -> Decision:
    """A refusal; its record keeps the error code so the log shows every refused attempt."""
    return Decision(Record(kind, actor, {**body, "error": code.value}, compartment, parcel_id),
                    error=code, message=message, changes=changes, result=result or {})


def emptied(comp: Compartment) -> Compartment:
    """The compartment free again after its parcel left."""
    return comp.model_copy(update={"state": CompartmentState.FREE, "parcel_id": None,
                                   "pending": None})


def parcel_left(record: Record, parcel: Parcel, comp: Compartment, status: ParcelStatus, *,
                now: datetime, events: tuple[DomainEvent, ...], result: dict[str, Any],
                **extra: Any) -> Decision:
    """The door closed after the parcel was taken out (picked up, returned to the carrier,
    taken back by its sender): the parcel ends in `status` with its code spent, the compartment
    is free, and its carrier hears of it."""
    done = parcel.model_copy(update={"status": status, "code": None, "closed_at": now, **extra})
    return Decision(record, changes=(SetParcel(value=done), SetCompartment(value=emptied(comp))),
                    events=events, result=result)


def courier_of(actor: str) -> str | None:
    """The courier id inside a `courier:{carrier}/{id}` actor (None for other actors)."""
    return actor.split("/", 1)[1] if actor.startswith("courier:") and "/" in actor else None


def brief(p: Parcel) -> dict[str, Any]:
    """A parcel as a courier's worklist shows it."""
    return {"parcel_id": p.id, "compartment": p.compartment, "status": p.status.value,
            "waybill": p.waybill}

