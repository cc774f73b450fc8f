"""Bad input changes nothing; carrier commands; overdue; the cabinet survives a restart."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from lockerd.oplog import OpLog
from tests.fixtures.cabinet import CARRIER, PIN, Cabinet, courier, delivery


async def _tables(store: OpLog) -> Any:
    def q(conn: Any) -> Any:
        return (conn.execute("SELECT entity, key, value FROM live_state WHERE entity != 'limiter' "
                             "ORDER BY entity, key").fetchall(),
                conn.execute("SELECT id, status, compartment FROM parcels ORDER BY id").fetchall(),
                conn.execute("SELECT count(*) FROM outbox").fetchone())
    return await store.read(q)


async def test_bad_input_is_refused_and_changes_nothing(cab: Cabinet) -> None:
    res = await cab.call("panel.deliver", {**courier(), "parcel": delivery()})
    before = await _tables(cab.store)
    bad: list[tuple[str, dict[str, Any], str]] = [
        ("panel.pickup", {"panel": "k", "code": "12ab56"}, "bad_params"),
        ("panel.pickup", {"panel": "k", "code": 123456}, "bad_params"),
        ("panel.pickup", {"panel": "k", "code": "1" * 500}, "bad_params"),
        ("panel.pickup", {"panel": "k" * 500, "code": "123456"}, "bad_params"),
        ("panel.pickup", {"panel": "k", "code": "123456", "extra": 1}, "bad_params"),
        ("panel.deliver", {**courier(), "parcel": delivery(size="XL")}, "bad_params"),
        ("panel.deliver", {**courier(), "parcel": delivery(waybill="SF" + "9" * 300)}, "bad_params"),
        ("panel.deliver", {**courier(), "parcel": {**delivery(), "consent": "yes please"}},
         "bad_params"),
        ("panel.deliver", {**courier(), "pin": "1" * 100, "parcel": delivery()}, "bad_params"),
        ("panel.refuse", {"panel": "k", "compartment": 999, "reason": "damaged"},
         "unknown_compartment"),
        ("panel.refuse", {"panel": "k", "compartment": "three", "reason": "damaged"}, "bad_params"),
        ("panel.refuse", {"panel": "k", "compartment": res["compartment"], "reason": "bored"},
         "bad_params"),
        ("panel.collect", {**courier(), "parcel_id": "not-an-id"}, "bad_params"),
        ("panel.dropoff", {"panel": "k", "dropoff": {"carrier": CARRIER, "size": "S",
                                                     "declared_contents": "x" * 5000}}, "bad_params"),
        ("panel.teleport", {}, "unknown_method"),
    ]
    for method, params, code in bad:
        err = await cab.refused(method, params)
        assert err.code == code, (method, params, err.code)
        assert err.message
    # an unknown (well-formed) code is a wrong code
    assert (await cab.refused("panel.pickup", {"panel": "k", "code": "000000"})).code in (
        "wrong_code",)
    assert await _tables(cab.store) == before
    # the parcel is still there and still opens with its code
    code = await cab.code_of(res["parcel_id"])
    assert (await cab.call("panel.pickup", {"panel": "k2", "code": code}))["parcel_id"] == \
        res["parcel_id"]


async def test_carrier_commands(cab: Cabinet) -> None:
    weak = await cab.command(CARRIER, "courier.grant", {"courier_id": "c-9", "pin": "123456",
                                                        "expires": "2099-01-01T00:00:00Z"})
    assert not weak["ok"]
    assert weak["error"]["code"] == "weak_pin"
    past = await cab.command(CARRIER, "courier.grant", {"courier_id": "c-9", "pin": "482913",
                                                        "expires": "2001-01-01T00:00:00Z"})
    assert past["error"]["code"] == "invalid_expiry"
    unknown = await cab.command(CARRIER, "courier.revoke", {"courier_id": "ghost"})
    assert unknown["error"]["code"] == "unknown_courier"
    exp = await cab.command(CARRIER, "parcel.expect", {"waybill": "SF5550001", "size": "S",
                                                       "consent": True})
    assert exp["ok"]
    assert exp["result"]["expected"] is True
    # consent came from the carrier's announcement (Art. 22)
    res = await cab.call("panel.deliver", {**courier(), "parcel": {"waybill": "SF5550001",
                                                                   "size": "S"}})
    assert res["status"] == "deliver.confirm"
    code = await cab.code_of(res["parcel_id"])
    rec = await cab.command(CARRIER, "parcel.recall", {"waybill": "SF5550001"})
    assert rec["ok"]
    assert rec["result"]["recalled"] == "parcel"
    assert (await cab.refused("panel.pickup", {"panel": "k", "code": code})).code == "wrong_code"
    gone = await cab.command(CARRIER, "parcel.recall", {"waybill": "SF5550009"})
    assert gone["error"]["code"] == "unknown_parcel"
    assert (await cab.call("panel.return", {**courier(), "parcel_id": res["parcel_id"]}))[
        "status"] == "returned"
    kinds = [o.kind for o in await cab.ops()]
    assert kinds.count("courier.grant") >= 1
    assert "parcel.expect" in kinds
    refused = [o for o in await cab.ops("sync.command") if o.body["ok"] is False]
    assert sorted(o.body["error"] for o in refused) == sorted(
        ["weak_pin", "invalid_expiry", "unknown_courier", "unknown_parcel"])
    granted = [e for e in await cab.events() if e["type"] == "courier.granted"]
    assert granted
    assert all(e["_stream"] == CARRIER for e in granted)


async def test_overdue_fee_and_restart(tmp_path: Any) -> None:
    cab = Cabinet(tmp_path, storage={"period_hours": 24, "overdue_fee_cents_per_day": 150})
    await cab.start()
    try:
        await cab.grant(CARRIER, "c-101", PIN)
        one = await cab.call("panel.deliver", {**courier(), "parcel": delivery("SF7000001")})
        two = await cab.call("panel.deliver", {**courier(), "parcel": delivery("SF7000002")})
        codes = {p["parcel_id"]: await cab.code_of(p["parcel_id"]) for p in (one, two)}
        await cab.restart()
        # after a restart: parcels, codes, courier all still there
        got = await cab.call("panel.pickup", {"panel": "k", "code": codes[one["parcel_id"]]})
        assert got["parcel_id"] == one["parcel_id"]
        assert got["fee_cents"] == 0
        assert (await cab.call("courier.login", courier()))["courier_id"] == "c-101"
        cab.d.parcels.clock.advance(timedelta(hours=25))  # type: ignore[attr-defined]
        swept = await cab.d.parcels.service.sweep_overdue()
        assert swept is not None
        assert swept.result["overdue"] == [two["parcel_id"]]
        assert await cab.d.parcels.service.sweep_overdue() is None
        overdue = await cab.events("parcel.overdue")
        assert [e["body"]["parcel_id"] for e in overdue] == [two["parcel_id"]]
        login = await cab.call("courier.login", courier())
        assert [p["status"] for p in login["to_return"]] == ["overdue"]
        # the fee is shown before the door opens, and the pickup records the one accepted
        ask = {"panel": "k", "code": codes[two["parcel_id"]]}
        due = await cab.refused("panel.pickup", ask)
        assert due.code == "fee_due"
        assert due.reply["result"]["fee_cents"] == 150
        late = await cab.call("panel.pickup", {**ask, "accept_fee_cents": 150})
        assert late["fee_cents"] == 150
        await cab.verify()
    finally:
        await cab.stop()
