"""`report.request` over a real mosquitto: the platform gets the signed report (recorded in the
chain with the reply), other carriers are refused, and the size limits are explicit."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import pytest

from lockerd.domain.timefmt import format_ts
from lockerd.oplog import report_sign
from lockerd.testing.broker import LocalBroker
from lockerd.testing.carrier import CarrierClient
from tests.fixtures.cabinet import PIN, Cabinet, courier, delivery, mqtt_settings, running

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "docs" / "report.schema.json")
                    .read_text())


@pytest.fixture
async def online(tmp_path: Path, broker: LocalBroker) -> AsyncIterator[Cabinet]:
    workdir = tmp_path / "cab"
    workdir.mkdir()
    async with running(workdir, online=True,
                       mqtt={**mqtt_settings(broker), "max_report_bytes": 8192}, carriers=[
                           {"id": "sf", "name": "SF Express"},
                           {"id": "ops", "name": "Operator platform", "platform": True}]) as cab:
        yield cab


def _period(days: float = 1) -> dict[str, str]:
    now = datetime.now(UTC)
    return {"from": format_ts(now - timedelta(days=days)), "to": format_ts(now + timedelta(hours=1))}


async def test_the_platform_gets_the_signed_report_and_others_do_not(
        online: Cabinet, broker: LocalBroker) -> None:
    await online.grant("sf", "c-101", PIN)
    await online.call("panel.deliver", {**courier(), "parcel": delivery()})
    cab_id = online.cfg.cabinet.id
    async with CarrierClient("127.0.0.1", broker.port, cab_id, "ops") as ops, \
            CarrierClient("127.0.0.1", broker.port, cab_id, "sf") as sf:
        reply = await ops.send("report.request", _period())
        assert reply["ok"], reply
        doc = reply["result"]["document"]
        jsonschema.Draft202012Validator(SCHEMA).validate(doc)
        assert report_sign.verify(json.dumps(doc).encode(),
                                  online.d.oplog.device_key().fingerprint).ok
        assert doc["report"]["totals"]["deliveries"] == 1
        csv = await ops.send("report.request", {**_period(), "format": "csv"})
        assert report_sign.verify(csv["result"]["csv"].encode()).ok
        refused = await sf.send("report.request", _period())
        assert (refused["ok"], refused["error"]["code"]) == (False, "not_permitted")
        # a period over the limit, and a report over max_report_bytes, are refused with codes
        long = await ops.send("report.request", _period(days=200))
        assert long["error"]["code"] == "bad_request"
    produced = await online.ops("report.produced")
    assert [op.body["format"] for op in produced] == ["json", "csv"]
    assert produced[0].body["digest"] == report_sign.digest(doc)
    assert all(op.actor == "carrier:ops" for op in produced)


async def test_a_report_over_the_size_limit_is_refused_too_large(
        online: Cabinet, broker: LocalBroker) -> None:
    # a day with many carriers' couriers refused makes a report larger than 8 KiB
    for n in range(60):
        await online.refused("courier.login", {"panel": "kiosk-1", "carrier": f"x{n}",
                                               "courier_id": "c-1", "pin": "135790"})
    async with CarrierClient("127.0.0.1", broker.port, online.cfg.cabinet.id, "ops") as ops:
        reply = await ops.send("report.request", _period())
    assert (reply["ok"], reply["error"]["code"]) == (False, "too_large")
    assert "8192" in reply["error"]["message"]
    assert await online.ops("report.produced") == []
