"""The reference consumer (examples/carrier_consumer.py, written from the docs alone) receives every
event exactly once across a broker outage, a daemon restart, its own restart and a recreated log."""

from __future__ import annotations

import asyncio
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from examples.carrier_consumer import CarrierConsumer
from lockerd.cli import lockerctl
from lockerd.testing.broker import LocalBroker
from lockerd.testing.carrier import CarrierClient
from tests.fixtures.cabinet import PIN, Cabinet, courier, mqtt_settings, until

KEY_HEX = "5f" * 32


async def _sf_events(cab: Cabinet) -> list[dict[str, Any]]:
    """Every event the cabinet's log holds for sf, sent or not, in seq order."""
    rows = await cab.store.read(lambda c: c.execute(
        "SELECT payload FROM outbox WHERE stream = 'sf' AND seq IS NOT NULL ORDER BY seq"
    ).fetchall())
    return [json.loads(bytes(r[0])) for r in rows]


class Backend:
    """The carrier's backend: the reference consumer, restarted on the same journal and session."""

    def __init__(self, broker: LocalBroker, cabinet: str, journal: Path) -> None:
        self.broker, self.cabinet, self.journal = broker, cabinet, journal
        self.codes: dict[str, str] = {}
        self.consumer: CarrierConsumer | None = None

    def _remember_code(self, event: dict[str, Any]) -> None:
        if event["type"] == "parcel.deposited":  # the backend texts the code to the recipient
            self.codes[event["body"]["parcel_id"]] = event["body"]["pickup_code"]

    async def start(self) -> None:
        self.consumer = CarrierConsumer(
            host="127.0.0.1", port=self.broker.port, cabinet=self.cabinet, carrier="sf",
            journal=self.journal, client_id="sf-backend", key=bytes.fromhex(KEY_HEX),
            on_event=self._remember_code)
        await asyncio.to_thread(self.consumer.start)

    async def stop(self) -> None:
        if self.consumer is not None:
            await asyncio.to_thread(self.consumer.stop)
            self.consumer = None

    @property
    def c(self) -> CarrierConsumer:
        assert self.consumer is not None
        return self.consumer

    async def send(self, type_: str, body: dict[str, Any]) -> dict[str, Any]:
        reply = await asyncio.to_thread(self.c.send, type_, body)
        assert reply["ok"], reply
        return reply

    async def grant(self) -> None:
        expires = (datetime.now(UTC) + timedelta(days=30)).isoformat()
        await self.send("courier.grant", {"courier_id": "c-101", "pin": PIN, "expires": expires})

    async def wait_journal(self, count: int) -> None:
        await until(lambda: len(self.c.journal.events) >= count, 30)


async def _deliver(cab: Cabinet, waybill: str) -> str:
    res = await cab.call("panel.deliver", {**courier(), "parcel": {
        "waybill": waybill, "size": "S", "consent": True}})
    return str(res["parcel_id"])


async def test_reference_consumer_gets_every_event_exactly_once(tmp_path: Path,
                                                                broker: LocalBroker) -> None:
    (tmp_path / "sf.key").write_text(KEY_HEX + "\n")
    workdir = tmp_path / "cab"
    workdir.mkdir()
    cab = Cabinet(workdir, mqtt=mqtt_settings(broker), carriers=[
        {"id": "sf", "name": "SF Express", "hmac_key_file": str(tmp_path / "sf.key")},
        {"id": "yto", "name": "YTO Express"}])
    backend = Backend(broker, cab.cfg.cabinet.id, tmp_path / "sf-journal.jsonl")
    logs: list[list[dict[str, Any]]] = []

    def connected() -> bool:
        return cab.d.sync.link is not None and cab.d.sync.link.connected

    await cab.start()
    try:
        await until(connected)
        await backend.start()
        # 1. online: a signed grant, a delivery
        await backend.grant()
        first = await _deliver(cab, "SF9100000001")
        await backend.wait_journal(2)
        # 2. broker outage: the cabinet keeps working, its events wait in the outbox
        await broker.stop()
        await until(lambda: not connected())
        await cab.call("panel.pickup", {"panel": "kiosk-1", "code": backend.codes[first]})
        second = await _deliver(cab, "SF9100000002")
        await broker.start()
        await backend.wait_journal(4)
        # 3. the daemon restarts, the backend is down meanwhile (its session keeps the events)
        await backend.stop()
        await cab.restart()
        await until(connected)
        third = await _deliver(cab, "SF9100000003")
        await backend.start()
        await backend.wait_journal(5)
        await cab.call("panel.pickup", {"panel": "kiosk-1", "code": backend.codes[second]})
        await backend.wait_journal(6)
        logs.append(await _sf_events(cab))
        # 4. the controller is replaced: a new log under the same cabinet id (new epoch, seq 1)
        await cab.stop()
        shutil.move(workdir / "state", tmp_path / "old-state")
        # beginning a new log where one was anchored takes root's recorded reset (docs/oplog.md)
        assert await asyncio.to_thread(lockerctl.main, [
            "reset-log", "-c", str(cab.config_path), "--reason", "controller replaced"]) == 0
        await cab.start()
        await until(connected)
        await backend.grant()
        fourth = await _deliver(cab, "SF9100000004")
        await backend.wait_journal(8)
        await cab.call("panel.pickup", {"panel": "kiosk-1", "code": backend.codes[fourth]})
        await backend.wait_journal(9)
        logs.append(await _sf_events(cab))
        # 5. the broker redelivers old events (a resent batch, an old epoch after the new one)
        async with CarrierClient("127.0.0.1", broker.port, cab.cfg.cabinet.id, "yto") as noise:
            for event in (logs[0][0], logs[0][-1], logs[1][0]):
                noise.publish_raw(backend.c.events_topic, json.dumps(event).encode())
            noise.publish_raw(backend.c.events_topic, b'{"v": 1, "seq": "x"}')
            await until(lambda: backend.c.stats.duplicates >= 3 and backend.c.stats.malformed == 1)
        await asyncio.sleep(0.5)
        journal = list(backend.c.journal.events)
        stats = backend.c.stats
    finally:
        await backend.stop()
        if cab.daemon is not None:
            await cab.stop()
    assert third in {e["body"].get("parcel_id") for e in journal}
    expected = [e["event_id"] for log in logs for e in log]
    assert len(expected) == 9
    # every event of both logs, each once, in the order each log wrote them
    assert [e["event_id"] for e in journal] == expected
    assert [e["seq"] for e in journal] == [1, 2, 3, 4, 5, 6, 1, 2, 3]
    assert len({e["epoch"] for e in journal[:6]}) == 1
    assert journal[6]["epoch"] != journal[0]["epoch"]
    assert [e["type"] for e in journal] == [
        "courier.granted", "parcel.deposited", "parcel.picked_up", "parcel.deposited",
        "parcel.deposited", "parcel.picked_up", "courier.granted", "parcel.deposited",
        "parcel.picked_up"]
    assert stats.gaps == []
    # the journal on disk is the position: a new consumer on it resumes where this one stopped
    lines = (tmp_path / "sf-journal.jsonl").read_text().splitlines()
    assert [json.loads(line)["event_id"] for line in lines] == expected
