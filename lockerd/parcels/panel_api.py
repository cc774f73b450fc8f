"""Local-API methods for kiosks (`lockerctl panel ...`): strict request models over the parcel use cases."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from lockerd.api.server import ApiServer, Caller, Role
from lockerd.domain import CourierAuth, Decision, Delivery, Dropoff, RefusalReason, RejectReason
from lockerd.domain.errors import refuse_unless_ok
from lockerd.domain.ids import CARRIER_PATTERN, COURIER_PATTERN, PANEL_PATTERN, PARCEL_ID_PATTERN
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
    """Courier credentials, checked again on every call (a revocation applies at once)."""

    carrier: str = Field(pattern=CARRIER_PATTERN)
    courier_id: str = Field(pattern=COURIER_PATTERN)
    pin: str = Field(min_length=1, max_length=32, repr=False)

    def auth(self) -> CourierAuth:
        """The domain's credential value."""
        return CourierAuth(carrier=self.carrier, courier_id=self.courier_id, pin=self.pin)


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
        return _reply(await service.courier_login(p.auth(), c.identity))

    async def deliver(p: DeliverParams, c: Caller) -> Any:
        return _reply(await service.deliver(p.auth(), c.identity, p.parcel))

    async def pickup(p: PickupParams, c: Caller) -> Any:
        return _reply(await service.pickup(c.identity, p.code, p.accept_fee_cents))

    async def refuse(p: RefuseParams, c: Caller) -> Any:
        service.refuse(c.identity, p.compartment, p.reason)
        return {"declared": True}

    async def dropoff(p: DropoffParams, c: Caller) -> Any:
        return _reply(await service.dropoff(c.identity, p.dropoff))

    async def collect(p: ParcelParams, c: Caller) -> Any:
        return _reply(await service.collect(p.auth(), c.identity, p.parcel_id))

    async def verdict(p: VerdictParams, c: Caller) -> Any:
        service.collect_verdict(c.identity, p.compartment, p.accept, p.reason)
        return {"declared": True}

    async def return_(p: ParcelParams, c: Caller) -> Any:
        return _reply(await service.return_parcel(p.auth(), c.identity, p.parcel_id))

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
