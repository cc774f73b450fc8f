"""Delivery and pickup through the real API socket of an in-process daemon on the simulator."""

from __future__ import annotations

from tests.fixtures.cabinet import CARRIER, Cabinet, courier, delivery


async def test_deliver_then_pickup(cab: Cabinet) -> None:
    res = await cab.call("panel.deliver", {**courier(), "parcel": delivery()})
    assert res["status"] == "deliver.confirm"
    pid, comp = res["parcel_id"], res["compartment"]
    assert comp in cab.comp_of("S")
    assert res["notice"]["locker_name"] == cab.cfg.cabinet.name
    code = await cab.code_of(pid)
    assert 6 <= len(code) <= 8
    ev = (await cab.events("parcel.deposited"))[0]
    assert ev["_stream"] == CARRIER
    assert ev["seq"] >= 1
    got = await cab.call("panel.pickup", {"panel": "kiosk-1", "code": code})
    assert got["status"] == "pickup.confirm"
    assert got["parcel_id"] == pid
    assert got["fee_cents"] == 0
    assert [e["body"]["parcel_id"] for e in await cab.events("parcel.picked_up")] == [pid]
    again = await cab.refused("panel.pickup", {"panel": "kiosk-1", "code": code})
    assert again.code == "wrong_code"
