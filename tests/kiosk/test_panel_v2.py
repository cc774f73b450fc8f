"""Panel API v2 over the real socket: operations answer at once, door progress arrives as pushed events."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from lockerd.kiosk.link import DaemonLink
from tests.fixtures.cabinet import CARRIER, PIN, Cabinet, courier, delivery, dropoff

PANEL = "kiosk-1"


class Events:
    """Pushed lines collected from a subscribed link."""

    def __init__(self) -> None:
        self.lines: list[dict[str, Any]] = []
        self._changed = asyncio.Event()

    def __call__(self, line: dict[str, Any]) -> None:
        self.lines.append(line)
        self._changed.set()

    def of(self, op: str) -> list[str]:
        return [e["event"] for e in self.lines if e.get("op") == op]

    async def until(self, op: str, event: str, limit_s: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + limit_s
        while True:
            found = [e for e in self.lines if e.get("op") == op and e["event"] == event]
            if found:
                return found[-1]
            assert time.monotonic() < deadline, f"no {event} for {op}: {self.of(op)}"
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.2):
                    await self._changed.wait()


@pytest.fixture
async def screen(cab: Cabinet) -> AsyncIterator[tuple[DaemonLink, Events]]:
    events = Events()
    async with DaemonLink(cab.cfg.paths.socket, events) as link:
        sub = await link.subscribe(PANEL)
        assert sub["version"] == 2
        assert sub["intake"] == {"open": True, "reason": None}
        yield link, events


def hold_all(cab: Cabinet, held: bool = True) -> None:
    for c in cab.cfg.compartments:
        faults, bus, board, ch = cab.hw(c.id)
        faults.hold_open(bus, board, ch, held=held)


async def _delivered(cab: Cabinet, waybill: str = "SF1234567890") -> tuple[dict[str, Any], str]:
    res = await cab.call("panel.deliver", {**courier(), "parcel": delivery(waybill)})
    return res, await cab.code_of(res["parcel_id"])


async def test_pickup_answers_before_the_door_opens_and_pushes_its_progress(
        cab: Cabinet, screen: tuple[DaemonLink, Events]) -> None:
    link, events = screen
    stored, code = await _delivered(cab)
    t0 = time.monotonic()
    res = await link.call("panel.v2.pickup", {"panel": PANEL, "code": code})
    answered_s = time.monotonic() - t0
    assert res["compartment"] == stored["compartment"]
    assert res["state"] == "opening"
    assert answered_s < 0.5  # the door takes longer than this to even read open
    done = await events.until(res["op"], "done")
    assert events.of(res["op"]) == ["pulse_sent", "opened", "closed", "done"]
    assert done["record"] == "pickup.confirm"
    assert done["compartment"] == stored["compartment"]
    # no code, PIN or waybill in any pushed line
    text = json.dumps(events.lines)
    assert code not in text
    assert "SF1234567890" not in text
    assert PIN not in text
    view = await link.call("panel.v2.op", {"panel": PANEL, "op": res["op"]})
    assert view["state"] == "done"
    assert [e["event"] for e in view["events"]] == events.of(res["op"])
    # (another caller cannot look at it: tests/api/test_panel_abuse.py, with a real other uid)
    assert [o.kind for o in await cab.ops() if o.parcel_id == stored["parcel_id"]][-2:] == [
        "pickup.begin", "pickup.confirm"]


async def test_refusal_on_the_spot_names_the_operation(
        cab: Cabinet, screen: tuple[DaemonLink, Events]) -> None:
    link, events = screen
    stored, code = await _delivered(cab)
    hold_all(cab)
    res = await link.call("panel.v2.pickup", {"panel": PANEL, "code": code})
    await events.until(res["op"], "opened")
    declared = await link.call("panel.v2.refuse", {"panel": PANEL, "op": res["op"],
                                                   "reason": "damaged"})
    assert declared == {"op": res["op"], "declared": True, "reason": "damaged"}
    hold_all(cab, held=False)
    done = await events.until(res["op"], "done")
    assert done["record"] == "refuse.confirm"
    assert done["reason"] == "damaged"
    confirm = (await cab.ops("refuse.confirm"))[0]
    assert confirm.body["reason"] == "damaged"
    assert confirm.parcel_id == stored["parcel_id"]
    # the finished operation takes no more declarations
    late = await link.raw("panel.v2.refuse", {"panel": PANEL, "op": res["op"], "reason": "short"})
    assert late["ok"] is False


async def test_a_jammed_deposit_is_offered_another_compartment(
        cab: Cabinet, screen: tuple[DaemonLink, Events]) -> None:
    link, events = screen
    first, second = cab.comp_of("S")[:2]
    faults, bus, board, ch = cab.hw(first)
    faults.jam(bus, board, ch)
    res = await link.call("panel.v2.deliver", {**courier(panel=PANEL), "parcel": delivery()})
    assert res["compartment"] == first
    done = await events.until(res["op"], "done", limit_s=30)
    assert events.of(res["op"]) == ["pulse_sent", "jammed", "offered", "pulse_sent", "opened",
                                    "closed", "done"]
    offered = next(e for e in events.lines if e["op"] == res["op"] and e["event"] == "offered")
    assert offered["compartment"] == second
    assert done["record"] == "deliver.confirm"
    assert done["compartment"] == second
    # one operation: the jammed door is recorded as a redirect to the next compartment
    (redirect,) = [o for o in await cab.ops() if o.kind.endswith(".redirect")]
    assert (redirect.compartment, redirect.body["jammed_compartment"]) == (second, first)
    assert not [o for o in await cab.ops() if o.kind.endswith(".rollback")]
    assert (await cab.ops("deliver.confirm"))[0].compartment == second
    assert first in cab.d.parcels.blocked()
    assert len(await cab.events("parcel.deposited")) == 1


async def test_collection_verdict_on_the_operation_and_terms_version_recorded(
        cab: Cabinet, screen: tuple[DaemonLink, Events]) -> None:
    link, events = screen
    res = await link.call("panel.v2.dropoff", {"panel": PANEL, "dropoff": dropoff(),
                                               "terms_version": "terms-2026.1"})
    await events.until(res["op"], "done")
    begin = (await cab.ops("dropoff.begin"))[0]
    assert begin.body["terms_version"] == "terms-2026.1"
    login = await link.call("panel.v2.login", courier(panel=PANEL))
    item = login["to_collect"][0]
    assert item["declared_contents"] == "books"  # the courier compares it on the spot (Art. 20)
    hold_all(cab)
    op = await link.call("panel.v2.collect", {**courier(panel=PANEL),
                                              "parcel_id": item["parcel_id"]})
    await events.until(op["op"], "opened")
    await link.call("panel.v2.verdict", {"panel": PANEL, "op": op["op"], "accept": False,
                                         "reason": "mismatch"})
    hold_all(cab, held=False)
    done = await events.until(op["op"], "done")
    assert (done["record"], done["reason"]) == ("collect.confirm", "mismatch")
    assert (await cab.ops("collect.confirm"))[0].body == {**(await cab.ops("collect.confirm"))[0].body,
                                                         "accept": False, "reason": "mismatch"}


async def test_refusals_come_back_at_once_without_an_operation(
        cab: Cabinet, screen: tuple[DaemonLink, Events]) -> None:
    link, events = screen
    no_consent = await link.raw("panel.v2.deliver", {**courier(panel=PANEL),
                                                     "parcel": {**delivery(), "consent": False}})
    assert no_consent["error"]["code"] == "no_consent"
    for i in range(5):
        err = await link.raw("panel.v2.pickup", {"panel": PANEL, "code": f"00000{i}"})
        assert err["error"]["code"] == "wrong_code"
    locked = await link.raw("panel.v2.pickup", {"panel": PANEL, "code": "000009"})
    assert locked["error"]["code"] == "locked_out"
    assert "locked_until" in locked["result"]
    assert not [e for e in events.lines if e["event"] != "intake"]


async def test_fee_is_quoted_before_the_door_opens(tmp_path: Path) -> None:
    cab = Cabinet(tmp_path, storage={"overdue_fee_cents_per_day": 150})
    await cab.start()
    try:
        await cab.grant(CARRIER, "c-101", PIN)
        _, code = await _delivered(cab)
        cab.d.parcels.clock.advance(timedelta(hours=72 + 30))  # type: ignore[attr-defined]
        events = Events()
        async with DaemonLink(cab.cfg.paths.socket, events) as link:
            await link.subscribe(PANEL)
            quote = await link.raw("panel.v2.pickup", {"panel": PANEL, "code": code})
            assert quote["error"]["code"] == "fee_due"
            assert quote["result"]["fee_cents"] == 300
            assert quote["result"]["storage_deadline_local"].endswith("+08:00")
            (quoted,) = await cab.ops("pickup.begin")  # recorded as refused: no door, not counted
            assert quoted.body["error"] == "fee_due"
            assert not cab.d.parcels.cabinet.state.limiters
            res = await link.call("panel.v2.pickup", {"panel": PANEL, "code": code,
                                                      "accept_fee_cents": 300})
            assert res["fee_cents"] == 300
            done = await events.until(res["op"], "done")
            assert done["fee_cents"] == 300
        await cab.verify()
    finally:
        await cab.stop()


async def test_a_door_left_open_prompts_the_screen(tmp_path: Path) -> None:
    cab = Cabinet(tmp_path, doors={"left_open_prompt_s": 0.6, "left_open_alert_s": 20.0,
                                   "left_open_incident_s": 40.0, "close_timeout_s": 10.0})
    await cab.start()
    try:
        await cab.grant(CARRIER, "c-101", PIN)
        events = Events()
        async with DaemonLink(cab.cfg.paths.socket, events) as link:
            await link.subscribe(PANEL)
            hold_all(cab)
            res = await link.call("panel.v2.deliver", {**courier(panel=PANEL), "parcel": delivery()})
            prompt = await events.until(res["op"], "left_open")
            assert prompt["level"] == "prompt"
            hold_all(cab, held=False)
            await events.until(res["op"], "done")
            assert events.of(res["op"]) == ["pulse_sent", "opened", "left_open", "closed", "done"]
    finally:
        await cab.stop()


async def test_intake_changes_reach_every_subscriber(
        cab: Cabinet, screen: tuple[DaemonLink, Events]) -> None:
    link, events = screen
    assert cab.d.camera is not None
    cab.d.camera.source.set_mode("covered")  # type: ignore[attr-defined]
    deadline = time.monotonic() + 20
    while not any(e["event"] == "intake" and not e["open"] for e in events.lines):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    info = await link.call("panel.v2.info", {"panel": PANEL})
    assert info["intake"]["open"] is False
    assert info["intake"]["reason"] == "camera_obstructed"
    err = await link.raw("panel.v2.dropoff", {"panel": PANEL, "dropoff": dropoff(),
                                              "terms_version": "t1"})
    assert err["error"]["code"] == "intake_closed"
    cab.d.camera.source.set_mode("normal")  # type: ignore[attr-defined]
    await cab.wait_camera()
    await asyncio.sleep(0.1)
    assert events.lines[-1] == {"event": "intake", "op": None, "open": True, "reason": None}


async def test_subscriptions_end_with_their_connection(cab: Cabinet) -> None:
    async with DaemonLink(cab.cfg.paths.socket) as link:
        await link.subscribe(PANEL)
        assert cab.d.parcels.panel_ops.subscribers == 1
    deadline = time.monotonic() + 5
    while cab.d.parcels.panel_ops.subscribers:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)


# The kiosk service's client as a plain-stdlib script, so an unprivileged user can run it with the
# system Python (the test venv's interpreter may sit under a home directory only root can enter).
PANEL_CLIENT = """
import json, socket, sys
sock = socket.socket(socket.AF_UNIX)
sock.connect(sys.argv[1])
f = sock.makefile("rwb")
out = {}
for i, (method, params) in enumerate([
        ("panel.v2.info", {"panel": "kiosk-1"}), ("doors.list", {}),
        ("doors.open", {"compartment": 1, "reason": "x"}), ("log.view", {}),
        ("log.export", {}), ("camera.status", {})]):
    f.write(json.dumps({"id": i, "method": method, "params": params}).encode() + b"\\n")
    f.flush()
    reply = json.loads(f.readline())
    out[method] = "ok" if reply["ok"] else reply["error"]["code"]
print(json.dumps(out))
"""
SYSTEM_PYTHON = Path("/usr/bin/python3")


@pytest.fixture
def run_dir() -> Iterator[Path]:
    """A directory another user can reach (pytest's tmp_path is root's alone), for the socket."""
    path = Path(tempfile.mkdtemp(prefix="lockerd-roles-", dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0 or not SYSTEM_PYTHON.exists(),
                    reason="needs root and the system Python to run a client as another user")
async def test_a_panel_role_client_is_refused_tech_and_audit_methods(tmp_path: Path,
                                                                     run_dir: Path) -> None:
    """The kiosk service's identity: an unprivileged user whose only extra group is the panel's."""
    cab = Cabinet(tmp_path, api={"panel_group": "users", "socket_mode": 0o666},
                  paths={"socket": str(run_dir / "api.sock")})
    await cab.start()
    try:
        proc = await asyncio.create_subprocess_exec(
            str(SYSTEM_PYTHON), "-I", "-c", PANEL_CLIENT, str(cab.cfg.paths.socket),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, user="nobody", group="nogroup",
            extra_groups=["users"], cwd=str(run_dir), env={"PATH": "/usr/bin:/bin"})
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err.decode()
        seen = json.loads(out)
        assert seen == {"panel.v2.info": "ok", "doors.list": "forbidden", "doors.open": "forbidden",
                        "log.view": "forbidden", "log.export": "forbidden",
                        "camera.status": "forbidden"}
        assert cab.d.api.refusals >= 5
    finally:
        await cab.stop()
