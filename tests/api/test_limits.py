"""API connection limits on a real socket with real peers: caps, idle timeout, request rate, few log lines."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from lockerd.api.limits import ConnectionLimits, ThrottledLog, TokenBucket
from lockerd.api.server import ApiServer, Caller, Role
from lockerd.config import Api as ApiConfig
from tests.fixtures.peers import NOBODY, PANEL_GROUP, Peer, panel_gid, shared_workdir

ROLELESS = 60002
MakeServer = Callable[..., Coroutine[Any, Any, tuple[ApiServer, Path]]]


class Empty(BaseModel):
    model_config = ConfigDict(extra="forbid")


async def whoami(_params: Empty, caller: Caller) -> dict[str, Any]:
    return {"uid": caller.uid}


@pytest.fixture
async def make_server() -> AsyncIterator[MakeServer]:
    """Start an API server with the given [api] limits; stopped after the test."""
    started: list[tuple[ApiServer, Path]] = []

    async def make(**limits: Any) -> tuple[ApiServer, Path]:
        workdir = shared_workdir("lockerd-limits-")
        cfg = ApiConfig(panel_group=PANEL_GROUP, tech_group="video", audit_group="nogroup",
                        socket_mode=0o666, **limits)
        api = ApiServer(cfg, workdir / "api.sock")
        api.route("whoami", {Role.PANEL}, Empty, whoami)
        await api.start()
        started.append((api, workdir))
        return api, workdir / "api.sock"

    yield make
    for api, workdir in started:
        await api.stop()
        shutil.rmtree(workdir, ignore_errors=True)


pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="peers of another uid need root")


async def _until(cond: Callable[[], bool], limit_s: float = 10.0) -> None:
    deadline = time.monotonic() + limit_s
    while not cond():
        assert time.monotonic() < deadline, "condition never met"
        await asyncio.sleep(0.02)


def _api_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records
            if r.name == "lockerd.api.server" and r.levelno >= logging.WARNING]


async def test_a_roleless_flood_of_idle_connections_is_capped_and_others_are_served(
        make_server: MakeServer, caplog: pytest.LogCaptureFixture) -> None:
    api, path = await make_server(max_connections=32, max_connections_per_uid=4)
    flooder = Peer(path, ROLELESS, [ROLELESS])
    kiosk = Peer(path, NOBODY, [NOBODY, panel_gid()])
    try:
        await asyncio.to_thread(flooder.open_more, 299)          # 300 idle connections in all
        await _until(lambda: api.status()["refused_connections"] >= 296)
        assert api.status()["connections"] == 4 + 1         # the flooder's cap and the kiosk
        # a panel user is still served, on a connection it opened after the flood
        replies = await kiosk.acall([{"id": 1, "method": "whoami"}])
        assert replies == [{"id": 1, "ok": True, "result": {"uid": NOBODY}}]
    finally:
        flooder.close()
        kiosk.close()
    lines = _api_lines(caplog)
    assert 1 <= len(lines) <= 3, [r.getMessage() for r in lines]
    assert not any(r.exc_info for r in lines), "a traceback per refused connection"


async def test_the_overall_cap_refuses_newcomers_with_a_reply(make_server: MakeServer) -> None:
    api, path = await make_server(max_connections=3, max_connections_per_uid=3)
    peers = [Peer(path, 60010 + i, [60010 + i, panel_gid()]) for i in range(4)]
    try:
        await _until(lambda: api.status()["refused_connections"] == 1)
        replies = [await p.acall([{"id": 1, "method": "whoami"}]) for p in peers]
    finally:
        for p in peers:
            p.close()
    ok = [r for r in replies if r and r[0]["ok"]]
    refused = [r for r in replies if r and not r[0]["ok"]]
    assert len(ok) == 3
    assert [r[0]["error"]["code"] for r in refused] == ["too_many_connections"]


async def test_an_idle_connection_is_closed(make_server: MakeServer) -> None:
    api, path = await make_server(idle_timeout_s=1.0)
    idle = Peer(path, ROLELESS, [ROLELESS])
    try:
        await _until(lambda: api.status()["connections"] == 1)
        await _until(lambda: api.status()["connections"] == 0, limit_s=5.0)
        # the peer sees the connection closed: no reply to a late request
        assert await idle.acall([{"id": 1, "method": "whoami"}]) == []
    finally:
        idle.close()


async def test_requests_beyond_the_rate_are_refused_and_the_connection_stays(
        make_server: MakeServer, caplog: pytest.LogCaptureFixture) -> None:
    _api, path = await make_server(max_requests_per_s=5.0)
    kiosk = Peer(path, NOBODY, [NOBODY, panel_gid()])
    try:
        replies = await kiosk.acall([{"id": i, "method": "whoami"} for i in range(40)])
        await asyncio.sleep(1.0)
        (later,) = await kiosk.acall([{"id": 99, "method": "whoami"}])
    finally:
        kiosk.close()
    codes = [r["error"]["code"] if not r["ok"] else "ok" for r in replies]
    assert len(codes) == 40
    assert 10 <= codes.count("ok") <= 12            # the burst (twice the rate) and a little refill
    assert set(codes) == {"ok", "rate_limited"}
    assert later["ok"]
    assert len(_api_lines(caplog)) == 1


def test_limits_count_and_release() -> None:
    limits = ConnectionLimits(ApiConfig(max_connections=2, max_connections_per_uid=1))
    assert limits.admit(1000, privileged=False) is None
    assert limits.admit(1000, privileged=False) is not None           # per uid
    assert limits.admit(1001, privileged=False) is None
    assert limits.admit(1002, privileged=False) is not None           # overall
    assert limits.admit(0, privileged=True) is None                   # root's reserve
    limits.release(1000)
    limits.release(0)
    assert limits.admit(1002, privileged=False) is None
    assert limits.refused == 2


def test_bucket_and_throttled_log(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    bucket = TokenBucket(2.0, 4.0, clock=lambda: now[0])
    assert [bucket.take() for _ in range(5)] == [True] * 4 + [False]
    now[0] = 1.0
    assert [bucket.take() for _ in range(3)] == [True, True, False]
    logger = logging.getLogger("tests.throttled")
    throttled = ThrottledLog(logger, interval_s=10.0, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="tests.throttled"):
        for _ in range(1000):
            throttled.log(logging.WARNING, "k", "refused %d", 7)
        now[0] = 12.0
        throttled.log(logging.WARNING, "k", "refused %d", 7)
    messages = [r.getMessage() for r in caplog.records if r.name == "tests.throttled"]
    assert messages == ["refused 7", "refused 7 (999 more like this in the last 10 s not logged)"]
