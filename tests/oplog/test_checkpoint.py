"""WAL checkpoint policy and riding jobs: fewer transactions and page copies, same durability."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from lockerd.oplog import CheckpointPolicy, OpLog, OplogKey, OutboxMessage


async def _until(pred: object, limit_s: float = 10.0) -> None:
    deadline = time.monotonic() + limit_s
    while not pred():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


def _files(db: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for suffix in ("", "-wal", "-shm"):
        p = Path(str(db) + suffix)
        if p.exists():
            st = p.stat()
            out[suffix] = (st.st_size, st.st_mtime_ns)
    return out


def _msg(n: int) -> OutboxMessage:
    return OutboxMessage("sf", "lockers/CAB/carriers/sf/events", {"type": "t", "body": {"n": n}})


async def test_commits_are_not_checkpointed_one_by_one(db_path: Path, key: OplogKey) -> None:
    log = await OpLog.open(db_path, key, checkpoints=CheckpointPolicy(every_commits=5,
                                                                      idle_s=3600))
    try:
        for n in range(4):
            await log.append("test.op", actor="test", body={"n": n})
        await asyncio.sleep(0.3)
        assert log.checkpoints == 0  # four commits sit in the WAL, durable there
        await log.append("test.op", actor="test", body={"n": 4})
        await _until(lambda: log.checkpoints == 1)
        assert len(await log.operations()) == 5
    finally:
        await log.close()


async def test_an_idle_log_checkpoints_once_then_writes_nothing(db_path: Path,
                                                                key: OplogKey) -> None:
    log = await OpLog.open(db_path, key, checkpoints=CheckpointPolicy(every_commits=1000,
                                                                      idle_s=0.3))
    try:
        for n in range(3):
            await log.append("test.op", actor="test", body={"n": n}, outbox=[_msg(n)])
        rows = await log.outbox_pending()
        await log.outbox_mark_sent([r.id for r in rows])
        await _until(lambda: log.checkpoints == 1)
        await asyncio.sleep(0.2)
        files = _files(db_path)  # (size, mtime): tests/oplog/test_idle_daemon.py says why
        await asyncio.sleep(2.0)
        assert _files(db_path) == files
        assert log.checkpoints == 1
        assert (await log.verify()).ok  # reads write nothing either
        assert _files(db_path) == files
    finally:
        await log.close()


async def test_a_waiting_mark_rides_the_next_operation(store: OpLog) -> None:
    await store.append("test.op", actor="test", body={}, outbox=[_msg(1), _msg(2)])
    ids = [r.id for r in await store.outbox_pending()]
    mark = asyncio.create_task(store.outbox_mark_sent(ids, within_s=60))
    await asyncio.sleep(0.1)
    assert not mark.done()
    assert (await store.outbox_stats())[0] == 2
    before = store.commits
    await store.append("test.other", actor="test", body={})
    assert await mark == 2
    assert store.commits == before + 1  # one transaction for both
    assert (await store.outbox_stats())[0] == 0


async def test_a_waiting_mark_commits_alone_when_its_time_is_up(store: OpLog) -> None:
    await store.append("test.op", actor="test", body={}, outbox=[_msg(1)])
    ids = [r.id for r in await store.outbox_pending()]
    before = store.commits
    assert await store.outbox_mark_sent(ids, within_s=0.2) == 1
    assert store.commits == before + 1
    assert (await store.outbox_stats())[0] == 0


async def test_a_waiting_mark_is_written_when_the_log_closes(db_path: Path,
                                                             key: OplogKey) -> None:
    log = await OpLog.open(db_path, key)
    await log.append("test.op", actor="test", body={}, outbox=[_msg(1)])
    ids = [r.id for r in await log.outbox_pending()]
    mark = asyncio.create_task(log.outbox_mark_sent(ids, within_s=3600))
    await asyncio.sleep(0.1)
    await log.close()
    assert await mark == 1
    reopened = await OpLog.open(db_path, key)
    try:
        assert (await reopened.outbox_stats())[0] == 0
    finally:
        await reopened.close()


async def test_commits_left_in_the_wal_survive_a_reopen(db_path: Path, key: OplogKey) -> None:
    log = await OpLog.open(db_path, key, checkpoints=CheckpointPolicy(every_commits=10_000,
                                                                      idle_s=3600))
    for n in range(20):
        await log.append("test.op", actor="test", body={"n": n})
    assert log.checkpoints == 0
    assert _files(db_path)["-wal"][0] > 0
    await log.close()
    reopened = await OpLog.open(db_path, key)
    try:
        assert [op.body["n"] for op in await reopened.operations()] == list(range(20))
        assert (await reopened.verify()).ok
    finally:
        await reopened.close()
