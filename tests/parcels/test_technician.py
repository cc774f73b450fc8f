"""Technician recovery through the real socket: the domain owns "blocked", jams and rejected drop-offs
never strand a parcel, a door operation that did not happen is never a success, restarts change nothing."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from lockerd.cli import lockerctl
from lockerd.testing.broker import LocalBroker
from lockerd.testing.carrier import CarrierClient
from tests.fixtures.cabinet import (
    CARRIER,
    Cabinet,
    courier,
    delivery,
    dropoff,
    mqtt_settings,
    running,
    while_open,
)


@pytest.fixture
async def linked(tmp_path: Path, broker: LocalBroker) -> AsyncIterator[Cabinet]:
    """The in-process daemon connected to the test's mosquitto."""
    async with running(tmp_path, grant=True, mqtt=mqtt_settings(broker)) as c:
        yield c


async def _until(pred: Any, limit_s: float = 10.0) -> None:
    deadline = time.monotonic() + limit_s
    while not pred():
        assert time.monotonic() < deadline, "condition never met"
        await asyncio.sleep(0.05)


async def _lockerctl(cab: Cabinet, capsys: pytest.CaptureFixture[str], *args: str
                     ) -> tuple[int, str, str]:
    """lockerctl as a technician types it; in a thread, since the daemon runs on this loop."""
    code = await asyncio.to_thread(lockerctl.main, [*args, "--socket", str(cab.cfg.paths.socket)])
    out, err = capsys.readouterr()
    return code, out, err


async def _views(cab: Cabinet) -> tuple[list[int], list[int], list[int]]:
    """The blocked set as the technician's door view, the domain and the `state` topic see it."""
    doors = await cab.call("doors.list")
    listed = [d["compartment"] for d in doors["doors"] if d["blocked"]]
    return listed, cab.d.parcels.blocked(), cab.d.sync.current_state().blocked


def _kinds(incidents: list[dict[str, Any]]) -> list[tuple[str, int | None]]:
    return [(r["kind"], r.get("compartment")) for r in incidents]


async def test_jam_incident_unblock_then_the_parcel_is_picked_up_with_its_code(
        cab: Cabinet, capsys: pytest.CaptureFixture[str]) -> None:
    res = await cab.call("panel.deliver", {**courier(), "parcel": delivery()})
    cid, pid = res["compartment"], res["parcel_id"]
    code = await cab.code_of(pid)
    faults, bus, board, ch = cab.hw(cid)
    faults.jam(bus, board, ch)
    # a jammed pickup is a refusal with its code, in the API and in lockerctl (exit 1)
    jam = await cab.refused("panel.pickup", {"panel": "kiosk-1", "code": code})
    assert jam.code == "door_jammed"
    assert jam.reply["result"] == {"parcel_id": pid, "compartment": cid, "status": "in_locker",
                                   "failure": "jammed", "blocked": True}
    assert (await cab.ops("pickup.rollback"))[0].body["failure"] == "jammed"
    await cab.restart()
    listed = (await cab.call("incidents"))["incidents"]
    assert _kinds(listed) == [("compartment_blocked", cid), ("parcel_stuck", cid)]
    assert listed[0]["reason"] == "door_jammed"
    assert listed[0]["blocked_by"] == "doors"
    assert listed[0]["age_s"] >= 0
    assert listed[1]["parcel_id"] == pid
    code_rc, out, _ = await _lockerctl(cab, capsys, "incidents")
    assert code_rc == 0
    assert "compartment_blocked" in out
    assert max(len(line) for line in out.splitlines()) <= 80
    assert await _views(cab) == ([cid], [cid], [cid])
    blocked = await cab.refused("panel.pickup", {"panel": "kiosk-1", "code": code})
    assert blocked.code == "wrong_code"  # no oracle: the recipient is told like any wrong code
    # the latch is repaired (the restart gave the simulator a new one): back in service
    rc, out, err = await _lockerctl(cab, capsys, "unblock", str(cid), "--reason",
                                    "latch replaced, called 13812345678")
    assert rc == 0, err
    assert "occupied" in out
    await cab.restart()
    assert (await cab.call("incidents"))["incidents"] == []
    assert await _views(cab) == ([], [], [])
    done = await cab.call("panel.pickup", {"panel": "kiosk-1", "code": code})
    assert (done["status"], done["parcel_id"]) == ("pickup.confirm", pid)
    [unblock] = await cab.ops("compartment.unblock")
    assert unblock.body["reason"] == "latch replaced, called 138****5678"  # redacted
    assert unblock.body["released"] == "door_jammed"
    assert unblock.actor.startswith("uid:")


async def test_a_jammed_pickup_exits_1_in_lockerctl_panel(
        cab: Cabinet, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    res = await cab.call("panel.deliver", {**courier(), "parcel": delivery()})
    faults, bus, board, ch = cab.hw(res["compartment"])
    faults.jam(bus, board, ch)
    monkeypatch.setenv("TEST_CODE", await cab.code_of(res["parcel_id"]))
    rc, out, err = await _lockerctl(cab, capsys, "panel", "pickup", "--code-env", "TEST_CODE")
    assert rc == 1
    assert "door_jammed" in err
    assert "jammed" in out  # what happened is shown before the refusal


async def test_a_blank_reason_is_a_usage_error(
        cab: Cabinet, capsys: pytest.CaptureFixture[str]) -> None:
    await cab.call("compartments.block", {"compartment": 1, "reason": "hinge"})
    rc, _, _ = await _lockerctl(cab, capsys, "unblock", "1", "--reason", " ")
    assert rc == 2  # a blank reason is a usage error, nothing recorded
    assert not await cab.ops("compartment.unblock")


async def test_the_three_views_agree_after_a_restart(linked: Cabinet) -> None:
    """doors.list, the customer flows and the retained MQTT `state` agree on a jam's block."""
    cab = linked
    cid = cab.comp_of("L")[0]
    faults, bus, board, ch = cab.hw(cid)
    faults.jam(bus, board, ch)
    jam = await cab.refused("doors.open", {"compartment": cid, "reason": "latch check"})
    assert jam.code == "door_jammed"
    await _until(lambda: cid in cab.d.parcels.blocked())  # the door fact, recorded by the domain
    await cab.restart()
    assert await _views(cab) == ([cid], [cid], [cid])
    async with CarrierClient("127.0.0.1", cab.cfg.mqtt.port, cab.cfg.cabinet.id, CARRIER) as carrier:
        def latest() -> dict[str, Any]:
            states = [m.payload for m in carrier.all if m.topic == carrier.topics.state]
            return states[-1] if states else {}
        await _until(lambda: latest().get("blocked") == [cid])
        retained = latest()
    assert retained["free"] == cab.d.parcels.free_counts()
    # customer flows skip it: the other L compartments, then no L left
    others = cab.comp_of("L")[1:]
    for n in range(len(others)):
        got = await cab.call("panel.deliver", {**courier(), "parcel": delivery(f"SF700000{n}", "L")})
        assert got["compartment"] in others
    full = await cab.refused("panel.deliver", {**courier(), "parcel": delivery("SF7000009", "L")})
    assert full.code == "no_free_compartment"
    [block] = await cab.ops("compartment.block")
    assert (block.compartment, block.actor, block.body["reason"]) == (cid, "doors", "door_jammed")


async def test_clear_with_a_live_parcel_tells_its_carrier(linked: Cabinet) -> None:
    cab = linked
    async with CarrierClient("127.0.0.1", cab.cfg.mqtt.port, cab.cfg.cabinet.id, CARRIER) as carrier:
        res = await cab.call("panel.deliver", {**courier(), "parcel": delivery()})
        cid, pid = res["compartment"], res["parcel_id"]
        # the grant may reach the carrier first: wait for the deposit itself
        await _until(lambda: any(e["type"] == "parcel.deposited"
                                 for e in carrier.ledger.accepted), 30.0)
        code = next(e["body"]["pickup_code"] for e in carrier.ledger.accepted
                    if e["type"] == "parcel.deposited")
        # refused on the spot: a parcel its code can no longer claim
        done = await while_open(cab, "panel.pickup", {"panel": "kiosk-1", "code": code},
                                ("panel.refuse", {"panel": "kiosk-1", "reason": "damaged"}))
        assert done["status"] == "refuse.confirm"
        await cab.call("compartments.block", {"compartment": cid, "reason": "door bent"})
        await cab.restart()
        held = await cab.refused("compartments.unblock", {"compartment": cid, "reason": "fixed"})
        assert held.code == "holds_parcel"
        assert held.reply["result"] == {"parcel_id": pid, "status": "refused"}
        cleared = await cab.call("compartments.clear", {"compartment": cid,
                                                        "reason": "parcel to the depot"})
        assert (cleared["removed"], cleared["state"]) == ([pid], "free")
        await _until(lambda: any(e["type"] == "parcel.removed_by_staff"
                                 for e in carrier.ledger.accepted), 30.0)
        types = [e["type"] for e in carrier.ledger.accepted]
    assert types[-3:] == ["parcel.deposited", "parcel.refused", "parcel.removed_by_staff"]
    removed = carrier.ledger.accepted[-1]
    assert removed["body"] == {**removed["body"], "parcel_id": pid, "compartment": cid,
                               "kind": "delivery", "from_status": "refused",
                               "reason": "parcel to the depot"}
    await cab.restart()
    status = await cab.store.read(lambda c: c.execute(
        "SELECT status FROM parcels WHERE id = ?", (pid,)).fetchone()[0])
    assert status == "removed_by_staff"
    assert await _views(cab) == ([], [], [])
    assert (await cab.call("incidents"))["incidents"] == []


async def test_a_jammed_deposit_opens_another_compartment_in_the_same_operation(
        cab: Cabinet) -> None:
    first = cab.comp_of("S")[0]
    faults, bus, board, ch = cab.hw(first)
    faults.jam(bus, board, ch)
    res = await cab.call("panel.deliver", {**courier(), "parcel": delivery()})
    assert res["status"] == "deliver.confirm"
    assert res["jammed_compartments"] == [first]
    assert res["compartment"] == cab.comp_of("S")[1]
    kinds = [o.kind for o in await cab.ops() if o.parcel_id == res["parcel_id"]]
    assert kinds == ["deliver.begin", "deposit.redirect", "deliver.confirm"]
    [event] = [e for e in await cab.events("parcel.deposited")]
    assert event["body"]["compartment"] == res["compartment"]
    await cab.restart()
    assert _kinds((await cab.call("incidents"))["incidents"]) == [("compartment_blocked", first)]
    code = await cab.code_of(res["parcel_id"])
    done = await cab.call("panel.pickup", {"panel": "kiosk-1", "code": code})
    assert (done["status"], done["parcel_id"]) == ("pickup.confirm", res["parcel_id"])
    [opened] = [o for o in await cab.ops("pickup.begin") if o.body["ok"]]
    assert opened.compartment == res["compartment"]


async def test_a_rejected_dropoff_goes_back_to_its_sender_with_the_code(cab: Cabinet) -> None:
    sent = await cab.call("panel.dropoff", {"panel": "kiosk-1", "dropoff": dropoff()})
    code, pid, cid = sent["retrieval_code"], sent["parcel_id"], sent["compartment"]
    assert code.isdigit()
    assert code not in json.dumps([o.body for o in await cab.ops()])
    assert code not in json.dumps(await cab.events())
    await cab.restart()
    rejected = await while_open(cab, "panel.collect", {**courier(), "parcel_id": pid},
                                ("panel.collect_verdict", {"panel": "kiosk-1", "accept": False,
                                                           "reason": "mismatch"}))
    assert rejected["status"] == "rejected"
    await cab.restart()
    waiting = (await cab.call("incidents"))["incidents"]
    assert _kinds(waiting) == [("dropoff_rejected", cid)]
    assert waiting[0]["reason"] == "mismatch"
    back = await cab.call("panel.pickup", {"panel": "kiosk-2", "code": code})
    assert (back["status"], back["parcel_id"]) == ("returned_to_sender", pid)
    assert [o.body["ok"] for o in await cab.ops("retrieve.confirm")] == [True]
    [event] = await cab.events("dropoff.returned_to_sender")
    assert event["body"]["parcel_id"] == pid
    await cab.restart()
    assert (await cab.call("incidents"))["incidents"] == []
    again = await cab.refused("panel.pickup", {"panel": "kiosk-2", "code": code})
    assert again.code == "wrong_code"


async def test_incidents_list_hardware_and_rejected_dropoffs_staff_can_clear(cab: Cabinet) -> None:
    sent = await cab.call("panel.dropoff", {"panel": "kiosk-1", "dropoff": dropoff()})
    await while_open(cab, "panel.collect", {**courier(), "parcel_id": sent["parcel_id"]},
                     ("panel.collect_verdict", {"panel": "kiosk-1", "accept": False,
                                                "reason": "prohibited"}))
    faults, bus, board, _ = cab.hw(cab.comp_of("L")[0])
    faults.unplug(bus, board)
    assert cab.d.camera is not None
    cab.d.camera.source.set_mode("covered")  # type: ignore[attr-defined]
    await _until(lambda: {"board_offline", "camera_down"} <= {
        r["kind"] for r in cab.d.parcels.incidents()}, 20.0)
    listed = (await cab.call("incidents"))["incidents"]
    kinds = [r["kind"] for r in listed]
    assert kinds == ["dropoff_rejected", "board_offline", "camera_down"]
    assert all(r["age_s"] is not None and r["age_s"] >= 0 for r in listed)
    cleared = await cab.call("compartments.clear", {"compartment": sent["compartment"],
                                                    "reason": "returned at the counter",
                                                    "keep_blocked": True})
    assert cleared["state"] == "blocked"
    [event] = await cab.events("parcel.removed_by_staff")
    assert (event["body"]["kind"], event["body"]["from_status"]) == ("dropoff", "rejected")
    faults.unplug(bus, board, False)
    cab.d.camera.source.set_mode("normal")  # type: ignore[attr-defined]
    await cab.wait_camera()
    await _until(lambda: [r["kind"] for r in cab.d.parcels.incidents()] == ["compartment_blocked"],
                 20.0)
