"""Local-API methods for technicians: block, unblock and clear compartments, and the incident list.

Every change is a domain decision recorded write-ahead in the chain like a customer flow (a
refusal too, with its code); the technician's free-text reason passes through
lockerd.privacy.redact_text before it is recorded, and the actor is the caller's uid.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from lockerd.api.server import ApiServer, Caller, NoParams, Role
from lockerd.domain import Decision
from lockerd.domain.errors import refuse_unless_ok
from lockerd.parcels.service import ParcelService
from lockerd.privacy import redact_text


def _staff_text(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("reason must not be blank")
    if any(ord(c) < 32 for c in value):
        raise ValueError("reason must not contain control characters")
    return value


StaffReason = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_staff_text)]


class CompartmentParams(BaseModel):
    """compartments.block / compartments.unblock: which compartment, and why (recorded)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    compartment: int = Field(ge=1, le=9999)
    reason: StaffReason


class ClearParams(CompartmentParams):
    """compartments.clear: staff removed what was inside; keep it blocked or free it."""

    keep_blocked: bool = False


def _reply(decision: Decision) -> dict[str, Any]:
    refuse_unless_ok(decision)
    return {"status": decision.record.kind, **decision.result}


def register(api: ApiServer, service: ParcelService,
             incidents: Callable[[], list[dict[str, Any]]]) -> None:
    """Route the technician methods on the local API (role: tech)."""

    async def block(p: CompartmentParams, caller: Caller) -> Any:
        return _reply(await service.block(p.compartment, redact_text(p.reason),
                                          f"uid:{caller.uid}"))

    async def unblock(p: CompartmentParams, caller: Caller) -> Any:
        return _reply(await service.unblock(p.compartment, f"uid:{caller.uid}",
                                            redact_text(p.reason)))

    async def clear(p: ClearParams, caller: Caller) -> Any:
        return _reply(await service.clear(p.compartment, f"uid:{caller.uid}",
                                          redact_text(p.reason), keep_blocked=p.keep_blocked))

    async def listed(_p: NoParams, _caller: Caller) -> Any:
        return {"incidents": incidents()}

    api.route("compartments.block", {Role.TECH}, CompartmentParams, block)
    api.route("compartments.unblock", {Role.TECH}, CompartmentParams, unblock)
    api.route("compartments.clear", {Role.TECH}, ClearParams, clear)
    api.route("incidents", {Role.TECH}, NoParams, listed)
