"""A hostile process in the panel group, through the real socket: guessing codes, acting on others.

The attacker is a real process of another uid in the panel group (SO_PEERCRED sees it). Brute
force: it invents a new `panel` id for every guess, and the domain clock is fast-forwarded to the
end of each lockout, so a simulated day of the greediest attack runs in seconds of wall time.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from lockerd.app.events import Alert, AlertKind
from lockerd.domain import Cabinet as DomainCabinet
from lockerd.parcels.component import AdjustableClock
from tests.fixtures.cabinet import Cabinet, courier, delivery, dropoff, running
from tests.fixtures.peers import NOBODY, PANEL_GROUP, Peer, panel_gid, shared_workdir

pytestmark = pytest.mark.skipif(__import__("os").geteuid() != 0,
                                reason="peers of another uid need root (CI runs as root)")

#: A kiosk's uid, bound to the physical panel "front" in [[api.panels]].
KIOSK = 60001
DAY = timedelta(days=1)
#: docs/local-api.md: at most 5 N wrong guesses in any 24 hours (N = rules.cabinet_wrong_limit).
BOUND_PER_DAY = 100
ROUND = 30


@pytest.fixture
async def shared_cab() -> AsyncIterator[Cabinet]:
    """The in-process daemon on the simulator, its socket reachable by other uids."""
    workdir = shared_workdir()
    # the per-connection request rate is raised: the limiters, not the rate, are under test here
    try:
        async with running(workdir, grant=True,
                           api={"panel_group": PANEL_GROUP, "socket_mode": 0o666,
                                "max_requests_per_s": 1000.0,
                                "panels": [{"user": KIOSK, "panel": "front"}]}) as cab:
            yield cab
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _cabinet(cab: Cabinet) -> DomainCabinet:
    return cab.d.parcels.cabinet


def _clock(cab: Cabinet) -> AdjustableClock:
    clock = cab.d.parcels.clock
    assert isinstance(clock, AdjustableClock)
    return clock


async def _parcel(cab: Cabinet) -> tuple[dict[str, Any], str]:
    res = await cab.call("panel.deliver", {**courier(), "parcel": delivery()})
    return res, await cab.code_of(res["parcel_id"])


def _pickup(n: int, code: str, real: str) -> dict[str, Any]:
    """A guess from a freshly invented panel id."""
    guess = f"{(n * 7919 + 13) % 10**6:06d}"
    if guess == real:
        guess = f"{(int(guess) + 1) % 10**6:06d}"
    return {"id": n, "method": "panel.pickup", "params": {"panel": f"kiosk-{n}", "code": guess}}


async def test_brute_force_through_the_socket_stays_under_the_documented_bound(
        shared_cab: Cabinet) -> None:
    cab = shared_cab
    _, code = await _parcel(cab)
    alerts = cab.d.events.subscribe(Alert)
    attacker = Peer(cab.cfg.paths.socket, NOBODY, [NOBODY, panel_gid()])
    start = _cabinet(cab).now()
    checked: list[datetime] = []
    sent, wall, n = 0, 0.0, 0
    try:
        while _cabinet(cab).now() - start < DAY:
            batch = []
            for _ in range(ROUND):
                n += 1
                batch.append(_pickup(n, code, code))
            t0 = time.perf_counter()
            replies = await attacker.acall(batch)
            wall += time.perf_counter() - t0
            assert len(replies) == ROUND, "the daemon dropped the attacker's connection"
            sent += len(replies)
            now = _cabinet(cab).now()
            errors = [r["error"]["code"] for r in replies]
            assert set(errors) <= {"wrong_code", "locked_out"}, errors
            checked += [now] * errors.count("wrong_code")
            assert len(checked) <= BOUND_PER_DAY, (
                f"{len(checked)} guesses checked within {now - start} of simulated time")
            # while a cabinet-wide lockout runs, the periodic check leaves the alert raised
            cab.d.parcels.clear_brute_force()
            # fast-forward to the moment the attacker may guess again
            ends = [datetime.fromisoformat(r["result"]["locked_until"]) for r in replies
                    if "locked_until" in r.get("result", {})]
            target = max(ends, default=now + timedelta(minutes=1))
            _clock(cab).advance(max(target - now, timedelta(0)) + timedelta(milliseconds=1))
    finally:
        attacker.close()
    simulated = _cabinet(cab).now() - start
    print(f"\nbrute force over the socket: {sent} requests in {wall:.1f} s ({sent / wall:.0f}/s), "
          f"{len(checked)} guesses checked in {simulated} simulated "
          f"(bound {BOUND_PER_DAY} per 24 h)")
    assert len(checked) >= 20, "the attack never reached the cabinet ceiling"
    # the ceiling raised the alert
    # ... and clears it once the lockout is over (the loop ended just past one)
    cab.d.parcels.clear_brute_force()
    seen = []
    while not alerts.queue.empty():
        alert = alerts.queue.get_nowait()
        if alert.kind is AlertKind.BRUTE_FORCE:
            seen.append(alert.active)
    alerts.close()
    assert seen[:2] == [True, False], seen
    assert seen[-1] is False
    # hundreds of invented panel ids left no limiter row behind: one for the caller, one cabinet
    limiters = set(_cabinet(cab).state.limiters)
    assert limiters <= {f"uid:{NOBODY}", "cabinet:codes"}, limiters
    rows = await cab.store.read(lambda conn: conn.execute(
        "SELECT count(*) FROM live_state WHERE entity = 'limiter'").fetchone()[0])
    assert rows <= 2


async def test_one_caller_cannot_lock_out_another_panel(shared_cab: Cabinet) -> None:
    cab = shared_cab
    _, code = await _parcel(cab)
    attacker = Peer(cab.cfg.paths.socket, NOBODY, [NOBODY, panel_gid()])
    kiosk = Peer(cab.cfg.paths.socket, KIOSK, [KIOSK, panel_gid()])
    try:
        replies = await attacker.acall([_pickup(i, code, code) for i in range(8)])
        errors = [r["error"]["code"] for r in replies]
        # five wrong codes lock the attacker out, whatever panel it claims next ...
        assert errors == ["wrong_code"] * 5 + ["locked_out"] * 3
        # ... and claiming the kiosk's panel name does not lock the kiosk
        (claim,) = await attacker.acall([{"id": 1, "method": "panel.pickup",
                                          "params": {"panel": "front", "code": "000001"}}])
        assert claim["error"]["code"] == "locked_out"
        (got,) = await kiosk.acall([{"id": 2, "method": "panel.pickup",
                                     "params": {"panel": "kiosk-1", "code": code}}])
        assert got["ok"], got
        assert got["result"]["status"] == "pickup.confirm"
    finally:
        attacker.close()
        kiosk.close()
    begins = await cab.ops("pickup.begin")
    assert {o.body["panel"] for o in begins} == {f"uid:{NOBODY}", "front"}


@contextlib.contextmanager
def _doors_held_open(cab: Cabinet) -> Iterator[None]:
    """Every simulated door stays open until the block ends (a person at the open door)."""
    held = [cab.hw(c.id) for c in cab.cfg.compartments]
    for faults, bus, board, ch in held:
        faults.hold_open(bus, board, ch)
    try:
        yield
    finally:
        for faults, bus, board, ch in held:
            faults.hold_open(bus, board, ch, held=False)


async def _opening(cab: Cabinet, task: asyncio.Future[Any]) -> int:
    """The compartment whose door operation is under way (waits for it)."""
    deadline = time.monotonic() + 20
    comps = _cabinet(cab).state.compartments
    while not any(c.state.value == "opening" and c.pending is not None for c in comps.values()):
        assert time.monotonic() < deadline, "door never started opening"
        assert not task.done(), f"flow ended before its door opened: {task.result()}"
        await asyncio.sleep(0.05)
        comps = _cabinet(cab).state.compartments
    return next(c.id for c in comps.values() if c.state.value == "opening")


async def test_another_caller_cannot_turn_a_pickup_into_a_refusal(shared_cab: Cabinet) -> None:
    cab = shared_cab
    _, code = await _parcel(cab)
    gids = [panel_gid()]
    kiosk, kiosk_again = Peer(cab.cfg.paths.socket, KIOSK, [KIOSK, *gids]), None
    intruder = Peer(cab.cfg.paths.socket, NOBODY, [NOBODY, *gids])
    try:
        with _doors_held_open(cab):
            # the kiosk sends the panel name it always sent (lockerctl panel does)
            pickup = asyncio.ensure_future(kiosk.acall([{"id": 1, "method": "panel.pickup",
                                                         "params": {"panel": "kiosk-1",
                                                                    "code": code}}]))
            cid = await _opening(cab, pickup)
            # another uid, even claiming the kiosk's panel name, is refused ...
            for params in ({"panel": "kiosk-1", "compartment": cid, "reason": "damaged"},
                           {"compartment": cid, "reason": "damaged"}):
                (reply,) = await intruder.acall([{"id": 2, "method": "panel.refuse",
                                                  "params": params}])
                assert reply["error"]["code"] == "bad_state", reply
            # ... the caller that opened the door may still declare (on another connection)
            kiosk_again = Peer(cab.cfg.paths.socket, KIOSK, [KIOSK, *gids])
            (own,) = await kiosk_again.acall([{"id": 3, "method": "panel.refuse", "params": {
                "panel": "kiosk-1", "compartment": cid, "reason": "damaged"}}])
            assert own["ok"], own
        (done,) = await asyncio.wait_for(pickup, 30)
    finally:
        kiosk.close()
        intruder.close()
        if kiosk_again is not None:
            kiosk_again.close()
    assert done["result"]["status"] == "refuse.confirm"


async def test_another_caller_cannot_give_the_collection_verdict(shared_cab: Cabinet) -> None:
    cab = shared_cab
    dropped = await cab.call("panel.dropoff", {"panel": "kiosk-1", "dropoff": dropoff()})
    gids = [panel_gid()]
    courier_kiosk = Peer(cab.cfg.paths.socket, KIOSK, [KIOSK, *gids])
    intruder = Peer(cab.cfg.paths.socket, NOBODY, [NOBODY, *gids])
    try:
        with _doors_held_open(cab):
            collect = asyncio.ensure_future(courier_kiosk.acall([{
                "id": 1, "method": "panel.collect",
                "params": {**courier(), "parcel_id": dropped["parcel_id"]}}]))
            cid = await _opening(cab, collect)
            (reply,) = await intruder.acall([{"id": 2, "method": "panel.collect_verdict", "params": {
                "panel": "kiosk-1", "compartment": cid, "accept": False, "reason": "prohibited"}}])
            assert reply["error"]["code"] == "bad_state", reply
        (done,) = await asyncio.wait_for(collect, 30)
    finally:
        courier_kiosk.close()
        intruder.close()
    assert done["result"]["status"] == "collected"


async def test_another_caller_cannot_see_or_act_on_a_screen_operation(shared_cab: Cabinet) -> None:
    """Panel API v2: an operation id is bound to the caller that began it, not a secret to guess."""
    cab = shared_cab
    _, code = await _parcel(cab)
    gids = [panel_gid()]
    kiosk = Peer(cab.cfg.paths.socket, KIOSK, [KIOSK, *gids])
    intruder = Peer(cab.cfg.paths.socket, NOBODY, [NOBODY, *gids])
    try:
        with _doors_held_open(cab):
            (started,) = await kiosk.acall([{"id": 1, "method": "panel.v2.pickup",
                                             "params": {"code": code}}])
            assert started["ok"], started
            op = started["result"]["op"]
            for method, params in (("panel.v2.op", {"op": op}),
                                   ("panel.v2.refuse", {"op": op, "reason": "damaged"}),
                                   ("panel.v2.refuse", {"panel": "front", "op": op,
                                                        "reason": "damaged"})):
                (reply,) = await intruder.acall([{"id": 2, "method": method, "params": params}])
                assert reply["error"]["code"] == "bad_state", (method, reply)
            (own,) = await kiosk.acall([{"id": 3, "method": "panel.v2.op", "params": {"op": op}}])
            assert own["ok"], own
            assert own["result"]["kind"] == "pickup"
        deadline = time.monotonic() + 30
        while (await kiosk.acall([{"id": 4, "method": "panel.v2.op",
                                   "params": {"op": op}}]))[0]["result"]["state"] != "done":
            assert time.monotonic() < deadline, "the pickup never finished"
            await asyncio.sleep(0.1)
    finally:
        kiosk.close()
        intruder.close()
    assert not await cab.ops("refuse.confirm")
    assert [o.kind for o in await cab.ops("pickup.confirm")] == ["pickup.confirm"]
