"""Example tests of every cabinet flow and refusal, with exact error codes, events and records."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta
from typing import Any

import pytest

from lockerd.domain import (
    LIVE_STATUSES,
    Cabinet,
    CabinetSpec,
    CompartmentState,
    CourierAuth,
    Decision,
    Delivery,
    DoorFailure,
    Dropoff,
    ErrorCode,
    Expect,
    ParcelStatus,
    RefusalReason,
    RejectReason,
)
from lockerd.domain.ids import Size
from lockerd.domain.model import Parcel, SetParcel
from lockerd.domain.pins import hash_pin
from tests.fixtures.domain import PASSED, PIN, SPEC, T0, Harness, in_days, make_harness


def recorded(h: Harness, decision: Decision, pid: str) -> Parcel:
    """The finished parcel `decision` recorded for `pid`, which has left the in-memory state."""
    assert pid not in h.cab.state.parcels
    values = [c.value for c in decision.changes if isinstance(c, SetParcel) and c.value.id == pid]
    assert len(values) == 1
    assert values[0].status not in LIVE_STATUSES
    return values[0]


def finished(h: Harness, decision: Decision, pid: str) -> ParcelStatus:
    """The terminal status `decision` recorded for `pid`, which has left the in-memory state."""
    return recorded(h, decision, pid).status

SF = CourierAuth(carrier="sf", courier_id="c1", pin=PIN)
YTO = CourierAuth(carrier="yto", courier_id="y1", pin="730516")


def granted(h: Harness) -> Harness:
    assert h.run(h.cab.grant_courier("sf", "c1", in_days(h.clock, 30), pin=PIN)).ok
    assert h.run(h.cab.grant_courier("yto", "y1", in_days(h.clock, 30), pin="730516")).ok
    return h


def parcel(waybill: str = "SF1000001", size: Size = Size.S, **kw: Any) -> Delivery:
    return Delivery.model_validate({"waybill": waybill, "size": size, "consent": True, **kw})


def sender(**kw: Any) -> Dropoff:
    base = {"carrier": "sf", "size": Size.S, "verification_ref": "RN-77aa", "declared_contents": "books",
            "ack_insured_value": True, "ack_prohibited_items": True}
    return Dropoff.model_validate({**base, **kw})


def deposited(h: Harness, auth: CourierAuth = SF, waybill: str = "SF1000001",
              size: Size = Size.S) -> tuple[int, str, Decision]:
    """Deliver one parcel through to in_locker; returns compartment, pickup code and the confirm."""
    begin = h.run(h.cab.begin_deposit(auth, "k1", parcel(waybill, size)))
    assert begin.ok, begin.error
    assert begin.open_door is not None
    done = h.run(h.cab.confirm_deposit(begin.open_door))
    assert done.ok
    return begin.open_door, done.events[0].body["pickup_code"], done


def refused_unchanged(h: Harness, decision: Decision, code: ErrorCode) -> None:
    """A refusal: the code, no door, no event, nothing changed except the panel limiter."""
    before = h.cab.to_dict()
    h.run(decision)
    assert decision.error is code
    assert decision.open_door is None
    assert decision.events == ()
    assert decision.record.body["error"] == code.value
    after = h.cab.to_dict()
    before.pop("limiters")
    after.pop("limiters")
    assert after == before


# ---- couriers (Art. 16) ------------------------------------------------------------------------

def test_grant_refusals(h: Harness) -> None:
    later = in_days(h.clock, 1)
    refused_unchanged(h, h.cab.grant_courier("dhl", "d1", later, pin=PIN), ErrorCode.UNKNOWN_CARRIER)
    refused_unchanged(h, h.cab.grant_courier("sf", "c1", T0, pin=PIN), ErrorCode.INVALID_EXPIRY)
    refused_unchanged(h, h.cab.grant_courier("sf", "c1", datetime(2027, 1, 1), pin=PIN),
                      ErrorCode.INVALID_EXPIRY)
    refused_unchanged(h, h.cab.grant_courier("sf", "c1", later, pin="123456"), ErrorCode.WEAK_PIN)
    refused_unchanged(h, h.cab.grant_courier("sf", "c/1 x", later, pin=PIN), ErrorCode.BAD_REQUEST)
    refused_unchanged(h, h.cab.grant_courier("sf", "c" * 65, later, pin=PIN), ErrorCode.BAD_REQUEST)
    refused_unchanged(h, h.cab.grant_courier("sf", "c1", later), ErrorCode.BAD_PIN_HASH)
    refused_unchanged(h, h.cab.grant_courier("sf", "c1", later, pin=PIN, pin_hash="x"),
                      ErrorCode.BAD_PIN_HASH)
    refused_unchanged(h, h.cab.grant_courier("sf", "c1", later, pin_hash="sha1$abc"),
                      ErrorCode.BAD_PIN_HASH)


def test_grant_stores_only_a_salted_hash_and_tells_only_its_carrier(h: Harness) -> None:
    d = h.run(h.cab.grant_courier("sf", "c1", in_days(h.clock, 1), pin=PIN))
    assert [(e.carrier, e.type) for e in d.events] == [("sf", "courier.granted")]
    assert d.events[0].body == {"courier_id": "c1", "expires": "2026-03-02T08:00:00.000Z"}
    dump = json.dumps([h.cab.to_dict(), d.record.body, d.changes_json(), d.result])
    assert PIN not in dump
    d2 = h.run(h.cab.grant_courier("yto", "c1", in_days(h.clock, 1), pin=PIN))
    hashes = {c.pin_hash for c in h.cab.state.couriers.values()}
    assert len(hashes) == 2, "same PIN, different salts"
    assert d2.events[0].carrier == "yto"


def test_grant_with_a_carrier_supplied_hash(h: Harness) -> None:
    weak = hash_pin("555111", b"\x07" * 16, 1000)
    refused_unchanged(h, h.cab.grant_courier("sf", "c9", in_days(h.clock, 1), pin_hash=weak),
                      ErrorCode.BAD_PIN_HASH)
    encoded = hash_pin("555111", b"\x07" * 16, 10_000)
    assert h.run(h.cab.grant_courier("sf", "c9", in_days(h.clock, 1), pin_hash=encoded)).ok
    login = h.cab.courier_login(CourierAuth(carrier="sf", courier_id="c9", pin="555111"), "k1")
    assert login.ok


def test_courier_refusals_at_the_panel(h: Harness) -> None:
    granted(h)
    wrong_pin = SF.model_copy(update={"pin": "000001"})
    ghost = SF.model_copy(update={"courier_id": "nobody"})
    dhl = CourierAuth(carrier="dhl", courier_id="c1", pin=PIN)
    refused_unchanged(h, h.cab.begin_deposit(wrong_pin, "k1", parcel()), ErrorCode.BAD_PIN)
    refused_unchanged(h, h.cab.begin_deposit(ghost, "k1", parcel()), ErrorCode.BAD_PIN)
    refused_unchanged(h, h.cab.begin_deposit(dhl, "k1", parcel()), ErrorCode.UNKNOWN_CARRIER)
    assert h.cab.courier_login(SF, "k1").ok


def test_revoked_courier_is_refused_at_once(h: Harness) -> None:
    granted(h)
    _, _, _ = deposited(h)
    d = h.run(h.cab.revoke_courier("sf", "c1"))
    assert [(e.carrier, e.type) for e in d.events] == [("sf", "courier.revoked")]
    refused_unchanged(h, h.cab.begin_deposit(SF, "k1", parcel("SF1000002")), ErrorCode.COURIER_REVOKED)
    refused_unchanged(h, h.cab.courier_login(SF, "k1"), ErrorCode.COURIER_REVOKED)
    again = h.run(h.cab.revoke_courier("sf", "c1"))
    assert again.ok
    assert again.events == ()
    assert again.changes == ()
    refused_unchanged(h, h.cab.revoke_courier("sf", "ghost"), ErrorCode.UNKNOWN_COURIER)
    refused_unchanged(h, h.cab.revoke_courier("dhl", "c1"), ErrorCode.UNKNOWN_CARRIER)
    # re-granting is the carrier's way back
    assert h.run(h.cab.grant_courier("sf", "c1", in_days(h.clock, 1), pin=PIN)).ok
    assert h.cab.courier_login(SF, "k1").ok


def test_expired_courier_is_refused(h: Harness) -> None:
    assert h.run(h.cab.grant_courier("sf", "c1", in_days(h.clock, 1), pin=PIN)).ok
    h.clock.advance(timedelta(days=1))
    refused_unchanged(h, h.cab.begin_deposit(SF, "k1", parcel()), ErrorCode.COURIER_EXPIRED)


def test_bad_pins_lock_the_panel(h: Harness) -> None:
    granted(h)
    wrong = SF.model_copy(update={"pin": "000001"})
    for _ in range(5):
        assert h.run(h.cab.courier_login(wrong, "k1")).error is ErrorCode.BAD_PIN
    refused_unchanged(h, h.cab.courier_login(SF, "k1"), ErrorCode.LOCKED_OUT)
    assert h.cab.courier_login(SF, "k2").ok, "another panel is not locked"


# ---- delivery (Art. 22-24) ------------------------------------------------------------------------

def test_delivery_issues_code_and_art24_notice_to_its_carrier_only(h: Harness) -> None:
    granted(h)
    begin = h.run(h.cab.begin_deposit(SF, "k1", parcel("SF1000001", Size.M)))
    assert begin.open_door == 3
    assert h.cab.state.compartments[3].state is CompartmentState.RESERVED
    assert begin.events == ()
    assert h.cab.state.parcels[begin.result["parcel_id"]].status is ParcelStatus.DEPOSITING
    h.clock.advance(timedelta(seconds=20))
    done = h.run(h.cab.confirm_deposit(3))
    [event] = done.events
    assert event.carrier == "sf"
    assert event.type == "parcel.deposited"
    body = event.body
    code = body.pop("pickup_code")
    assert len(code) == 6
    assert code.isdigit()
    assert body == {
        "parcel_id": begin.result["parcel_id"], "waybill": "SF1000001", "courier_id": "c1",
        "compartment": 3, "size": "M", "deposited_at": "2026-03-01T08:00:20.000Z",
        "storage_deadline": "2026-03-04T08:00:20.000Z",
        "storage_deadline_local": "2026-03-04T08:00:20.000+00:00",
        "notice": {"locker_name": SPEC.name, "address": SPEC.address, "compartment_size": "M",
                   "storage_deadline": "2026-03-04T08:00:20.000Z",
                   "storage_deadline_local": "2026-03-04T08:00:20.000+00:00", "time_zone": "UTC"}}
    assert code not in json.dumps([done.result, done.record.body, begin.record.body])
    assert h.cab.state.compartments[3].state is CompartmentState.OCCUPIED


@pytest.mark.parametrize(("kw", "code"), [
    ({"consent": False}, ErrorCode.NO_CONSENT),
    ({"damaged": True}, ErrorCode.DAMAGED),
    ({"declared_weight_g": 500, "measured_weight_g": 900}, ErrorCode.WEIGHT_MISMATCH),
    ({"fresh": True}, ErrorCode.FRESH),
    ({"valuable": True}, ErrorCode.VALUABLE),
])
def test_delivery_refusals(h: Harness, kw: dict[str, Any], code: ErrorCode) -> None:
    granted(h)
    refused_unchanged(h, h.cab.begin_deposit(SF, "k1", parcel(**kw)), code)


def test_delivery_with_sender_choice_or_agreement_is_accepted(h: Harness) -> None:
    granted(h)
    assert h.cab.begin_deposit(SF, "k1", parcel(consent=False, sender_chose_locker=True)).ok
    assert h.cab.begin_deposit(SF, "k1", parcel(fresh=True, valuable=True, agreement=True)).ok


def test_allocation_fills_up_and_skips_blocked(h: Harness) -> None:
    granted(h)
    assert h.run(h.cab.block(1, "maintenance", "tech:t1")).ok
    comps = [deposited(h, waybill=f"SF100000{i}")[0] for i in range(3)]
    assert comps == [2, 3, 4]          # S (1 blocked), then M, then L
    refused_unchanged(h, h.cab.begin_deposit(SF, "k1", parcel("SF1000009")),
                      ErrorCode.NO_FREE_COMPARTMENT)
    assert h.cab.free_counts() == {"S": 0, "M": 0, "L": 0}
    assert h.cab.blocked() == [1]


def test_same_waybill_twice_is_refused(h: Harness) -> None:
    granted(h)
    deposited(h)
    refused_unchanged(h, h.cab.begin_deposit(SF, "k1", parcel()), ErrorCode.BAD_STATE)


@pytest.mark.parametrize(("failure", "state", "reason"), [
    (DoorFailure.NOT_OPENED, CompartmentState.FREE, None),
    (DoorFailure.JAMMED, CompartmentState.BLOCKED, "door_jammed"),
    (DoorFailure.NOT_CLOSED, CompartmentState.BLOCKED, "door_left_open"),
])
def test_deposit_rollback(h: Harness, failure: DoorFailure, state: CompartmentState,
                          reason: str | None) -> None:
    granted(h)
    begin = h.run(h.cab.begin_deposit(SF, "k1", parcel()))
    assert begin.open_door == 1
    rb = h.run(h.cab.door_failed(1, failure))
    assert rb.record.kind == "deposit.rollback"
    assert rb.events == ()
    assert finished(h, rb, begin.result["parcel_id"]) is ParcelStatus.ROLLED_BACK
    comp = h.cab.state.compartments[1]
    assert comp.state is state
    assert comp.parcel_id is None
    assert comp.blocked_reason == reason
    assert (rb.notify_operator is not None) == (state is CompartmentState.BLOCKED)
    # the flow offers another compartment (or the same one when nothing happened)
    retry = h.run(h.cab.begin_deposit(SF, "k1", parcel()))
    assert retry.open_door == (1 if state is CompartmentState.FREE else 2)


def test_a_deposit_left_open_on_an_item_is_held_for_staff_not_rolled_back(h: Harness) -> None:
    """Recovery at start (issue 16): the door reads closed on an item the sensor sees. The parcel
    stays inside as `depositing` without a code behind a `deposit_unconfirmed` block; unblock is
    refused while it is inside, clear takes it out and tells its carrier."""
    granted(h)
    begin = h.run(h.cab.begin_deposit(SF, "k1", parcel()))
    pid = begin.result["parcel_id"]
    held = h.run(h.cab.hold_unconfirmed(1))
    assert (held.ok, held.failed, held.record.kind) == (True, None, "deposit.held")
    assert held.events == ()
    assert held.notify_operator is not None
    p, comp = h.cab.state.parcels[pid], h.cab.state.compartments[1]
    assert (p.status, p.code) == (ParcelStatus.DEPOSITING, None)
    assert (comp.state, comp.parcel_id, comp.pending) == (CompartmentState.BLOCKED, pid, None)
    assert (comp.blocked_reason, comp.blocked_by) == ("deposit_unconfirmed", "doors")
    # nothing under way any more: a second hold or rollback is refused
    refused_unchanged(h, h.cab.hold_unconfirmed(1), ErrorCode.BAD_STATE)
    refused_unchanged(h, h.cab.door_failed(1, DoorFailure.NOT_CLOSED), ErrorCode.BAD_STATE)
    refused_unchanged(h, h.cab.unblock(1, "tech:t1", "looked"), ErrorCode.HOLDS_PARCEL)
    cleared = h.run(h.cab.clear(1, "tech:t1", "taken out"))
    assert cleared.result["released"] == "deposit_unconfirmed"
    assert [e.type for e in cleared.events] == ["parcel.removed_by_staff"]
    assert finished(h, cleared, pid) is ParcelStatus.REMOVED_BY_STAFF
    assert h.cab.state.compartments[1].state is CompartmentState.FREE


def test_only_a_deposit_or_dropoff_is_held(h: Harness) -> None:
    granted(h)
    refused_unchanged(h, h.cab.hold_unconfirmed(1), ErrorCode.BAD_STATE)
    cid, code, _ = deposited(h)
    assert h.run(h.cab.begin_pickup("k2", code, None)).ok
    refused_unchanged(h, h.cab.hold_unconfirmed(cid), ErrorCode.BAD_STATE)
    refused_unchanged(h, h.cab.hold_unconfirmed(99), ErrorCode.UNKNOWN_COMPARTMENT)


def test_confirm_without_a_matching_operation(h: Harness) -> None:
    granted(h)
    refused_unchanged(h, h.cab.confirm_deposit(1), ErrorCode.BAD_STATE)
    refused_unchanged(h, h.cab.confirm_deposit(99), ErrorCode.UNKNOWN_COMPARTMENT)
    cid, _, _ = deposited(h)
    refused_unchanged(h, h.cab.confirm_pickup(cid), ErrorCode.BAD_STATE)
    refused_unchanged(h, h.cab.door_failed(cid, DoorFailure.JAMMED), ErrorCode.BAD_STATE)


# ---- pickup (Art. 25) and refusal (Art. 26) ----------------------------------------------------------

def test_pickup_inside_the_storage_period_is_free(h: Harness) -> None:
    granted(h)
    cid, code, _ = deposited(h)
    begin = h.run(h.cab.begin_pickup("k1", code))
    assert begin.open_door == cid
    assert begin.result["fee_cents"] == 0
    assert h.cab.state.compartments[cid].state is CompartmentState.OPENING
    done = h.run(h.cab.confirm_pickup(cid))
    [event] = done.events
    assert (event.carrier, event.type) == ("sf", "parcel.picked_up")
    assert event.body["fee_cents"] == 0
    assert event.body["overdue"] is False
    assert h.cab.state.compartments[cid].state is CompartmentState.FREE
    refused_unchanged(h, h.cab.begin_pickup("k1", code), ErrorCode.WRONG_CODE)


def test_overdue_then_pickup_with_fee(h: Harness) -> None:
    granted(h)
    cid, code, _ = deposited(h)
    h.clock.advance(timedelta(hours=71))
    assert h.run(h.cab.sweep_overdue()).changes == ()
    h.clock.advance(timedelta(hours=1))
    sweep = h.run(h.cab.sweep_overdue())
    [event] = sweep.events
    assert (event.carrier, event.type) == ("sf", "parcel.overdue")
    assert event.body["storage_deadline"] == "2026-03-04T08:00:00.000Z"
    assert h.run(h.cab.sweep_overdue()).events == (), "overdue is announced once"
    assert h.cab.worklist("sf")["to_return"][0]["status"] == "overdue"
    h.clock.advance(timedelta(hours=30))
    due = h.run(h.cab.begin_pickup("k2", code))
    assert due.error is ErrorCode.FEE_DUE
    assert due.open_door is None
    assert due.result == {"fee_cents": 300, "storage_deadline": "2026-03-04T08:00:00.000Z",
                          "storage_deadline_local": "2026-03-04T08:00:00.000+00:00"}
    assert h.run(h.cab.begin_pickup("k2", code, 150)).error is ErrorCode.FEE_DUE
    begin = h.run(h.cab.begin_pickup("k2", code, 300))
    # the fee accepted at the door is the one recorded, even if a period ends before it closes
    h.clock.advance(timedelta(days=1))
    assert begin.result == {"compartment": cid, "parcel_id": begin.record.parcel_id, "fee_cents": 300,
                            "overdue": True}
    done = h.run(h.cab.confirm_pickup(cid))
    assert done.events[0].body["fee_cents"] == 300


def test_wrong_codes_lock_the_panel_exponentially(h: Harness) -> None:
    granted(h)
    _, code, _ = deposited(h)
    wrong = "000000" if code != "000000" else "000001"
    results = [h.run(h.cab.begin_pickup("k1", wrong)) for _ in range(5)]
    assert [r.error for r in results] == [ErrorCode.WRONG_CODE] * 5
    assert [r.result.get("attempts_left") for r in results] == [4, 3, 2, 1, 0]
    assert results[-1].result["locked_until"] == "2026-03-01T08:01:00.000Z"
    refused_unchanged(h, h.cab.begin_pickup("k1", code), ErrorCode.LOCKED_OUT)
    assert h.cab.begin_pickup("k2", code).ok, "the lockout is per panel"
    h.clock.advance(timedelta(minutes=1))
    for _ in range(5):
        h.run(h.cab.begin_pickup("k1", wrong))
    assert h.cab.begin_pickup("k1", code).result["locked_until"] == "2026-03-01T08:03:00.000Z"


def test_refusal_on_the_spot_then_return(h: Harness) -> None:
    granted(h)
    cid, code, _ = deposited(h)
    assert h.run(h.cab.begin_pickup("k1", code)).ok
    done = h.run(h.cab.confirm_refusal(cid, RefusalReason.SHORT))
    [event] = done.events
    assert (event.carrier, event.type) == ("sf", "parcel.refused")
    assert event.body["reason"] == "short"
    assert h.cab.state.compartments[cid].state is CompartmentState.OCCUPIED
    refused_unchanged(h, h.cab.begin_pickup("k1", code), ErrorCode.WRONG_CODE)
    pid = done.result["parcel_id"]
    assert h.cab.worklist("sf")["to_return"] == [
        {"parcel_id": pid, "compartment": cid, "status": "refused", "waybill": "SF1000001"}]
    assert h.cab.worklist("yto") == {"to_return": [], "to_collect": []}
    refused_unchanged(h, h.cab.begin_return(YTO, "k1", pid), ErrorCode.NOT_YOUR_PARCEL)
    refused_unchanged(h, h.cab.begin_return(SF, "k1", "p-nope"), ErrorCode.UNKNOWN_PARCEL)
    begin = h.run(h.cab.begin_return(SF, "k1", pid))
    assert begin.open_door == cid
    back = h.run(h.cab.confirm_return(cid))
    assert (back.events[0].type, back.events[0].body["from_status"]) == ("parcel.returned", "refused")
    assert finished(h, back, pid) is ParcelStatus.RETURNED


def test_return_of_a_parcel_still_waiting_is_refused(h: Harness) -> None:
    granted(h)
    _, _, done = deposited(h)
    refused_unchanged(h, h.cab.begin_return(SF, "k1", done.result["parcel_id"]), ErrorCode.BAD_STATE)


def test_pickup_from_a_blocked_compartment(h: Harness) -> None:
    granted(h)
    cid, code, _ = deposited(h)
    assert h.run(h.cab.block(cid, "forced", "tech:t1")).ok
    # answered like a wrong code (tests/domain/test_oracle.py)
    refused_unchanged(h, h.cab.begin_pickup("k1", code), ErrorCode.WRONG_CODE)
    assert h.run(h.cab.unblock(cid, "tech:t1")).result["state"] == "occupied"
    assert h.cab.begin_pickup("k1", code).ok


def test_pickup_door_jam_keeps_the_parcel(h: Harness) -> None:
    granted(h)
    cid, code, done = deposited(h)
    h.run(h.cab.begin_pickup("k1", code))
    rb = h.run(h.cab.door_failed(cid, DoorFailure.JAMMED))
    assert rb.record.kind == "pickup.rollback"
    assert h.cab.state.parcels[done.result["parcel_id"]].status is ParcelStatus.IN_LOCKER
    assert h.cab.state.compartments[cid].state is CompartmentState.BLOCKED
    assert h.cab.state.compartments[cid].parcel_id == done.result["parcel_id"]


# ---- drop-off (Art. 11, 18, 19) and collection (Art. 20, 21) -----------------------------------------

@pytest.mark.parametrize(("kw", "intake", "code"), [
    ({"carrier": "dhl"}, True, ErrorCode.UNKNOWN_CARRIER),
    ({}, False, ErrorCode.INTAKE_CLOSED),
    ({"verification_ref": ""}, True, ErrorCode.NO_VERIFICATION),
    ({"verification_ref": "110101199003074512"}, True, ErrorCode.ID_NUMBER_NOT_ALLOWED),
    ({"declared_contents": ""}, True, ErrorCode.NO_CONTENTS),
    ({"ack_insured_value": False}, True, ErrorCode.NOT_ACKNOWLEDGED),
    ({"ack_prohibited_items": False}, True, ErrorCode.NOT_ACKNOWLEDGED),
])
def test_dropoff_refusals(h: Harness, kw: dict[str, Any], intake: bool, code: ErrorCode) -> None:
    identity = None if kw.get("verification_ref") == "" else PASSED
    d = h.cab.begin_dropoff("k1", sender(**kw), intake_open=intake, intake_reason="camera covered",
                            identity=identity)
    refused_unchanged(h, d, code)
    assert "110101199003074512" not in json.dumps(d.record.body)
    if code is ErrorCode.INTAKE_CLOSED:
        assert "camera covered" in d.message


def test_dropoff_received_then_collected(h: Harness) -> None:
    granted(h)
    begin = h.run(h.cab.begin_dropoff("k1", sender(waybill="SF2000001"), intake_open=True, identity=PASSED))
    assert begin.open_door == 1
    done = h.run(h.cab.confirm_dropoff(1))
    [event] = done.events
    assert (event.carrier, event.type) == ("sf", "dropoff.received")
    assert event.body["declared_contents"] == "books"
    assert event.body["verification_ref"] == "RN-77aa"
    assert event.body["acknowledged"] == {"insured_value_rules": True, "prohibited_items": True}
    pid = done.result["parcel_id"]
    assert h.cab.worklist("sf")["to_collect"][0]["parcel_id"] == pid
    refused_unchanged(h, h.cab.begin_collect(YTO, "k1", pid), ErrorCode.NOT_YOUR_PARCEL)
    refused_unchanged(h, h.cab.begin_return(SF, "k1", pid), ErrorCode.BAD_STATE)
    assert h.run(h.cab.begin_collect(SF, "k1", pid)).open_door == 1
    got = h.run(h.cab.confirm_collect(1, accept=True))
    assert (got.events[0].type, got.events[0].body["courier_id"]) == ("dropoff.collected", "c1")
    assert finished(h, got, pid) is ParcelStatus.COLLECTED
    assert h.cab.state.compartments[1].state is CompartmentState.FREE


def test_dropoff_rejected_at_collection_stays_until_staff_clear_it(h: Harness) -> None:
    granted(h)
    h.run(h.cab.begin_dropoff("k1", sender(), intake_open=True, identity=PASSED))
    pid = h.run(h.cab.confirm_dropoff(1)).result["parcel_id"]
    h.run(h.cab.begin_collect(SF, "k1", pid))
    rej = h.run(h.cab.confirm_collect(1, accept=False, reason=RejectReason.PROHIBITED))
    assert (rej.events[0].type, rej.events[0].body["reason"]) == ("dropoff.rejected", "prohibited")
    assert rej.notify_operator is not None
    assert h.cab.state.parcels[pid].status is ParcelStatus.REJECTED
    assert h.cab.state.compartments[1].state is CompartmentState.OCCUPIED
    refused_unchanged(h, h.cab.begin_collect(SF, "k1", pid), ErrorCode.BAD_STATE)
    cleared = h.run(h.cab.clear(1, "tech:t1", "took it to the counter"))
    assert cleared.result["from_status"] == ["rejected"]
    assert [e.type for e in cleared.events] == ["parcel.removed_by_staff"]
    assert finished(h, cleared, pid) is ParcelStatus.REMOVED_BY_STAFF
    assert h.cab.state.compartments[1].state is CompartmentState.FREE


# ---- events, records, persistence --------------------------------------------------------------------

def test_each_carrier_sees_only_its_own_events(h: Harness) -> None:
    granted(h)
    deposited(h, SF, "SF1000001")
    deposited(h, YTO, "YT1000001")
    by_carrier: dict[str, list[str]] = {}
    for d in h.log:
        for e in d.events:
            by_carrier.setdefault(e.carrier, []).append(json.dumps(e.body))
    assert all("YT1000001" not in b and '"y1"' not in b for b in by_carrier["sf"])
    assert all("SF1000001" not in b and '"c1"' not in b for b in by_carrier["yto"])


def test_state_rebuilds_from_snapshot_and_from_replay(h: Harness) -> None:
    granted(h)
    cid, code, _ = deposited(h)
    h.run(h.cab.begin_pickup("k1", code))
    snap = json.loads(json.dumps(h.cab.to_dict()))
    again = Cabinet.from_dict(SPEC, h.clock, random.Random(), snap)
    assert again.state == h.cab.state
    replayed = Cabinet.replay(SPEC, h.clock, random.Random(),
                              (json.loads(json.dumps(d.changes_json())) for d in h.log))
    assert replayed.state == h.cab.state
    # after the crash the open pickup can still be finished (or rolled back)
    assert again.confirm_pickup(cid).ok
    bigger = CabinetSpec(name=SPEC.name, address=SPEC.address,
                         compartments=(*SPEC.compartments, (5, Size.S)), carriers=SPEC.carriers,
                         policy=SPEC.policy)
    grown = Cabinet.from_dict(bigger, h.clock, random.Random(), snap)
    assert grown.state.compartments[5].state is CompartmentState.FREE


def test_naive_clock_is_rejected() -> None:
    cab = Cabinet(SPEC, lambda: datetime(2026, 1, 1), random.Random())
    with pytest.raises(ValueError, match="timezone-aware"):
        cab.sweep_overdue()


def test_every_decision_has_a_record_even_refusals() -> None:
    h = granted(make_harness())
    d = h.cab.begin_pickup("k1", "999999")
    assert d.record.kind == "pickup.begin"
    assert d.record.actor == "panel:k1"
    assert d.record.body == {"panel": "k1", "attempts_left": 4, "error": "wrong_code"}
    assert "999999" not in json.dumps(d.record.body)


# ---- carrier commands: parcel.expect / parcel.recall ----------------------------------------------

def test_expected_parcel_brings_consent_and_agreement(h: Harness) -> None:
    granted(h)
    no_consent = parcel("SF3000001", fresh=True, consent=False)
    refused_unchanged(h, h.cab.begin_deposit(SF, "k1", no_consent), ErrorCode.NO_CONSENT)
    refused_unchanged(h, h.cab.expect_parcel("dhl", Expect(waybill="SF3000001", size=Size.S)),
                      ErrorCode.UNKNOWN_CARRIER)
    exp = h.run(h.cab.expect_parcel("sf", Expect(waybill="SF3000001", size=Size.S, consent=True,
                                                 agreement=True)))
    assert exp.result == {"waybill": "SF3000001", "expected": True, "deliverable": True,
                          "refusal": None}
    assert exp.events == ()
    # another carrier's announcement of the same number does not apply to sf's parcel
    h.run(h.cab.expect_parcel("yto", Expect(waybill="SF3000002", size=Size.S, consent=True)))
    refused_unchanged(h, h.cab.begin_deposit(SF, "k1", parcel("SF3000002", consent=False)),
                      ErrorCode.NO_CONSENT)
    begin = h.run(h.cab.begin_deposit(SF, "k1", no_consent))
    assert begin.record.body["expected"] is True
    # a rollback keeps the announcement; a confirmed deposit consumes it
    h.run(h.cab.door_failed(begin.open_door or 0, DoorFailure.NOT_OPENED))
    assert "sf/SF3000001" in h.cab.state.expected
    begin = h.run(h.cab.begin_deposit(SF, "k1", no_consent))
    h.run(h.cab.confirm_deposit(begin.open_door or 0))
    assert "sf/SF3000001" not in h.cab.state.expected
    refused_unchanged(h, h.cab.expect_parcel("sf", Expect(waybill="SF3000001", size=Size.S)),
                      ErrorCode.BAD_STATE)


def test_expected_weight_is_checked_against_the_measured_one(h: Harness) -> None:
    granted(h)
    h.run(h.cab.expect_parcel("sf", Expect(waybill="SF3000003", size=Size.S, consent=True,
                                           declared_weight_g=500)))
    refused_unchanged(h, h.cab.begin_deposit(SF, "k1", parcel("SF3000003", measured_weight_g=900)),
                      ErrorCode.WEIGHT_MISMATCH)


def test_recall(h: Harness) -> None:
    granted(h)
    h.run(h.cab.expect_parcel("sf", Expect(waybill="SF3000004", size=Size.S, consent=True)))
    assert h.run(h.cab.recall_parcel("sf", "SF3000004")).result["recalled"] == "expectation"
    assert h.cab.state.expected == {}
    cid, code, done = deposited(h)
    refused_unchanged(h, h.cab.recall_parcel("yto", "SF1000001"), ErrorCode.UNKNOWN_PARCEL)
    refused_unchanged(h, h.cab.recall_parcel("dhl", "SF1000001"), ErrorCode.UNKNOWN_CARRIER)
    rec = h.run(h.cab.recall_parcel("sf", "SF1000001"))
    assert rec.result == {"waybill": "SF1000001", "recalled": "parcel",
                          "parcel_id": done.result["parcel_id"], "compartment": cid}
    refused_unchanged(h, h.cab.begin_pickup("k1", code), ErrorCode.WRONG_CODE)
    refused_unchanged(h, h.cab.recall_parcel("sf", "SF1000001"), ErrorCode.BAD_STATE)
    assert h.cab.worklist("sf")["to_return"][0]["status"] == "recalled"
    h.run(h.cab.begin_return(SF, "k1", done.result["parcel_id"]))
    back = h.run(h.cab.confirm_return(cid))
    assert back.events[0].body["from_status"] == "recalled"


# ---- state size (issue 19): only live parcels are kept, looked up by index ---------------------

def test_a_finished_parcel_leaves_memory_with_its_code_and_waybill(h: Harness) -> None:
    granted(h)
    cid, code, done = deposited(h)
    pid = done.result["parcel_id"]
    digest = h.cab.state.parcels[pid].code
    assert digest is not None
    assert h.cab.state.parcel_by_code(digest) == h.cab.state.parcels[pid]
    assert h.cab.state.live_delivery("sf", "SF1000001") == h.cab.state.parcels[pid]
    h.run(h.cab.begin_pickup("k1", code))
    picked = h.run(h.cab.confirm_pickup(cid))
    assert finished(h, picked, pid) is ParcelStatus.PICKED_UP
    assert h.cab.live_parcels() == []
    assert h.cab.to_dict()["parcels"] == {}
    assert h.cab.state.parcel_by_code(digest) is None
    assert h.cab.state.live_delivery("sf", "SF1000001") is None
    assert digest not in h.cab.state.code_digests()
    # the record is in the log's tables now: the cabinet answers as for any parcel not here
    refused_unchanged(h, h.cab.begin_return(SF, "k1", pid), ErrorCode.UNKNOWN_PARCEL)
    refused_unchanged(h, h.cab.begin_pickup("k1", code), ErrorCode.WRONG_CODE)
    # the waybill may come back (a parcel returned to the sender and sent again)
    again_cid, _, again = deposited(h)
    assert again.result["parcel_id"] != pid
    assert h.cab.state.live_delivery("sf", "SF1000001") is not None
    assert again_cid == cid


def test_a_refused_parcel_keeps_its_waybill_index_but_not_its_code(h: Harness) -> None:
    granted(h)
    cid, code, done = deposited(h)
    pid = done.result["parcel_id"]
    h.run(h.cab.begin_pickup("k1", code))
    h.run(h.cab.confirm_refusal(cid, RefusalReason.DAMAGED))
    assert h.cab.state.code_digests() == set()
    assert h.cab.state.live_delivery("sf", "SF1000001") == h.cab.state.parcels[pid]
    assert h.cab.worklist("sf")["to_return"][0]["parcel_id"] == pid


def test_a_snapshot_holding_finished_parcels_restores_only_live_ones(h: Harness) -> None:
    granted(h)
    cid, code, done = deposited(h)
    snap = json.loads(json.dumps(h.cab.to_dict()))
    pid = done.result["parcel_id"]
    old = {**snap["parcels"][pid], "id": "p-00000000000000aa", "status": "picked_up",
           "code": None}
    snap["parcels"][old["id"]] = old
    again = Cabinet.from_dict(SPEC, h.clock, random.Random(), snap)
    assert set(again.state.parcels) == {pid}
    assert again.begin_pickup("k1", code).open_door == cid
