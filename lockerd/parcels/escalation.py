"""Escalation of incidents that stay open (government-document spec, 投诉预警机制: 24 / 48 / 72 h).

Every row of `lockerctl incidents` (a blocked compartment, a parcel behind it, a rejected drop-off
not taken back, an overdue parcel not recalled, a door or board fault, the camera down) has a
key (its kind and where) and an age. When the age passes a tier (`[escalation] tiers_hours`) the
incident escalates: an `incident_escalated` alert with rising severity (tier 1 warning, later
tiers critical) goes on the event bus, which records it in the log and sends it to the carriers
(lockerd/sync/alerts.py): once per tier. An escalated incident that disappears from the list is
resolved: one cleared alert (a record in the chain) closes all its tiers.

The published tiers are kept in memory and rebuilt from the chain's alert records at start, so a
restart neither repeats a tier nor forgets to clear one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lockerd.app.events import Alert, AlertKind, Severity


def incident_key(row: Mapping[str, Any]) -> str:
    """A stable name of an incident: its kind and what it concerns (no personal data). A parcel
    incident is its parcel's; a blocked compartment stays the same incident whatever it holds."""
    names = ("parcel_id",) if row.get("parcel_id") and row["kind"] != "compartment_blocked" \
        else ("compartment", "board")
    where = [f"{k}={row[k]}" for k in names if row.get(k) is not None]
    return ":".join([str(row["kind"]), *where])[:120]


def severity_of(tier: int) -> Severity:
    """Tier 1 warns; every later tier is critical."""
    return Severity.WARNING if tier <= 1 else Severity.CRITICAL


@dataclass
class Escalated:
    """An incident that reached a tier: which tier, and where (for the cleared alert)."""

    tier: int
    compartment: int | None = None


class Escalator:
    """Compares the open incidents with the tiers already published; publishes rises and closures."""

    def __init__(self, tiers_hours: Sequence[float], publish: Callable[[Alert], None]) -> None:
        self.tiers_s = [h * 3600.0 for h in tiers_hours]
        self._publish = publish
        self.published: dict[str, Escalated] = {}

    def tier_of(self, age_s: float | None) -> int:
        """How many tiers an incident of this age has passed."""
        if age_s is None:
            return 0
        return sum(1 for limit in self.tiers_s if age_s >= limit)

    def restore(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Rebuild the published tiers from alert records in chain order (their bodies)."""
        for body in records:
            key = body.get("incident")
            if body.get("kind") != AlertKind.INCIDENT_ESCALATED.value or not isinstance(key, str):
                continue
            if body.get("active"):
                self.published[key] = Escalated(int(body.get("tier") or 1),
                                                body.get("compartment"))
            else:
                self.published.pop(key, None)

    def annotate(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Each row with its `incident` key and current `tier` (what `lockerctl incidents` shows)."""
        for row in rows:
            row["incident"] = incident_key(row)
            row["tier"] = self.tier_of(row.get("age_s"))
        return rows

    def check(self, rows: list[dict[str, Any]]) -> list[Alert]:
        """Publish each tier an open incident newly reached, and close resolved ones."""
        out: list[Alert] = []
        open_keys: set[str] = set()
        for row in self.annotate(rows):
            key, tier = row["incident"], row["tier"]
            open_keys.add(key)
            before = self.published.get(key)
            if tier == 0 or (before is not None and before.tier >= tier):
                continue
            hours = self.tiers_s[tier - 1] / 3600.0
            out.append(Alert(AlertKind.INCIDENT_ESCALATED, severity_of(tier), True,
                             f"tier {tier}: {row['kind']} open for more than {hours:g} h: "
                             f"{row.get('detail', '')}", compartment=row.get("compartment"),
                             incident=key, tier=tier))
            self.published[key] = Escalated(tier, row.get("compartment"))
        for key in sorted(set(self.published) - open_keys):
            done = self.published.pop(key)
            out.append(Alert(AlertKind.INCIDENT_ESCALATED, Severity.INFO, False,
                             f"resolved after tier {done.tier}: {key}",
                             compartment=done.compartment, incident=key, tier=done.tier))
        for alert in out:
            self._publish(alert)
        return out
