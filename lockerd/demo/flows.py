"""Demo scenes of the parcel flows: a scripted day at the cabinet, printed with personal data masked."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from lockerd.api.client import AsyncApiClient
from lockerd.demo.realname import demo_token
from lockerd.domain.timefmt import format_ts
from lockerd.privacy import mask_secret, mask_waybill
from lockerd.sim.idcard import VALID_CARD

if TYPE_CHECKING:
    from lockerd.app.daemon import Daemon
    from lockerd.demo.day import DemoContext

PIN_A = "482913"
PIN_B = "730164"
PIN_Y = "615208"
WAYBILLS = ("SF1402938475", "SF1402938476", "SF1402938477", "SF1402938478")


def _courier(cid: str = "c-101", pin: str = PIN_A, carrier: str = "sf",
             panel: str = "kiosk-1") -> dict[str, Any]:
    return {"panel": panel, "carrier": carrier, "courier_id": cid, "pin": pin}


def _delivery(waybill: str, size: str = "S") -> dict[str, Any]:
    return {"waybill": waybill, "size": size, "consent": True}


async def carrier_command(daemon: Daemon, carrier: str, type_: str, body: dict[str, Any]
                          ) -> dict[str, Any]:
    """A carrier command through the sync component's processor, as if it came over MQTT."""
    processor = daemon.sync.processor
    assert processor is not None
    msg = {"v": 1, "id": uuid.uuid4().hex[:16], "type": type_,
           "ts": format_ts(datetime.now(UTC)), "body": body}
    reply = await processor.handle(daemon.sync.topics.cmd(carrier), json.dumps(msg).encode())
    return reply or {}


async def pickup_code(daemon: Daemon, parcel_id: str) -> str:
    """The code the carrier received in parcel.deposited (it texts it to the recipient)."""
    for row in reversed(await daemon.oplog.store.outbox_pending(limit=10_000)):
        payload = json.loads(row.payload_bytes)
        if payload.get("type") == "parcel.deposited" and payload["body"]["parcel_id"] == parcel_id:
            return str(payload["body"]["pickup_code"])
    raise LookupError(parcel_id)


def _doors(daemon: Daemon, compartments: list[int]) -> list[tuple[Any, str, int, int]]:
    sim = daemon.doors.board_set.sim if daemon.doors.board_set else None
    assert sim is not None, "the demo runs on the simulator"
    out = []
    for cid in compartments:
        comp = daemon.cfg.compartment(cid)
        assert comp is not None
        bus = next(b.bus for b in daemon.cfg.hardware.boards if b.address == comp.board)
        out.append((sim.faults, bus, comp.board, comp.channel))
    return out


async def while_door_open(daemon: Daemon, call: Callable[[str, dict[str, Any]], Coroutine[Any, Any, Any]],
                          method: str, params: dict[str, Any], declare: tuple[str, dict[str, Any]]
                          ) -> Any:
    """Run a door flow and, while its door is open, declare something on a second connection."""
    held = _doors(daemon, [c.id for c in daemon.cfg.compartments])
    for faults, bus, board, ch in held:
        faults.hold_open(bus, board, ch)
    task = asyncio.create_task(call(method, params))
    cabinet = daemon.parcels.cabinet
    deadline = time.monotonic() + 20
    try:
        while not any(c.state.value == "opening" for c in cabinet.state.compartments.values()):
            if task.done() or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        opening = [c.id for c in cabinet.state.compartments.values() if c.state.value == "opening"]
        if opening:
            async with AsyncApiClient(daemon.cfg.paths.socket) as second:
                await second.call(declare[0], {**declare[1], "compartment": opening[0]})
            await asyncio.sleep(0.3)
    finally:
        for faults, bus, board, ch in held:
            faults.hold_open(bus, board, ch, held=False)
    return await task


async def scene_couriers(ctx: DemoContext) -> None:
    """Carriers grant their couriers over MQTT (Art. 16)."""
    expires = format_ts(datetime.now(UTC) + timedelta(days=30))
    for carrier, cid, pin in (("sf", "c-101", PIN_A), ("sf", "c-102", PIN_B), ("yto", "y-7", PIN_Y)):
        reply = await carrier_command(ctx.daemon, carrier, "courier.grant",
                                      {"courier_id": cid, "pin": pin, "expires": expires})
        ctx.timeline.say("carrier", f"{carrier} grants courier {cid} (PIN {mask_secret(pin)}): "
                                    f"{'ok' if reply.get('ok') else reply.get('error')}")


async def scene_deliveries(ctx: DemoContext) -> None:
    """Two deliveries with their Art. 24 notices; one pickup with the code."""
    for waybill in WAYBILLS[:2]:
        res = await ctx.call("panel.deliver", {**_courier(), "parcel": _delivery(waybill)})
        if "refused" in res:
            ctx.timeline.say("courier", f"delivery {mask_waybill(waybill)} refused: {res['refused']}")
            continue
        ctx.extras.setdefault("parcels", []).append(res["parcel_id"])
        note = res["notice"]
        code = await pickup_code(ctx.daemon, res["parcel_id"])
        ctx.extras.setdefault("codes", []).append(code)
        ctx.timeline.say("courier", f"c-101 delivers {mask_waybill(waybill)} into compartment "
                                    f"{res['compartment']} ({note['compartment_size']}): in_locker")
        ctx.timeline.say("notice", f"to recipient: {note['locker_name']}, pick up by "
                                   f"{note['storage_deadline']}, code {mask_secret(code)}")
    if ctx.extras.get("codes"):
        res = await ctx.call("panel.pickup", {"panel": "kiosk-1", "code": ctx.extras["codes"][0]})
        ctx.timeline.say("recipient", f"picks up with the code: {res.get('status', res)} "
                                      f"(fee {res.get('fee_cents', '-')} cents)")


async def scene_wrong_codes(ctx: DemoContext) -> None:
    """Someone tries codes at the kiosk: five wrong ones, then the panel locks for a minute."""
    for attempt in range(6):
        res = await ctx.call("panel.pickup", {"panel": "kiosk-2", "code": f"{attempt:06d}"})
        ctx.timeline.say("kiosk-2", f"wrong code #{attempt + 1}: {res.get('refused')}")
    # the lockout is per caller (the demo's one uid): let its minute pass before the next scene
    advance = getattr(ctx.daemon.parcels.clock, "advance", None)
    if advance is not None:
        advance(timedelta(minutes=1, seconds=1))
        ctx.timeline.say("kiosk-2", "a minute later the lockout is over")


async def scene_refusal(ctx: DemoContext) -> None:
    """Art. 26: the recipient opens, refuses (damaged) and puts it back; the courier takes it."""
    codes = ctx.extras.get("codes", [])
    if len(codes) < 2:
        return
    res = await while_door_open(ctx.daemon, ctx.call, "panel.pickup",
                                {"panel": "kiosk-1", "code": codes[1]},
                                ("panel.refuse", {"panel": "kiosk-1", "reason": "damaged"}))
    ctx.timeline.say("recipient", f"opens, refuses (damaged), closes: {res.get('status', res)}")
    pid = ctx.extras["parcels"][1]
    res = await ctx.call("panel.return", {**_courier(), "parcel_id": pid})
    ctx.timeline.say("courier", f"c-101 takes the refused parcel back: {res.get('status', res)}")


async def scene_revoked(ctx: DemoContext) -> None:
    """sf revokes c-102; its next login is refused at once."""
    reply = await carrier_command(ctx.daemon, "sf", "courier.revoke", {"courier_id": "c-102"})
    ctx.timeline.say("carrier", f"sf revokes c-102: {'ok' if reply.get('ok') else reply}")
    res = await ctx.call("courier.login", _courier("c-102", PIN_B))
    ctx.timeline.say("courier", f"c-102 tries to log in: {res.get('refused', 'accepted?!')}")


async def scene_dropoff(ctx: DemoContext) -> None:
    """A covered camera closes intake; after it recovers the drop-off is accepted, then rejected
    by the courier at collection (Art. 18-21)."""
    cam = ctx.daemon.camera
    if cam is None:
        return
    req = {"panel": "kiosk-1", "dropoff": {
        "carrier": "sf", "size": "S", "verification_ref": demo_token("sf"),
        "declared_contents": "ceramic vase", "ack_insured_value": True,
        "ack_prohibited_items": True}}
    readers = ctx.daemon.parcels.id_readers
    if readers is not None and readers.sim is not None:
        # the sender lays their ID card on the reader (Art. 18); a reader-less cabinet takes
        # the signed token instead
        readers.sim.present(VALID_CARD)
    cam.source.set_mode("covered")  # type: ignore[attr-defined]
    ctx.timeline.say("sim", "someone covers the camera")
    await _until(cam.is_open, want=False)
    res = await ctx.call("panel.dropoff", req)
    ctx.timeline.say("sender", f"drop-off refused: {res.get('refused')} ({cam.reason()})")
    cam.source.set_mode("normal")  # type: ignore[attr-defined]
    await _until(cam.is_open, want=True)
    ctx.timeline.say("camera", "camera sees again; intake open")
    res = await ctx.call("panel.dropoff", req)
    ctx.timeline.say("sender", f"drop-off into compartment {res.get('compartment')}: "
                               f"{res.get('status', res)}")
    if "parcel_id" not in res:
        return
    res = await while_door_open(ctx.daemon, ctx.call, "panel.collect",
                                {**_courier(), "parcel_id": res["parcel_id"]},
                                ("panel.collect_verdict", {"panel": "kiosk-1", "accept": False,
                                                           "reason": "mismatch"}))
    ctx.timeline.say("courier", f"c-101 compares and rejects it: {res.get('status', res)} "
                                "(item back in, operator notified)")


async def scene_overdue(ctx: DemoContext) -> None:
    """A parcel stays past its storage period: overdue, the courier returns it."""
    res = await ctx.call("panel.deliver", {**_courier(), "parcel": _delivery(WAYBILLS[2])})
    if "parcel_id" not in res:
        return
    clock = ctx.daemon.parcels.clock
    period = ctx.daemon.cfg.storage.period_hours
    if hasattr(clock, "advance"):
        clock.advance(timedelta(hours=period + 1))
    ctx.timeline.say("clock", f"{period + 1} hours pass (demo clock)")
    swept = await ctx.daemon.parcels.service.sweep_overdue()
    ctx.timeline.say("cabinet", f"overdue: {swept.result['overdue'] if swept else []}")
    res = await ctx.call("panel.return", {**_courier(), "parcel_id": res["parcel_id"]})
    ctx.timeline.say("courier", f"c-101 returns the overdue parcel: {res.get('status', res)}")


async def scene_door_never_closes(ctx: DemoContext) -> None:
    """The courier walks away with the door open: the deposit is rolled back, compartment blocked."""
    svc = ctx.daemon.parcels.service
    before = svc.close_timeout_s
    svc.close_timeout_s = 3.0
    held = _doors(ctx.daemon, [c.id for c in ctx.daemon.cfg.compartments])
    for faults, bus, board, ch in held:
        faults.hold_open(bus, board, ch)
    try:
        res = await ctx.call("panel.deliver", {**_courier(), "parcel": _delivery(WAYBILLS[3])})
    finally:
        for faults, bus, board, ch in held:
            faults.hold_open(bus, board, ch, held=False)
        svc.close_timeout_s = before
    ctx.timeline.say("courier", f"door left open: {res.get('status', res)}, blocked "
                                f"{ctx.daemon.parcels.cabinet.blocked()}")


async def scene_technician(ctx: DemoContext) -> None:
    """A technician comes by: `incidents` lists what needs a person (the compartment the courier
    left open is blocked), the latch is checked and the compartment unblocked, back in service."""
    rows: list[dict[str, Any]] = (await ctx.call("incidents"))["incidents"]
    for row in rows:
        where = (f"compartment {row['compartment']}" if row.get("compartment") is not None
                 else f"board {row['board']}" if row.get("board") is not None else "cabinet")
        ctx.timeline.say("tech", f"incident {row['kind']} at {where}, "
                                 f"{row.get('age_s', 0) / 3600:.1f} h old (demo clock): "
                                 f"{row.get('detail') or row.get('reason') or '-'}")
    for compartment in sorted(ctx.daemon.parcels.cabinet.blocked()):
        res = await ctx.call("compartments.unblock", {"compartment": compartment,
                                                      "reason": "latch checked, door closes"})
        ctx.timeline.say("tech", f"compartment {compartment} unblocked: {res.get('status', res)}")
    for row in rows:
        if row["kind"] == "dropoff_rejected":
            res = await ctx.call("compartments.clear", {
                "compartment": row["compartment"],
                "reason": "rejected item handed back to its sender at the desk"})
            ctx.timeline.say("tech", f"compartment {row['compartment']} cleared: "
                                     f"{res.get('status', res)}")
    left = (await ctx.call("incidents"))["incidents"]
    ctx.timeline.say("tech", f"{len(rows)} incident(s) found, {len(left)} left")


async def _until(pred: Callable[[], bool], *, want: bool, limit_s: float = 20.0) -> None:
    deadline = time.monotonic() + limit_s
    while pred() != want and time.monotonic() < deadline:  # noqa: ASYNC110 -- polling the camera gate, which has no event
        await asyncio.sleep(0.1)


SCENES = [scene_couriers, scene_deliveries, scene_wrong_codes, scene_refusal, scene_revoked,
          scene_dropoff, scene_overdue, scene_door_never_closes, scene_technician]
