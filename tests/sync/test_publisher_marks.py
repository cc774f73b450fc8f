"""Broker acknowledgements are written in batches that ride the cabinet's own transactions."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from pathlib import Path

import pytest

from lockerd.oplog import OpLog, OplogKey, OutboxMessage
from lockerd.sync import publisher as publisher_module
from lockerd.sync.publisher import OutboxPublisher


class AckingLink:
    """A connected link whose broker acknowledges each publish on the next loop turn."""

    def __init__(self) -> None:
        self.connected = True
        self.publisher: OutboxPublisher | None = None
        self._mids = itertools.count(1)

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> int:
        mid = next(self._mids)
        assert self.publisher is not None
        asyncio.get_running_loop().call_soon(self.publisher.on_puback, mid, False)
        return mid


async def _until(pred: object, limit_s: float = 10.0) -> None:
    deadline = time.monotonic() + limit_s
    while not pred():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


def _msg(n: int) -> OutboxMessage:
    return OutboxMessage("sf", "lockers/CAB/carriers/sf/events", {"type": "t", "body": {"n": n}})


@pytest.fixture
async def log(tmp_path: Path) -> OpLog:
    store = await OpLog.open(tmp_path / "oplog.db", OplogKey.generate())
    yield store  # type: ignore[misc]
    await store.close()


async def _running(log: OpLog) -> tuple[OutboxPublisher, asyncio.Task[None]]:
    link = AckingLink()
    pub = OutboxPublisher(log, link, wake=asyncio.Event())  # type: ignore[arg-type]
    link.publisher = pub
    task = asyncio.create_task(pub.run())
    pub.on_connect()
    return pub, task


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_acks_ride_the_next_operation(log: OpLog, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(publisher_module, "MARK_WITHIN_S", 60.0)
    await log.append("test.op", actor="test", body={}, outbox=[_msg(1), _msg(2), _msg(3)])
    pub, task = await _running(log)
    try:
        await _until(lambda: pub.acked == 3)
        await asyncio.sleep(0.1)  # the mark task has handed the ids to the writer
        assert (await log.outbox_stats())[0] == 3  # acknowledged, not yet written
        before = log.commits
        await log.append("test.other", actor="test", body={})
        assert log.commits == before + 1
        assert (await log.outbox_stats())[0] == 0  # marked in that same transaction
    finally:
        await _stop(task)


async def test_acks_are_written_within_the_window_when_nothing_else_commits(log: OpLog) -> None:
    for n in range(5):
        await log.append("test.op", actor="test", body={}, outbox=[_msg(n)])
    before = log.commits
    pub, task = await _running(log)
    try:
        await _until(lambda: pub.acked == 5)
        await _until(lambda: log.commits > before)
        assert (await log.outbox_stats())[0] == 0
        assert log.commits - before < 5  # not one transaction per acknowledgement
    finally:
        await _stop(task)


async def test_a_stop_writes_the_waiting_acks_at_once(log: OpLog,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(publisher_module, "MARK_WITHIN_S", 3600.0)
    await log.append("test.op", actor="test", body={}, outbox=[_msg(1), _msg(2)])
    pub, task = await _running(log)
    await _until(lambda: pub.acked == 2)
    await asyncio.sleep(0.1)
    await _stop(task)  # the waiting mark is cancelled; its ids go back to the publisher
    await asyncio.wait_for(pub.flush_marks(), 5.0)
    assert (await log.outbox_stats())[0] == 0
