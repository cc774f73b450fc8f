"""Kerong boards see occupancy: a deposit counts only with the item seen, a pickup only once the
compartment is seen empty (docs/lifecycle.md)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from lockerd.domain.requests import CourierAuth, Delivery
from lockerd.sim.kerong import KerongFrontEnd
from tests.fixtures.cabinet import CARRIER, PIN, Cabinet, courier, delivery

KERONG = {"hardware": {
    "backend": "sim",
    "buses": [{"name": "bus0", "baudrate": 19200}],
    "boards": [{"address": 1, "profile": "kerong-cu16", "channels": 8},
               {"address": 2, "profile": "kerong-cu16", "channels": 8}]}}


def sensor(cab: Cabinet) -> Any:
    assert cab.d.doors.board_set is not None
    assert cab.d.doors.board_set.sim is not None
    return cab.d.doors.board_set.sim.bus("bus0").frontend


async def settle(cab: Cabinet, cid: int, want: bool) -> None:
    """Wait until the controller's poll has seen the sensor's new value."""
    for _ in range(100):
        if cab.d.doors.occupied(cid) is want:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"occupancy of {cid} never read {want}")


async def test_deposit_needs_the_item_seen_and_pickup_an_empty_compartment(tmp_path: Path
                                                                           ) -> None:
    cab = Cabinet(tmp_path, **KERONG)
    await cab.start()
    try:
        await cab.grant(CARRIER, "c-101", PIN)
        # Nothing placed: the sensor sees an empty compartment after the door closed.
        err = await cab.refused("panel.deliver", {**courier(), "parcel": delivery("SF1000000001")})
        assert (err.code, err.reply["result"]["status"]) == ("rolled_back", "rolled_back")
        assert 1 in cab.d.parcels.blocked()  # the sensor and the courier disagree: staff look
        rollback = (await cab.ops("deposit.rollback"))[-1]
        assert rollback.body["failure"] == "item_not_seen"
        assert rollback.body["evidence"]["door_close"]["snapshot"]["sha256"]
        # Placed: the deposit counts. The allocation skips the blocked compartment 1.
        sensor(cab).set_occupied(1, 1, True)
        await settle(cab, 2, True)
        res = await cab.call("panel.deliver", {**courier(), "parcel": delivery("SF1000000002")})
        assert res["status"] == "deliver.confirm"
        assert res["compartment"] == 2
        code = await cab.code_of(res["parcel_id"])
        # The recipient closes the door without taking the parcel: not picked up.
        err = await cab.refused("panel.pickup", {"panel": "kiosk-1", "code": code})
        assert (err.code, err.reply["result"]["status"]) == ("item_still_inside", "in_locker")
        # Taken out: picked up.
        sensor(cab).set_occupied(1, 1, False)
        await settle(cab, 2, False)
        res = await cab.call("panel.pickup", {"panel": "kiosk-1", "code": code})
        assert res["status"] == "pickup.confirm"
        await cab.verify()
    finally:
        await cab.stop()


async def alerts_of(cab: Cabinet, kind: str, *, wait: bool = True) -> list[Any]:
    """The recorded `deposit_unconfirmed` alerts of `kind` (raised/cleared); they reach the log
    through the event bus, so wait a little for the first one."""
    for _ in range(100 if wait else 1):
        found = [o for o in await cab.ops(kind) if o.body["kind"] == "deposit_unconfirmed"]
        if found or not wait:
            return found
        await asyncio.sleep(0.05)
    return []


@pytest.mark.parametrize("item_inside", [True, False])
async def test_a_deposit_left_open_at_a_stop_is_held_when_the_sensor_sees_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, item_inside: bool) -> None:
    """Issue 16: a deposit begun and never ended (the process died between begin and confirm, no
    kept end). At the next start its door reads closed; the sensor sees the parcel: held for
    staff (`deposit_unconfirmed`, listed, alerted), never `rolled_back`; the sensor sees the
    compartment empty: rolled back and blocked as before."""
    cab = Cabinet(tmp_path, **KERONG)
    await cab.start()
    try:
        await cab.grant(CARRIER, "c-101", PIN)
        flows = cab.d.parcels
        auth = CourierAuth(carrier=CARRIER, courier_id="c-101", pin=PIN)
        req = Delivery.model_validate(delivery("SF1000000003"))
        # the begin is recorded, then the process dies: nothing else of the door cycle is
        begin = await flows.service._commit(
            lambda: flows.cabinet.begin_deposit(auth, "kiosk-1", req), threaded=True)
        assert begin.ok, begin.error
        cid, pid = begin.result["compartment"], begin.result["parcel_id"]
        _, _, board, channel = cab.hw(cid)
        # the simulator starts afresh with the next daemon; the item lies there all along
        real = KerongFrontEnd.occupied

        def seen(front: KerongFrontEnd, address: int) -> list[bool]:
            bits = real(front, address)
            if address == board:
                bits[channel] = item_inside
            return bits

        monkeypatch.setattr(KerongFrontEnd, "occupied", seen)
        await cab.restart()
        flows = cab.d.parcels
        comp = flows.cabinet.state.compartments[cid]
        assert comp.pending is None
        assert comp.state.value == "blocked"
        rollbacks = [o for o in await cab.ops("deposit.rollback") if o.parcel_id == pid]
        alerts = await alerts_of(cab, "alert.raised", wait=item_inside)
        rows = (await cab.call("incidents"))["incidents"]
        if item_inside:
            assert rollbacks == []
            parcel = flows.cabinet.state.parcels[pid]
            assert (parcel.status.value, parcel.code) == ("depositing", None)
            assert (comp.parcel_id, comp.blocked_reason) == (pid, "deposit_unconfirmed")
            [held] = await cab.ops("deposit.held")
            assert (held.parcel_id, held.body["after_restart"]) == (pid, True)
            assert any(r["kind"] == "compartment_blocked" and r["compartment"] == cid
                       and r["reason"] == "deposit_unconfirmed" for r in rows), rows
            assert any(r["kind"] == "parcel_stuck" and r["parcel_id"] == pid for r in rows)
            assert [a.compartment for a in alerts] == [cid]
            # staff cannot hand it on with a code; they take it out
            err = await cab.refused("compartments.unblock", {"compartment": cid,
                                                                "reason": "looked"})
            assert err.code == "holds_parcel"
            res = await cab.call("compartments.clear", {"compartment": cid, "reason": "checked"})
            assert res["removed"] == [pid]
            [event] = await cab.events("parcel.removed_by_staff")
            assert (event["body"]["parcel_id"], event["body"]["from_status"]) == (
                pid, "depositing")
            assert [a.compartment for a in await alerts_of(cab, "alert.cleared")] == [cid]
        else:
            assert [o.body["failure"] for o in rollbacks] == ["not_closed"]
            assert pid not in flows.cabinet.state.parcels
            assert comp.blocked_reason == "door_left_open"
            assert await cab.ops("deposit.held") == []
            assert alerts == []
        await cab.verify()
    finally:
        await cab.stop()
