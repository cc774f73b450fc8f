"""Every parcel flow and refusal through the real API socket, with exact error codes."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

from tests.fixtures.cabinet import (
    CARRIER,
    OTHER,
    PIN,
    PIN2,
    Cabinet,
    courier,
    delivery,
    dropoff,
    while_open,
)


async def test_delivery_refusals_have_exact_codes(cab: Cabinet) -> None:
    deliver = "panel.deliver"
    cases: list[tuple[dict[str, Any], dict[str, Any], str]] = [
        (courier(pin=PIN2), delivery(), "bad_pin"),
        (courier(cid="nobody"), delivery(), "bad_pin"),
        (courier(carrier="dhl"), delivery(), "unknown_carrier"),
        (courier(), {**delivery(), "consent": False}, "no_consent"),
        (courier(), delivery(damaged=True), "damaged"),
        (courier(), delivery(declared_weight_g=1000, measured_weight_g=3000), "weight_mismatch"),
        (courier(), delivery(fresh=True), "fresh"),
        (courier(), delivery(valuable=True), "valuable"),
    ]
    for who, parcel, code in cases:
        err = await cab.refused(deliver, {**who, "parcel": parcel})
        assert err.code == code, (parcel, err.code, err.message)
    # agreement flag lets fresh produce in (Art. 23)
    ok = await cab.call(deliver, {**courier(panel="kiosk-2"),
                                  "parcel": delivery("SF2222222222", fresh=True, agreement=True)})
    assert ok["status"] == "deliver.confirm"
    dup = await cab.refused(deliver, {**courier(panel="kiosk-2"), "parcel": delivery("SF2222222222")})
    assert dup.code == "bad_state"
    # blocked by a technician: the domain skips them; none left of size L
    for cid in cab.comp_of("L"):
        await cab.call("compartments.block", {"compartment": cid, "reason": "maintenance"})
    full = await cab.refused(deliver, {**courier(panel="kiosk-2"), "parcel": delivery("SF3333", "L")})
    assert full.code == "no_free_compartment"
    assert set(cab.comp_of("L")) <= set(cab.d.parcels.blocked())
    # every refusal is recorded, with its code and without the waybill
    refused = [o for o in await cab.ops("deliver.begin") if not o.body["ok"]]
    assert sorted(o.body["error"] for o in refused) == sorted(
        [c for _, _, c in cases] + ["bad_state", "no_free_compartment"])
    assert all("waybill" not in o.body for o in refused)
    # revoked and expired couriers are refused at once
    reply = await cab.command(CARRIER, "courier.revoke", {"courier_id": "c-101"})
    assert reply["ok"]
    err = await cab.refused("courier.login", courier(panel="kiosk-3"))
    assert err.code == "courier_revoked"
    await cab.grant(CARRIER, "c-102", PIN, days=1)
    cab.d.parcels.clock.advance(timedelta(days=2))  # type: ignore[attr-defined]
    err = await cab.refused("courier.login", courier(panel="kiosk-3", cid="c-102"))
    assert err.code == "courier_expired"


async def test_wrong_codes_lock_the_panel(cab: Cabinet) -> None:
    for i in range(4):
        err = await cab.refused("panel.pickup", {"panel": "kiosk-9", "code": f"00000{i}"})
        assert err.code == "wrong_code"
    err = await cab.refused("panel.pickup", {"panel": "kiosk-9", "code": "000009"})
    assert err.code == "wrong_code"
    err = await cab.refused("panel.pickup", {"panel": "kiosk-9", "code": "000010"})
    assert err.code == "locked_out"
    # claiming another panel changes nothing (the caller is who the kernel says); other callers
    # are not locked (tests/api/test_brute_force.py); the lockout survives a restart
    err = await cab.refused("panel.pickup", {"panel": "kiosk-8", "code": "000011"})
    assert err.code == "locked_out"
    await cab.restart()
    err = await cab.refused("panel.pickup", {"panel": "kiosk-9", "code": "000012"})
    assert err.code == "locked_out"
    ops = await cab.ops("pickup.begin")
    assert [o.body["error"] for o in ops].count("wrong_code") == 5
    assert {o.body["panel"] for o in ops} == {"uid:0"}
    assert all("code" not in o.body for o in ops)


async def test_refusal_on_the_spot_then_return(cab: Cabinet) -> None:
    res = await cab.call("panel.deliver", {**courier(), "parcel": delivery()})
    pid = res["parcel_id"]
    code = await cab.code_of(pid)
    bad = await cab.refused("panel.refuse", {"panel": "kiosk-1", "compartment": res["compartment"],
                                             "reason": "damaged"})
    assert bad.code == "bad_state"  # no door open at this panel
    done = await while_open(cab, "panel.pickup", {"panel": "kiosk-1", "code": code},
                             ("panel.refuse", {"panel": "kiosk-1", "reason": "damaged"}))
    assert done["status"] == "refuse.confirm"
    assert done["reason"] == "damaged"
    assert (await cab.refused("panel.pickup", {"panel": "kiosk-1", "code": code})).code == "wrong_code"
    login = await cab.call("courier.login", courier())
    assert [p["parcel_id"] for p in login["to_return"]] == [pid]
    await cab.grant(OTHER, "y-1", PIN)
    other = await cab.refused("panel.return", {**courier(carrier=OTHER, cid="y-1"), "parcel_id": pid})
    assert other.code == "not_your_parcel"
    unknown = await cab.refused("panel.return", {**courier(), "parcel_id": "p-0000000000000000"})
    assert unknown.code == "unknown_parcel"
    back = await cab.call("panel.return", {**courier(), "parcel_id": pid})
    assert back["status"] == "returned"
    types = [e["type"] for e in await cab.events() if e["body"].get("parcel_id") == pid]
    assert types == ["parcel.deposited", "parcel.refused", "parcel.returned"]
    # the finished parcel left the live state; its record stays for retention
    assert pid not in cab.d.parcels.cabinet.state.parcels or \
        cab.d.parcels.cabinet.state.parcels[pid].status.value == "returned"
    live = await cab.store.read(lambda c: c.execute(
        "SELECT count(*) FROM live_state WHERE entity='parcel' AND key=?", (pid,)).fetchone()[0])
    assert live == 0
    closed = await cab.store.read(lambda c: c.execute(
        "SELECT status, closed_at IS NOT NULL FROM parcels WHERE id=?", (pid,)).fetchone())
    assert tuple(closed) == ("returned", 1)


async def test_dropoff_camera_gate_and_collection(cab: Cabinet) -> None:
    cases = [(dropoff(verification_ref=""), "no_verification"),
             (dropoff(verification_ref="110101199003071234"), "id_number_not_allowed"),
             (dropoff(declared_contents=""), "no_contents"),
             (dropoff(ack_prohibited_items=False), "not_acknowledged"),
             (dropoff(carrier="dhl"), "unknown_carrier")]
    for req, code in cases:
        err = await cab.refused("panel.dropoff", {"panel": "kiosk-1", "dropoff": req})
        assert err.code == code
    assert cab.d.camera is not None
    cab.d.camera.source.set_mode("covered")  # type: ignore[attr-defined]
    deadline = time.monotonic() + 20
    while cab.d.camera.is_open():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    err = await cab.refused("panel.dropoff", {"panel": "kiosk-1", "dropoff": dropoff()})
    assert err.code == "intake_closed"
    assert err.reply["error"]["message"].endswith(f"({cab.d.camera.reason()})")
    cab.d.camera.source.set_mode("normal")  # type: ignore[attr-defined]
    await cab.wait_camera()
    first = await cab.call("panel.dropoff", {"panel": "kiosk-1", "dropoff": dropoff()})
    second = await cab.call("panel.dropoff", {"panel": "kiosk-1", "dropoff": dropoff(size="M")})
    assert first["status"] == second["status"] == "dropoff.confirm"
    # the confirm record holds camera state and evidence hashes at door open and close
    confirm = (await cab.ops("dropoff.confirm"))[0]
    ev = confirm.body["evidence"]
    assert len(ev["door_open"]["snapshot"]["sha256"]) == 64
    assert len(ev["door_close"]["snapshot"]["sha256"]) == 64
    assert ev["door_open"]["camera"]["intake_open"] is True
    login = await cab.call("courier.login", courier())
    assert {p["parcel_id"] for p in login["to_collect"]} == {first["parcel_id"], second["parcel_id"]}
    rejected = await while_open(cab, "panel.collect", {**courier(), "parcel_id": first["parcel_id"]},
                                 ("panel.collect_verdict", {"panel": "kiosk-1", "accept": False,
                                                            "reason": "prohibited"}))
    assert rejected["status"] == "rejected"
    assert rejected["reason"] == "prohibited"
    accepted = await cab.call("panel.collect", {**courier(), "parcel_id": second["parcel_id"]})
    assert accepted["status"] == "collected"
    types = sorted(e["type"] for e in await cab.events() if e["type"].startswith("dropoff."))
    assert types == ["dropoff.collected", "dropoff.received", "dropoff.received", "dropoff.rejected"]
    state = cab.d.parcels.cabinet.state.parcels
    assert state[first["parcel_id"]].status.value == "rejected"


async def test_door_faults_roll_back(cab: Cabinet) -> None:
    cid_list = cab.comp_of("S")
    for cid in cid_list:
        faults, bus, board, ch = cab.hw(cid)
        faults.hold_open(bus, board, ch)
    err = await cab.refused("panel.deliver", {**courier(), "parcel": delivery()})
    # the door operation did not happen: never reported as a success
    assert err.code == "rolled_back"
    assert err.reply["result"]["status"] == "rolled_back"
    assert err.reply["result"]["blocked"] is True
    for cid in cid_list:
        faults, bus, board, ch = cab.hw(cid)
        faults.hold_open(bus, board, ch, held=False)
    assert not await cab.events("parcel.deposited")
    rb = (await cab.ops("deposit.rollback"))[0]
    assert rb.body["failure"] == "not_closed"
    assert rb.body["blocked"] is True
    blocked = cab.d.parcels.cabinet.blocked()
    assert blocked == [err.reply["result"]["compartment"]]
    assert cab.d.parcels.cabinet.blocks()[blocked[0]].blocked_reason == "door_left_open"


async def test_storage_full_alert_raised_and_cleared(cab: Cabinet) -> None:
    from lockerd.app.events import Alert, AlertKind

    sub = cab.d.events.subscribe(Alert)
    every = [c.id for c in cab.cfg.compartments]
    for cid in every:
        await cab.call("compartments.block", {"compartment": cid, "reason": "maintenance"})
    await cab.call("compartments.unblock", {"compartment": every[0], "reason": "repaired"})
    seen = []
    while not sub.queue.empty():
        alert = sub.queue.get_nowait()
        if alert.kind == AlertKind.STORAGE_FULL:
            seen.append(alert.active)
    assert seen == [True, False]
    # Alerts are recorded and queued for the carriers (by the sync component, on its own task).
    deadline = time.monotonic() + 10
    while "storage_full" not in [o.body.get("kind") for o in await cab.ops()
                                 if o.kind.startswith("alert")]:
        assert time.monotonic() < deadline, "storage_full alert never recorded"
        await asyncio.sleep(0.1)
