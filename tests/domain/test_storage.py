"""parcel.notice and parcel.extend in the pure domain: deadlines in UTC and local time, fees, limits."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from lockerd.domain import CourierAuth, Delivery, ErrorCode, ParcelStatus
from lockerd.domain.ids import Size
from tests.fixtures.domain import PIN, SPEC, Harness, in_days, make_harness

SF = CourierAuth(carrier="sf", courier_id="c1", pin=PIN)
SHANGHAI = dataclasses.replace(SPEC, timezone="Asia/Shanghai", policy=dataclasses.replace(
    SPEC.policy, max_extension=timedelta(hours=48)))


def _stored(h: Harness, waybill: str = "SF5000001") -> tuple[int, str]:
    assert h.run(h.cab.grant_courier("sf", "c1", in_days(h.clock, 30), pin=PIN)).ok
    begin = h.run(h.cab.begin_deposit(SF, "k1", Delivery(waybill=waybill, size=Size.S,
                                                         consent=True)))
    assert begin.open_door is not None
    done = h.run(h.cab.confirm_deposit(begin.open_door))
    return begin.open_door, done.events[0].body["pickup_code"]


def test_notice_resends_the_current_deadline_in_utc_and_local_time() -> None:
    h = make_harness(SHANGHAI)
    cid, _ = _stored(h)
    d = h.run(h.cab.notice_parcel("sf", "SF5000001"))
    assert d.ok
    assert d.changes == ()
    [event] = d.events
    assert (event.carrier, event.type) == ("sf", "parcel.notice_resent")
    assert event.body["compartment"] == cid
    assert event.body["storage_deadline"] == "2026-03-04T08:00:00.000Z"
    assert event.body["storage_deadline_local"] == "2026-03-04T16:00:00.000+08:00"
    assert event.body["notice"]["time_zone"] == "Asia/Shanghai"
    assert (event.body["overdue"], event.body["fee_cents"]) == (False, 0)
    assert "pickup_code" not in event.body  # the code went out once, with parcel.deposited
    assert h.cab.notice_parcel("yto", "SF5000001").error is ErrorCode.UNKNOWN_PARCEL
    assert h.cab.notice_parcel("dhl", "SF5000001").error is ErrorCode.UNKNOWN_CARRIER


def test_extend_moves_the_deadline_and_the_fee_and_is_recorded() -> None:
    h = make_harness(SHANGHAI)
    cid, code = _stored(h)
    h.clock.advance(timedelta(hours=73))
    h.run(h.cab.sweep_overdue())
    assert h.cab.begin_pickup("k1", code).error is ErrorCode.FEE_DUE
    d = h.run(h.cab.extend_parcel("sf", "SF5000001", 24))
    assert d.ok
    assert d.result["storage_deadline"] == "2026-03-05T08:00:00.000Z"
    assert d.result["storage_deadline_local"] == "2026-03-05T16:00:00.000+08:00"
    assert (d.result["hours"], d.result["extended_hours"]) == (24, 24)
    # overdue, but the new deadline is ahead: waiting for its recipient again, no fee
    assert d.result["status"] == "in_locker"
    [parcel] = [p for p in h.cab.state.parcels.values() if p.compartment == cid]
    assert parcel.status is ParcelStatus.IN_LOCKER
    assert d.record.body == {"waybill": "SF5000001", "hours": 24, "extended_hours": 24,
                             "status": "in_locker"}
    assert d.events[0].type == "parcel.extended"
    assert d.events[0].body["notice"]["storage_deadline"] == "2026-03-05T08:00:00.000Z"
    assert h.cab.begin_pickup("k1", code).ok
    # more than once, up to the total the policy allows
    h2 = make_harness(SHANGHAI)
    _stored(h2)
    assert h2.run(h2.cab.extend_parcel("sf", "SF5000001", 24)).ok
    assert h2.run(h2.cab.extend_parcel("sf", "SF5000001", 24)).ok
    too_much = h2.cab.extend_parcel("sf", "SF5000001", 1)
    assert too_much.error is ErrorCode.BAD_REQUEST
    assert h2.cab.extend_parcel("sf", "SF5000001", 0).error is ErrorCode.BAD_REQUEST


def test_only_waiting_parcels_take_notices_and_extensions() -> None:
    h = make_harness(SHANGHAI)
    _, code = _stored(h)
    begin = h.run(h.cab.begin_pickup("k1", code))
    assert begin.open_door is not None
    h.run(h.cab.confirm_pickup(begin.open_door))
    assert h.cab.notice_parcel("sf", "SF5000001").error is ErrorCode.UNKNOWN_PARCEL
    assert h.cab.extend_parcel("sf", "SF5000001", 1).error is ErrorCode.UNKNOWN_PARCEL
    h2 = make_harness(SHANGHAI)
    _stored(h2)
    assert h2.run(h2.cab.recall_parcel("sf", "SF5000001")).ok
    assert h2.cab.extend_parcel("sf", "SF5000001", 1).error is ErrorCode.BAD_STATE
