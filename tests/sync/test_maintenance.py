"""`lockerctl maintenance` announces a planned interruption on the retained status: ahead of time,
while it lasts, to late subscribers, across a restart, and gone once it is over or cancelled."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from lockerd.cli import lockerctl
from lockerd.cli.maintenance import duration_s
from lockerd.domain.timefmt import format_ts
from lockerd.testing.broker import LocalBroker
from lockerd.testing.carrier import CarrierClient
from tests.fixtures.cabinet import Cabinet, mqtt_settings, running, until
from tests.sync.contract import errors


@pytest.fixture
async def online(tmp_path: Path, broker: LocalBroker) -> AsyncIterator[Cabinet]:
    workdir = tmp_path / "cab"
    workdir.mkdir()
    async with running(workdir, online=True, mqtt=mqtt_settings(broker)) as cab:
        yield cab


def _statuses(client: CarrierClient) -> list[dict[str, Any]]:
    return [m.payload for m in client.all if m.topic == client.topics.status]


async def _lockerctl(cab: Cabinet, *args: str) -> int:
    argv = ["--socket", str(cab.cfg.paths.socket), "maintenance", *args]
    return await asyncio.to_thread(lockerctl.main, argv)


def test_durations() -> None:
    assert [duration_s(t) for t in ("2h", "90m", "1h30m", "1d", "45s")] == [
        7200, 5400, 5400, 86400, 45]
    with pytest.raises(Exception, match="not a duration"):
        duration_s("two hours")


async def test_a_planned_interruption_reaches_carriers_ahead_and_while_it_lasts(
        online: Cabinet, broker: LocalBroker) -> None:
    cab = online
    cabinet = cab.cfg.cabinet.id
    offset = [timedelta(0)]
    cab.d.sync.clock = lambda: datetime.now(UTC) + offset[0]
    async with CarrierClient("127.0.0.1", broker.port, cabinet, "sf") as sf:
        starts = datetime.now(UTC) + timedelta(seconds=2)
        assert await _lockerctl(cab, "--at", format_ts(starts), "--for", "1h",
                                "--reason", "lock board replacement") == 0
        await until(lambda: any("maintenance" in s for s in _statuses(sf)))
        ahead = next(s for s in _statuses(sf) if "maintenance" in s)
        assert errors("StatusOnline", ahead) == []
        assert ahead["maintenance"] == {"starts_at": format_ts(starts),
                                        "ends_at": format_ts(starts + timedelta(hours=1)),
                                        "reason": "lock board replacement", "active": False}
        # the interruption starts: published again, active
        await until(lambda: _statuses(sf)[-1].get("maintenance", {}).get("active") is True)
    # a carrier that subscribes later gets the retained notice
    async with CarrierClient("127.0.0.1", broker.port, cabinet, "yto") as late:
        await until(lambda: bool(_statuses(late)))
        assert _statuses(late)[-1]["maintenance"]["active"] is True
    # a restart keeps announcing it (the plan is in the log)
    await cab.restart()
    cab.d.sync.clock = lambda: datetime.now(UTC) + offset[0]
    await until(lambda: cab.d.sync.link is not None and cab.d.sync.link.connected)
    async with CarrierClient("127.0.0.1", broker.port, cabinet, "sf") as sf:
        await until(lambda: bool(_statuses(sf)))
        assert _statuses(sf)[-1]["maintenance"]["reason"] == "lock board replacement"
        # an hour later it is over: the notice goes away by itself
        offset[0] = timedelta(hours=1, seconds=1)
        await until(lambda: "maintenance" not in _statuses(sf)[-1])
        assert _statuses(sf)[-1]["online"] is True
    kinds = [op.kind for op in await cab.ops()]
    assert kinds.count("sync.maintenance_planned") == 1


async def test_cancel_and_refusals(online: Cabinet, broker: LocalBroker) -> None:
    cab = online
    async with CarrierClient("127.0.0.1", broker.port, cab.cfg.cabinet.id, "sf") as sf:
        assert await _lockerctl(cab, "--at", "2030-01-01T22:00:00+08:00", "--for", "2h",
                                "--reason", "power work") == 0
        await until(lambda: any("maintenance" in s for s in _statuses(sf)))
        assert await _lockerctl(cab, "--cancel") == 0
        await until(lambda: "maintenance" not in _statuses(sf)[-1])
    # an interruption already over is refused; so is one of a few seconds
    assert await _lockerctl(cab, "--at", "2020-01-01T00:00:00Z", "--for", "1h",
                            "--reason", "x") == lockerctl.EXIT_USAGE
    assert await _lockerctl(cab, "--at", "now", "--for", "10s", "--reason", "x") != 0
    kinds = [op.kind for op in await cab.ops()]
    assert (kinds.count("sync.maintenance_planned"), kinds.count("sync.maintenance_cancelled")) \
        == (1, 1)
