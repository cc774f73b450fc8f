"""Sequence epochs: a recreated log starts a new epoch, and a consumer keying on (epoch, seq) gets
every new event; a restart keeps the epoch; an older log's streams get one when migrated."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from pathlib import Path
from typing import Any

from lockerd.oplog import OpLog, OplogKey, sqlcipher
from lockerd.sync import SyncComponent, event_message
from lockerd.testing.broker import LocalBroker
from lockerd.testing.carrier import CarrierClient
from tests.fixtures.paths import REPO
from tests.fixtures.sync import CAB, SyncFactory

EPOCH = re.compile(r"^[0-9a-f]{32}$")


async def _until(pred: Any, limit_s: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + limit_s
    while not pred():
        assert loop.time() < end, "condition not reached in time"
        await asyncio.sleep(0.05)


async def _deposit(log: OpLog, comp: SyncComponent, numbers: range) -> None:
    for n in numbers:
        await log.append("parcel.deposited", actor="test", body={"n": n},
                         outbox=[event_message(comp.topics, "sf", "parcel.deposited", {"n": n})])
    comp.wake()


async def test_a_recreated_log_starts_a_new_epoch_and_the_consumer_gets_every_event(
        make_sync: SyncFactory, broker: LocalBroker, oplog: OpLog, tmp_path: Path) -> None:
    comp = await make_sync()
    await _until(lambda: comp.link is not None and comp.link.connected)
    consumer = CarrierClient("127.0.0.1", broker.port, CAB, "sf", client_id="carrier-sf-epochs")
    await consumer.start()
    fresh: OpLog | None = None
    try:
        await _deposit(oplog, comp, range(0, 3))
        await consumer.wait_events(3)
        # same log after a restart: the epoch is kept, seq goes on
        await comp.stop()
        await oplog.close()
        key = OplogKey.generate()
        reopened_path = tmp_path / "oplog.db"
        shutil.move(reopened_path, tmp_path / "old-oplog.db")
        # the controller is replaced: a new, empty log under the same cabinet id
        fresh = await OpLog.open(reopened_path, key)
        comp2 = await make_sync(log=fresh)
        await _until(lambda: comp2.link is not None and comp2.link.connected)
        await _deposit(fresh, comp2, range(3, 6))
        events = await consumer.wait_events(6)
    finally:
        await consumer.stop()
        if fresh is not None:
            await comp2.stop()
            await fresh.close()
    assert [e["body"]["n"] for e in events] == list(range(6))
    assert [e["seq"] for e in events] == [1, 2, 3, 1, 2, 3]
    first, second = events[0]["epoch"], events[3]["epoch"]
    assert EPOCH.match(first)
    assert EPOCH.match(second)
    assert first != second
    assert {e["epoch"] for e in events[:3]} == {first}
    assert {e["epoch"] for e in events[3:]} == {second}
    assert consumer.ledger.gaps == []
    # the rule the docs gave before epochs ("drop anything <= the last seq") would have lost
    # every event of the new log, pickup codes included
    last, kept = 0, []
    for e in events:
        if e["seq"] > last:
            kept.append(e["body"]["n"])
            last = e["seq"]
    assert kept == [0, 1, 2]


async def test_a_restart_keeps_the_epoch(make_sync: SyncFactory, oplog: OpLog, oplog_key: OplogKey,
                                         tmp_path: Path) -> None:
    comp = await make_sync(enabled=False)
    await _deposit(oplog, comp, range(2))
    await comp.stop()
    await oplog.close()
    reopened = await OpLog.open(tmp_path / "oplog.db", oplog_key)
    try:
        comp2 = await make_sync(log=reopened, enabled=False)
        await _deposit(reopened, comp2, range(2, 4))
        rows = await reopened.outbox_pending(limit=100)
    finally:
        await reopened.close()
    payloads = [json.loads(r.payload_bytes) for r in rows]
    assert [p["seq"] for p in payloads] == [1, 2, 3, 4]
    assert len({p["epoch"] for p in payloads}) == 1


async def test_an_older_log_gets_epochs_for_its_streams_and_unsent_events(tmp_path: Path) -> None:
    source = REPO / "tests" / "fixtures" / "releases" / "0.1.0"
    shutil.copy(source / "oplog.db", tmp_path / "oplog.db")
    key = OplogKey(bytes.fromhex((source / "oplog.key.hex").read_text().strip()))
    # that cabinet went offline before its events were sent
    conn = sqlcipher.connect(tmp_path / "oplog.db", key.raw)
    try:
        conn.execute("UPDATE outbox SET sent_at = NULL WHERE seq IS NOT NULL")
    finally:
        conn.close()
    log = await OpLog.open(tmp_path / "oplog.db", key)
    try:
        streams = dict(await log.read(lambda c: c.execute(
            "SELECT stream, epoch FROM outbox_streams").fetchall()))
        pending = await log.outbox_pending(limit=1000)
    finally:
        await log.close()
    assert streams
    assert all(EPOCH.match(e) for e in streams.values())
    events = [(r.stream, json.loads(r.payload_bytes)) for r in pending if r.seq is not None]
    assert len(events) == 14
    for stream, payload in events:
        assert payload["epoch"] == streams[stream]
