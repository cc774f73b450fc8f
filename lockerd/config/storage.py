"""[storage]: the storage period and overdue fee (Art. 24, 25)."""

from __future__ import annotations

from pydantic import Field

from lockerd.config.base import Strict


class Storage(Strict):
    """Storage period and fees (Art. 24, 25)."""

    period_hours: int = Field(default=72, ge=1, le=24 * 30,
                              description="Free storage period announced to the recipient.")
    overdue_fee_cents_per_day: int = Field(
        default=0, ge=0, le=100_00,
        description="Fee after the storage period; never charged inside it (Art. 25).")
