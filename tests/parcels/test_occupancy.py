"""Kerong boards see occupancy: a deposit counts only with the item seen, a pickup only once the
compartment is seen empty (docs/lifecycle.md)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

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
