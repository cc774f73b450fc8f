"""The door controller's local API (technician role): doors.list and the audited maintenance open."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from lockerd.api.server import ApiError, ApiServer, Caller, NoParams, Role
from lockerd.doors.controller import DoorController, UnknownCompartment
from lockerd.doors.events import Outcome
from lockerd.doors.ports import OperationRecorder
from lockerd.privacy import redact_text

log = logging.getLogger(__name__)


class DoorOpenParams(BaseModel):
    """doors.open: which compartment, and why (audited)."""

    model_config = ConfigDict(extra="forbid")
    compartment: int = Field(ge=1, le=9999)
    reason: str = Field(min_length=1, max_length=200)

    @field_validator("reason")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("reason must not be blank")
        if any(ord(c) < 32 for c in value):
            raise ValueError("reason must not contain control characters")
        return value


class DoorsApi:
    """Registers doors.list and doors.open.

    A maintenance open is recorded before the relay fires (write-ahead): when `recorder`
    cannot record it, the open is refused. Without a recorder (tests, bench) nothing is recorded.
    """

    def __init__(self, doors: DoorController, recorder: OperationRecorder | None = None) -> None:
        self._doors = doors
        self._recorder = recorder

    def register(self, api: ApiServer) -> None:
        """Technician-only methods."""
        api.route("doors.list", {Role.TECH}, NoParams, self._api_list)
        api.route("doors.open", {Role.TECH}, DoorOpenParams, self._api_open)

    async def _api_list(self, _params: NoParams, _caller: Caller) -> dict[str, Any]:
        return self._doors.describe()

    async def _api_open(self, params: DoorOpenParams, caller: Caller) -> dict[str, Any]:
        actor = f"uid:{caller.uid}"
        try:
            self._doors.state(params.compartment)
        except UnknownCompartment:
            raise ApiError("unknown_compartment", f"no compartment {params.compartment}") from None
        if self._recorder is not None:
            try:
                await self._recorder.record("maintenance.open", actor=actor,
                                            compartment=params.compartment,
                                            body={"reason": redact_text(params.reason)})
            except Exception as exc:
                log.error("maintenance open of %d not recorded, refused: %s",
                          params.compartment, exc)
                raise ApiError("log_unavailable", "the operation log cannot record the open; "
                                                  "refused") from None
        try:
            result = await self._doors.open(params.compartment, params.reason, actor,
                                            allow_blocked=True)
        except UnknownCompartment as exc:
            raise ApiError("unknown_compartment", str(exc)) from None
        if self._recorder is not None:
            try:
                await self._recorder.record("maintenance.result", actor=actor,
                                            compartment=params.compartment,
                                            body={"outcome": result.outcome.value,
                                                  "pulses": result.pulses})
            except Exception as exc:
                log.error("maintenance open result of %d not recorded: %s",
                          params.compartment, exc)
        if result.outcome in (Outcome.JAMMED, Outcome.FAILED, Outcome.UNKNOWN):
            raise ApiError(f"door_{result.outcome.value}", result.detail, result=result.to_dict())
        return result.to_dict()
