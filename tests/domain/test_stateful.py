"""Hypothesis stateful test: random sequences of every cabinet action, invariants checked after each step."""

from __future__ import annotations

import json
import random
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from lockerd.domain import (
    CHANGES,
    LIVE_STATUSES,
    CompartmentState,
    CourierAuth,
    Decision,
    Delivery,
    DoorFailure,
    Dropoff,
    ErrorCode,
    Expect,
    ParcelKind,
    ParcelStatus,
    PendingOp,
    RefusalReason,
    RejectReason,
    limiter,
)
from lockerd.domain import Cabinet as DomainCabinet
from lockerd.domain.identity import IdentityCheck
from lockerd.domain.ids import Size
from lockerd.domain.model import (
    Parcel,
    SetCompartment,
    SetCourier,
    SetLimiter,
    SetParcel,
    claimable_by_code,
)
from tests.fixtures.domain import PASSED, SPEC, FakeClock


class Cabinet(DomainCabinet):
    """The domain cabinet with the sender's identity check the adapter would make: passed for a
    non-empty reference (the checks themselves are tested in tests/parcels). Kept outside the
    machine class: hypothesis seeds its derandomized programs from the class source."""

    def begin_dropoff(self, panel: str, req: Dropoff, *, intake_open: bool,
                      intake_reason: str | None = None,
                      identity: IdentityCheck | None = None) -> Decision:
        if identity is None and req.verification_ref.strip():
            identity = PASSED
        return super().begin_dropoff(panel, req, intake_open=intake_open,
                                     intake_reason=intake_reason, identity=identity)

CARRIER_CHOICES = ["sf", "yto", "dhl"]          # dhl is not authorised in the spec (Art. 16)
COURIER_CHOICES = ["c1", "c2"]
PINS = ["482913", "730516"]
STORED = frozenset(set(ParcelStatus) - {ParcelStatus.DEPOSITING, ParcelStatus.ROLLED_BACK})
DOOR_CHANGING = {ParcelStatus.PICKED_UP, ParcelStatus.REFUSED, ParcelStatus.RETURNED}


def often(happy: Any, *others: Any, percent: int = 80) -> st.SearchStrategy[Any]:
    """`happy` about `percent`% of the time (and when shrinking), else one of `others`: deep flows
    need mostly valid input, refusals need some invalid input."""
    return st.integers(0, 99).map(lambda n: happy if n < percent else others[n % len(others)])


# how many examples ran across the whole test session (reported by the test below)
STATS: Counter[str] = Counter()


class CabinetMachine(RuleBasedStateMachine):
    """Drives the Cabinet like kiosks, couriers, carriers and the clock would, in any order."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.cab = Cabinet(SPEC, self.clock, random.Random(1234))
        self.journal: list[list[Any]] = []        # changes of every applied decision, as logged
        self.grants: dict[tuple[str, str], dict[str, Any]] = {}   # oracle of courier grants
        self.codes: dict[str, str] = {}           # door code -> parcel id, learnt from events/replies
        self.stored: set[str] = set()             # parcels that ever reached the cabinet
        self.seen: dict[str, Parcel] = {}         # every parcel's last recorded value
        STATS["examples"] += 1

    # ---- plumbing ---------------------------------------------------------------------------

    def run(self, decision: Decision) -> Decision:
        """Check the decision's shape, record it (journal), apply it, check the applied diff."""
        STATS["decisions"] += 1
        STATS[f"{decision.record.kind}:{decision.error or 'ok'}"] += 1
        assert decision.record.kind
        assert decision.record.actor
        if not decision.ok:
            assert decision.events == ()
            assert decision.open_door is None
            assert decision.record.body["error"] == decision.error
            # a refusal may only touch the panel limiter
            assert all(isinstance(c, SetLimiter) for c in decision.changes)
        before = self.cab.state.model_copy(deep=True)
        logged = json.loads(json.dumps(decision.changes_json()))
        self.journal.append(logged)
        self.cab.apply(decision)
        for change in decision.changes:
            if isinstance(change, SetParcel):
                self.seen[change.value.id] = change.value
        self.check_diff(before, decision)
        # a code whose parcel no longer holds one is dead (taken, refused, removed ...)
        self.codes = {c: p for c, p in self.codes.items() if self.parcel(p).code}
        for event in decision.events:
            self.check_event(event.carrier, event.type, event.body)
        return decision

    def parcel(self, pid: str) -> Parcel:
        """A parcel as the cabinet holds it, or as last recorded once finished (the log's tables
        hold finished parcels; the cabinet forgets them)."""
        return self.cab.state.parcels.get(pid) or self.seen[pid]

    def check_event(self, carrier: str, etype: str, body: dict[str, Any]) -> None:
        """An event goes to the carrier owning its parcel/courier and carries no secrets."""
        text = json.dumps(body)
        assert "pin" not in text.lower().replace("pickup_code", "")
        assert "phone" not in text
        if etype.startswith("courier."):
            assert f"{carrier}/{body['courier_id']}" in self.cab.state.couriers
            return
        parcel = self.parcel(body["parcel_id"])
        assert parcel.carrier == carrier
        if etype == "parcel.deposited":
            assert set(body["notice"]) == {"locker_name", "address", "compartment_size",
                                           "storage_deadline", "storage_deadline_local",
                                           "time_zone"}
            assert body["pickup_code"] not in self.codes
            self.codes[body["pickup_code"]] = parcel.id

    def check_diff(self, before: Any, decision: Decision) -> None:
        """Every state change has its record: what changed is exactly what the decision lists."""
        after = self.cab.state
        touched = {("compartments", c.value.id) if isinstance(c, SetCompartment) else
                   ("parcels", c.value.id) if isinstance(c, SetParcel) else
                   ("couriers", c.value.key) if isinstance(c, SetCourier) else
                   ("limiters", c.value.panel) if isinstance(c, SetLimiter) else
                   ("expected", c.key) for c in decision.changes}
        for name in ("compartments", "parcels", "couriers", "limiters", "expected"):
            old, new = getattr(before, name), getattr(after, name)
            for key in set(old) | set(new):
                if old.get(key) != new.get(key):
                    assert (name, key) in touched, f"{name}[{key}] changed without a record"

    def courier_may_act(self, carrier: str, courier_id: str, pin: str) -> bool:
        """The oracle's view of Art. 16 plus the grant: carrier listed, granted, live, right PIN."""
        grant = self.grants.get((carrier, courier_id))
        return (carrier in SPEC.carriers and grant is not None and not grant["revoked"]
                and grant["expires"] > self.clock.now and grant["pin"] == pin)

    def creds(self, known: bool, index: int, carrier: str, courier_id: str, pin: str) -> CourierAuth:
        """Mostly a granted courier with its PIN (so doors do open), sometimes anything at all."""
        if known and self.grants:
            carrier, courier_id = self.pick(sorted(self.grants), index)
            pin = self.grants[(carrier, courier_id)]["pin"]
        return CourierAuth(carrier=carrier, courier_id=courier_id, pin=pin)

    def was_expected_with(self, d: Decision, flag: str) -> bool:
        """The carrier announced this waybill with `flag` set (checked on the state before the
        decision was applied: the expectation is only consumed when the deposit is confirmed)."""
        parcel = self.parcel(d.result["parcel_id"])
        exp = self.cab.state.expected.get(f"{parcel.carrier}/{parcel.waybill}")
        return exp is not None and bool(getattr(exp, flag))

    def pick(self, items: list[Any], index: int) -> Any:
        return items[index % len(items)]

    def pending(self) -> list[int]:
        return sorted(c.id for c in self.cab.state.compartments.values() if c.pending is not None)

    # ---- carriers and couriers -------------------------------------------------------------------

    @initialize(days=st.sampled_from([1, 5]))
    def first_couriers(self, days: int) -> None:
        """Each carrier starts with one granted courier, so doors do open early in a run."""
        for carrier, pin in zip(sorted(SPEC.carriers), PINS, strict=False):
            expires = self.clock.now + timedelta(days=days)
            assert self.run(self.cab.grant_courier(carrier, "c1", expires, pin=pin)).ok
            self.grants[(carrier, "c1")] = {"pin": pin, "expires": expires, "revoked": False}

    @rule(carrier=often("sf", "yto", "dhl", percent=50), courier_id=st.sampled_from(COURIER_CHOICES),
          pin=often(PINS[0], PINS[1], "111111", "12"), hours=often(48, 200, 1, 0, -1))
    def grant(self, carrier: str, courier_id: str, pin: str, hours: int) -> None:
        expires = self.clock.now + timedelta(hours=hours)
        d = self.run(self.cab.grant_courier(carrier, courier_id, expires, pin=pin))
        if carrier not in SPEC.carriers:
            assert d.error is ErrorCode.UNKNOWN_CARRIER
        elif hours <= 0:
            assert d.error is ErrorCode.INVALID_EXPIRY
        elif pin not in PINS:
            assert d.error is ErrorCode.WEAK_PIN
        else:
            assert d.ok
            self.grants[(carrier, courier_id)] = {"pin": pin, "expires": expires, "revoked": False}

    @rule(carrier=st.sampled_from(CARRIER_CHOICES), courier_id=st.sampled_from(COURIER_CHOICES),
          known=often(False, True, percent=60), index=st.integers(0, 20))
    def revoke(self, carrier: str, courier_id: str, known: bool, index: int) -> None:
        if known and self.grants:
            carrier, courier_id = self.pick(sorted(self.grants), index)
        d = self.run(self.cab.revoke_courier(carrier, courier_id))
        if (carrier, courier_id) in self.grants:
            assert d.ok
            self.grants[(carrier, courier_id)]["revoked"] = True
        else:
            assert d.error in (ErrorCode.UNKNOWN_CARRIER, ErrorCode.UNKNOWN_COURIER)

    @rule(minutes=st.sampled_from([1, 11, 60 * 24, 60 * 80]), sweep=st.booleans())
    def time_passes(self, minutes: int, sweep: bool) -> None:
        self.clock.advance(timedelta(minutes=minutes))
        if sweep:
            self.sweep()

    def sweep(self) -> None:
        d = self.run(self.cab.sweep_overdue())
        for event in d.events:
            assert event.type == "parcel.overdue"
            assert self.cab.state.parcels[event.body["parcel_id"]].status is ParcelStatus.OVERDUE
        assert not [p for p in self.cab.state.parcels.values()
                    if p.status is ParcelStatus.IN_LOCKER and p.deadline is not None
                    and p.deadline <= self.clock.now]
        # the sweep also forgets limiters whose ladder has faded (issue 19: pruned on schedule)
        assert not limiter.prune(self.cab.state.limiters, self.clock.now, SPEC.policy, frozenset())

    @rule(carrier=often("sf", "yto", "dhl", percent=50),
          waybill=st.sampled_from(["SF1000001", "SF1000002", "SF1000003", "YT2000001", "YT2000002"]),
          size=st.sampled_from(list(Size)), consent=st.booleans(), fresh=st.booleans(),
          agreement=st.booleans())
    def expect(self, carrier: str, waybill: str, size: Size, consent: bool, fresh: bool,
               agreement: bool) -> None:
        req = Expect(waybill=waybill, size=size, consent=consent, fresh=fresh, agreement=agreement)
        d = self.run(self.cab.expect_parcel(carrier, req))
        if carrier not in SPEC.carriers:
            assert d.error is ErrorCode.UNKNOWN_CARRIER

    @rule(carrier=often("sf", "yto", percent=50),
          waybill=st.sampled_from(["SF1000001", "SF1000002", "SF1000003", "YT2000001", "YT2000002"]))
    def recall(self, carrier: str, waybill: str) -> None:
        d = self.run(self.cab.recall_parcel(carrier, waybill))
        if d.ok and d.result["recalled"] == "parcel":
            parcel = self.parcel(d.result["parcel_id"])
            assert parcel.status is ParcelStatus.RECALLED
            assert parcel.carrier == carrier
            self.codes = {c: p for c, p in self.codes.items() if p != parcel.id}

    # ---- flows that open a door -----------------------------------------------------------------

    @rule(carrier=st.sampled_from(CARRIER_CHOICES), courier_id=st.sampled_from(COURIER_CHOICES),
          pin=st.sampled_from(PINS), known=often(1, 0, percent=85), index=st.integers(0, 20),
          panel=st.sampled_from(["k1", "k2", "k3"]),
          size=st.sampled_from(list(Size)), consent=often(True, False),
          chose=st.booleans(), damaged=often(False, True, percent=90),
          weights=often((None, None), (1000, 1050), (1000, 2000), percent=70),
          fresh=often(False, True, percent=85), valuable=often(False, True, percent=85),
          agreement=st.booleans(),
          waybill=st.sampled_from(["SF1000001", "SF1000002", "SF1000003", "YT2000001", "YT2000002"]),
          complete=often("done", "wait", "alt", "not_opened", "jammed", "redirect", percent=60))
    def deliver(self, carrier: str, courier_id: str, pin: str, known: int, index: int, panel: str,
                size: Size, consent: bool, chose: bool, damaged: bool,
                weights: tuple[int | None, int | None],
                fresh: bool, valuable: bool, agreement: bool, waybill: str, complete: str) -> None:
        req = Delivery(waybill=waybill, size=size, consent=consent, sender_chose_locker=chose,
                       damaged=damaged, declared_weight_g=weights[0], measured_weight_g=weights[1],
                       fresh=fresh, valuable=valuable, agreement=agreement)
        auth = self.creds(known > 0, index, carrier, courier_id, pin)
        d = self.run(self.cab.begin_deposit(auth, panel, req))
        if d.open_door is None:
            return
        assert self.courier_may_act(auth.carrier, auth.courier_id, auth.pin), \
            "door opened for a courier without right"
        assert (consent or chose) or self.was_expected_with(d, "consent")
        assert not damaged
        assert weights != (1000, 2000)
        assert agreement or self.was_expected_with(d, "agreement") or not (fresh or valuable)
        comp = self.cab.state.compartments[d.open_door]
        assert comp.state is CompartmentState.RESERVED
        assert list(Size).index(comp.size) >= list(Size).index(size)
        self.maybe_finish(d.open_door, complete)

    @rule(panel=st.sampled_from(["k1", "k2", "k3"]), known=often(True, False, percent=70),
          index=st.integers(0, 50),
          guess=st.integers(0, 999_999),
          complete=often("done", "alt", "wait", "not_closed", percent=50))
    def pickup(self, panel: str, known: bool, index: int, guess: int, complete: str) -> None:
        if known and not self.codes:
            return  # a recipient comes with a code; guessers are the `known=False` draws
        code = self.pick(sorted(self.codes), index) if known else f"{guess:06d}"
        d = self.run(self.cab.begin_pickup(panel, code))
        if d.error is ErrorCode.FEE_DUE:  # the recipient is shown the fee and accepts it
            assert d.result["fee_cents"] > 0
            d = self.run(self.cab.begin_pickup(panel, code, d.result["fee_cents"]))
        # no oracle: a refused code is wrong or locked out, whatever state its compartment is in
        # (a fee is only ever quoted for a code whose door would open)
        assert d.ok or d.error in (ErrorCode.WRONG_CODE, ErrorCode.LOCKED_OUT), d.error
        if d.open_door is None:
            return
        parcel = self.parcel(self.codes[code])
        assert claimable_by_code(parcel), "a code opened a door for a parcel that is not waiting"
        assert parcel.compartment == d.open_door
        self.maybe_finish(d.open_door, complete)

    @rule(panel=st.sampled_from(["k1", "k2", "k3"]), guesses=st.lists(st.integers(0, 999_999),
                                                                     min_size=3, max_size=3),
          shows_up=often(False, True, percent=85))
    def guesser(self, panel: str, guesses: list[int], shows_up: bool) -> None:
        """Now and then someone tries codes in a row at one panel: wrong ones lock that panel out
        (and count cabinet-wide); a guess is never told apart from a wrong code by its answer."""
        for guess in guesses if shows_up else []:
            d = self.run(self.cab.begin_pickup(panel, f"{guess:06d}"))
            if d.error is ErrorCode.FEE_DUE:
                return  # a real code of a parcel past its storage period: a recipient, not a guess
            assert d.ok or d.error in (ErrorCode.WRONG_CODE, ErrorCode.LOCKED_OUT), d.error
            if d.open_door is not None:  # one in a million: a guess hit a real code
                self.maybe_finish(d.open_door, "done")
                return

    @rule(courier_id=st.sampled_from(COURIER_CHOICES), pin=st.sampled_from(PINS),
          who=st.integers(0, 20), index=st.integers(0, 50))
    def courier_rejects_at_collection(self, courier_id: str, pin: str, who: int, index: int) -> None:
        """A courier finds a drop-off does not match its declaration and rejects it (Art. 20-21):
        the path a sender's retrieval needs, too rare when it only comes from `courier_takes`."""
        self.courier_takes("sf", courier_id, pin, 3, who, index, True, "alt")

    @rule(panel=st.sampled_from(["k1", "k2", "k3"]), index=st.integers(0, 50),
          complete=often("done", "alt", "wait", "not_closed", percent=60))
    def sender_retrieves(self, panel: str, index: int, complete: str) -> None:
        """A sender comes back for a drop-off its carrier rejected (Art. 21), with the
        retrieval code the screen showed at drop-off."""
        rejected = sorted(c for c, pid in self.codes.items()
                          if self.parcel(pid).status is ParcelStatus.REJECTED)
        if not rejected:
            return
        code = self.pick(rejected, index)
        d = self.run(self.cab.begin_pickup(panel, code))
        assert d.ok or d.error in (ErrorCode.WRONG_CODE, ErrorCode.LOCKED_OUT), d.error
        if d.open_door is None:
            return
        parcel = self.parcel(self.codes[code])
        assert parcel.kind is ParcelKind.DROPOFF
        assert parcel.compartment == d.open_door
        self.maybe_finish(d.open_door, complete)

    @rule(panel=st.sampled_from(["k1", "k2"]), carrier=often("yto", "sf", "dhl", percent=50),
          intake_open=often(True, False),
          verification=often("RN-7f3a9c", "", "110101199003074512", percent=85),
          contents=often("books", "", percent=90), ack_value=often(True, False, percent=90),
          ack_prohibited=often(True, False, percent=90),
          size=st.sampled_from(list(Size)), complete=often("done", "wait", "not_closed", percent=60))
    def dropoff(self, panel: str, carrier: str, intake_open: bool, verification: str, contents: str,
                ack_value: bool, ack_prohibited: bool, size: Size, complete: str) -> None:
        req = Dropoff(carrier=carrier, size=size, verification_ref=verification,
                      declared_contents=contents, ack_insured_value=ack_value,
                      ack_prohibited_items=ack_prohibited)
        d = self.run(self.cab.begin_dropoff(panel, req, intake_open=intake_open))
        assert "110101199003074512" not in json.dumps(d.record.body)
        if d.open_door is None:
            return
        assert intake_open
        assert carrier in SPEC.carriers
        assert verification == "RN-7f3a9c"
        assert contents
        assert ack_value
        assert ack_prohibited
        self.maybe_finish(d.open_door, complete)

    @rule(carrier=st.sampled_from(CARRIER_CHOICES), courier_id=st.sampled_from(COURIER_CHOICES),
          pin=st.sampled_from(PINS), known=often(3, 2, 1, 0, percent=70), who=st.integers(0, 20),
          index=st.integers(0, 50), collect=st.booleans(),
          complete=often("done", "alt", "wait", "jammed", percent=50))
    def courier_takes(self, carrier: str, courier_id: str, pin: str, known: int, who: int, index: int,
                      collect: bool, complete: str) -> None:
        parcels = sorted(self.seen)
        if not parcels:
            return
        # mostly a parcel the courier could take, sometimes any parcel at all (finished ones too)
        waiting = sorted(p.id for p in self.cab.state.parcels.values()
                         if p.status in (ParcelStatus.DROPOFF_RECEIVED, ParcelStatus.REFUSED,
                                         ParcelStatus.OVERDUE, ParcelStatus.RECALLED))
        parcel = self.parcel(self.pick(waiting if waiting and known else parcels, index))
        auth = self.creds(known > 0, who, carrier, courier_id, pin)
        live = [k for k in sorted(self.grants) if k[0] == parcel.carrier
                and self.courier_may_act(*k, self.grants[k]["pin"])]
        if known > 1 and live:
            # a courier of the parcel's own carrier whose grant is live
            auth = self.creds(True, sorted(self.grants).index(self.pick(live, who)), carrier,
                              courier_id, pin)
        collect = parcel.kind is ParcelKind.DROPOFF if known > 2 else collect
        if collect:
            d = self.run(self.cab.begin_collect(auth, "k1", parcel.id))
            allowed = {ParcelStatus.DROPOFF_RECEIVED}
        else:
            d = self.run(self.cab.begin_return(auth, "k1", parcel.id))
            allowed = {ParcelStatus.REFUSED, ParcelStatus.OVERDUE, ParcelStatus.RECALLED}
        if d.open_door is None:
            return
        assert self.courier_may_act(auth.carrier, auth.courier_id, auth.pin), \
            "door opened for a courier without right"
        assert parcel.carrier == auth.carrier, "a courier opened another carrier's parcel"
        assert parcel.status in allowed
        assert (parcel.kind is ParcelKind.DROPOFF) == collect
        self.maybe_finish(d.open_door, complete)

    def maybe_finish(self, cid: int, outcome: str) -> None:
        """Often the door reports at once; "wait" leaves the operation open for later steps."""
        if outcome != "wait":
            self.finish(cid, outcome)

    # ---- the door reports back --------------------------------------------------------------------

    @precondition(lambda self: bool(self.pending()))
    @rule(index=st.integers(0, 20),
          outcome=often("done", "alt", "not_opened", "jammed", "not_closed", percent=50),
          reason=st.sampled_from(list(RefusalReason)), reject=st.sampled_from(list(RejectReason)))
    def door_reports(self, index: int, outcome: str, reason: RefusalReason, reject: RejectReason) -> None:
        self.finish(self.pick(self.pending(), index), outcome, reason, reject)

    def finish(self, cid: int, outcome: str, reason: RefusalReason = RefusalReason.DELAYED,
               reject: RejectReason = RejectReason.MISMATCH) -> None:
        """Feed the door's outcome back for the operation under way on `cid`."""
        comp = self.cab.state.compartments[cid]
        assert comp.pending is not None
        assert comp.parcel_id is not None
        op, pid = comp.pending.op, comp.parcel_id
        if outcome == "redirect" and op in (PendingOp.DEPOSIT, PendingOp.DROPOFF):
            d = self.run(self.cab.redirect_after_jam(cid))
            after = self.cab.state.compartments[cid]
            if d.ok:
                assert after.state is CompartmentState.BLOCKED
                assert d.open_door is not None
                assert self.cab.state.compartments[d.open_door].parcel_id == pid
                self.finish(d.open_door, "done")
            else:
                assert d.error is ErrorCode.NO_FREE_COMPARTMENT
                assert after.pending is not None  # still under way: the door reports next
            return
        if outcome == "redirect":
            outcome = "jammed"
        if outcome not in ("done", "alt"):
            d = self.run(self.cab.door_failed(cid, DoorFailure(outcome)))
            assert d.ok
            after = self.cab.state.compartments[cid]
            assert (after.state is CompartmentState.BLOCKED) == (outcome != "not_opened")
            if op in (PendingOp.DEPOSIT, PendingOp.DROPOFF):
                assert self.parcel(pid).status is ParcelStatus.ROLLED_BACK
            return
        if op is PendingOp.DEPOSIT:
            d = self.run(self.cab.confirm_deposit(cid))
        elif op is PendingOp.DROPOFF:
            d = self.run(self.cab.confirm_dropoff(cid))
            if d.ok:
                self.codes[d.result["retrieval_code"]] = pid
        elif op is PendingOp.RETRIEVE:
            d = self.run(self.cab.confirm_retrieval(cid))
        elif op is PendingOp.PICKUP:
            d = self.run(self.cab.confirm_pickup(cid) if outcome == "done"
                         else self.cab.confirm_refusal(cid, reason))
        elif op is PendingOp.COLLECT:
            d = self.run(self.cab.confirm_collect(cid, outcome == "done", reject))
        else:
            d = self.run(self.cab.confirm_return(cid))
        assert d.ok
        status = self.parcel(pid).status
        if status in STORED:
            self.stored.add(pid)
        if status in DOOR_CHANGING:
            self.codes = {c: p for c, p in self.codes.items() if p != pid}

    @rule(index=st.integers(0, 20), action=often("unblock", "clear", "block", percent=40))
    def staff(self, index: int, action: str) -> None:
        # a technician is called to blocked compartments: unblock and clear mostly go there
        blocked = sorted(c.id for c in self.cab.state.compartments.values()
                         if c.state is CompartmentState.BLOCKED)
        holding = [c for c in blocked if self.cab.state.compartments[c].parcel_id is not None]
        targets = blocked if blocked and action != "block" and index % 4 else sorted(
            self.cab.state.compartments)
        if holding and action == "unblock" and index % 2:
            targets = holding  # is what is inside still claimable? (else holds_parcel)
        cid = self.pick(targets, index)
        if action == "block":
            self.run(self.cab.block(cid, "maintenance", "tech:t1"))
        elif action == "unblock":
            self.run(self.cab.unblock(cid, "tech:t1"))
        else:
            pid = self.cab.state.compartments[cid].parcel_id
            d = self.run(self.cab.clear(cid, "tech:t1"))
            if d.ok and pid is not None:
                self.codes = {c: p for c, p in self.codes.items() if p != pid}

    # ---- invariants ----------------------------------------------------------------------------

    @invariant()
    def no_parcel_lost(self) -> None:
        for pid in self.stored:
            assert self.parcel(pid).status in STORED

    @invariant()
    def memory_holds_live_parcels_only_and_indexes_them(self) -> None:
        state = self.cab.state
        for pid, last in self.seen.items():
            assert (pid in state.parcels) == (last.status in LIVE_STATUSES)
            if pid in state.parcels:
                assert state.parcels[pid] == last
        codes = {p.code: p for p in state.parcels.values() if p.code is not None}
        assert set(state.code_digests()) == set(codes)
        for digest, p in codes.items():
            assert state.parcel_by_code(digest) == p
        for p in state.parcels.values():
            if p.kind is ParcelKind.DELIVERY and p.waybill is not None:
                assert state.live_delivery(p.carrier, p.waybill) == p

    @invariant()
    def one_live_parcel_per_compartment(self) -> None:
        live = [p for p in self.cab.state.parcels.values() if p.status in LIVE_STATUSES]
        per_comp = Counter(p.compartment for p in live)
        assert all(n == 1 for n in per_comp.values()), per_comp
        for p in live:
            assert self.cab.state.compartments[p.compartment].parcel_id == p.id
        for comp in self.cab.state.compartments.values():
            if comp.parcel_id is not None:
                assert self.cab.state.parcels[comp.parcel_id].status in LIVE_STATUSES
            if comp.state is CompartmentState.FREE:
                assert comp.parcel_id is None
                assert comp.pending is None
            if comp.state in (CompartmentState.RESERVED, CompartmentState.OPENING):
                assert comp.pending is not None
            if comp.state is CompartmentState.OCCUPIED:
                assert comp.parcel_id is not None
                assert comp.pending is None

    @invariant()
    def live_codes_unique(self) -> None:
        codes = [p.code for p in self.cab.state.parcels.values() if p.code is not None]
        assert len(codes) == len(set(codes))
        for p in self.cab.state.parcels.values():
            waiting = p.kind is ParcelKind.DROPOFF and p.status is ParcelStatus.DROPOFF_RECEIVED
            assert (p.code is not None) == (claimable_by_code(p) or waiting)
            if p.code is not None:
                assert self.codes[p.code] == p.id

    @invariant()
    def rebuilt_from_the_log(self) -> None:
        replayed = Cabinet.replay(SPEC, self.clock, random.Random(0),
                                  (CHANGES.validate_python(c) for c in self.journal))
        assert replayed.state == self.cab.state
        snapshot = json.loads(json.dumps(self.cab.to_dict()))
        assert Cabinet.from_dict(SPEC, self.clock, random.Random(0), snapshot).state == self.cab.state


TestCabinetMachine = CabinetMachine.TestCase


@pytest.fixture(autouse=True)
def _same_programs_in_every_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hypothesis (6.131 on) mixes literals of every imported local module into what it draws,
    so the derandomized programs depended on which other test modules the run had imported
    (the whole suite drove other programs than this file alone and missed a refusal, then an
    unblock refused for a parcel inside).
    Drawing without those literals keeps the 500 programs the same in every run."""
    from hypothesis.internal.cache import LRUCache
    from hypothesis.internal.conjecture import providers
    from hypothesis.internal.constants_ast import Constants
    if hasattr(providers, "_get_local_constants"):
        monkeypatch.setattr(providers, "_get_local_constants", Constants)
        # and forget the pools earlier tests' draws cached with those literals in them
        monkeypatch.setattr(providers, "CONSTANTS_CACHE", LRUCache(1024))
# derandomize: the same 500 programs every run, so the coverage check below cannot flake in CI
# (a failure found this way reproduces by just running the test again).
TestCabinetMachine.settings = settings(max_examples=500, stateful_step_count=50, deadline=None,
                                       derandomize=True, database=None,
                                       suppress_health_check=[HealthCheck.too_slow])


def test_zz_report_examples() -> None:
    """Prints how many examples and decisions the stateful test drove (shown with -s or -rP)."""
    if STATS["examples"]:
        print(f"stateful: {STATS['examples']} examples, {STATS['decisions']} decisions; "
              + ", ".join(f"{k}={v}" for k, v in sorted(STATS.items()) if ":" in k))
        reached = ["deliver.confirm:ok", "deposit.rollback:ok", "pickup.confirm:ok", "refuse.confirm:ok",
                   "return.confirm:ok", "dropoff.confirm:ok", "dropoff.rollback:ok", "collect.confirm:ok",
                   "pickup.rollback:ok", "courier.revoke:ok", "deliver.begin:courier_revoked",
                   "pickup.begin:locked_out", "compartment.clear:ok", "parcel.recall:ok",
                   "parcel.expect:ok", "deposit.redirect:ok", "compartment.unblock:holds_parcel",
                   "compartment.unblock:ok", "retrieve.confirm:ok"]
        missing = [k for k in reached if not STATS[k]]
        assert not missing, f"the stateful test never reached {missing}: strategies too narrow"
