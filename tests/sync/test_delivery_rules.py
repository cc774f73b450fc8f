"""Art. 22/23 end to end: a carrier announces over a real mosquitto, a courier delivers at the panel.

The daemon runs in process on the simulator with its real command handlers; the carrier is a
plain MQTT client; the courier goes through the real local API socket (panel role).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from lockerd.domain.timefmt import format_ts
from lockerd.testing.broker import LocalBroker
from lockerd.testing.carrier import CarrierClient
from tests.fixtures.cabinet import PIN, Cabinet, courier, mqtt_settings, running

YTO_PIN = "615208"


@pytest.fixture
async def online(tmp_path: Path, broker: LocalBroker) -> AsyncIterator[Cabinet]:
    """A daemon connected to the broker; yto delivers only what it announced."""
    workdir = tmp_path / "cab"
    workdir.mkdir()
    async with running(workdir, online=True, mqtt=mqtt_settings(broker), carriers=[
            {"id": "sf", "name": "SF Express"},
            {"id": "yto", "name": "YTO Express", "require_expectation": True}]) as cab:
        yield cab


async def _grant(client: CarrierClient, courier_id: str, pin: str) -> None:
    expires = format_ts(datetime.now(UTC) + timedelta(days=30))
    reply = await client.send("courier.grant", {"courier_id": courier_id, "pin": pin,
                                                "expires": expires})
    assert reply["ok"], reply


def _everything_ticked(waybill: str) -> dict[str, Any]:
    """The courier's panel declaration with every box ticked that could let a parcel in."""
    return {"waybill": waybill, "size": "S", "consent": True, "sender_chose_locker": True,
            "agreement": True}


@pytest.mark.parametrize(("announcement", "code"), [
    ({"consent": False}, "no_consent"),
    ({"consent": True, "flags": ["damaged"]}, "damaged"),
    ({"consent": True, "flags": ["weight_mismatch"]}, "weight_mismatch"),
    ({"consent": True, "flags": ["fresh"]}, "fresh"),
    ({"consent": True, "flags": ["valuable"]}, "valuable"),
    ({"consent": True, "flags": ["damaged", "fresh"], "agreement": True}, "damaged"),
    ({"consent": True, "declared_weight_g": 500}, "weight_mismatch"),
])
async def test_the_carriers_announcement_refuses_the_delivery(
        online: Cabinet, broker: LocalBroker, announcement: dict[str, Any], code: str) -> None:
    waybill = "SF8800000001"
    async with CarrierClient("127.0.0.1", broker.port, online.cfg.cabinet.id, "sf") as sf:
        await _grant(sf, "c-101", PIN)
        reply = await sf.send("parcel.expect", {"waybill": waybill, "size": "S", **announcement})
        assert reply["ok"], reply
        parcel = _everything_ticked(waybill)
        if "declared_weight_g" in announcement:
            # deliverable as announced; the panel's scale then disagrees with the waybill
            assert reply["result"]["deliverable"] is True
            parcel["measured_weight_g"] = 900
        else:
            assert reply["result"]["deliverable"] is False
            assert reply["result"]["refusal"] == code
        err = await online.refused("panel.deliver", {**courier(), "parcel": parcel})
        assert err.code == code
        # a second try changes nothing: the announcement is still in force
        err = await online.refused("panel.deliver", {**courier(), "parcel": parcel})
        assert err.code == code
    assert await online.events("parcel.deposited") == []
    begins = await online.ops("deliver.begin")
    assert [op.body["error"] for op in begins] == [code, code]
    assert all(op.body["expected"] is True for op in begins)


async def test_consent_false_cannot_be_overridden_and_a_new_announcement_can(
        online: Cabinet, broker: LocalBroker) -> None:
    waybill = "SF8800000002"
    async with CarrierClient("127.0.0.1", broker.port, online.cfg.cabinet.id, "sf") as sf:
        await _grant(sf, "c-101", PIN)
        assert (await sf.send("parcel.expect", {"waybill": waybill, "size": "S",
                                                "consent": False}))["ok"]
        err = await online.refused("panel.deliver",
                                   {**courier(), "parcel": _everything_ticked(waybill)})
        assert err.code == "no_consent"
        # the recipient agrees later: the carrier announces again, and only then it goes in
        reply = await sf.send("parcel.expect", {"waybill": waybill, "size": "S", "consent": True})
        assert reply["result"]["deliverable"] is True
        res = await online.call("panel.deliver",
                                {**courier(), "parcel": {"waybill": waybill, "size": "S"}})
        assert res["status"] == "deliver.confirm"
        events = await sf.wait_events(2)
        assert [e["type"] for e in events] == ["courier.granted", "parcel.deposited"]
        assert events[1]["body"]["waybill"] == waybill


async def test_a_carrier_requiring_expectation_gets_only_announced_waybills(
        online: Cabinet, broker: LocalBroker) -> None:
    async with CarrierClient("127.0.0.1", broker.port, online.cfg.cabinet.id, "yto") as yto:
        await _grant(yto, "y-7", YTO_PIN)
        who = courier(cid="y-7", pin=YTO_PIN, carrier="yto")
        err = await online.refused("panel.deliver",
                                   {**who, "parcel": _everything_ticked("YT8800000003")})
        assert err.code == "not_expected"
        assert (await yto.send("parcel.expect", {"waybill": "YT8800000003", "size": "S",
                                                 "consent": True}))["ok"]
        res = await online.call("panel.deliver",
                                {**who, "parcel": {"waybill": "YT8800000003", "size": "S"}})
        assert res["status"] == "deliver.confirm"
    # sf does not require it: its courier's own declaration suffices
    await online.grant("sf", "c-101", PIN)
    res = await online.call("panel.deliver", {**courier(), "parcel": {
        "waybill": "SF8800000004", "size": "S", "consent": True}})
    assert res["status"] == "deliver.confirm"
