"""Local-API methods for kiosks (`lockerctl panel ...`): strict request models over the parcel use cases."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from lockerd.api.server import ApiServer, Caller, Role
from lockerd.domain import CourierAuth, Decision, Delivery, Dropoff, RefusalReason, RejectReason
from lockerd.domain.errors import ErrorCode, Refused, refuse_unless_ok
from lockerd.domain.identity import Relation
from lockerd.domain.ids import CARRIER_PATTERN, COURIER_PATTERN, PANEL_PATTERN, PARCEL_ID_PATTERN
from lockerd.parcels import passes
from lockerd.parcels.service import ParcelService

CODE_PATTERN = r"^[0-9]{6,8}$"


class PanelParams(BaseModel):
    """What every panel call shares. Which panel is calling comes from the kernel (`Caller.identity`:
    the panel configured for the caller's uid, else `uid:<n>`); a `panel` a client still sends is
    checked for shape and otherwise ignored, so inventing names evades no limit."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    panel: str | None = Field(default=None, pattern=PANEL_PATTERN,
                              description="Ignored (kept so older kiosks still parse).")


class CourierParams(PanelParams):
    """Courier credentials, checked again on every call (a revocation applies at once): carrier,
    courier id and PIN, or an offline pass (docs/passes.md; `carrier`, when given too, must be
    the pass's)."""

    carrier: str | None = Field(default=None, pattern=CARRIER_PATTERN)
    courier_id: str | None = Field(default=None, pattern=COURIER_PATTERN)
    pin: str | None = Field(default=None, min_length=1, max_length=32, repr=False)
    pass_token: str | None = Field(default=None, alias="pass", min_length=1,
                                   max_length=passes.MAX_TOKEN, repr=False)

    @model_validator(mode="after")
    def _credentials(self) -> CourierParams:
        if self.pass_token is None and (self.carrier is None or self.courier_id is None
                                        or self.pin is None):
            raise ValueError("give carrier, courier_id and pin, or a pass")
        if self.pass_token is not None and self.pin is not None:
            raise ValueError("give a PIN or a pass, not both")
        return self


async def courier_auth(service: ParcelService, p: CourierParams, kind: str, panel: str
                       ) -> CourierAuth:
    """The domain's credential value; a pass is verified here, at the edge (its refusal is
    recorded and raised as Refused with its own code)."""
    if p.pass_token is None:
        assert p.carrier is not None
        assert p.courier_id is not None
        return CourierAuth(carrier=p.carrier, courier_id=p.courier_id, pin=p.pin)
    try:
        if service.passes is None:
            raise passes.PassRefused(ErrorCode.PASS_WRONG_CARRIER, "no carrier issues passes here")
        claim = service.passes.check(p.pass_token)
        if p.carrier is not None and p.carrier != claim.carrier:
            raise passes.PassRefused(ErrorCode.PASS_WRONG_CARRIER,
                                     "the pass is another carrier's", pass_id=claim.pass_id,
                                     carrier=claim.carrier)
    except passes.PassRefused as exc:
        await service.pass_refused(kind, exc.code, panel, exc.pass_id, exc.carrier)
        raise Refused(exc.code, exc.message) from None
    return CourierAuth(carrier=claim.carrier, courier_id=claim.courier_id, pass_claim=claim)


class CourierLoginParams(CourierParams):
    """panel.courier_login / courier.login."""


class DeliverParams(CourierParams):
    """panel.deliver: one parcel and the courier's declarations."""

    parcel: Delivery


class PickupParams(PanelParams):
    """panel.pickup: the recipient's code."""

    code: str = Field(pattern=CODE_PATTERN, repr=False)
    accept_fee_cents: int | None = Field(
        default=None, ge=0, le=100_000,
        description="The fee the recipient was shown (a first try without it is refused fee_due "
                    "with the amount; Art. 25).")
    relation: Relation | None = Field(
        default=None,
        description="ID-checked parcels: who holds the card on the reader, the recipient (self, "
                    "the default) or a proxy and their relation (recorded masked).")


class RefuseParams(PanelParams):
    """panel.refuse: declared while the pickup door is open (Art. 26)."""

    compartment: int = Field(ge=1, le=9999)
    reason: RefusalReason


class DropoffParams(PanelParams):
    """panel.dropoff: the sender's declarations (Art. 11, 18, 19)."""

    dropoff: Dropoff


class ParcelParams(CourierParams):
    """panel.collect / panel.return: which parcel the courier takes."""

    parcel_id: str = Field(pattern=PARCEL_ID_PATTERN)


class VerdictParams(PanelParams):
    """panel.collect_verdict: declared while the drop-off door is open (Art. 20, 21)."""

    compartment: int = Field(ge=1, le=9999)
    accept: bool
    reason: RejectReason | None = None


def _reply(decision: Decision) -> dict[str, Any]:
    """The result of an accepted decision; a refused one raises Refused, which the API server
    turns into its error reply."""
    refuse_unless_ok(decision)
    return {"status": decision.record.kind, **decision.result}


Handler = Callable[[Any, Caller], Awaitable[Any]]


def handlers(service: ParcelService) -> dict[str, tuple[type[BaseModel], Handler]]:
    """Method name -> (params model, handler), all for the panel role."""

    async def login(p: CourierLoginParams, c: Caller) -> Any:
        auth = await courier_auth(service, p, "courier.login", c.identity)
        return _reply(await service.courier_login(auth, c.identity))

    async def deliver(p: DeliverParams, c: Caller) -> Any:
        auth = await courier_auth(service, p, "deliver.begin", c.identity)
        return _reply(await service.deliver(auth, c.identity, p.parcel))

    async def pickup(p: PickupParams, c: Caller) -> Any:
        return _reply(await service.pickup(c.identity, p.code, p.accept_fee_cents,
                                           relation=p.relation))

    async def refuse(p: RefuseParams, c: Caller) -> Any:
        service.refuse(c.identity, p.compartment, p.reason)
        return {"declared": True}

    async def dropoff(p: DropoffParams, c: Caller) -> Any:
        return _reply(await service.dropoff(c.identity, p.dropoff))

    async def collect(p: ParcelParams, c: Caller) -> Any:
        auth = await courier_auth(service, p, "collect.begin", c.identity)
        return _reply(await service.collect(auth, c.identity, p.parcel_id))

    async def verdict(p: VerdictParams, c: Caller) -> Any:
        service.collect_verdict(c.identity, p.compartment, p.accept, p.reason)
        return {"declared": True}

    async def return_(p: ParcelParams, c: Caller) -> Any:
        auth = await courier_auth(service, p, "return.begin", c.identity)
        return _reply(await service.return_parcel(auth, c.identity, p.parcel_id))

    return {
        "courier.login": (CourierLoginParams, login),
        "panel.deliver": (DeliverParams, deliver),
        "panel.pickup": (PickupParams, pickup),
        "panel.refuse": (RefuseParams, refuse),
        "panel.dropoff": (DropoffParams, dropoff),
        "panel.collect": (ParcelParams, collect),
        "panel.collect_verdict": (VerdictParams, verdict),
        "panel.return": (ParcelParams, return_),
    }


def register(api: ApiServer, service: ParcelService) -> None:
    """Route every panel method on the local API (role: panel)."""
    for method, (model, handler) in handlers(service).items():
        api.route(method, {Role.PANEL}, model, handler)
