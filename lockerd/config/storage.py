"""[storage]: the storage period, the fee policy and extensions (Art. 24, 25)."""

from __future__ import annotations

from pydantic import Field, model_validator

from lockerd.config.base import Strict


class Storage(Strict):
    """Storage period and fees (Art. 24, 25): nothing is ever charged within the storage period."""

    period_hours: int = Field(default=72, ge=1, le=24 * 30,
                              description="Free storage period announced to the recipient.")
    free_hours: int | None = Field(
        default=None, ge=1, le=24 * 60,
        description="Hours after the deposit before a fee starts; at least period_hours "
                    "(Art. 25). Default: period_hours.")
    fee_cents_per_period: int = Field(default=0, ge=0, le=100_00,
                                      description="Fee per started fee period after the free "
                                                  "hours, in fen (0: no fee).")
    fee_period_hours: int = Field(default=24, ge=1, le=24 * 30,
                                  description="Length of one fee period.")
    fee_cap_cents: int | None = Field(default=None, ge=0, le=1000_00,
                                      description="Most a parcel is ever charged (none: no cap).")
    overdue_fee_cents_per_day: int = Field(
        default=0, ge=0, le=100_00,
        description="Older form of the fee: this much per started day after the storage "
                    "period (the same as fee_cents_per_period with fee_period_hours = 24).")
    max_extension_hours: int = Field(default=168, ge=0, le=24 * 30,
                                     description="How far carriers may extend a parcel's storage "
                                                 "in total (parcel.extend).")

    @model_validator(mode="after")
    def _no_fee_within_the_period(self) -> Storage:
        if self.free_hours is not None and self.free_hours < self.period_hours:
            raise ValueError("free_hours must not be shorter than period_hours: no fee within "
                             "the storage period (Art. 25)")
        if self.overdue_fee_cents_per_day and self.fee_cents_per_period:
            raise ValueError("set fee_cents_per_period or overdue_fee_cents_per_day, not both")
        return self
