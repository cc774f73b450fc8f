"""[escalation]: when an open incident escalates (government-document spec, 投诉预警机制: 24/48/72 h)."""

from __future__ import annotations

from itertools import pairwise

from pydantic import Field, field_validator

from lockerd.config.base import Strict


class Escalation(Strict):
    """Tiers of an unresolved incident: hours after it opened, each published to carriers once."""

    tiers_hours: list[float] = Field(
        default_factory=lambda: [24.0, 48.0, 72.0], min_length=1, max_length=5,
        description="Hours an incident may stay open before each tier (strictly increasing); "
                    "tier 1 raises a warning alert, later tiers critical ones.")

    @field_validator("tiers_hours")
    @classmethod
    def _increasing(cls, value: list[float]) -> list[float]:
        if any(h <= 0 for h in value) or any(b <= a for a, b in pairwise(value)):
            raise ValueError("escalation tiers must be positive and strictly increasing")
        return value
