"""Clock sanity: nothing is recorded while the clock reads earlier than the newest record or the
release, the panel answers clock_not_set, the cabinet says why, and recording resumes by itself."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lockerd.domain.errors import ErrorCode, Refused
from lockerd.oplog import OpLog, OplogKey
from lockerd.oplog.clockguard import RELEASE_FLOOR, ClockNotSet
from tests.fixtures.cabinet import Cabinet
from tests.oplog.test_component import _component, _config


class Clock:
    """A clock the test sets."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def test_the_release_floor_is_recent_and_not_in_the_future() -> None:
    today = datetime.now(UTC)
    assert today >= RELEASE_FLOOR
    assert today - RELEASE_FLOOR < timedelta(days=400), "raise RELEASE_FLOOR at the release"


async def test_no_record_before_the_newest_one_or_the_release(tmp_path: Path,
                                                              oplog_key: OplogKey) -> None:
    clock = Clock(datetime(2027, 5, 1, 8, 0, tzinfo=UTC))
    release = datetime(2027, 4, 1, tzinfo=UTC)
    store = await OpLog.open(tmp_path / "log.db", oplog_key, clock=clock, not_before=release)
    try:
        await store.append("test.one", actor="t", body={})
        clock.now -= timedelta(hours=1)  # NTP stepped back, or a reboot without an RTC
        with pytest.raises(ClockNotSet) as caught:
            await store.append("test.two", actor="t", body={})
        assert isinstance(caught.value, Refused)
        assert caught.value.code == ErrorCode.CLOCK_NOT_SET
        assert "earlier than the newest record (2027-05-01T08:00:00.000Z)" in str(caught.value)
        assert store.guard.problem() is not None
        assert store.head[0] == 1  # nothing recorded, the chain head did not move
        clock.now += timedelta(hours=2)
        assert store.guard.problem() is None
        await store.append("test.three", actor="t", body={})
        assert [op.kind for op in await store.operations()] == ["test.one", "test.three"]
        assert (await store.verify()).ok
    finally:
        await store.close()
    # reopened: the floor is the newest record in the file
    clock.now = datetime(2027, 4, 15, tzinfo=UTC)
    store = await OpLog.open(tmp_path / "log.db", oplog_key, clock=clock, not_before=release)
    try:
        with pytest.raises(ClockNotSet, match="the newest record"):
            await store.append("test.four", actor="t", body={})
    finally:
        await store.close()
    # a new log on a board that booted at 1970: the release date is the floor
    clock.now = datetime(1970, 1, 1, 0, 1, tzinfo=UTC)
    store = await OpLog.open(tmp_path / "new.db", oplog_key, clock=clock, not_before=release)
    try:
        with pytest.raises(ClockNotSet, match="this release's date"):
            await store.append("test.five", actor="t", body={})
        assert store.head[0] == 0
    finally:
        await store.close()


async def _until(cab: Cabinet, check: str, limit_s: float = 10.0) -> dict[str, object]:
    deadline = time.monotonic() + limit_s
    while True:
        st = await cab.call("status")
        codes = {r["code"] for r in st["reasons"]}
        if (check in codes) if not check.startswith("!") else (check[1:] not in codes):
            return dict(st)
        assert time.monotonic() < deadline, st["reasons"]
        await asyncio.sleep(0.1)


async def test_a_daemon_whose_clock_falls_behind_answers_clock_not_set(tmp_path: Path) -> None:
    cab = Cabinet(tmp_path)
    await cab.start()
    try:
        store = cab.store
        real = store._clock
        # the clock the log stamps records with reads a day before the newest record
        behind = Clock(real() - timedelta(days=1))
        store._clock = behind
        store.guard._clock = behind
        refused = await cab.refused("panel.pickup", {"panel": "kiosk-1", "code": "12345678"})
        assert refused.code == "clock_not_set"
        assert "waiting for time sync" in refused.message
        st = await _until(cab, "clock_not_set")
        assert st["state"] == "degraded"
        # time sync: the same flow is served again (a wrong code, recorded)
        store._clock = real
        store.guard._clock = real
        refused = await cab.refused("panel.pickup", {"panel": "kiosk-1", "code": "12345678"})
        assert refused.code == "wrong_code"
        await _until(cab, "!clock_not_set")
    finally:
        await cab.stop()


async def test_a_daemon_started_before_time_sync_serves_and_records_its_start_later(
        tmp_path: Path, key_file: Path) -> None:
    """A board without an RTC boots at 1970: the log component starts (the daemon serves and
    answers clock_not_set) and records oplog.opened and daemon.started once the clock is set."""
    cfg = _config(tmp_path, key_file)
    clock = Clock(datetime(1970, 1, 1, 0, 0, 30, tzinfo=UTC))
    comp = _component(cfg, clock=clock)
    await comp.start()
    task = asyncio.create_task(comp.run())
    try:
        assert comp.store.head[0] == 0
        assert comp.store.guard.problem() is not None
        clock.now = datetime.now(UTC)
        deadline = time.monotonic() + 10
        while comp.store.head[0] < 2:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
        kinds = [op.kind for op in await comp.store.operations()]
        assert kinds == ["oplog.opened", "daemon.started"]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await comp.stop()
