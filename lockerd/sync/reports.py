"""`report.request`: the signed regulator report (Art. 28) returned over MQTT to the platform.

Only carriers configured `platform = true` may ask (others: `not_permitted`). The report is
built and signed by the log's owner (lockerd/oplog/component.py, reached through the
`ReportSource` port); its production is recorded as `report.produced` in the same transaction
as the reply. Size limits are explicit: the period is at most `MAX_DAYS` days
(lockerd/oplog/regreport.py) and the signed document at most `[mqtt] max_report_bytes`; a
larger one is refused `too_large` (narrow the period, or use `lockerctl report` on site).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Protocol

from lockerd.domain.errors import ErrorCode, Refused
from lockerd.sync.commands import CommandContext, CommandRegistry
from lockerd.sync.payloads import ReportRequestBody


class ReportSource(Protocol):
    """Builds the signed report and the chain body that records it."""

    async def build_report(self, since: datetime, until: datetime, fmt: str
                           ) -> tuple[dict[str, Any], dict[str, Any]]:
        """(reply result, record body)."""
        ...


def register(registry: CommandRegistry, source: ReportSource, *, platforms: Iterable[str],
             max_bytes: int) -> None:
    """Add the `report.request` handler."""
    allowed = frozenset(platforms)

    async def request(ctx: CommandContext, body: ReportRequestBody) -> Any:
        if ctx.carrier not in allowed:
            raise Refused(ErrorCode.NOT_PERMITTED, "only the operator's platform may request "
                                                   "the regulator report")
        try:
            result, record = await source.build_report(body.since, body.until, body.format)
        except ValueError as exc:
            raise Refused(ErrorCode.BAD_REQUEST, str(exc)) from None
        size = len(json.dumps(result, ensure_ascii=False).encode("utf-8"))
        if size > max_bytes:
            raise Refused(ErrorCode.TOO_LARGE, f"the report is {size} bytes, the limit is "
                                               f"{max_bytes}; ask for a shorter period")
        await ctx.commit("report.produced", body={**record, "size": size}, result=result)
        return result

    registry.register("report.request", request)
