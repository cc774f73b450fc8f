"""The domain owns "blocked", through the real socket: doors.list, the customer flows and the retained
MQTT `state` agree on a jam's block, also after a restart."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from lockerd.cli import lockerctl
from lockerd.testing.broker import LocalBroker
from lockerd.testing.carrier import CarrierClient
from tests.fixtures.cabinet import CARRIER, PIN, Cabinet, courier, delivery


def _mqtt(broker: LocalBroker) -> dict[str, Any]:
    return {"enabled": True, "host": "127.0.0.1", "port": broker.port, "tls": False,
            "reconnect_min_s": 0.2, "reconnect_max_s": 1.0, "idle_poll_ms": 100,
            "state_min_interval_s": 0.1}


@pytest.fixture
async def linked(tmp_path: Path, broker: LocalBroker) -> AsyncIterator[Cabinet]:
    """The in-process daemon connected to the test's mosquitto."""
    c = Cabinet(tmp_path, mqtt=_mqtt(broker))
    await c.start()
    await c.grant(CARRIER, "c-101", PIN)
    try:
        yield c
    finally:
        if c.daemon is not None:
            await c.verify()
        await c.stop()


async def _until(pred: Any, limit_s: float = 10.0) -> None:
    deadline = time.monotonic() + limit_s
    while not pred():
        assert time.monotonic() < deadline, "condition never met"
        await asyncio.sleep(0.05)


async def _lockerctl(cab: Cabinet, capsys: pytest.CaptureFixture[str], *args: str
                     ) -> tuple[int, str, str]:
    """lockerctl as a technician types it; in a thread, since the daemon runs on this loop."""
    code = await asyncio.to_thread(lockerctl.main, [*args, "--socket", str(cab.cfg.paths.socket)])
    out, err = capsys.readouterr()
    return code, out, err


async def _views(cab: Cabinet) -> tuple[list[int], list[int], list[int]]:
    """The blocked set as the technician's door view, the domain and the `state` topic see it."""
    doors = await cab.call("doors.list")
    listed = [d["compartment"] for d in doors["doors"] if d["blocked"]]
    return listed, cab.d.parcels.blocked(), cab.d.sync.current_state().blocked


def _kinds(incidents: list[dict[str, Any]]) -> list[tuple[str, int | None]]:
    return [(r["kind"], r.get("compartment")) for r in incidents]


async def test_the_three_views_agree_after_a_restart(linked: Cabinet) -> None:
    """doors.list, the customer flows and the retained MQTT `state` agree on a jam's block."""
    cab = linked
    cid = cab.comp_of("L")[0]
    faults, bus, board, ch = cab.hw(cid)
    faults.jam(bus, board, ch)
    jam = await cab.refused("doors.open", {"compartment": cid, "reason": "latch check"})
    assert jam.code == "door_jammed"
    await _until(lambda: cid in cab.d.parcels.blocked())  # the door fact, recorded by the domain
    await cab.restart()
    assert await _views(cab) == ([cid], [cid], [cid])
    async with CarrierClient("127.0.0.1", cab.cfg.mqtt.port, cab.cfg.cabinet.id, CARRIER) as carrier:
        def latest() -> dict[str, Any]:
            states = [m.payload for m in carrier.all if m.topic == carrier.topics.state]
            return states[-1] if states else {}
        await _until(lambda: latest().get("blocked") == [cid])
        retained = latest()
    assert retained["free"] == cab.d.parcels.free_counts()
    # customer flows skip it: the other L compartments, then no L left
    others = cab.comp_of("L")[1:]
    for n in range(len(others)):
        got = await cab.call("panel.deliver", {**courier(), "parcel": delivery(f"SF700000{n}", "L")})
        assert got["compartment"] in others
    full = await cab.refused("panel.deliver", {**courier(), "parcel": delivery("SF7000009", "L")})
    assert full.code == "no_free_compartment"
    [block] = await cab.ops("compartment.block")
    assert (block.compartment, block.actor, block.body["reason"]) == (cid, "doors", "door_jammed")
