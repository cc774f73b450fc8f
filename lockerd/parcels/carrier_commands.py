"""Carrier commands over the parcel use cases: courier.* (with revoke_pass), parcel.expect/recall/
notice/extend.

The sync layer has already checked the envelope (carrier, signature, remembered id, body schema);
these handlers turn the body into a use case whose change commits together with the reply
(`ctx.commit`). A refused decision raises Refused, which the command processor records and
answers as `ok:false` with the same code (lockerd/sync/commands.py).
"""

from __future__ import annotations

from typing import Any

from lockerd.config import Size
from lockerd.domain import Decision, Expect
from lockerd.domain.errors import refuse_unless_ok
from lockerd.domain.identity import Handover
from lockerd.parcels.service import ParcelService
from lockerd.sync.commands import CommandContext, CommandRegistry, Handler
from lockerd.sync.payloads import (
    CourierGrantBody,
    CourierRevokeBody,
    CourierRevokePassBody,
    ParcelExpectBody,
    ParcelExtendBody,
    ParcelNoticeBody,
    ParcelRecallBody,
)


def _result(decision: Decision) -> Any:
    """The reply's `result` of an accepted decision; a refused one raises Refused."""
    refuse_unless_ok(decision)
    return decision.result


def handlers(service: ParcelService) -> dict[str, Handler]:
    """Command type -> handler (bodies arrive validated against payloads.COMMAND_BODIES)."""

    async def grant(ctx: CommandContext, body: CourierGrantBody) -> Any:
        return _result(await service.grant_courier(ctx.carrier, body.courier_id, body.expires,
                                                   ctx.commit, pin=body.pin,
                                                   pin_hash=body.pin_hash))

    async def revoke(ctx: CommandContext, body: CourierRevokeBody) -> Any:
        return _result(await service.revoke_courier(ctx.carrier, body.courier_id, ctx.commit))

    async def revoke_pass(ctx: CommandContext, body: CourierRevokePassBody) -> Any:
        entries = [(e.pass_id, e.expires) for e in body.passes]
        return _result(await service.revoke_passes(ctx.carrier, entries, ctx.commit))

    async def expect(ctx: CommandContext, body: ParcelExpectBody) -> Any:
        flags = set(body.flags)
        req = Expect(waybill=body.waybill, size=Size(body.size), consent=body.consent,
                     sender_chose_locker=body.sender_chose_locker, agreement=body.agreement,
                     declared_weight_g=body.declared_weight_g, damaged="damaged" in flags,
                     weight_mismatch="weight_mismatch" in flags, fresh="fresh" in flags,
                     valuable="valuable" in flags, handover=Handover(body.handover),
                     recipient_id_hash=body.recipient_id_hash)
        return _result(await service.expect_parcel(ctx.carrier, req, ctx.commit))

    async def recall(ctx: CommandContext, body: ParcelRecallBody) -> Any:
        return _result(await service.recall_parcel(ctx.carrier, body.waybill, ctx.commit))

    async def notice(ctx: CommandContext, body: ParcelNoticeBody) -> Any:
        return _result(await service.notice_parcel(ctx.carrier, body.waybill, ctx.commit))

    async def extend(ctx: CommandContext, body: ParcelExtendBody) -> Any:
        return _result(await service.extend_parcel(ctx.carrier, body.waybill, body.hours,
                                                   ctx.commit))

    return {"courier.grant": grant, "courier.revoke": revoke, "courier.revoke_pass": revoke_pass,
            "parcel.expect": expect,
            "parcel.recall": recall, "parcel.notice": notice, "parcel.extend": extend}


def register(registry: CommandRegistry, service: ParcelService) -> None:
    """Register every carrier command that changes the cabinet."""
    for type_, handler in handlers(service).items():
        registry.register(type_, handler)
