"""Every message of a full demo day, as the carriers receive it over mosquitto, validates against
the schema of its type in docs/asyncapi.yaml; the snapshots hold one real message of each type."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from lockerd.app.daemon import Daemon
from lockerd.config import Config
from lockerd.demo import day as demo
from lockerd.demo import flows as demo_flows
from lockerd.demo.day import DemoContext, Timeline, demo_day
from lockerd.domain.timefmt import format_ts
from lockerd.testing.carrier import CarrierClient, Received
from tests.fixtures.cabinet import FAST, speed_up_sim_doors
from tests.sync.contract import errors, schema_of
from tests.sync.test_contract import (
    SNAPSHOTS,
    documented_messages,
    snapshot_name,
    update_snapshots,
    write_snapshot,
)


class Recorder:
    """The commands the day sends (validated on the way out) and the type behind each id."""

    def __init__(self) -> None:
        self.types: dict[str, str] = {}
        self.commands: list[tuple[str, dict[str, Any]]] = []

    def sent(self, topic: str, command: dict[str, Any]) -> None:
        self.types[command["id"]] = command["type"]
        self.commands.append((topic, command))

    async def via_processor(self, daemon: Daemon, carrier: str, type_: str, body: dict[str, Any]
                            ) -> dict[str, Any]:
        """demo_flows.carrier_command, remembering what it sent."""
        processor = daemon.sync.processor
        assert processor is not None
        topic = daemon.sync.topics.cmd(carrier)
        msg = {"v": 1, "id": uuid.uuid4().hex[:16], "type": type_,
               "ts": format_ts(datetime.now(UTC)), "body": body}
        self.sent(topic, msg)
        return await processor.handle(topic, json.dumps(msg).encode()) or {}

    async def over_mqtt(self, client: CarrierClient, type_: str, body: dict[str, Any]
                        ) -> dict[str, Any]:
        """A command as a carrier publishes it, waiting for its reply."""
        topic, cmd = client.command(type_, body)
        self.sent(topic, cmd)
        return await client.send_raw(topic, json.dumps(cmd).encode(), cmd["id"])


def _courier() -> dict[str, Any]:
    return {"panel": "kiosk-1", "carrier": "sf", "courier_id": "c-101", "pin": demo_flows.PIN_A}


def _extra_scenes(rec: Recorder, kept: dict[str, Any]) -> list[demo.Scene]:
    """What the scripted day does not do, so every message type is seen at least once."""

    async def fast_doors(ctx: DemoContext) -> None:
        speed_up_sim_doors(ctx.daemon)

    async def announce_recall_state(ctx: DemoContext) -> None:
        sf = ctx.carriers["sf"]
        for waybill in ("SF7000000001", "SF7000000002", "SF7000000003"):
            reply = await rec.over_mqtt(sf, "parcel.expect", {"waybill": waybill, "size": "S",
                                                              "consent": True})
            assert reply["ok"], reply
        res = await ctx.call("panel.deliver", {**_courier(), "parcel": {"waybill": "SF7000000001",
                                                                        "size": "S"}})
        assert "parcel_id" in res, res
        for waybill in ("SF7000000001", "SF7000000002"):  # a parcel, then an announcement
            assert (await rec.over_mqtt(sf, "parcel.recall", {"waybill": waybill}))["ok"]
        res = await ctx.call("panel.deliver", {**_courier(), "parcel": {"waybill": "SF7000000003",
                                                                        "size": "S"}})
        assert "parcel_id" in res, res
        assert (await rec.over_mqtt(sf, "parcel.notice", {"waybill": "SF7000000003"}))["ok"]
        assert (await rec.over_mqtt(sf, "parcel.extend", {"waybill": "SF7000000003",
                                                          "hours": 24}))["ok"]
        assert (await rec.over_mqtt(sf, "state.get", {}))["ok"]
        refused = await rec.over_mqtt(sf, "parcel.recall", {"waybill": "SF7999999999"})
        assert refused["error"]["code"] == "unknown_parcel"
        # something unreadable gets a refusal with a null id
        sf.publish_raw(sf.topics.cmd("sf"), b"not json")

    async def collect_a_dropoff(ctx: DemoContext) -> None:
        res = await ctx.call("panel.dropoff", {"panel": "kiosk-1", "dropoff": {
            "carrier": "sf", "size": "S", "verification_ref": "RN-7f3a9c22",
            "declared_contents": "books", "ack_insured_value": True,
            "ack_prohibited_items": True}})
        assert "parcel_id" in res, res
        res = await ctx.call("panel.collect", {**_courier(), "parcel_id": res["parcel_id"]})
        assert res.get("status") == "collected", res

    async def reject_retrieve_and_clear(ctx: DemoContext) -> None:
        # a drop-off the courier rejects goes back to its sender with the retrieval code (Art. 21)
        res = await ctx.call("panel.dropoff", {"panel": "kiosk-1", "dropoff": {
            "carrier": "sf", "size": "S", "verification_ref": "RN-7f3a9c23",
            "declared_contents": "books", "ack_insured_value": True,
            "ack_prohibited_items": True}})
        retrieval = res["retrieval_code"]
        rejected = await demo_flows.while_door_open(
            ctx.daemon, ctx.call, "panel.collect", {**_courier(), "parcel_id": res["parcel_id"]},
            ("panel.collect_verdict", {"panel": "kiosk-1", "accept": False,
                                       "reason": "mismatch"}))
        assert rejected["status"] == "rejected", rejected
        back = await ctx.call("panel.pickup", {"panel": "kiosk-1", "code": retrieval})
        assert back["status"] == "returned_to_sender", back
        # staff clear a compartment with a parcel still inside
        res = await ctx.call("panel.deliver", {**_courier(), "parcel": {"waybill": "SF7000000009",
                                                                        "size": "S",
                                                                        "consent": True}})
        assert "compartment" in res, res
        cleared = await ctx.call("compartments.clear", {"compartment": res["compartment"],
                                                        "reason": "water damage, taken out"})
        assert cleared["removed"] == [res["parcel_id"]], cleared

    async def keep(ctx: DemoContext) -> None:
        # every message of the day reached the broker and the carriers before the day ends
        deadline = asyncio.get_running_loop().time() + 30
        while (await ctx.daemon.oplog.store.outbox_stats())[0]:
            assert asyncio.get_running_loop().time() < deadline, "the outbox never drained"
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)
        kept["clients"] = dict(ctx.carriers)

    return [fast_doors, *demo.SCENES, announce_recall_state, collect_a_dropoff,
            reject_retrieve_and_clear, keep]


def _fast_config(monkeypatch: pytest.MonkeyPatch) -> None:
    original = demo.demo_config

    def fast(workdir: Path, **kwargs: Any) -> Config:
        cfg = original(workdir, **kwargs)
        camera = type(cfg.camera).model_validate({**cfg.camera.model_dump(), **FAST["camera"]})
        return cfg.model_copy(update={"camera": camera})

    monkeypatch.setattr(demo, "demo_config", fast)


async def test_every_message_of_a_demo_day_matches_its_schema(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fast_config(monkeypatch)
    rec = Recorder()
    monkeypatch.setattr(demo_flows, "carrier_command", rec.via_processor)
    kept: dict[str, Any] = {}
    await demo_day(tmp_path, timeline=Timeline(), scenes=_extra_scenes(rec, kept))
    received: list[Received] = [m for c in kept["clients"].values() for m in c.all]
    messages = [(topic, cmd) for topic, cmd in rec.commands]
    messages += [(m.topic, m.payload) for m in received]
    by_schema: dict[str, list[dict[str, Any]]] = {}
    problems: list[str] = []
    for topic, payload in messages:
        schema = schema_of(topic, payload, rec.types)
        by_schema.setdefault(schema, []).append(payload)
        problems += [f"{schema}: {e}" for e in errors(schema, payload)]
    assert problems == []
    # every message the document names was seen (one day covers the whole contract)
    seen_names = {name for name, schema in documented_messages().items() if by_schema.get(schema)}
    assert seen_names == set(documented_messages())
    for name, schema in documented_messages().items():
        example = by_schema[schema][-1]
        if update_snapshots():
            write_snapshot(name, example)
        snapshot = json.loads((SNAPSHOTS / snapshot_name(name)).read_text())
        # the snapshot still has the shape the cabinet sends (its fields, its body's fields)
        assert any(_shape(snapshot) == _shape(p) for p in by_schema[schema]), name


def _shape(payload: dict[str, Any]) -> tuple[frozenset[str], frozenset[str]]:
    inner = payload.get("body", payload.get("result"))
    return frozenset(payload), frozenset(inner) if isinstance(inner, dict) else frozenset()


def test_a_day_command_with_a_past_expiry_would_be_caught() -> None:
    """Commands are validated too: an integer time is not RFC 3339."""
    cmd = {"v": 1, "id": "x1", "type": "courier.grant", "ts": format_ts(datetime.now(UTC)),
           "body": {"courier_id": "c-1", "pin": "482913",
                    "expires": int((datetime.now(UTC) + timedelta(days=1)).timestamp())}}
    assert errors("CourierGrantCommand", cmd)
