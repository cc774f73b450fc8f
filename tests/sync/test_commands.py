"""Carrier commands end to end through a real mosquitto: round trips and every refusal."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from lockerd.domain.pins import hash_pin
from lockerd.oplog import OpLog
from lockerd.testing.broker import LocalBroker
from lockerd.testing.carrier import CarrierClient
from tests.fixtures.sync import CAB, SF_KEY, SyncFactory


async def _ops(oplog: OpLog) -> list[Any]:
    return await oplog.operations(limit=100000)


async def _wait_connected(comp: Any) -> None:
    for _ in range(200):
        if comp.link is not None and comp.link.connected:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("component never connected")


PIN_HASH = hash_pin("482913", bytes(range(16)), 10_000)


def _grant_body(courier: str = "c-1") -> dict[str, Any]:
    return {"courier_id": courier, "pin_hash": PIN_HASH, "expires": "2030-01-01T00:00:00Z"}


async def test_round_trip_of_each_command(make_sync: SyncFactory, broker: LocalBroker,
                                          oplog: OpLog) -> None:
    comp = await make_sync()
    await _wait_connected(comp)
    async with CarrierClient("127.0.0.1", broker.port, CAB, "sf") as sf:
        r = await sf.send("courier.grant", _grant_body())
        assert r["ok"] is True
        assert r["result"] == {"courier_id": "c-1"}
        assert r["v"] == 1
        r = await sf.send("courier.revoke", {"courier_id": "c-1"})
        assert r["ok"] is True
        r = await sf.send("parcel.expect", {"waybill": "SF1234567890", "size": "M",
                                            "consent": True, "flags": ["fresh"]})
        assert r["ok"] is True
        assert r["result"]["parcel_id"].startswith("p-")
        r = await sf.send("parcel.expect", {"waybill": "SF1234567890", "size": "M",
                                            "consent": False})
        assert r["ok"] is False
        assert r["error"]["code"] == "no_consent"
        r = await sf.send("parcel.recall", {"waybill": "SF1234567890"})
        assert r["ok"] is False
        assert r["error"]["code"] == "unknown_parcel"
        r = await sf.send("state.get", {})
        assert r["ok"] is True
        assert r["result"]["free"] == {"S": 2, "M": 1, "L": 1}
        assert r["result"]["intake"] == {"open": True, "reason": None}
        events = await sf.wait_events(2)
        assert [e["type"] for e in events] == ["courier.granted", "courier.revoked"]
        assert [e["seq"] for e in events] == [1, 2]
        assert all(e["v"] == 1 and e["ts"].endswith("Z") for e in events)
        # birth status and retained state reached the carrier
        for _ in range(100):
            topics = {m.topic for m in sf.all}
            if {sf.topics.status, sf.topics.state} <= topics:
                break
            await asyncio.sleep(0.05)
        status = [m.payload for m in sf.all if m.topic == sf.topics.status]
        assert status
        assert status[-1]["online"] is True
        assert status[-1]["name"] == "Test Locker"
    kinds = [op.kind for op in await _ops(oplog)]
    assert kinds.count("courier.granted") == 1
    assert kinds.count("courier.revoked") == 1
    assert kinds.count("parcel.expected") == 1


async def test_hostile_commands_get_the_right_error_and_change_nothing(
        make_sync: SyncFactory, broker: LocalBroker, oplog: OpLog) -> None:
    comp = await make_sync(signed=True, max_command_bytes=1024)
    await _wait_connected(comp)
    async with CarrierClient("127.0.0.1", broker.port, CAB, "sf", key=SF_KEY) as sf:
        topic = sf.topics.cmd("sf")

        async def raw(payload: bytes, rid: str | None) -> dict[str, Any]:
            return await sf.send_raw(topic, payload, rid)

        async def code_of(reply: dict[str, Any]) -> str:
            assert reply["ok"] is False
            assert reply["v"] == 1
            return str(reply["error"]["code"])

        assert await code_of(await raw(b"{not json", None)) == "bad_json"
        assert await code_of(await raw(b"\xff\xfe", None)) == "bad_json"
        # over max_command_bytes but within the packet size the cabinet announces (+1 KiB)
        assert await code_of(await raw(b'{"id":"big","pad":"' + b"x" * 1500 + b'"}', None)) \
            == "too_large"
        assert await code_of(await raw(json.dumps({"v": 1, "id": "s1", "type": "state.get"})
                                       .encode(), "s1")) == "bad_schema"
        assert await code_of(await raw(json.dumps([1, 2]).encode(), None)) == "bad_schema"
        _, cmd = sf.command("state.get", {}, cmd_id="v2")
        cmd["v"] = 2
        assert await code_of(await raw(json.dumps(cmd).encode(), "v2")) == "bad_version"
        # unsigned, and signed with the wrong key
        r = await sf.send("courier.grant", _grant_body("evil"), key=b"", cmd_id="u1")
        assert await code_of(r) == "bad_signature"
        r = await sf.send("courier.grant", _grant_body("evil"), key=b"b" * 32, cmd_id="u2")
        assert await code_of(r) == "bad_signature"
        # tampered after signing
        _, cmd = sf.command("courier.grant", _grant_body("ok"), cmd_id="t1")
        cmd["body"]["courier_id"] = "evil"
        assert await code_of(await raw(json.dumps(cmd).encode(), "t1")) == "bad_signature"
        # a bad body inside a valid envelope
        r = await sf.send("courier.grant", {"courier_id": "c"}, cmd_id="b1")
        assert await code_of(r) == "bad_schema"
        r = await sf.send("no.such", {}, cmd_id="n1")
        assert await code_of(r) == "unknown_type"
        r = await sf.send("courier.grant", _grant_body("late"), cmd_id="e1",
                          exp=datetime.now(UTC) - timedelta(seconds=1))
        assert await code_of(r) == "expired"
        # the signed command of sf copied to yto's topic: yto is unsigned but the sig is
        # bound to the topic; a carrier that is not configured at all is refused
        async with CarrierClient("127.0.0.1", broker.port, CAB, "zto") as zto:
            r = await zto.send("courier.grant", _grant_body("z"), cmd_id="z1")
            assert await code_of(r) == "unknown_carrier"
        # replay: identical redelivery -> first reply again; same id, other content -> refused
        first = await sf.send("courier.grant", _grant_body("c-9"), cmd_id="g1")
        assert first["ok"] is True
        ops_before = [op.kind for op in await _ops(oplog)]
        r = await sf.send("courier.grant", _grant_body("c-10"), cmd_id="g1")
        assert await code_of(r) == "replayed_id"
        granted = [op for op in await _ops(oplog) if op.kind == "courier.granted"]
        assert [op.body["courier_id"] for op in granted] == ["c-9"]
        assert ops_before.count("courier.granted") == 1
        events = await sf.wait_events(1)
        assert [e["body"]["courier_id"] for e in events] == ["c-9"]
    ops = await _ops(oplog)
    assert [op.body["courier_id"] for op in ops if op.kind == "courier.granted"] == ["c-9"]
    await comp.processor.tally.flush(everything=True)  # type: ignore[union-attr]
    ops = await _ops(oplog)
    remembered = [op for op in ops if op.kind == "sync.command"]
    counted = sum(op.body["count"] for op in ops if op.kind == "sync.commands_refused")
    assert len(remembered) + counted >= 13
    assert (await oplog.verify()).ok


async def test_redelivered_command_gets_the_first_reply_and_changes_nothing_twice(
        make_sync: SyncFactory, broker: LocalBroker, oplog: OpLog) -> None:
    comp = await make_sync()
    await _wait_connected(comp)
    async with CarrierClient("127.0.0.1", broker.port, CAB, "sf") as sf:
        topic, cmd = sf.command("courier.grant", _grant_body("c-5"), cmd_id="same")
        payload = json.dumps(cmd).encode()
        first = await sf.send_raw(topic, payload, "same")
        second = await sf.send_raw(topic, payload, "same")
        assert first == second
        assert first["ok"] is True
    ops = await _ops(oplog)
    assert sum(op.kind == "courier.granted" for op in ops) == 1
    assert comp.processor is not None
    await comp.processor.tally.flush(everything=True)
    ops = await _ops(oplog)
    counted = [op.body for op in ops if op.kind == "sync.commands_refused"]
    assert [c["refused"] for c in counted] == [[{"error": "repeated", "count": 1}]]


async def test_carrier_sees_only_its_own_events(make_sync: SyncFactory, broker: LocalBroker,
                                               oplog: OpLog) -> None:
    comp = await make_sync()
    await _wait_connected(comp)
    async with CarrierClient("127.0.0.1", broker.port, CAB, "sf") as sf, \
            CarrierClient("127.0.0.1", broker.port, CAB, "yto") as yto:
        assert (await yto.send("courier.grant", _grant_body("y-1")))["ok"]
        assert (await sf.send("courier.grant", _grant_body("s-1")))["ok"]
        assert (await yto.send("courier.revoke", {"courier_id": "y-1"}))["ok"]
        await yto.wait_events(2)
        await sf.wait_events(1)
        await asyncio.sleep(0.3)
        sf_text = json.dumps([m.payload for m in sf.all])
        assert "y-1" not in sf_text
        assert all("/carriers/yto/" not in m.topic for m in sf.all)
        assert all("/carriers/sf/" not in m.topic for m in yto.all)
        assert [e["body"]["courier_id"] for e in sf.ledger.accepted] == ["s-1"]
        assert [e["seq"] for e in yto.ledger.accepted] == [1, 2]


