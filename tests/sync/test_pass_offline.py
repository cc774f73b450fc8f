"""Offline courier passes against a real mosquitto: the broker is down, a pass issued after the
outage began lets the courier deliver through the real API; once the broker is back, the
carrier's revocation arrives over MQTT and the same pass is refused from then on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lockerd.domain.timefmt import format_ts
from lockerd.testing.broker import LocalBroker
from lockerd.testing.carrier import CarrierClient
from lockerd.testing.passes import demo_key, issue, public_b64
from tests.fixtures.cabinet import Cabinet, delivery, mqtt_settings, running, until

SF = demo_key("sf")


@pytest.fixture
async def online(tmp_path: Path, broker: LocalBroker) -> AsyncIterator[Cabinet]:
    workdir = tmp_path / "cab"
    workdir.mkdir()
    async with running(workdir, online=True, mqtt=mqtt_settings(broker), carriers=[
            {"id": "sf", "name": "SF Express", "pass_public_key": public_b64(SF)}]) as cab:
        yield cab


async def test_a_pass_issued_during_an_outage_delivers_and_its_revocation_lands_later(
        online: Cabinet, broker: LocalBroker) -> None:
    link = online.d.sync.link
    assert link is not None
    cab_id = online.cfg.cabinet.id
    # the carrier's backend has a persistent session: what the cabinet sends while it is away
    # waits in the broker for it
    async with CarrierClient("127.0.0.1", broker.port, cab_id, "sf") as sf:
        await broker.stop()
        await until(lambda: not link.connected)
        # the carrier issues the pass after the cabinet lost its link: nothing can reach it
        outage_began = datetime.now(UTC)
        token = issue(SF, carrier="sf", courier_id="c-777", not_before=outage_began,
                      expires=outage_began + timedelta(hours=6), cabinets=[cab_id],
                      pass_id="outage-pass-01")
        res = await online.call("panel.deliver", {"panel": "kiosk-1", "pass": token,
                                                  "parcel": delivery("SF9876543210")})
        assert res["status"] == "deliver.confirm"
        assert not link.connected
        await broker.start()
        await until(lambda: link.connected, 30)
        # the deposit made offline reaches the carrier once the link is back
        events = await sf.wait_events(1, 30)
        assert [e["type"] for e in events] == ["parcel.deposited"]
        assert events[0]["body"]["parcel_id"] == res["parcel_id"]
        # still valid until the revocation arrives
        assert (await online.call("courier.login", {"pass": token}))["courier_id"] == "c-777"
        reply = await sf.send("courier.revoke_pass", {"passes": [
            {"pass_id": "outage-pass-01",
             "expires": format_ts(outage_began + timedelta(hours=6))}]}, limit_s=30)
        assert reply["ok"], reply
        assert reply["result"]["revoked"] == 1
    err = await online.refused("panel.deliver", {"pass": token,
                                                 "parcel": delivery("SF9876543211")})
    assert err.code == "pass_revoked"
    kinds = [(op.kind, op.body.get("error")) for op in await online.ops()
             if op.body.get("pass_id") == "outage-pass-01"]
    assert kinds == [("deliver.begin", None), ("courier.login", None),
                     ("deliver.begin", "pass_revoked")]
