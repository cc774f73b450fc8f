"""Blocked compartments owned by the domain: door failures, a jammed deposit moved on, technicians'
block/unblock/clear, and the sender's retrieval code for a rejected drop-off (Art. 21)."""

from __future__ import annotations

import json
import random
from datetime import timedelta

import pytest

from lockerd.domain import Cabinet, CompartmentState, DoorFailure, ErrorCode, ParcelStatus, RejectReason
from lockerd.domain.timefmt import format_ts
from tests.domain.test_flows import SF, deposited, granted, parcel, refused_unchanged, sender
from tests.fixtures.domain import SPEC, Harness


def _rejected_dropoff(h: Harness) -> tuple[str, str]:
    """A drop-off in compartment 1, rejected by its carrier's courier: (parcel id, retrieval code)."""
    h.run(h.cab.begin_dropoff("k1", sender(), intake_open=True))
    done = h.run(h.cab.confirm_dropoff(1))
    code = done.result["retrieval_code"]
    pid = done.result["parcel_id"]
    h.run(h.cab.begin_collect(SF, "k1", pid))
    h.run(h.cab.confirm_collect(1, accept=False, reason=RejectReason.MISMATCH))
    return pid, code


# ---- door failures are accepted records that say the operation did not happen -----------------

@pytest.mark.parametrize(("failure", "failed"), [
    (DoorFailure.JAMMED, ErrorCode.DOOR_JAMMED),
    (DoorFailure.NOT_OPENED, ErrorCode.ROLLED_BACK),
    (DoorFailure.NOT_CLOSED, ErrorCode.ROLLED_BACK),
    (DoorFailure.ITEM_NOT_SEEN, ErrorCode.ROLLED_BACK),
])
def test_a_failed_deposit_is_recorded_but_never_a_success(h: Harness, failure: DoorFailure,
                                                          failed: ErrorCode) -> None:
    granted(h)
    h.run(h.cab.begin_deposit(SF, "k1", parcel()))
    rb = h.run(h.cab.door_failed(1, failure))
    assert rb.ok  # the rollback itself is recorded and applied
    assert rb.failed is failed
    assert rb.message


@pytest.mark.parametrize(("failure", "failed"), [
    (DoorFailure.JAMMED, ErrorCode.DOOR_JAMMED),
    (DoorFailure.NOT_OPENED, ErrorCode.DOOR_NOT_OPENED),
    (DoorFailure.NOT_CLOSED, ErrorCode.DOOR_NOT_CLOSED),
    (DoorFailure.ITEM_STILL_INSIDE, ErrorCode.ITEM_STILL_INSIDE),
])
def test_a_failed_pickup_keeps_the_parcel_and_says_so(h: Harness, failure: DoorFailure,
                                                      failed: ErrorCode) -> None:
    granted(h)
    cid, code, done = deposited(h)
    h.run(h.cab.begin_pickup("k1", code))
    rb = h.run(h.cab.door_failed(cid, failure))
    assert rb.failed is failed
    assert h.cab.state.parcels[done.result["parcel_id"]].status is ParcelStatus.IN_LOCKER


def test_a_door_failure_block_says_why_since_when_and_by_whom(h: Harness) -> None:
    granted(h)
    cid, code, _ = deposited(h)
    h.run(h.cab.begin_pickup("k1", code))
    h.run(h.cab.door_failed(cid, DoorFailure.JAMMED))
    comp = h.cab.blocks()[cid]
    assert (comp.blocked_reason, comp.blocked_by, comp.blocked_since) == ("door_jammed", "doors",
                                                                          h.clock.now)
    # a second block keeps the first time and author (the incident's age stays honest)
    h.clock.advance(timedelta(hours=1))
    assert h.run(h.cab.block(cid, "latch replaced", "uid:1001")).ok
    again = h.cab.blocks()[cid]
    assert (again.blocked_reason, again.blocked_by, again.blocked_since) == (
        "latch replaced", "doors", comp.blocked_since)


# ---- a jammed deposit moves on to another compartment ------------------------------------------

def test_a_jammed_deposit_moves_on_to_another_fitting_compartment(h: Harness) -> None:
    granted(h)
    begin = h.run(h.cab.begin_deposit(SF, "k1", parcel()))
    pid = begin.result["parcel_id"]
    moved = h.run(h.cab.redirect_after_jam(1))
    assert moved.ok
    assert moved.record.kind == "deposit.redirect"
    assert (moved.open_door, moved.result["jammed_compartment"]) == (2, 1)
    assert h.cab.state.compartments[1].state is CompartmentState.BLOCKED
    assert h.cab.state.compartments[1].parcel_id is None
    assert h.cab.state.compartments[2].parcel_id == pid
    assert h.cab.state.parcels[pid].compartment == 2
    done = h.run(h.cab.confirm_deposit(2))  # the same parcel, the same operation
    assert done.result["parcel_id"] == pid
    assert done.events[0].body["compartment"] == 2


def test_a_jammed_deposit_with_nowhere_to_go_is_refused_then_rolled_back(h: Harness) -> None:
    granted(h)
    deposited(h, waybill="SF1000002")  # compartment 1
    deposited(h, waybill="SF1000003")  # compartment 2
    deposited(h, waybill="SF1000004")  # compartment 3 (M)
    h.run(h.cab.begin_deposit(SF, "k1", parcel("SF1000005")))  # 4 (L)
    moved = h.run(h.cab.redirect_after_jam(4))
    assert moved.error is ErrorCode.NO_FREE_COMPARTMENT
    rb = h.run(h.cab.door_failed(4, DoorFailure.JAMMED))
    assert rb.failed is ErrorCode.DOOR_JAMMED
    assert h.cab.state.compartments[4].state is CompartmentState.BLOCKED


# ---- technicians: unblock, clear ---------------------------------------------------------------

def test_unblock_with_a_claimable_parcel_lets_its_code_open_it(h: Harness) -> None:
    granted(h)
    cid, code, done = deposited(h)
    h.run(h.cab.begin_pickup("k1", code))
    h.run(h.cab.door_failed(cid, DoorFailure.JAMMED))
    # no oracle: a right code for a blocked compartment answers like a wrong one (and counts)
    refused_unchanged(h, h.cab.begin_pickup("k2", code), ErrorCode.WRONG_CODE)
    back = h.run(h.cab.unblock(cid, "uid:1001", "latch replaced"))
    assert back.result == {"compartment": cid, "state": "occupied", "released": "door_jammed",
                           "parcel_id": done.result["parcel_id"]}
    assert back.record.body == {"reason": "latch replaced", "released": "door_jammed"}
    assert h.cab.blocks() == {}
    assert h.run(h.cab.begin_pickup("k2", code)).ok


def test_unblock_is_refused_while_a_parcel_its_code_cannot_claim_is_inside(h: Harness) -> None:
    granted(h)
    h.run(h.cab.begin_dropoff("k1", sender(), intake_open=True))
    pid = h.run(h.cab.confirm_dropoff(1)).result["parcel_id"]
    assert h.run(h.cab.block(1, "door forced", "doors")).ok
    refused = h.cab.unblock(1, "uid:1001", "looks fine")
    refused_unchanged(h, refused, ErrorCode.HOLDS_PARCEL)
    assert refused.result == {"parcel_id": pid, "status": "dropoff_received"}
    refused_unchanged(h, h.cab.unblock(2, "uid:1001", "x"), ErrorCode.BAD_STATE)
    refused_unchanged(h, h.cab.unblock(99, "uid:1001", "x"), ErrorCode.UNKNOWN_COMPARTMENT)


@pytest.mark.parametrize("keep_blocked", [False, True])
def test_clear_removes_each_live_parcel_and_tells_its_carrier(h: Harness, keep_blocked: bool) -> None:
    granted(h)
    cid, code, done = deposited(h)
    pid = done.result["parcel_id"]
    assert h.run(h.cab.block(cid, "door forced", "doors")).ok
    cleared = h.run(h.cab.clear(cid, "uid:1001", "took it out", keep_blocked=keep_blocked))
    [event] = cleared.events
    assert (event.carrier, event.type) == ("sf", "parcel.removed_by_staff")
    assert event.body == {"parcel_id": pid, "kind": "delivery", "waybill": "SF1000001",
                          "compartment": cid, "from_status": "in_locker", "reason": "took it out",
                          "removed_at": format_ts(h.clock.now),
                          "storage_deadline": format_ts(done.result["storage_deadline"])
                          if not isinstance(done.result["storage_deadline"], str)
                          else done.result["storage_deadline"],
                          "storage_deadline_local": event.body["storage_deadline_local"]}
    removed = h.cab.state.parcels[pid]
    assert (removed.status, removed.code) == (ParcelStatus.REMOVED_BY_STAFF, None)
    comp = h.cab.state.compartments[cid]
    assert comp.parcel_id is None
    assert comp.state is (CompartmentState.BLOCKED if keep_blocked else CompartmentState.FREE)
    assert (comp.blocked_reason == "door forced") is keep_blocked
    assert cleared.result["released"] == (None if keep_blocked else "door forced")
    assert not h.cab.begin_pickup("k2", code).ok  # the code is gone with the parcel
    # a second clear finds nothing; an empty blocked compartment is freed by clear too
    if keep_blocked:
        refused_unchanged(h, h.cab.clear(cid, "uid:1001", "x", keep_blocked=True),
                          ErrorCode.BAD_STATE)
        assert h.run(h.cab.clear(cid, "uid:1001", "x")).result["state"] == "free"
    else:
        refused_unchanged(h, h.cab.clear(cid, "uid:1001", "x"), ErrorCode.BAD_STATE)


def test_clear_is_refused_during_a_door_operation(h: Harness) -> None:
    granted(h)
    h.run(h.cab.begin_deposit(SF, "k1", parcel()))
    refused_unchanged(h, h.cab.clear(1, "uid:1001", "x"), ErrorCode.BAD_STATE)
    refused_unchanged(h, h.cab.block(1, "x", "uid:1001"), ErrorCode.BAD_STATE)


# ---- the sender takes a rejected drop-off back with its retrieval code (Art. 21) ----------------

def test_retrieval_code_opens_a_rejected_dropoff_for_its_sender(h: Harness) -> None:
    granted(h)
    h.run(h.cab.begin_dropoff("k1", sender(), intake_open=True))
    done = h.run(h.cab.confirm_dropoff(1))
    code = done.result["retrieval_code"]
    pid = done.result["parcel_id"]
    assert len(code) == SPEC.policy.code_digits
    # shown once: not in the record, not in the carrier's event, kept only as a digest
    assert code not in json.dumps(done.record.body)
    assert code not in json.dumps(done.events[0].body)
    # before the rejection the code opens nothing (and counts as a wrong code)
    refused_unchanged(h, h.cab.begin_pickup("k9", code), ErrorCode.WRONG_CODE)
    h.run(h.cab.begin_collect(SF, "k1", pid))
    h.run(h.cab.confirm_collect(1, accept=False, reason=RejectReason.MISMATCH))
    assert h.cab.state.parcels[pid].rejected_at == h.clock.now
    begin = h.run(h.cab.begin_pickup("k1", code))
    assert begin.result == {"compartment": 1, "parcel_id": pid, "retrieval": True}
    refused_unchanged(h, h.cab.confirm_pickup(1), ErrorCode.BAD_STATE)  # not a recipient's pickup
    back = h.run(h.cab.confirm_retrieval(1))
    [event] = back.events
    assert (event.type, event.body["reason"]) == ("dropoff.returned_to_sender", "mismatch")
    assert h.cab.state.parcels[pid].status is ParcelStatus.RETURNED_TO_SENDER
    assert h.cab.state.parcels[pid].code is None
    assert h.cab.state.compartments[1].state is CompartmentState.FREE
    refused_unchanged(h, h.cab.begin_pickup("k1", code), ErrorCode.WRONG_CODE)


def test_a_rejected_dropoff_behind_a_jammed_door_can_be_unblocked_for_its_sender(h: Harness) -> None:
    granted(h)
    pid, code = _rejected_dropoff(h)
    h.run(h.cab.begin_pickup("k1", code))
    rb = h.run(h.cab.door_failed(1, DoorFailure.JAMMED))
    assert (rb.record.kind, rb.failed) == ("retrieve.rollback", ErrorCode.DOOR_JAMMED)
    assert h.run(h.cab.unblock(1, "uid:1001", "fixed")).ok  # claimable by its code
    assert h.run(h.cab.begin_pickup("k1", code)).ok
    assert h.run(h.cab.confirm_retrieval(1)).ok
    assert h.cab.state.parcels[pid].status is ParcelStatus.RETURNED_TO_SENDER


def test_the_collected_dropoff_code_is_dropped(h: Harness) -> None:
    granted(h)
    h.run(h.cab.begin_dropoff("k1", sender(), intake_open=True))
    done = h.run(h.cab.confirm_dropoff(1))
    h.run(h.cab.begin_collect(SF, "k1", done.result["parcel_id"]))
    h.run(h.cab.confirm_collect(1, accept=True))
    assert h.cab.state.parcels[done.result["parcel_id"]].code is None


def test_blocks_survive_a_rebuild_from_the_snapshot(h: Harness) -> None:
    granted(h)
    assert h.run(h.cab.block(3, "hinge loose", "uid:1001")).ok
    rebuilt = Cabinet.from_dict(SPEC, h.clock, random.Random(0), json.loads(json.dumps(h.cab.to_dict())))
    assert rebuilt.blocks() == h.cab.blocks()
    assert rebuilt.blocks()[3].blocked_by == "uid:1001"
