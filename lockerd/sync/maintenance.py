"""Planned interruptions (guidance 004 §7: notify the other side ahead of time): a maintenance
notice on the retained `status` topic, from when it is planned until it is over.

The plan is recorded in the operation log (`sync.maintenance_planned`, `..._cancelled`), so a
restart keeps announcing it; the sync component republishes `status` when a plan is made or
cancelled and when the maintenance starts and ends (docs/mqtt.md).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from lockerd.api.server import ApiServer, Caller, Role
from lockerd.domain.errors import ErrorCode, Refused
from lockerd.domain.timefmt import format_ts, parse_ts
from lockerd.oplog import OpLog
from lockerd.privacy import redact_text

PLANNED = "sync.maintenance_planned"
CANCELLED = "sync.maintenance_cancelled"
MAX_DURATION_S = 7 * 86400


class PlanParams(BaseModel):
    """`sync.maintenance`: when the cabinet will be out of service, for how long, and why."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    at: AwareDatetime = Field(description="Start of the interruption (RFC 3339 with a zone).")
    duration_s: int = Field(ge=60, le=MAX_DURATION_S, description="Length of the interruption.")
    reason: str = Field(min_length=1, max_length=200, description="Shown to carriers.")


@dataclass(frozen=True, slots=True)
class Plan:
    """One planned interruption."""

    starts: datetime
    ends: datetime
    reason: str

    def notice(self, now: datetime) -> dict[str, Any]:
        """The `maintenance` member of the status payload."""
        return {"starts_at": format_ts(self.starts), "ends_at": format_ts(self.ends),
                "reason": self.reason, "active": self.starts <= now < self.ends}

    def next_change(self, now: datetime) -> datetime | None:
        """When the status must be published again (start, then end), None once it is over."""
        if now < self.starts:
            return self.starts
        return self.ends if now < self.ends else None


def _latest(conn: Any) -> tuple[str, str] | None:
    row = conn.execute("SELECT kind, body FROM operations WHERE kind IN (?, ?) "
                       "ORDER BY seq DESC LIMIT 1", (PLANNED, CANCELLED)).fetchone()
    return None if row is None else (str(row[0]), str(row[1]))


async def load_plan(oplog: OpLog, now: datetime) -> Plan | None:
    """The plan the log holds, unless it was cancelled or is over."""
    found = await oplog.read(_latest)
    if found is None or found[0] != PLANNED:
        return None
    body = json.loads(found[1])
    plan = Plan(parse_ts(body["starts_at"]), parse_ts(body["ends_at"]), str(body["reason"]))
    return plan if plan.ends > now else None


class Maintenance:
    """The current plan, how it is recorded, and the signal that the status must be republished."""

    def __init__(self, oplog: Callable[[], OpLog], clock: Callable[[], datetime],
                 changed: Callable[[], None]) -> None:
        self._oplog = oplog
        self._clock = clock
        self._changed = changed
        self.plan: Plan | None = None

    async def load(self) -> None:
        """Pick up a plan recorded before a restart."""
        self.plan = await load_plan(self._oplog(), self._clock())

    def current(self) -> Plan | None:
        """The plan while it is ahead or under way."""
        plan = self.plan
        return plan if plan is not None and plan.ends > self._clock() else None

    async def schedule(self, params: PlanParams, actor: str) -> dict[str, Any]:
        """Record the plan (it replaces an earlier one), then announce it."""
        starts = params.at
        plan = Plan(starts, starts + timedelta(seconds=params.duration_s), redact_text(params.reason))
        if plan.ends <= self._clock():
            raise Refused(ErrorCode.BAD_REQUEST, "the interruption would already be over")
        body = {"starts_at": format_ts(plan.starts), "ends_at": format_ts(plan.ends),
                "reason": plan.reason}
        await self._oplog().append(PLANNED, actor=actor, body=body)
        self.plan = plan
        self._changed()
        return plan.notice(self._clock())

    def register_api(self, api: ApiServer) -> None:
        """`sync.maintenance` and `sync.maintenance_cancel` for technicians (`lockerctl maintenance`)."""

        async def plan(params: PlanParams, caller: Caller) -> dict[str, Any]:
            return await self.schedule(params, f"uid:{caller.uid}")

        async def cancel(_params: Any, caller: Caller) -> dict[str, Any]:
            return await self.cancel(f"uid:{caller.uid}")

        api.route("sync.maintenance", {Role.TECH}, PlanParams, plan)
        api.route("sync.maintenance_cancel", {Role.TECH}, None, cancel)

    async def cancel(self, actor: str) -> dict[str, Any]:
        """Withdraw the plan (recorded even when there was none)."""
        had = self.current() is not None
        await self._oplog().append(CANCELLED, actor=actor, body={"had_plan": had})
        self.plan = None
        self._changed()
        return {"cancelled": had}
