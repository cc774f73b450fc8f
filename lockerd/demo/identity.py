"""Demo scenes at the ID-card reader: a government document handed over against the recipient's
card, a wrong person refused, a proxy with the relation stated (特投 spec), each with its receipt.

The demo cabinet's reader is simulated; the scenes lay the simulator's fictional cards on it.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from lockerd.demo import flows as demo_flows
from lockerd.demo.flows import PIN_A, pickup_code
from lockerd.drivers.idcard_frames import CardText
from lockerd.parcels.identity import id_hash
from lockerd.sim.idcard import LONG_TERM_CARD, VALID_CARD
from lockerd.sync.signing import load_hmac_key

if TYPE_CHECKING:
    from lockerd.app.daemon import Daemon
    from lockerd.demo.day import DemoContext


def present(daemon: Daemon, card: CardText | None) -> bool:
    """Lay `card` on the simulated reader (None: take it away); False without one."""
    readers = daemon.parcels.id_readers
    if readers is None or readers.sim is None:
        return False
    if card is None:
        readers.sim.remove()
    else:
        readers.sim.present(card)
    return True


def recipient_hash(daemon: Daemon, carrier: str, id_number: str) -> str | None:
    """What the carrier sends as `recipient_id_hash` (its shared key; docs/idcard.md)."""
    spec = next((c for c in daemon.cfg.carriers if c.id == carrier), None)
    if spec is None or spec.id_hash_key_file is None:
        return None
    return id_hash(load_hmac_key(spec.id_hash_key_file), id_number)


async def _code(ctx: DemoContext, parcel_id: str, limit_s: float = 10.0) -> str:
    """The pickup code from parcel.deposited: still in the outbox, or as the carrier got it."""
    deadline = time.monotonic() + limit_s
    while True:
        try:
            return await pickup_code(ctx.daemon, parcel_id)
        except LookupError:
            for client in ctx.carriers.values():
                for msg in client.all:
                    body = msg.payload.get("body")
                    if msg.payload.get("type") == "parcel.deposited" and isinstance(body, dict) \
                            and body.get("parcel_id") == parcel_id:
                        return str(body["pickup_code"])
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


async def _announce_and_deliver(ctx: DemoContext, waybill: str) -> dict[str, Any] | None:
    digest = recipient_hash(ctx.daemon, "sf", VALID_CARD.id_number)
    if digest is None:
        return None
    # through the module, so a test that records commands sees these too
    reply = await demo_flows.carrier_command(ctx.daemon, "sf", "parcel.expect", {
        "waybill": waybill, "size": "S", "consent": True, "handover": "id_check",
        "recipient_id_hash": digest})
    if not reply.get("ok") or not reply["result"]["deliverable"]:
        ctx.timeline.say("carrier", f"sf announces an ID-checked document: {reply}")
        return None
    res = await ctx.call("panel.deliver", {"panel": "kiosk-1", "carrier": "sf",
                                           "courier_id": "c-101", "pin": PIN_A,
                                           "parcel": {"waybill": waybill, "size": "S"}})
    if "parcel_id" not in res:
        ctx.timeline.say("courier", f"delivery refused: {res}")
        return None
    ctx.timeline.say("courier", f"c-101 delivers a government document (id_check) into "
                                f"compartment {res['compartment']}")
    return dict(res)


async def scene_id_handover(ctx: DemoContext) -> None:
    """Two ID-checked documents: a stranger's card is refused, the recipient's opens; a proxy
    (family) collects the second with their own card. Each handover sends parcel.receipt."""
    if not present(ctx.daemon, None):
        return
    first = await _announce_and_deliver(ctx, "SF8000000001")
    second = await _announce_and_deliver(ctx, "SF8000000002")
    if first is None or second is None:
        return
    code = await _code(ctx, first["parcel_id"])
    res = await ctx.call("panel.pickup", {"panel": "kiosk-1", "code": code})
    ctx.timeline.say("recipient", f"code without a card: {res.get('refused', res)}")
    present(ctx.daemon, LONG_TERM_CARD)
    res = await ctx.call("panel.pickup", {"panel": "kiosk-1", "code": code})
    ctx.timeline.say("stranger", f"someone else's card as the recipient: {res.get('refused', res)}")
    present(ctx.daemon, VALID_CARD)
    res = await ctx.call("panel.pickup", {"panel": "kiosk-1", "code": code})
    ctx.timeline.say("recipient", f"the recipient's card: {res.get('status', res)}")
    present(ctx.daemon, LONG_TERM_CARD)
    code = await _code(ctx, second["parcel_id"])
    res = await ctx.call("panel.pickup", {"panel": "kiosk-1", "code": code, "relation": "family"})
    ctx.timeline.say("proxy", f"a family member with their own card: {res.get('status', res)}")
    present(ctx.daemon, None)
