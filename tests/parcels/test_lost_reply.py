"""A board that acts on the pulse but whose reply is lost (issue 16, "door truth under faults").

Through the real API socket of an in-process daemon on the simulator's pseudo-terminals, for a
Modbus board and a raw-frame 0x8A board: the door opened and can be read -> the pickup is done,
recorded once, one pulse; the door cannot be read either -> `door_state_unknown`, the
compartment held and listed as an incident, the same code pulses nothing until a reading of
the door settles it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.cabinet import CARRIER, PIN, Cabinet, courier, delivery

PROFILES: dict[str, dict[str, Any]] = {
    "modbus-waveshare": {},
    "rs485-8a": {"hardware": {
        "backend": "sim",
        "buses": [{"name": "bus0", "baudrate": 9600}],
        "boards": [{"address": 1, "profile": "rs485-8a", "channels": 8},
                   {"address": 2, "profile": "rs485-8a", "channels": 8}]}},
}


def pulses(cab: Cabinet, cid: int) -> int:
    """Relay pulses the simulated board received on the compartment's channel."""
    _, bus, board, channel = cab.hw(cid)
    assert cab.d.doors.board_set is not None
    assert cab.d.doors.board_set.sim is not None
    return cab.d.doors.board_set.sim.board(bus, board).pulse_counts()[channel]


async def until(pred: Callable[[], bool], limit_s: float = 30.0) -> None:
    deadline = time.monotonic() + limit_s
    while not pred():
        assert time.monotonic() < deadline, "condition never held"
        await asyncio.sleep(0.1)


async def deposit(cab: Cabinet, waybill: str) -> tuple[str, int, str]:
    res = await cab.call("panel.deliver", {**courier(), "parcel": delivery(waybill)})
    return res["parcel_id"], res["compartment"], await cab.code_of(res["parcel_id"])


@pytest.mark.parametrize("profile", sorted(PROFILES))
async def test_lost_pulse_reply_reads_the_door_before_deciding(tmp_path: Path, profile: str
                                                                ) -> None:
    cab = Cabinet(tmp_path, **PROFILES[profile])
    await cab.start()
    try:
        await cab.grant(CARRIER, "c-101", PIN)
        assert {b.profile for b in cab.cfg.hardware.boards} == {profile}
        pid_a, comp_a, code_a = await deposit(cab, "SF1000000001")
        pid_b, comp_b, code_b = await deposit(cab, "SF1000000002")

        # 1. The board pulses, the reply is lost, the door can be read: opened, picked up once.
        faults, bus, board, _ = cab.hw(comp_a)
        faults.drop_reply_after_act(bus, board)
        before = pulses(cab, comp_a)
        got = await cab.call("panel.pickup", {"panel": "kiosk-1", "code": code_a})
        assert (got["status"], got["parcel_id"]) == ("pickup.confirm", pid_a)
        assert pulses(cab, comp_a) == before + 1
        assert [o.parcel_id for o in await cab.ops("pickup.confirm")] == [pid_a]
        assert await cab.ops("pickup.rollback") == []
        assert [e["body"]["parcel_id"] for e in await cab.events("parcel.picked_up")] == [pid_a]

        # 2. Reply lost and the board silent afterwards: the door's state is unknown.
        faults, bus, board, _ = cab.hw(comp_b)
        faults.drop_reply_after_act(bus, board, then_silent=True)
        before = pulses(cab, comp_b)
        err = await cab.refused("panel.pickup", {"panel": "kiosk-1", "code": code_b})
        assert err.code == "door_state_unknown"
        assert err.reply["result"]["status"] == "in_locker"  # not picked up, not "nothing"
        assert pulses(cab, comp_b) == before + 1
        held = cab.d.parcels.cabinet.state.compartments[comp_b]
        assert (held.state.value, held.blocked_reason) == ("blocked", "door_state_unknown")
        rollback = (await cab.ops("pickup.rollback"))[-1]
        assert rollback.body["failure"] == "state_unknown"
        listed = (await cab.call("incidents"))["incidents"]
        row = next(r for r in listed if r.get("compartment") == comp_b
                   and r["kind"] == "compartment_blocked")
        assert row["reason"] == "door_state_unknown"
        # The same code does not pulse the door again while its state is unknown.
        again = await cab.refused("panel.pickup", {"panel": "kiosk-1", "code": code_b})
        assert again.code == "wrong_code"  # a held compartment answers like any closed one
        assert pulses(cab, comp_b) == before + 1

        # 3. The board answers again: the door reads closed, the hold is lifted by the doors.
        faults.restore_replies(bus, board)
        await until(lambda: cab.d.parcels.cabinet.state.compartments[comp_b].state.value
                    == "occupied")
        settled = (await cab.ops("compartment.unblock"))[-1]
        assert (settled.actor, settled.compartment) == ("doors", comp_b)
        got = await cab.call("panel.pickup", {"panel": "kiosk-1", "code": code_b})
        assert (got["status"], got["parcel_id"]) == ("pickup.confirm", pid_b)
        assert pulses(cab, comp_b) == before + 2
        assert sorted(o.parcel_id for o in await cab.ops("pickup.confirm")) == sorted(
            [pid_a, pid_b])
        await cab.verify()
    finally:
        await cab.stop()
