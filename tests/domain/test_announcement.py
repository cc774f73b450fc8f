"""Art. 22/23 from the carrier's announcement (`parcel.expect`) to the deposit, in the pure domain."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from lockerd.domain import CourierAuth, Delivery, ErrorCode, Expect
from lockerd.domain.ids import Size
from tests.fixtures.domain import PIN, SPEC, Harness, in_days, make_harness

SF = CourierAuth(carrier="sf", courier_id="c1", pin=PIN)


def _ready(h: Harness) -> Harness:
    assert h.run(h.cab.grant_courier("sf", "c1", in_days(h.clock, 30), pin=PIN)).ok
    return h


def _announce(h: Harness, waybill: str, **kw: Any) -> dict[str, Any]:
    d = h.run(h.cab.expect_parcel("sf", Expect(waybill=waybill, size=Size.S, **kw)))
    assert d.ok, d.error
    return d.result


def _courier_says_everything(waybill: str, **kw: Any) -> Delivery:
    """The courier ticks every box that could let a parcel in."""
    return Delivery(waybill=waybill, size=Size.S, consent=True, sender_chose_locker=True,
                    agreement=True, **kw)


@pytest.mark.parametrize(("announced", "code"), [
    ({"consent": False}, ErrorCode.NO_CONSENT),
    ({"consent": True, "damaged": True}, ErrorCode.DAMAGED),
    ({"consent": True, "weight_mismatch": True}, ErrorCode.WEIGHT_MISMATCH),
    ({"consent": True, "fresh": True}, ErrorCode.FRESH),
    ({"consent": True, "valuable": True}, ErrorCode.VALUABLE),
    # the sender's agreement lets fresh produce and valuables in, never damage (Art. 23)
    ({"consent": True, "damaged": True, "agreement": True}, ErrorCode.DAMAGED),
    ({"consent": True, "weight_mismatch": True, "agreement": True}, ErrorCode.WEIGHT_MISMATCH),
])
def test_each_announced_rule_refuses_whatever_the_courier_ticks(
        announced: dict[str, Any], code: ErrorCode) -> None:
    h = _ready(make_harness())
    result = _announce(h, "SF4000001", **announced)
    # the carrier learns at once that this waybill cannot go into the locker
    assert result == {"waybill": "SF4000001", "expected": True, "deliverable": False,
                      "refusal": code.value}
    begin = h.run(h.cab.begin_deposit(SF, "k1", _courier_says_everything("SF4000001")))
    assert begin.error is code
    assert begin.open_door is None
    assert begin.record.body["expected"] is True
    # the announcement stays: the courier cannot get around it by trying again
    assert "sf/SF4000001" in h.cab.state.expected


@pytest.mark.parametrize("announced", [
    {"consent": True},
    {"consent": False, "sender_chose_locker": True},  # Art. 22: the sender chose the locker
    {"consent": True, "fresh": True, "agreement": True},
    {"consent": True, "valuable": True, "agreement": True},
])
def test_an_allowed_announcement_delivers_without_the_courier_ticking_anything(
        announced: dict[str, Any]) -> None:
    h = _ready(make_harness())
    assert _announce(h, "SF4000002", **announced)["deliverable"] is True
    begin = h.run(h.cab.begin_deposit(SF, "k1", Delivery(waybill="SF4000002", size=Size.S)))
    assert begin.ok, begin.error


def test_the_courier_can_add_what_it_sees_but_not_an_agreement() -> None:
    h = _ready(make_harness())
    _announce(h, "SF4000003", consent=True)
    seen = Delivery(waybill="SF4000003", size=Size.S, damaged=True)
    assert h.run(h.cab.begin_deposit(SF, "k1", seen)).error is ErrorCode.DAMAGED
    fresh = Delivery(waybill="SF4000003", size=Size.S, fresh=True, agreement=True)
    # the carrier announced no agreement: the courier's tick does not make one
    assert h.run(h.cab.begin_deposit(SF, "k1", fresh)).error is ErrorCode.FRESH


def test_the_announced_weight_is_the_waybill_weight() -> None:
    h = _ready(make_harness())
    _announce(h, "SF4000004", consent=True, declared_weight_g=500)
    # the courier's own declared weight does not replace the waybill's
    claim = Delivery(waybill="SF4000004", size=Size.S, declared_weight_g=900, measured_weight_g=900)
    assert h.run(h.cab.begin_deposit(SF, "k1", claim)).error is ErrorCode.WEIGHT_MISMATCH
    ok = Delivery(waybill="SF4000004", size=Size.S, measured_weight_g=520)
    assert h.run(h.cab.begin_deposit(SF, "k1", ok)).ok


def test_a_carrier_that_requires_expectation_gets_only_announced_waybills() -> None:
    spec = dataclasses.replace(SPEC, expectation_required=frozenset({"sf"}))
    h = _ready(make_harness(spec))
    unannounced = _courier_says_everything("SF4000005")
    begin = h.run(h.cab.begin_deposit(SF, "k1", unannounced))
    assert begin.error is ErrorCode.NOT_EXPECTED
    assert begin.record.body["expected"] is False
    _announce(h, "SF4000005", consent=True)
    assert h.run(h.cab.begin_deposit(SF, "k1", unannounced)).ok
    # yto does not require it: its couriers' declarations suffice
    assert h.run(h.cab.grant_courier("yto", "y1", in_days(h.clock, 30), pin="730516")).ok
    yto = CourierAuth(carrier="yto", courier_id="y1", pin="730516")
    assert h.run(h.cab.begin_deposit(yto, "k1", Delivery(waybill="YT4000006", size=Size.S,
                                                         consent=True))).ok
