"""The regulator's report (Art. 28): what the cabinet did, by day and carrier, from the chain.

The figures come from the operation log alone (chain bodies hold the facts: parcel status
changes with their carrier, refusal reasons, fees, alerts), read off the event loop in
bounded batches of `BATCH` rows, so a month of a busy cabinet never holds a reader or the
loop for long. Parcel rows (which retention purges) are not needed.

Sections: `cabinet` (identity, location, device key; named `cabinet_name` and `location`
because `name` and `address` are personal keys in lockerd.privacy), `compartments` (counts),
`period`, `days` (one entry per local day and carrier: deliveries, pickups, refusals by
reason, drop-offs, collections, rejections, overdue, returns, fees, operations denied by
code), `monitoring` (per local day: seconds with intake closed by reason, camera incidents,
door incidents, board outages) and `totals`. The JSON Schema is docs/report.schema.json.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from lockerd.config import Cabinet, Compartment
from lockerd.oplog.canonical import format_ts, parse_ts
from lockerd.oplog.store import OpLog

REPORT_VERSION = 1
#: Rows per read: one executor call never returns more.
BATCH = 500
#: Longest period one report may cover.
MAX_DAYS = 92

#: Alert kinds that close the intake (the camera gate fails closed, Art. 19).
INTAKE_ALERTS = frozenset({"camera_down", "camera_obstructed"})
CAMERA_ALERTS = INTAKE_ALERTS
DOOR_ALERTS = frozenset({"door_jammed", "door_forced", "door_left_open"})
BOARD_ALERTS = frozenset({"board_offline"})

#: Parcel status reached -> the counter it adds to.
_STATUS_COUNTERS = {"picked_up": "pickups", "refused": "refusals",
                    "dropoff_received": "dropoffs", "collected": "collections",
                    "rejected": "rejections", "overdue": "overdue", "returned": "returns",
                    "returned_to_sender": "returned_to_sender",
                    "removed_by_staff": "removed_by_staff"}
COUNTERS = ("deliveries", "pickups", "dropoffs", "collections", "rejections", "overdue",
            "returns", "returned_to_sender", "removed_by_staff")


def pairs(counts: Mapping[str, int], name: str) -> list[dict[str, Any]]:
    """`[{name: value, "count": n}, ...]` sorted by value: values (codes, reasons, sizes) never
    become keys, so every key of the report is a fixed word lockerd.privacy classifies."""
    return [{name: value, "count": n} for value, n in sorted(counts.items())]


class ReportRangeError(ValueError):
    """The requested period is empty or longer than MAX_DAYS."""


@dataclass(slots=True)
class _CarrierDay:
    counts: Counter[str] = field(default_factory=Counter)
    refusals_by_reason: Counter[str] = field(default_factory=Counter)
    rejections_by_reason: Counter[str] = field(default_factory=Counter)
    denied_by_code: Counter[str] = field(default_factory=Counter)
    fees_cents: int = 0

    def to_json(self) -> dict[str, Any]:
        return {**{name: self.counts.get(name, 0) for name in COUNTERS},
                "refusals": pairs(self.refusals_by_reason, "reason"),
                "rejections_by_reason": pairs(self.rejections_by_reason, "reason"),
                "denied": pairs(self.denied_by_code, "error"),
                "fees_cents": self.fees_cents}


@dataclass(slots=True)
class _MonitorDay:
    intake_closed_s: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    camera_incidents: Counter[str] = field(default_factory=Counter)
    door_incidents: Counter[str] = field(default_factory=Counter)
    board_outages: int = 0
    board_offline_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        closed = [{"reason": k, "seconds": round(v)} for k, v in sorted(self.intake_closed_s.items())]
        return {"intake_closed_s": closed,
                "intake_closed_hours": round(sum(self.intake_closed_s.values()) / 3600, 3),
                "camera_incidents": pairs(self.camera_incidents, "kind"),
                "door_incidents": pairs(self.door_incidents, "kind"),
                "board_outages": self.board_outages,
                "board_offline_s": round(self.board_offline_s)}


class _Tally:
    """Folds operations, in seq order, into the report's figures."""

    def __init__(self, tz: ZoneInfo, until: datetime) -> None:
        self.tz = tz
        self.until = until
        self.days: dict[tuple[str, str], _CarrierDay] = defaultdict(_CarrierDay)
        self.monitor: dict[str, _MonitorDay] = defaultdict(_MonitorDay)
        self.open_since: dict[tuple[str, str], datetime] = {}  # (kind, where) -> raised at
        self.operations = 0

    def day(self, at: datetime) -> str:
        return at.astimezone(self.tz).date().isoformat()

    def add(self, ts: str, kind: str, actor: str, body: dict[str, Any]) -> None:
        self.operations += 1
        at = parse_ts(ts)
        day = self.day(at)
        if kind in {"alert.raised", "alert.cleared"}:
            self._alert(at, day, body)
            return
        if body.get("ok") is False and isinstance(body.get("error"), str):
            self.days[(day, _carrier_of(actor, body))].denied_by_code[body["error"]] += 1
            return
        for change in body.get("changes") or ():
            if not isinstance(change, dict) or change.get("entity") != "parcel":
                continue
            entry = self.days[(day, str(change.get("carrier")))]
            status = change.get("status")
            if status == "in_locker" and kind == "deliver.confirm":
                entry.counts["deliveries"] += 1
            elif isinstance(status, str) and status in _STATUS_COUNTERS:
                name = _STATUS_COUNTERS[status]
                entry.counts[name] += 1
                reason = str(body.get("reason") or "unspecified")
                if name == "refusals":
                    entry.refusals_by_reason[reason] += 1
                elif name == "rejections":
                    entry.rejections_by_reason[reason] += 1
                elif name == "pickups":
                    entry.fees_cents += int(body.get("fee_cents") or 0)

    def _alert(self, at: datetime, day: str, body: dict[str, Any]) -> None:
        kind = str(body.get("kind"))
        where = str(body.get("board") or "")
        active = bool(body.get("active"))
        mon = self.monitor[day]
        if active:
            if kind in CAMERA_ALERTS:
                mon.camera_incidents[kind] += 1
            elif kind in DOOR_ALERTS:
                mon.door_incidents[kind] += 1
            elif kind in BOARD_ALERTS:
                mon.board_outages += 1
            if kind in INTAKE_ALERTS | BOARD_ALERTS:
                self.open_since.setdefault((kind, where), at)
        elif (kind, where) in self.open_since:
            self._close(kind, self.open_since.pop((kind, where)), at)

    def _close(self, kind: str, start: datetime, end: datetime) -> None:
        """Spread a closed interval over the local days it covers."""
        while start < end:
            local = start.astimezone(self.tz)
            next_midnight = datetime.combine(local.date() + timedelta(days=1),
                                             datetime.min.time(), self.tz)
            stop = min(end, next_midnight)
            mon = self.monitor[self.day(start)]
            seconds = (stop - start).total_seconds()
            if kind in INTAKE_ALERTS:
                mon.intake_closed_s[kind] += seconds
            else:
                mon.board_offline_s += seconds
            start = stop

    def finish(self) -> None:
        """Intervals still open at the end of the period count up to it."""
        for (kind, _where), start in sorted(self.open_since.items()):
            self._close(kind, start, self.until)
        self.open_since.clear()


def _carrier_of(actor: str, body: dict[str, Any]) -> str:
    """The carrier a denied operation concerns: its courier's or command's carrier, else '-'."""
    for prefix in ("courier:", "carrier:"):
        if actor.startswith(prefix):
            return actor[len(prefix):].split("/", 1)[0]
    carrier = body.get("carrier")
    return carrier if isinstance(carrier, str) else "-"


def check_range(since: datetime, until: datetime) -> None:
    """Refuse an empty period or one longer than MAX_DAYS."""
    if until <= since:
        raise ReportRangeError("'to' must be after 'from'")
    if until - since > timedelta(days=MAX_DAYS):
        raise ReportRangeError(f"a report covers at most {MAX_DAYS} days")


async def build(store: OpLog, cabinet: Cabinet, compartments: Sequence[Compartment], *,
                since: datetime, until: datetime, produced_at: datetime,
                device: dict[str, str]) -> dict[str, Any]:
    """The report's document (unsigned) for [since, until)."""
    check_range(since, until)
    lo, hi = format_ts(since), format_ts(until)
    tally = _Tally(ZoneInfo(cabinet.timezone), until)
    # Start at the range's first operation (found on the ts index): the batches walk the
    # primary key, and from seq 0 the first one would read every older operation of the year.
    after = await store.read(lambda conn: int(conn.execute(
        "SELECT coalesce(min(seq), 1) - 1 FROM operations WHERE ts >= ? AND ts < ?",
        (lo, hi)).fetchone()[0]))
    while True:
        def batch(conn: Any, after: int = after) -> list[tuple[int, str, str, str, Any]]:
            # decoded in the reader thread too: the loop only folds ready values
            rows = conn.execute(
                "SELECT seq, ts, kind, actor, body FROM operations WHERE seq > ? AND ts >= ? "
                "AND ts < ? ORDER BY seq LIMIT ?", (after, lo, hi, BATCH)).fetchall()
            return [(seq, ts, kind, actor, json.loads(body)) for seq, ts, kind, actor, body in rows]

        rows = await store.read(batch)
        for seq, ts, kind, actor, body in rows:
            tally.add(ts, kind, actor, body)
            after = seq
        if len(rows) < BATCH:
            break
    tally.finish()
    days = [{"day": day, "carrier": carrier, **entry.to_json()}
            for (day, carrier), entry in sorted(tally.days.items())]
    totals: Counter[str] = Counter()
    fees = 0
    for (_day, _carrier), entry in tally.days.items():
        totals.update({name: entry.counts.get(name, 0) for name in COUNTERS})
        fees += entry.fees_cents
    sizes = Counter(c.size.value for c in compartments)
    return {
        "report_version": REPORT_VERSION,
        "kind": "regulator_report",
        "produced_at": format_ts(produced_at),
        "cabinet": {"id": cabinet.id, "cabinet_name": cabinet.name, "location": cabinet.address,
                    "registration_number": cabinet.registration_number,
                    "timezone": cabinet.timezone, "device_key": device},
        "compartments": {"total": len(compartments), "by_size": pairs(sizes, "size")},
        "period": {"from": lo, "to": hi, "timezone": cabinet.timezone},
        "days": days,
        "monitoring": [{"day": day, **mon.to_json()} for day, mon in sorted(tally.monitor.items())],
        "totals": {**{name: totals.get(name, 0) for name in COUNTERS}, "fees_cents": fees,
                   "operations": tally.operations},
    }
