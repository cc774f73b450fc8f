"""A fleet on a real broker topology: cabinets on the simulator talk to a regional mosquitto,
which is bridged to a central one (deploy/mosquitto/regional-bridge.conf); a central subscriber
and `lockerd fleet-watch` see the whole fleet, and an outage of the central side loses and
doubles nothing once the consumer rule of docs/mqtt.md (last seq per epoch) is applied."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from lockerd.sync import fleet
from lockerd.sync.link import LinkCallbacks, MqttLink
from lockerd.testing.broker import Bridge, LocalBroker
from tests.fixtures.cabinet import Cabinet, courier, delivery

CABINETS = ("CAB-N01", "CAB-N02", "CAB-N03")


@dataclass
class CentralConsumer:
    """A carrier backend at the centre: every cabinet's events, the consumer rule applied."""

    port: int
    raw: int = 0
    repeats: int = 0
    last_seq: dict[tuple[str, str, str], int] = field(default_factory=dict)
    events: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    online: set[str] = field(default_factory=set)
    link: MqttLink | None = None

    async def start(self) -> None:
        self.link = MqttLink(host="127.0.0.1", port=self.port, client_id="central-consumer",
                             reconnect_min_s=0.2, reconnect_max_s=1.0,
                             callbacks=LinkCallbacks(on_connect=self._connected,
                                                     on_message=self._message))
        await self.link.start()

    def _connected(self, _session_present: bool) -> None:
        assert self.link is not None
        self.link.subscribe("lockers/+/carriers/+/events", 1)
        self.link.subscribe("lockers/+/status", 1)

    def _message(self, topic: str, payload: bytes, mid: int, qos: int) -> None:
        assert self.link is not None
        parts = topic.split("/")
        body = json.loads(payload)
        if parts[-1] == "status":
            if body.get("online"):
                self.online.add(parts[1])
        else:
            self.raw += 1
            cab, carrier = parts[1], parts[3]
            key = (cab, carrier, body["epoch"])
            # docs/mqtt.md: a seq at or below the epoch's last is a repeat; drop it
            if body["seq"] <= self.last_seq.get(key, 0):
                self.repeats += 1
            else:
                self.last_seq[key] = body["seq"]
                self.events.setdefault((cab, carrier), []).append(body)
        self.link.ack(mid, qos)

    async def stop(self) -> None:
        if self.link is not None:
            await self.link.stop()

    def count(self, cab: str) -> int:
        return len(self.events.get((cab, "sf"), []))


async def _until(check: Any, what: str, limit_s: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + limit_s
    while not check():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


@pytest.fixture
async def brokers(tmp_path: Path) -> AsyncIterator[tuple[LocalBroker, LocalBroker]]:
    (tmp_path / "central").mkdir()
    (tmp_path / "regional").mkdir()
    central = LocalBroker(tmp_path / "central")
    await central.start()
    regional = LocalBroker(tmp_path / "regional", bridges=[Bridge("central", central.port)])
    await regional.start()
    try:
        yield central, regional
    finally:
        await regional.stop()
        await central.stop()


async def _deliver(cab: Cabinet, waybill: str) -> None:
    res = await cab.call("panel.deliver", {**courier(), "parcel": delivery(waybill)})
    assert "parcel_id" in res, res


async def _drained(cab: Cabinet) -> None:
    async def empty() -> bool:
        return (await cab.store.outbox_stats())[0] == 0
    deadline = asyncio.get_running_loop().time() + 30
    while not await empty():
        assert asyncio.get_running_loop().time() < deadline, "outbox never drained"
        await asyncio.sleep(0.1)


def _watch(port: int) -> list[str]:
    out = io.StringIO()
    code = fleet.run(fleet.Broker("127.0.0.1", port), prefix="lockers", once_after_s=1.5,
                     refresh_s=1.0, out=out)
    assert code == 0
    return out.getvalue().splitlines()


async def test_a_bridged_fleet_survives_a_central_outage_exactly_once(
        tmp_path: Path, brokers: tuple[LocalBroker, LocalBroker]) -> None:
    central, regional = brokers
    consumer = CentralConsumer(central.port)
    await consumer.start()
    cabs: list[Cabinet] = []
    try:
        for cab_id in CABINETS:
            work = tmp_path / cab_id
            work.mkdir()
            cab = Cabinet(work, cabinet={"id": cab_id},
                          mqtt={"enabled": True, "host": "127.0.0.1", "port": regional.port,
                                "tls": False, "reconnect_min_s": 0.2, "reconnect_max_s": 1.0,
                                "idle_poll_ms": 100, "state_min_interval_s": 0.1,
                                "health_interval_s": 5.0, "health_min_interval_s": 0.2})
            await cab.start()
            cabs.append(cab)
        # the bridge is up: every birth crossed it
        await _until(lambda: consumer.online >= set(CABINETS), "births at the centre")
        for i, cab in enumerate(cabs):
            await cab.grant("sf", "c-101", "482913")
            await _deliver(cab, f"SF10000000{i}0")
        await _until(lambda: all(consumer.count(c) == 2 for c in CABINETS), "first events")

        # the central side goes away; the cabinets keep working against the regional broker
        await central.stop()
        for i, cab in enumerate(cabs):
            await cab.grant("sf", "c-102", "730164")
            await _deliver(cab, f"SF20000000{i}0")
            await _deliver(cab, f"SF20000000{i}1")
        for cab in cabs:  # acknowledged by the regional broker: held in the bridge's queue
            await _drained(cab)
        assert all(consumer.count(c) == 2 for c in CABINETS)

        await central.start()
        await _until(lambda: all(consumer.count(c) == 5 for c in CABINETS), "events after return")
        await asyncio.sleep(1.0)  # late repeats would show up now
        for cab_id in CABINETS:
            got = consumer.events[(cab_id, "sf")]
            assert [e["seq"] for e in got] == [1, 2, 3, 4, 5], cab_id
            assert len({e["epoch"] for e in got}) == 1
            assert [e["type"] for e in got] == ["courier.granted", "parcel.deposited",
                                                "courier.granted", "parcel.deposited",
                                                "parcel.deposited"]
        assert consumer.raw == consumer.repeats + 5 * len(CABINETS)

        # the operator's view at the centre: every cabinet, with its state
        boards = len(cabs[0].cfg.hardware.boards)
        lines = await asyncio.to_thread(_watch, central.port)
        assert lines[0].startswith(f"{len(CABINETS)} cabinets: ")
        for cab_id in CABINETS:
            row = next(line for line in lines if line.startswith(cab_id))
            assert row.split()[1] == "ready", lines
            assert row.split()[2:5] == [f"{boards}/{boards}", "open", "0"], lines
    finally:
        for cab in cabs:
            await cab.stop()
        await consumer.stop()
