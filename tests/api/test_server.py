"""The local API on a real Unix socket: roles from SO_PEERCRED of real peers, hostile input."""

from __future__ import annotations

import asyncio
import grp
import json
import os
import socket
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field

from lockerd.api.server import ApiError, ApiServer, Caller, Role
from lockerd.config import Api as ApiConfig
from lockerd.domain.errors import ErrorCode, Refused

NOBODY = 65534
# Two groups every Debian system has stand in for lockerd-panel and lockerd-tech.
PANEL_GROUP, TECH_GROUP = "dialout", "video"


class EchoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(max_length=20)


async def echo(params: EchoParams, caller: Caller) -> dict[str, Any]:
    return {"text": params.text, "uid": caller.uid}


async def refuse(_params: Any, _caller: Caller) -> None:
    raise ApiError("door_busy", "compartment 3 is being opened")


async def crash(_params: Any, _caller: Caller) -> None:
    raise RuntimeError("boom")


@pytest.fixture
async def server() -> AsyncIterator[tuple[ApiServer, Path]]:
    # Not under pytest's 0700 tmp dir: the unprivileged peer must be able to reach the socket.
    workdir = Path(tempfile.mkdtemp(prefix="lockerd-api-"))
    os.chmod(workdir, 0o755)
    path = workdir / "api.sock"
    cfg = ApiConfig(panel_group=PANEL_GROUP, tech_group=TECH_GROUP, audit_group="nogroup",
                    socket_mode=0o666, max_request_bytes=4096)
    api = ApiServer(cfg, path)
    api.route("echo", {Role.PANEL, Role.TECH}, EchoParams, echo)
    api.route("tech.only", {Role.TECH}, None, echo)
    api.route("refuse", {Role.PANEL}, None, refuse)
    api.route("crash", {Role.PANEL}, None, crash)
    await api.start()
    yield api, path
    await api.stop()
    os.rmdir(workdir)


def peer_request(path: Path, lines: list[bytes], uid: int, gids: list[int]) -> list[dict[str, Any]]:
    """Fork a child that drops to uid/gids, sends lines on the socket and returns the replies."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: a real, different peer as far as the kernel is concerned
        try:
            os.close(rfd)
            os.setgroups(gids)
            os.setgid(gids[0] if gids else NOBODY)
            os.setuid(uid)
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(10)
                s.connect(str(path))
                buf = b""
                for n, line in enumerate(lines, 1):
                    s.sendall(line)
                    while buf.count(b"\n") < n:
                        chunk = s.recv(65536)
                        if not chunk:
                            break
                        buf += chunk
                os.write(wfd, buf)
        finally:
            os._exit(0)
    os.close(wfd)
    chunks = []
    while data := os.read(rfd, 65536):
        chunks.append(data)
    os.close(rfd)
    os.waitpid(pid, 0)
    return [json.loads(x) for x in b"".join(chunks).splitlines()]


pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="switching to another uid needs root "
                                                           "(CI runs as root)")


async def call_as(path: Path, uid: int, gids: list[int], req: dict[str, Any]) -> dict[str, Any]:
    line = json.dumps(req).encode() + b"\n"
    (reply,) = await asyncio.to_thread(peer_request, path, [line], uid, gids)
    return reply


async def test_caller_without_role_is_refused(server: tuple[ApiServer, Path]) -> None:
    api, path = server
    reply = await call_as(path, NOBODY, [NOBODY], {"id": 1, "method": "echo",
                                                   "params": {"text": "hi"}})
    assert reply == {"id": 1, "ok": False,
                     "error": {"code": "forbidden", "message": "echo needs role panel or tech"}}
    assert api.refusals == 1


async def test_group_grants_role(server: tuple[ApiServer, Path]) -> None:
    _api, path = server
    panel = grp.getgrnam(PANEL_GROUP).gr_gid
    tech = grp.getgrnam(TECH_GROUP).gr_gid
    ok = await call_as(path, NOBODY, [panel], {"id": "a", "method": "echo",
                                               "params": {"text": "hi"}})
    assert ok == {"id": "a", "ok": True, "result": {"text": "hi", "uid": NOBODY}}
    refused = await call_as(path, NOBODY, [panel], {"id": 2, "method": "tech.only"})
    assert refused["error"]["code"] == "forbidden"
    allowed = await call_as(path, NOBODY, [NOBODY, tech], {"id": 3, "method": "tech.only",
                                                          "params": {"text": "x"}})
    # tech.only takes no params: extra keys are refused by its params model.
    assert allowed["error"]["code"] == "bad_params"


async def test_hostile_input_gets_error_replies(server: tuple[ApiServer, Path]) -> None:
    api, path = server
    lines = [
        b"this is not json\n",
        b"[1, 2, 3]\n",
        json.dumps({"id": 1, "method": "nope"}).encode() + b"\n",
        json.dumps({"id": 2, "method": "echo", "params": {"text": "x" * 50}}).encode() + b"\n",
        json.dumps({"id": 3, "method": "echo", "params": {"text": 5}}).encode() + b"\n",
        json.dumps({"id": 4, "method": "refuse"}).encode() + b"\n",
        json.dumps({"id": 5, "method": "crash"}).encode() + b"\n",
        json.dumps({"id": 6, "method": "echo", "params": {"text": "still up"}}).encode() + b"\n",
    ]
    replies = await asyncio.to_thread(peer_request, path, lines, 0, [0])
    codes = [r.get("error", {}).get("code") for r in replies]
    assert codes == ["bad_request", "bad_request", "unknown_method", "bad_params", "bad_params",
                     "door_busy", "internal", None]
    assert replies[-1]["result"]["text"] == "still up"
    oversize = b'{"id": 7, "method": "echo", "params": {"text": "' + b"y" * 8000 + b'"}}\n'
    (reply,) = await asyncio.to_thread(peer_request, path, [oversize], 0, [0])
    assert reply["error"]["code"] == "too_large"
    assert api.status()["requests"] >= 8


async def test_a_refusal_becomes_the_error_reply_with_its_code_and_detail(tmp_path: Path) -> None:
    api = ApiServer(ApiConfig(), tmp_path / "api.sock")

    async def locked_out(_params: Any, _caller: Caller) -> None:
        raise Refused(ErrorCode.LOCKED_OUT, "too many wrong codes", {"retry_after_s": 60})

    async def plain(_params: Any, _caller: Caller) -> None:
        raise Refused(ErrorCode.BAD_STATE)

    api.route("locked", {Role.PANEL}, None, locked_out)
    api.route("plain", {Role.PANEL}, None, plain)
    caller = Caller(pid=1, uid=0, gid=0, roles=frozenset(Role))
    reply = await api.dispatch(json.dumps({"id": 9, "method": "locked"}).encode(), caller)
    assert reply == {"id": 9, "ok": False, "result": {"retry_after_s": 60},
                     "error": {"code": "locked_out", "message": "too many wrong codes"}}
    reply = await api.dispatch(json.dumps({"id": 10, "method": "plain"}).encode(), caller)
    assert reply == {"id": 10, "ok": False, "error": {"code": "bad_state", "message": "bad_state"}}
