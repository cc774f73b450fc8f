"""Panel API request models: hostile input (oversize strings, wrong types, unknown keys) is refused."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from lockerd.domain import CourierAuth
from lockerd.parcels.panel_api import (
    DeliverParams,
    DropoffParams,
    ParcelParams,
    PickupParams,
    RefuseParams,
    VerdictParams,
)

GOOD_DELIVER: dict[str, Any] = {"panel": "k1", "carrier": "sf", "courier_id": "c1", "pin": "482913",
                                "parcel": {"waybill": "SF1234567", "size": "M", "consent": True}}


def test_good_deliver_parses_and_hides_the_pin() -> None:
    p = DeliverParams.model_validate(GOOD_DELIVER)
    assert p.carrier == "sf"
    assert "482913" not in repr(p)
    auth = CourierAuth(carrier="sf", courier_id="c1", pin="482913")
    assert "482913" not in repr(auth)


def test_a_pass_replaces_the_pin_and_is_hidden_too() -> None:
    creds = {"panel": "k1", "parcel": GOOD_DELIVER["parcel"]}
    p = DeliverParams.model_validate({**creds, "pass": "LP1.secret-token.sig"})
    assert p.pass_token == "LP1.secret-token.sig"
    assert "secret-token" not in repr(p)
    for bad in ({**creds}, {**creds, "carrier": "sf", "courier_id": "c1"},
                {**creds, "pass": "LP1.a.b", "pin": "482913"}):
        with pytest.raises(ValidationError):
            DeliverParams.model_validate(bad)


@pytest.mark.parametrize("patch", [
    {"panel": "k" * 65},
    {"panel": "k1; rm -rf"},
    {"carrier": "sf/../x"},
    {"courier_id": "c" * 65},
    {"pin": "9" * 33},
    {"pin": ""},
    {"extra": 1},
    {"parcel": {"waybill": "SF1234567", "size": "XL", "consent": True}},
    {"parcel": {"waybill": "S" * 41, "size": "M"}},
    {"parcel": {"waybill": "SF 12 34", "size": "M"}},
    {"parcel": {"waybill": "SF1234567", "size": "M", "consent": "maybe"}},
    {"parcel": {"waybill": "SF1234567", "size": "M", "declared_weight_g": -1}},
    {"parcel": {"waybill": "SF1234567", "size": "M", "measured_weight_g": 10**9}},
    {"parcel": {"waybill": "SF1234567", "size": "M", "phone": "13800138000"}},
])
def test_bad_deliver_input_is_refused(patch: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        DeliverParams.model_validate({**GOOD_DELIVER, **patch})


@pytest.mark.parametrize("code", ["12345", "123456789", "12a456", " 123456", 123456, None])
def test_pickup_code_shape(code: Any) -> None:
    with pytest.raises(ValidationError):
        PickupParams.model_validate({"panel": "k1", "code": code})


def test_pickup_code_ok_and_masked() -> None:
    p = PickupParams.model_validate({"panel": "k1", "code": "00123456"})
    assert "00123456" not in repr(p)


@pytest.mark.parametrize(("model", "params"), [
    (RefuseParams, {"panel": "k1", "compartment": 0, "reason": "delayed"}),
    (RefuseParams, {"panel": "k1", "compartment": 3, "reason": "bored"}),
    (RefuseParams, {"panel": "k1", "compartment": "3; drop", "reason": "delayed"}),
    (VerdictParams, {"panel": "k1", "compartment": 3, "accept": "yes please"}),
    (VerdictParams, {"panel": "k1", "compartment": 3, "accept": False, "reason": "ugly"}),
    (ParcelParams, {"panel": "k1", "carrier": "sf", "courier_id": "c1", "pin": "482913",
                    "parcel_id": "p-XYZ"}),
    (DropoffParams, {"panel": "k1", "dropoff": {"carrier": "sf", "size": "S",
                                                "declared_contents": "x" * 201}}),
    (DropoffParams, {"panel": "k1", "dropoff": {"carrier": "sf", "size": "S",
                                                "verification_ref": "r" * 513}}),
])
def test_other_bad_params(model: type[Any], params: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        model.model_validate(params)


def test_good_dropoff_and_verdict() -> None:
    d = DropoffParams.model_validate({"panel": "k1", "dropoff": {
        "carrier": "yto", "size": "L", "verification_ref": "RN-1", "declared_contents": "books",
        "ack_insured_value": True, "ack_prohibited_items": True}})
    assert d.dropoff.carrier == "yto"
    v = VerdictParams.model_validate({"panel": "k1", "compartment": 3, "accept": False,
                                      "reason": "prohibited"})
    assert v.reason is not None
    assert v.reason.value == "prohibited"
