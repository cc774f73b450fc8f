"""The write-ahead rule on fake ports: nothing moves before it is recorded, and a door's fate is recorded.

No daemon, no simulator: ParcelService over the pure Cabinet, a fake log that can refuse an
append, and fake doors that note every pulse in the same call list as the log, so the order of
records and pulses is visible.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lockerd.config import Size
from lockerd.domain import (
    Cabinet,
    CompartmentState,
    CourierAuth,
    Decision,
    Delivery,
    DoorFailure,
    Dropoff,
    ErrorCode,
    ParcelStatus,
)
from lockerd.domain.identity import IdentityCheck, Relation
from lockerd.oplog import OutboxMessage
from lockerd.parcels.service import ParcelService, RecordFailed
from lockerd.sync.feed import CarrierFeed
from lockerd.sync.topics import Topics
from tests.fixtures.domain import PASSED, PIN, SPEC, FakeClock, in_days

SF = CourierAuth(carrier="sf", courier_id="c1", pin=PIN)


class LogRefused(Exception):
    """What the fake log raises when told to refuse (a full disk, a stopped writer ...)."""


@dataclass
class FakeLog:
    """An operation log that keeps appends in memory and refuses them while `refusing`."""

    calls: list[str]
    refusing: bool = False
    rows: list[tuple[str, dict[str, Any], list[OutboxMessage]]] = field(default_factory=list)

    @property
    def store(self) -> FakeLog:
        return self

    async def append(self, kind: str, *, actor: str, body: Mapping[str, Any],
                     compartment: int | None = None, parcel_id: str | None = None,
                     outbox: Sequence[OutboxMessage] = (),
                     mutate: Callable[[Any], None] | None = None) -> object:
        await asyncio.sleep(0)  # a real append waits for the writer thread
        if self.refusing:
            self.calls.append(f"refused:{kind}")
            raise LogRefused(kind)
        self.calls.append(f"record:{kind}")
        self.rows.append((kind, dict(body), list(outbox)))
        return len(self.rows)

    def kinds(self) -> list[str]:
        return [kind for kind, _, _ in self.rows]


@dataclass(frozen=True)
class Opened:
    outcome: str


@dataclass
class FakeDoors:
    """Doors that report a chosen outcome; every pulse is noted in the shared call list."""

    calls: list[str]
    outcome: str = "opened"
    closes: bool = True
    occupancy: bool | None = None
    raises: Exception | None = None
    outcomes: dict[int, str] = field(default_factory=dict)
    pulses: int = 0

    async def open(self, compartment_id: int, reason: str, actor: str) -> Opened:
        self.pulses += 1
        self.calls.append(f"pulse:{compartment_id}")
        await asyncio.sleep(0)
        if self.raises is not None:
            raise self.raises
        return Opened(self.outcomes.get(compartment_id, self.outcome))

    async def wait_closed(self, compartment_id: int, timeout_s: float) -> bool:
        await asyncio.sleep(0)
        return self.closes

    def occupied(self, compartment_id: int) -> bool | None:
        return self.occupancy


class OpenGate:
    def is_open(self) -> bool:
        return True

    def reason(self) -> str | None:
        return None


@dataclass
class Rig:
    service: ParcelService
    cabinet: Cabinet
    log: FakeLog
    doors: FakeDoors
    calls: list[str]


class PassingIdentity:
    """Every sender's identity check passes (the checks themselves: test_identity_dropoff.py)."""

    has_reader = False

    async def for_dropoff(self, carrier: str, token: str, wait_s: float = 0.0) -> IdentityCheck:
        return PASSED

    async def check_card(self, *, carrier: str | None = None,
                         relation: Relation | None = None, wait_s: float = 0.0) -> IdentityCheck:
        return PASSED


def make_rig(seed: int = 7) -> Rig:
    calls: list[str] = []
    log = FakeLog(calls)
    doors = FakeDoors(calls)
    cabinet = Cabinet(SPEC, FakeClock(), random.Random(seed), code_digest=lambda c: f"d:{c}")
    decision = cabinet.grant_courier("sf", "c1", in_days(FakeClock(), 30), pin=PIN)
    assert decision.ok
    cabinet.apply(decision)
    service = ParcelService(cabinet, log=log, doors=doors, gate=OpenGate(),
                            events=CarrierFeed(Topics("lockers", "CAB-T")), close_timeout_s=1.0,
                            identity=PassingIdentity())
    return Rig(service, cabinet, log, doors, calls)


@pytest.fixture
def rig() -> Rig:
    return make_rig()


def parcel(waybill: str = "SF1000001", size: Size = Size.S) -> Delivery:
    return Delivery(waybill=waybill, size=size, consent=True)


def sender() -> Dropoff:
    return Dropoff.model_validate({
        "carrier": "sf", "size": "S", "verification_ref": "RN-77aa", "declared_contents": "books",
        "ack_insured_value": True, "ack_prohibited_items": True})


async def deposited(rig: Rig, waybill: str = "SF1000001") -> tuple[int, str]:
    """Deliver one parcel through to in_locker; its compartment and pickup code."""
    done = await rig.service.deliver(SF, "k1", parcel(waybill))
    assert done.ok, done.error
    _, _, outbox = rig.log.rows[-1]
    code = next(m.payload["body"]["pickup_code"] for m in outbox
                if m.payload["type"] == "parcel.deposited")
    return int(done.record.compartment or 0), str(code)


def assert_records_precede_pulses(calls: list[str]) -> None:
    """Each pulse comes right after the recorded `*.begin` (or `*.redirect`, a jammed deposit
    moving on) that chose its door, and no door is pulsed again before the outcome of the last
    pulse is recorded."""
    awaiting_outcome = False
    for i, call in enumerate(calls):
        if call.startswith("pulse:"):
            assert i > 0, calls
            assert calls[i - 1].startswith("record:"), calls
            assert calls[i - 1].endswith((".begin", ".redirect")), calls
            assert not awaiting_outcome, calls
            awaiting_outcome = True
        elif call.startswith("record:") and not call.endswith(".begin"):
            awaiting_outcome = False


# ---- a log that refuses: RecordFailed, no pulse, nothing changed -------------------------------

USE_CASES: dict[str, Callable[[ParcelService], Awaitable[Decision]]] = {
    "deliver": lambda s: s.deliver(SF, "k1", parcel()),
    "dropoff": lambda s: s.dropoff("k1", sender()),
    "courier_login": lambda s: s.courier_login(SF, "k1"),
}


@pytest.mark.parametrize("use_case", sorted(USE_CASES))
async def test_refused_append_raises_record_failed_moves_no_door_and_changes_nothing(
        rig: Rig, use_case: str) -> None:
    before = rig.cabinet.to_dict()
    rig.log.refusing = True
    with pytest.raises(RecordFailed) as info:
        await USE_CASES[use_case](rig.service)
    assert isinstance(info.value.__cause__, LogRefused)
    assert rig.doors.pulses == 0
    assert rig.cabinet.to_dict() == before
    assert rig.service.recorded == 0
    assert rig.log.rows == []


async def test_refused_pickup_record_keeps_the_parcel_and_its_door_shut(rig: Rig) -> None:
    _, code = await deposited(rig)
    pulses = rig.doors.pulses
    before = rig.cabinet.to_dict()
    rig.log.refusing = True
    with pytest.raises(RecordFailed):
        await rig.service.pickup("k1", code)
    assert rig.doors.pulses == pulses
    assert rig.cabinet.to_dict() == before
    rig.log.refusing = False
    done = await rig.service.pickup("k1", code)  # the code still works once the log does
    assert done.ok
    assert done.record.kind == "pickup.confirm"


# ---- order: record, pulse, record --------------------------------------------------------------

async def test_the_record_always_precedes_the_pulse(rig: Rig) -> None:
    cid, code = await deposited(rig)
    await rig.service.pickup("k1", code)
    dropped = await rig.service.dropoff("k1", sender())
    assert rig.calls == [
        "record:deliver.begin", f"pulse:{cid}", "record:deliver.confirm",
        "record:pickup.begin", f"pulse:{cid}", "record:pickup.confirm",
        "record:dropoff.begin", f"pulse:{dropped.record.compartment}", "record:dropoff.confirm",
    ]
    assert_records_precede_pulses(rig.calls)


async def test_a_refused_decision_is_recorded_and_moves_no_door(rig: Rig) -> None:
    wrong = CourierAuth(carrier="sf", courier_id="c1", pin="000000")
    decision = await rig.service.deliver(wrong, "k1", parcel())
    assert not decision.ok
    assert rig.calls == ["record:deliver.begin"]
    assert rig.doors.pulses == 0


# ---- the door's fate is recorded ---------------------------------------------------------------

async def test_a_jam_moves_the_deposit_on_in_the_same_operation(rig: Rig) -> None:
    rig.doors.outcomes[1] = "jammed"
    decision = await rig.service.deliver(SF, "k1", parcel())
    assert rig.log.kinds() == ["deliver.begin", "deposit.redirect", "deliver.confirm"]
    assert rig.calls[1:4] == ["pulse:1", "record:deposit.redirect", "pulse:2"]
    assert decision.ok
    assert decision.failed is None
    assert (decision.result["compartment"], decision.result["jammed_compartments"]) == (2, [1])
    _, body, _ = rig.log.rows[1]
    assert (body["failure"], body["jammed_compartment"]) == ("jammed", 1)
    comp = rig.cabinet.state.compartments[1]
    assert (comp.state, comp.blocked_reason, comp.blocked_by) == (
        CompartmentState.BLOCKED, "door_jammed", "doors")
    pid = decision.result["parcel_id"]
    assert rig.cabinet.state.parcels[pid].status is ParcelStatus.IN_LOCKER
    assert rig.cabinet.state.parcels[pid].compartment == 2
    assert_records_precede_pulses(rig.calls)


async def test_every_door_jammed_rolls_back_after_a_bounded_number_of_tries(rig: Rig) -> None:
    rig.doors.outcome = "jammed"
    decision = await rig.service.deliver(SF, "k1", parcel())
    assert rig.log.kinds() == ["deliver.begin", "deposit.redirect", "deposit.redirect",
                               "deposit.rollback"]
    assert decision.failed is ErrorCode.DOOR_JAMMED
    _, body, _ = rig.log.rows[-1]
    assert (body["failure"], body["blocked"]) == (DoorFailure.JAMMED.value, True)
    # a finished parcel leaves the cabinet's memory; the log's record says how it ended
    assert decision.result["parcel_id"] not in rig.cabinet.state.parcels
    assert [c["status"] for c in body["changes"] if c["entity"] == "parcel"] == ["rolled_back"]
    assert rig.cabinet.blocked() == [1, 2, 3]
    assert rig.doors.pulses == 3  # each door once, never retried
    assert_records_precede_pulses(rig.calls)


async def test_a_jammed_pickup_keeps_its_parcel_in_place(rig: Rig) -> None:
    cid, code = await deposited(rig)
    rig.doors.outcome = "jammed"
    decision = await rig.service.pickup("k1", code)
    assert decision.record.kind == "pickup.rollback"
    assert decision.failed is ErrorCode.DOOR_JAMMED
    assert rig.cabinet.state.compartments[cid].parcel_id == decision.result["parcel_id"]


@pytest.mark.parametrize(("setup", "failure", "blocked"), [
    ({"outcome": "failed"}, DoorFailure.NOT_OPENED, False),
    ({"closes": False}, DoorFailure.NOT_CLOSED, True),
    ({"raises": OSError("bus gone")}, DoorFailure.NOT_CLOSED, True),
    ({"occupancy": False}, DoorFailure.ITEM_NOT_SEEN, True),
])
async def test_every_door_failure_is_recorded(rig: Rig, setup: dict[str, Any],
                                              failure: DoorFailure, blocked: bool) -> None:
    for name, value in setup.items():
        setattr(rig.doors, name, value)
    decision = await rig.service.deliver(SF, "k1", parcel())
    assert decision.record.kind == "deposit.rollback"
    _, body, _ = rig.log.rows[-1]
    assert (body["failure"], body["blocked"]) == (failure.value, blocked)
    assert_records_precede_pulses(rig.calls)


async def test_a_door_fault_during_an_operation_is_recorded_once_it_has_ended(rig: Rig) -> None:
    """The controller reports a forced/left-open door while a deposit is under way on it: the
    flow records the door's fate first, then the block (the domain owns it either way)."""
    real_open = rig.doors.open

    async def open_and_report(compartment_id: int, reason: str, actor: str) -> Opened:
        assert await rig.service.door_fault(compartment_id, "door_left_open") is None
        return await real_open(compartment_id, reason, actor)

    rig.doors.open = open_and_report  # type: ignore[method-assign]
    decision = await rig.service.deliver(SF, "k1", parcel())
    assert decision.ok
    assert rig.log.kinds() == ["deliver.begin", "deliver.confirm", "compartment.block"]
    comp = rig.cabinet.state.compartments[1]
    assert (comp.state, comp.parcel_id, comp.blocked_reason) == (
        CompartmentState.BLOCKED, decision.result["parcel_id"], "door_left_open")
    # a fault on a compartment already blocked records nothing more
    assert await rig.service.door_fault(1, "door_forced") is None
    assert rig.log.kinds()[-1] == "compartment.block"


# ---- property: any mix of log refusals and door outcomes keeps the rule ------------------------

STEP = st.tuples(
    st.sampled_from(["deliver", "pickup", "dropoff"]),
    st.booleans(),                                            # the log refuses this step
    st.sampled_from(["opened", "acknowledged", "already_open", "jammed", "failed"]),
    st.booleans(),                                            # the door is closed in time
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(STEP, min_size=1, max_size=12))
def test_write_ahead_holds_for_any_sequence(steps: list[tuple[str, bool, str, bool]]) -> None:
    asyncio.run(_run_steps(steps))


async def _run_steps(steps: list[tuple[str, bool, str, bool]]) -> None:
    rig = make_rig()
    codes: list[str] = []
    for n, (op, refuse, outcome, closes) in enumerate(steps):
        rig.log.refusing = refuse
        rig.doors.outcome, rig.doors.closes = outcome, closes
        before, pulses = rig.cabinet.to_dict(), rig.doors.pulses
        try:
            if op == "deliver":
                decision = await rig.service.deliver(SF, "k1", parcel(f"SF{n:07d}"))
            elif op == "pickup" and codes:
                decision = await rig.service.pickup("k1", codes[-1])
            else:
                decision = await rig.service.dropoff("k1", sender())
        except RecordFailed:
            # the begin could not be recorded: no door moved, nothing changed
            assert refuse
            assert rig.doors.pulses == pulses
            assert rig.cabinet.to_dict() == before
            continue
        assert not refuse
        if decision.record.kind == "deliver.confirm":
            _, _, outbox = rig.log.rows[-1]
            codes.extend(m.payload["body"]["pickup_code"] for m in outbox
                         if m.payload["type"] == "parcel.deposited")
        # the in-memory state is exactly what the log holds: no operation is left half-open
        assert all(c.pending is None for c in rig.cabinet.state.compartments.values())
    assert_records_precede_pulses(rig.calls)
    assert rig.doors.pulses == sum(c.startswith("pulse:") for c in rig.calls)
