"""Panel API v2 methods (`panel.v2.*`, `panel.subscribe`): the request models a screen sends.

Operations answer at once with an operation id and the compartment; their door progress is
pushed on the subscribed connection (lockerd/parcels/panel_ops.py). Declarations made at an open
door (refusal, Art. 26; collection verdict, Art. 20-21) name the operation, not a compartment
number. The v1 methods (lockerd/parcels/panel_api.py) stay as they are for `lockerctl panel`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from lockerd.api.server import ApiError, ApiServer, Caller, Role, current_pusher
from lockerd.domain import Dropoff, RefusalReason, RejectReason
from lockerd.domain.errors import refuse_unless_ok
from lockerd.parcels.identity import MAX_CARD_WAIT_S
from lockerd.parcels.panel_api import (
    CourierLoginParams,
    DeliverParams,
    PanelParams,
    ParcelParams,
    PickupParams,
    courier_auth,
)
from lockerd.parcels.panel_ops import API_VERSION, OpKind, PanelOps
from lockerd.parcels.service import OnBegin, ParcelService
from lockerd.privacy import mask_waybill

OP_PATTERN = r"^[0-9a-f]{16}$"
TERMS_PATTERN = r"^[A-Za-z0-9._-]{1,32}$"


#: How long a screen may ask the reader to wait for a card to be laid on it.
CARD_WAIT = Field(default=0.0, ge=0.0, le=MAX_CARD_WAIT_S,
                  description="seconds to wait for an ID card on the reader (0: look once)")


class PickupV2Params(PickupParams):
    """panel.v2.pickup: the code, the fee the recipient agreed to on the screen (Art. 25), and
    for an ID-checked parcel whose card is on the reader (`relation`) and how long to wait for it."""

    accept_fee_cents: int = Field(default=0, ge=0, le=10_000_000)
    card_wait_s: float = CARD_WAIT


class DropoffV2Params(PanelParams):
    """panel.v2.dropoff: the declarations, the version of the terms shown (Art. 11), and how
    long to wait for the sender's ID card on a cabinet with a reader (Art. 18)."""

    dropoff: Dropoff
    terms_version: str = Field(pattern=TERMS_PATTERN)
    card_wait_s: float = CARD_WAIT


class OpParams(PanelParams):
    """An operation started at this panel."""

    op: str = Field(pattern=OP_PATTERN)


class RefuseV2Params(OpParams):
    """panel.v2.refuse: declared while the pickup's door is open (Art. 26)."""

    reason: RefusalReason


class VerdictV2Params(OpParams):
    """panel.v2.verdict: declared while the collection's door is open (Art. 20-21)."""

    accept: bool
    reason: RejectReason | None = None


class SubscribeParams(PanelParams):
    """panel.subscribe: which panel's operation events to push on this connection."""

    model_config = ConfigDict(extra="forbid", frozen=True)


Handler = Callable[[Any, Caller], Awaitable[Any]]


def handlers(service: ParcelService, ops: PanelOps) -> dict[str, tuple[type[BaseModel], Handler]]:
    """Method name -> (params model, handler), all for the panel role."""

    async def subscribe(p: SubscribeParams, c: Caller) -> Any:
        pusher = current_pusher()
        if pusher is None:
            raise ApiError("bad_request", "subscriptions need a connection")
        return ops.subscribe(pusher, c.identity)

    async def info(p: PanelParams, c: Caller) -> Any:
        spec = service.cabinet.spec
        return {"version": API_VERSION, "name": spec.name, "address": spec.address,
                "intake": ops.intake(), "free": service.cabinet.free_counts(),
                # a reader: drop-offs and ID-checked pickups take the card, not a typed reference
                "id_reader": service.identity is not None and service.identity.has_reader,
                "carriers": sorted(spec.carriers),
                "storage_hours": round(spec.policy.storage_period.total_seconds() / 3600),
                "fee_cents_per_period": spec.policy.fee_cents_per_period,
                "fee_period_hours": round(spec.policy.fee_period.total_seconds() / 3600),
                "fee_cap_cents": spec.policy.fee_cap_cents,
                "refusal_reasons": [r.value for r in RefusalReason],
                "reject_reasons": [r.value for r in RejectReason]}

    async def login(p: CourierLoginParams, c: Caller) -> Any:
        auth = await courier_auth(service, p, "courier.login", c.identity)
        decision = await service.courier_login(auth, c.identity)
        refuse_unless_ok(decision)
        return _worklist(service, decision.result)

    async def pickup(p: PickupV2Params, c: Caller) -> Any:
        # Art. 25: the domain refuses `fee_due` with the amount until the screen sends it back
        accept = p.accept_fee_cents or None

        def run(on_begin: OnBegin) -> Awaitable[Any]:
            return service.pickup(c.identity, p.code, accept, on_begin=on_begin,
                                  relation=p.relation, card_wait_s=p.card_wait_s)
        return await ops.start(OpKind.PICKUP, c.identity, run)

    async def deliver(p: DeliverParams, c: Caller) -> Any:
        auth = await courier_auth(service, p, "deliver.begin", c.identity)

        def run(on_begin: OnBegin) -> Awaitable[Any]:
            return service.deliver(auth, c.identity, p.parcel, on_begin=on_begin)
        return await ops.start(OpKind.DELIVER, c.identity, run)

    async def dropoff(p: DropoffV2Params, c: Caller) -> Any:
        def run(on_begin: OnBegin) -> Awaitable[Any]:
            return service.dropoff(c.identity, p.dropoff, on_begin=on_begin,
                                   terms_version=p.terms_version, card_wait_s=p.card_wait_s)
        return await ops.start(OpKind.DROPOFF, c.identity, run)

    async def collect(p: ParcelParams, c: Caller) -> Any:
        auth = await courier_auth(service, p, "collect.begin", c.identity)

        def run(on_begin: OnBegin) -> Awaitable[Any]:
            return service.collect(auth, c.identity, p.parcel_id, on_begin=on_begin)
        return await ops.start(OpKind.COLLECT, c.identity, run)

    async def return_(p: ParcelParams, c: Caller) -> Any:
        auth = await courier_auth(service, p, "return.begin", c.identity)

        def run(on_begin: OnBegin) -> Awaitable[Any]:
            return service.return_parcel(auth, c.identity, p.parcel_id, on_begin=on_begin)
        return await ops.start(OpKind.RETURN, c.identity, run)

    async def refuse(p: RefuseV2Params, c: Caller) -> Any:
        op = ops.get(p.op, c.identity)
        if op.kind is not OpKind.PICKUP or op.compartment is None:
            raise ApiError("bad_state", "only an open pickup can be refused")
        service.refuse(c.identity, op.compartment, p.reason)
        return {"op": op.id, "declared": True, "reason": p.reason.value}

    async def verdict(p: VerdictV2Params, c: Caller) -> Any:
        op = ops.get(p.op, c.identity)
        if op.kind is not OpKind.COLLECT or op.compartment is None:
            raise ApiError("bad_state", "only an open collection takes a verdict")
        service.collect_verdict(c.identity, op.compartment, p.accept, p.reason)
        return {"op": op.id, "declared": True, "accept": p.accept}

    async def op_view(p: OpParams, c: Caller) -> Any:
        return ops.get(p.op, c.identity).view()

    return {
        "panel.subscribe": (SubscribeParams, subscribe),
        "panel.v2.info": (PanelParams, info),
        "panel.v2.login": (CourierLoginParams, login),
        "panel.v2.pickup": (PickupV2Params, pickup),
        "panel.v2.deliver": (DeliverParams, deliver),
        "panel.v2.dropoff": (DropoffV2Params, dropoff),
        "panel.v2.collect": (ParcelParams, collect),
        "panel.v2.return": (ParcelParams, return_),
        "panel.v2.refuse": (RefuseV2Params, refuse),
        "panel.v2.verdict": (VerdictV2Params, verdict),
        "panel.v2.op": (OpParams, op_view),
    }


def _worklist(service: ParcelService, login: dict[str, Any]) -> dict[str, Any]:
    """The courier's login with a worklist a screen may show: waybills masked, and for drop-offs
    the sender's declared contents, which the courier compares on the spot (Art. 20)."""
    parcels = service.cabinet.state.parcels

    def item(entry: dict[str, Any]) -> dict[str, Any]:
        parcel = parcels.get(entry["parcel_id"])
        out = {**entry, "waybill": mask_waybill(entry.get("waybill"))}
        if parcel is not None and parcel.declared_contents:
            out["declared_contents"] = parcel.declared_contents
        return out

    return {**login, "to_return": [item(e) for e in login.get("to_return", [])],
            "to_collect": [item(e) for e in login.get("to_collect", [])]}


def register(api: ApiServer, service: ParcelService, ops: PanelOps) -> None:
    """Route the v2 panel methods on the local API (role: panel)."""
    for method, (model, handler) in handlers(service, ops).items():
        api.route(method, {Role.PANEL}, model, handler)
