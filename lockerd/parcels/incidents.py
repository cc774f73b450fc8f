"""What needs a person (`lockerctl incidents`): blocked compartments, stranded parcels, door faults.

The cabinet part is read from the domain state (the one owner of "blocked"); the door part
comes from the door controller, the camera part from the intake gate. Every row carries its
kind, what it concerns, an age in seconds and a short detail; no personal data (parcel ids,
compartments, statuses and reasons only).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from lockerd.domain import LIVE_STATUSES, CabinetState, CompartmentState, ParcelStatus
from lockerd.domain.timefmt import format_ts

#: The order rows are listed in: compartments first, then parcels, then the hardware.
KINDS = ("compartment_blocked", "parcel_stuck", "dropoff_rejected", "parcel_overdue",
         "door_unknown", "board_offline", "camera_down")


def _aged(row: dict[str, Any], since: datetime | None, now: datetime) -> dict[str, Any]:
    row["since"] = None if since is None else format_ts(since)
    row["age_s"] = None if since is None else round(max(0.0, (now - since).total_seconds()), 1)
    return row


def cabinet_incidents(state: CabinetState, now: datetime) -> list[dict[str, Any]]:
    """Blocked compartments and why; parcels stuck behind them; rejected drop-offs waiting for
    their sender or staff; parcels past their storage period."""
    rows: list[dict[str, Any]] = []
    comps = state.compartments
    for comp in sorted(comps.values(), key=lambda c: c.id):
        if comp.state is CompartmentState.BLOCKED:
            rows.append(_aged({"kind": "compartment_blocked", "compartment": comp.id,
                               "reason": comp.blocked_reason, "blocked_by": comp.blocked_by,
                               "parcel_id": comp.parcel_id,
                               "detail": f"blocked: {comp.blocked_reason or 'no reason given'}"
                                         + ("; a parcel is inside" if comp.parcel_id else "")},
                              comp.blocked_since, now))
    live = sorted((p for p in state.parcels.values() if p.status in LIVE_STATUSES),
                  key=lambda p: (p.compartment, p.id))
    for p in live:
        holder = comps.get(p.compartment)
        if holder is None or holder.pending is not None:
            continue
        base = {"compartment": p.compartment, "parcel_id": p.id, "status": p.status.value}
        if holder.state is CompartmentState.BLOCKED:
            rows.append(_aged({"kind": "parcel_stuck", **base,
                               "detail": f"{p.kind.value} behind a blocked door"},
                              holder.blocked_since, now))
        elif p.status is ParcelStatus.REJECTED:
            rows.append(_aged({"kind": "dropoff_rejected", **base, "reason": p.reason,
                               "detail": "rejected drop-off waiting for its sender or staff"
                                         + ("" if p.code else " (no retrieval code: clear it)")},
                              p.rejected_at or p.deposited_at, now))
        elif p.deadline is not None and p.status in (ParcelStatus.OVERDUE,
                                                     ParcelStatus.IN_LOCKER) \
                and p.deadline < now:
            rows.append(_aged({"kind": "parcel_overdue", **base,
                               "detail": "past its storage period; its courier takes it back"},
                              p.deadline, now))
    return rows


def camera_incident(reason: str | None, since: datetime | None, now: datetime
                    ) -> list[dict[str, Any]]:
    """One row while intake is closed by the camera (not when the camera is disabled by config)."""
    if reason is None or reason == "camera_disabled":
        return []
    return [_aged({"kind": "camera_down", "reason": reason,
                   "detail": f"drop-off intake closed: {reason}"}, since, now)]


def ordered(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows grouped by kind in `KINDS` order, the oldest first within a kind."""
    return sorted(rows, key=lambda r: (KINDS.index(r["kind"]) if r["kind"] in KINDS else len(KINDS),
                                       -(r.get("age_s") or 0.0)))
