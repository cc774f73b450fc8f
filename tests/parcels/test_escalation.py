"""Escalation of open incidents (government-document spec, 24/48/72 h) with the flows' adjustable clock.

A blocked compartment with a parcel inside stays open: as the clock moves past each tier the
carriers get one `incident_escalated` alert per incident and tier over the real mosquitto (severity
warning, then critical), `lockerctl incidents` shows the tier, a restart repeats nothing, and
unblocking resolves it with one cleared alert recorded in the chain.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from lockerd.parcels.component import AdjustableClock
from lockerd.parcels.escalation import Escalator, incident_key
from lockerd.testing.broker import LocalBroker
from lockerd.testing.carrier import CarrierClient
from tests.fixtures.cabinet import CARRIER, Cabinet, courier, delivery, mqtt_settings, running
from tests.parcels.test_technician import _lockerctl

TIMELINE: list[str] = []


@pytest.fixture
async def linked(tmp_path: Path, broker: LocalBroker) -> AsyncIterator[Cabinet]:
    async with running(tmp_path, grant=True, mqtt=mqtt_settings(broker)) as c:
        yield c


def _clock(cab: Cabinet) -> AdjustableClock:
    clock = cab.d.parcels.clock
    assert isinstance(clock, AdjustableClock)
    return clock


async def _alerts(sf: CarrierClient, count: int, limit_s: float = 20.0) -> list[dict[str, Any]]:
    loop = asyncio.get_running_loop()
    end = loop.time() + limit_s
    while True:
        got = [m.payload for m in sf.all if m.topic.endswith("/alerts")
               and m.payload.get("kind") == "incident_escalated"]
        if len(got) >= count:
            return got
        assert loop.time() < end, f"{len(got)} escalation alerts, wanted {count}"
        await asyncio.sleep(0.05)


async def test_an_open_incident_climbs_the_tiers_once_each_and_closes(
        linked: Cabinet, broker: LocalBroker, capsys: pytest.CaptureFixture[str]) -> None:
    cab = linked
    res = await cab.call("panel.deliver", {**courier(), "parcel": delivery()})
    cid = res["compartment"]
    await cab.call("compartments.block", {"compartment": cid, "reason": "door bent"})
    async with CarrierClient("127.0.0.1", broker.port, cab.cfg.cabinet.id, CARRIER,
                             watch_cabinet=True) as sf:
        seen = 0
        for hours, tier, severity in ((1, 0, None), (24.5, 1, "warning"), (30, 1, None),
                                      (48.5, 2, "critical"), (72.5, 3, "critical"),
                                      (100, 3, None)):
            _clock(cab).offset = timedelta(hours=hours)
            cab.d.parcels.escalate()
            listed = (await cab.call("incidents"))["incidents"]
            assert {r["kind"]: r["tier"] for r in listed} == {"compartment_blocked": tier,
                                                               "parcel_stuck": tier}
            if severity is not None:
                seen += 2  # the blocked compartment and the parcel behind it
                got = await _alerts(sf, seen)
                new = got[-2:]
                assert {(a["tier"], a["severity"], a["active"]) for a in new} == {
                    (tier, severity, True)}
                TIMELINE.append(f"+{hours} h: tier {tier} ({severity}) for "
                                + ", ".join(sorted(a["incident"] for a in new)))
        await asyncio.sleep(0.5)
        assert len(await _alerts(sf, seen)) == 6  # each tier reached the carrier once
        rc, out, _ = await _lockerctl(cab, capsys, "incidents")
        assert rc == 0
        assert "tier" in out.splitlines()[0]
        assert max(len(line) for line in out.splitlines()) <= 80
        # a restart remembers the tiers published (from the chain): nothing is repeated
        await cab.restart()
        _clock(cab).offset = timedelta(hours=100)
        cab.d.parcels.escalate()
        await asyncio.sleep(0.5)
        assert len(await _alerts(sf, 6)) == 6
        # resolving: the parcel taken out, the compartment back in service
        await cab.call("compartments.clear", {"compartment": cid, "reason": "parcel to the depot"})
        cab.d.parcels.escalate()
        got = await _alerts(sf, 8)
        closed = [a for a in got if not a["active"]]
        assert len(closed) == 2
        assert {(a["tier"], a["severity"]) for a in closed} == {(3, "info")}
        TIMELINE.append("+100 h: resolved: " + ", ".join(sorted(a["incident"] for a in closed)))
    records = [o.body for o in await cab.ops("alert.cleared")
               if o.body.get("kind") == "incident_escalated"]
    assert len(records) == 2
    assert all(r["tier"] == 3 for r in records)
    print("escalation timeline: " + " | ".join(TIMELINE))


def test_escalator_tiers_and_keys() -> None:
    published: list[Any] = []
    esc = Escalator([1.0, 2.0], published.append)
    row = {"kind": "board_offline", "board": 3, "age_s": 3600.0, "detail": "board 3"}
    assert incident_key(row) == "board_offline:board=3"
    assert [a.tier for a in esc.check([dict(row)])] == [1]
    assert esc.check([dict(row)]) == []
    assert [a.tier for a in esc.check([{**row, "age_s": 99999.0}])] == [2]
    closed = esc.check([])
    assert [(a.active, a.tier) for a in closed] == [(False, 2)]
    assert esc.check([]) == []
