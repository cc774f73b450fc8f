"""Store core: atomic append with outbox, per-stream seq, command ids, mutate, group commit."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lockerd.oplog import (
    CommandRecord,
    DuplicateCommand,
    OpLog,
    OplogKey,
    OutboxMessage,
    PersonalDataInChain,
    WriterStopped,
)
from lockerd.oplog.records import get_parcel, insert_parcel


def _event(stream: str, n: int) -> OutboxMessage:
    return OutboxMessage(stream, f"lockers/CAB/carriers/{stream}/events",
                         {"type": "parcel.deposited", "body": {"n": n}})


async def test_append_returns_chained_operation(store: OpLog) -> None:
    first = await store.append("parcel.deposited", actor="courier:sf/7", body={"size": "M"},
                               compartment=3, parcel_id="p1")
    second = await store.append("parcel.picked_up", actor="panel", body={}, compartment=3,
                                parcel_id="p1")
    assert (first.seq, second.seq) == (1, 2)
    assert second.prev_hash == first.hash
    assert store.head == (2, second.hash)
    ops = await store.operations()
    assert [o.hash for o in ops] == [first.hash, second.hash]
    assert ops[0].body == {"size": "M"}


async def test_outbox_seq_per_stream_and_payload_completed(store: OpLog) -> None:
    await store.append("a", actor="x", body={}, outbox=[_event("sf", 1), _event("yto", 1)])
    await store.append("b", actor="x", body={}, outbox=[
        _event("sf", 2),
        OutboxMessage("_cabinet", "lockers/CAB/state", {"v": 1, "free": {}}, retain=True,
                      event=False)])
    rows = await store.outbox_pending(10)
    assert [(r.stream, r.seq) for r in rows] == [("sf", 1), ("yto", 1), ("sf", 2),
                                                  ("_cabinet", None)]
    sf2 = json.loads(rows[2].payload_bytes)
    assert sf2["seq"] == 2
    assert sf2["v"] == 1
    assert sf2["event_id"]
    assert sf2["ts"]
    assert sf2["body"] == {"n": 2}
    state = json.loads(rows[3].payload_bytes)
    assert "seq" not in state
    assert rows[3].retain
    assert [r.id for r in await store.outbox_pending(10, after_id=rows[1].id)] == \
        [rows[2].id, rows[3].id]
    count, oldest = await store.outbox_stats()
    assert count == 4
    assert oldest is not None
    assert await store.outbox_mark_sent([rows[0].id, rows[1].id]) == 2
    assert await store.outbox_mark_sent([rows[0].id]) == 0
    assert [r.id for r in await store.outbox_pending(10)] == [rows[2].id, rows[3].id]
    assert (await store.outbox_stats())[0] == 2
    pruned = await store.outbox_prune(datetime.now(UTC) + timedelta(seconds=1))
    assert pruned == 2
    assert (await store.operations())[-1].kind == "oplog.destroyed"
    assert (await store.verify()).ok


async def test_command_reply_remembered_and_duplicate_rolls_back(store: OpLog) -> None:
    assert await store.command_reply("sf", "c-1") is None
    await store.append("courier.granted", actor="carrier:sf", body={"courier": "7"},
                       command=CommandRecord("sf", "c-1", {"ok": True, "id": "c-1"}),
                       outbox=[_event("sf", 1)])
    assert await store.command_reply("sf", "c-1") == {"ok": True, "id": "c-1"}
    assert await store.command_reply("yto", "c-1") is None
    with pytest.raises(DuplicateCommand):
        await store.append("courier.granted", actor="carrier:sf", body={},
                           command=CommandRecord("sf", "c-1", {"ok": False}),
                           outbox=[_event("sf", 2)])
    # nothing of the refused append is recorded: no operation, no outbox row, no seq used
    assert store.head[0] == 1
    assert [r.seq for r in await store.outbox_pending(10)] == [1]
    await store.append("x", actor="x", body={}, outbox=[_event("sf", 3)])
    assert [r.seq for r in await store.outbox_pending(10)] == [1, 2]
    assert (await store.verify()).ok


async def test_commands_pruned_after_seven_days(db_path: Path, key: OplogKey) -> None:
    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    log = await OpLog.open(db_path, key, clock=lambda: now[0])
    try:
        await log.append("c", actor="x", body={}, command=CommandRecord("sf", "old", {"ok": 1}))
        now[0] += timedelta(days=6)
        await log.append("c", actor="x", body={}, command=CommandRecord("sf", "new", {"ok": 2}))
        assert await log.commands_prune() == 0
        now[0] += timedelta(days=1, seconds=1)
        assert await log.commands_prune() == 1
        assert await log.command_reply("sf", "old") is None
        assert await log.command_reply("sf", "new") == {"ok": 2}
        assert (await log.verify()).ok
    finally:
        await log.close()


async def test_mutate_is_in_the_same_transaction(store: OpLog) -> None:
    now = datetime.now(UTC)

    def ok(conn: sqlite3.Connection) -> None:
        insert_parcel(conn, parcel_id="p1", kind="delivery", carrier="sf", status="in_locker",
                      now=now, compartment=2, waybill="SF1234567889")

    def boom(conn: sqlite3.Connection) -> None:
        insert_parcel(conn, parcel_id="p2", kind="delivery", carrier="sf", status="in_locker",
                      now=now)
        raise RuntimeError("door controller said no")

    await store.append("parcel.deposited", actor="c", body={}, parcel_id="p1", mutate=ok,
                       outbox=[_event("sf", 1)])
    with pytest.raises(RuntimeError):
        await store.append("parcel.deposited", actor="c", body={}, parcel_id="p2", mutate=boom,
                           outbox=[_event("sf", 2)])
    assert store.head[0] == 1
    assert await store.read(lambda c: get_parcel(c, "p2")) is None
    parcel = await store.read(lambda c: get_parcel(c, "p1"))
    assert parcel is not None
    assert (parcel.waybill, parcel.compartment) == ("SF1234567889", 2)
    assert len(await store.outbox_pending(10)) == 1


async def test_concurrent_appends_group_commit_isolates_failures(store: OpLog) -> None:
    def bad(conn: sqlite3.Connection) -> None:
        raise ValueError("bad")

    async def one(i: int) -> int:
        try:
            op = await store.append("k", actor="a", body={"i": i}, outbox=[_event("sf", i)],
                                    mutate=bad if i % 7 == 0 else None)
        except ValueError:
            return -1
        return op.seq

    results = await asyncio.gather(*(one(i) for i in range(200)))
    good = sorted(r for r in results if r > 0)
    assert good == list(range(1, len(good) + 1))
    assert len(good) == 200 - len([i for i in range(200) if i % 7 == 0])
    rows = await store.outbox_pending(500)
    assert [r.seq for r in rows] == list(range(1, len(good) + 1))
    assert (await store.verify()).ok


async def test_personal_fields_refused_in_chain_body(store: OpLog) -> None:
    with pytest.raises(PersonalDataInChain):
        await store.append("x", actor="a", body={"detail": {"phone": "13812345678"}})
    with pytest.raises(PersonalDataInChain):
        await store.append("x", actor="a", body={"items": [{"waybill": "SF1"}]})
    assert store.head[0] == 0


async def test_reopen_keeps_chain_and_streams(db_path: Path, key: OplogKey) -> None:
    log = await OpLog.open(db_path, key)
    await log.append("a", actor="x", body={}, outbox=[_event("sf", 1)])
    head = log.head
    await log.close()
    await log.close()  # idempotent
    with pytest.raises(WriterStopped):
        await log.append("b", actor="x", body={})
    log = await OpLog.open(db_path, key)
    try:
        assert log.head == head
        await log.append("b", actor="x", body={}, outbox=[_event("sf", 2)])
        assert [r.seq for r in await log.outbox_pending(10)] == [1, 2]
        assert (await log.verify()).ok
    finally:
        await log.close()


async def test_operations_filters(db_path: Path, key: OplogKey) -> None:
    now = [datetime(2026, 3, 1, tzinfo=UTC)]
    log = await OpLog.open(db_path, key, clock=lambda: now[0])
    try:
        for i in range(6):
            await log.append("door.opened" if i % 2 else "parcel.deposited", actor="a",
                             body={"i": i}, compartment=1 + i % 3)
            now[0] += timedelta(hours=1)
        start = datetime(2026, 3, 1, 2, tzinfo=UTC)
        ops = await log.operations(since=start, until=start + timedelta(hours=3))
        assert [o.body["i"] for o in ops] == [2, 3, 4]
        assert [o.body["i"] for o in await log.operations(kinds=["door.opened"])] == [1, 3, 5]
        assert [o.body["i"] for o in await log.operations(compartment=1)] == [0, 3]
        assert [o.seq for o in await log.operations(after_seq=4, limit=1)] == [5]
    finally:
        await log.close()


async def test_loop_not_blocked_by_commits(store: OpLog) -> None:
    """A loop-side ticker keeps running while many synchronous=FULL commits happen."""
    ticks = 0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    for i in range(100):
        await store.append("k", actor="a", body={"i": i})
    stop.set()
    await task
    assert ticks >= 100
