"""The domain's rules for a verified offline pass, on a fake clock: the exact time boundaries,
cabinet ids and groups, and revocations kept until the pass would expire."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from lockerd.domain import CourierAuth, Delivery
from lockerd.domain.requests import PassClaim
from tests.fixtures.domain import SPEC, T0, Harness, make_harness

HERE = dataclasses.replace(SPEC, cabinet_id="CAB-1", groups=frozenset({"north"}))


def _auth(**over: object) -> CourierAuth:
    fields: dict[str, object] = {"carrier": "sf", "courier_id": "c-9", "pass_id": "pass-0001",
                                 "cabinets": ("CAB-1",), "not_before": T0,
                                 "expires": T0 + timedelta(hours=4), **over}
    claim = PassClaim.model_validate(fields)
    return CourierAuth(carrier=claim.carrier, courier_id=claim.courier_id, pass_claim=claim)


def _login(h: Harness, auth: CourierAuth) -> str | None:
    decision = h.run(h.cab.courier_login(auth, "kiosk-1"))
    assert decision.record.body["pass_id"] == auth.pass_claim.pass_id  # type: ignore[union-attr]
    return None if decision.error is None else decision.error.value


def test_valid_from_not_before_up_to_but_excluding_expires() -> None:
    h = make_harness(HERE)
    h.clock.now = T0 - timedelta(seconds=1)
    assert _login(h, _auth()) == "pass_not_yet_valid"
    h.clock.now = T0
    assert _login(h, _auth()) is None
    h.clock.now = T0 + timedelta(hours=4) - timedelta(milliseconds=1)
    assert _login(h, _auth()) is None
    h.clock.now = T0 + timedelta(hours=4)
    assert _login(h, _auth()) == "pass_expired"


def test_cabinet_ids_and_groups() -> None:
    h = make_harness(HERE)
    assert _login(h, _auth(cabinets=("CAB-2",))) == "pass_wrong_cabinet"
    assert _login(h, _auth(cabinets=(), group="north")) is None
    assert _login(h, _auth(cabinets=("CAB-2",), group="south")) == "pass_wrong_cabinet"
    assert _login(h, _auth(carrier="jd")) == "pass_wrong_carrier"


def test_a_revoked_pass_is_refused_for_every_courier_command_until_forgotten() -> None:
    h = make_harness(HERE)
    auth = _auth()
    h.run(h.cab.revoke_passes("sf", [("pass-0001", T0 + timedelta(hours=4))]))
    assert _login(h, auth) == "pass_revoked"
    deliver = h.run(h.cab.begin_deposit(auth, "kiosk-1", Delivery(waybill="SF12345678",
                                                                   size="S", consent=True)))
    assert deliver.error is not None
    assert deliver.error.value == "pass_revoked"
    # another carrier's pass with the same id is not touched
    assert _login(h, _auth(carrier="yto")) is None
    # after the pass's expiry the next revocation list forgets it
    h.clock.advance(timedelta(hours=5))
    h.run(h.cab.revoke_passes("sf", [("pass-0002", T0 + timedelta(hours=9))]))
    assert set(h.cab.state.revoked_passes) == {"sf/pass-0002"}
