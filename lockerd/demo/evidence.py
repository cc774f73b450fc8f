"""Demo scenes of what others can check: an offline courier pass used and then revoked, and the
signed regulator report the operator's platform asks for over MQTT (sf stands in for it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from lockerd.demo import flows
from lockerd.domain.timefmt import format_ts
from lockerd.testing.passes import demo_key, issue

if TYPE_CHECKING:
    from lockerd.demo.day import DemoContext

PASS_ID = "demo-pass-0001"  # noqa: S105 - an id, not a secret


async def scene_offline_pass(ctx: DemoContext) -> None:
    """sf issues courier c-301 a pass in its back office; the cabinet checks it with no network,
    then refuses it once sf's revocation arrives. Times follow the cabinet's clock, which the
    demo has moved days ahead by now (the overdue scene)."""
    now = ctx.daemon.parcels.clock()
    expires = now + timedelta(hours=8)
    token = issue(demo_key("sf"), carrier="sf", courier_id="c-301",
                  not_before=now - timedelta(minutes=1), expires=expires,
                  cabinets=[ctx.daemon.cfg.cabinet.id], pass_id=PASS_ID)
    res = await ctx.call("courier.login", {"panel": "kiosk-1", "pass": token})
    ctx.timeline.say("courier", f"c-301 shows an offline pass ({len(token)} characters): "
                                f"{'logged in' if 'courier_id' in res else res}")
    reply = await flows.carrier_command(ctx.daemon, "sf", "courier.revoke_pass", {
        "passes": [{"pass_id": PASS_ID, "expires": format_ts(expires)}]})
    ctx.timeline.say("carrier", f"sf revokes pass {PASS_ID}: {'ok' if reply.get('ok') else reply}")
    res = await ctx.call("courier.login", {"panel": "kiosk-1", "pass": token})
    ctx.timeline.say("courier", f"c-301 shows it again: {res.get('refused', 'accepted?!')}")


async def scene_report(ctx: DemoContext) -> None:
    """The platform asks for today's regulator report (Art. 28), signed with the device key."""
    now = datetime.now(UTC)
    reply = await flows.carrier_command(ctx.daemon, "sf", "report.request", {
        "from": format_ts(now - timedelta(days=1)), "to": format_ts(now + timedelta(minutes=1))})
    if not reply.get("ok"):
        ctx.timeline.say("carrier", f"report refused: {reply.get('error')}")
        return
    doc = reply["result"]["document"]
    totals = doc["report"]["totals"]
    ctx.timeline.say("carrier", f"platform receives the signed report: {totals['deliveries']} "
                                f"deliveries, {totals['pickups']} pickups, signed by key "
                                f"{doc['signature']['key_fingerprint']}")
