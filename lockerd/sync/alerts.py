"""Alerts from the EventBus into the log and the outbox, so they survive an offline period."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

from lockerd.app.events import Alert
from lockerd.oplog import CABINET_STREAM, OpLog, OutboxMessage
from lockerd.sync.payloads import AlertPayload
from lockerd.sync.topics import Topics

log = logging.getLogger(__name__)


def alert_payload(alert: Alert) -> dict[str, object]:
    """Wire form of an alert (`compartment` only when there is one)."""
    return AlertPayload(id=uuid.uuid4().hex, ts=alert.ts, kind=alert.kind,
                        severity=alert.severity, compartment=alert.compartment,
                        active=alert.active, detail=alert.detail[:500],
                        incident=alert.incident, tier=alert.tier
                        ).model_dump(mode="json", exclude_none=True)


async def record_alert(oplog: OpLog, topics: Topics, alert: Alert,
                       on_written: Callable[[], None] | None = None) -> None:
    """Append the alert to the log with its QoS 1 message on `alerts` (stream `_cabinet`)."""
    payload = alert_payload(alert)
    await oplog.append(
        "alert.raised" if alert.active else "alert.cleared", actor="lockerd",
        body={"alert_id": payload["id"], "kind": alert.kind.value,
              "severity": alert.severity.value, "active": alert.active,
              "detail": payload["detail"], "board": alert.board,
              **({} if alert.incident is None else {"incident": alert.incident,
                                                     "tier": alert.tier})},
        compartment=alert.compartment,
        outbox=[OutboxMessage(stream=CABINET_STREAM, topic=topics.alerts, payload=payload,
                              qos=1, retain=False, event=False)])
    if on_written is not None:
        on_written()
