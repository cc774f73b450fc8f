"""[rules]: pickup codes, the wrong-code limiter, courier PINs, the weight check."""

from __future__ import annotations

from pydantic import Field, model_validator

from lockerd.config.base import Strict


class Rules(Strict):
    """Parcel-flow rules: pickup codes, wrong-code limiter, courier PINs, weight check (Art. 23-25)."""

    code_digits: int = Field(default=6, ge=6, le=8,
                             description="Length of pickup codes (CSPRNG, unique among live parcels).")
    wrong_code_limit: int = Field(default=5, ge=1, le=50,
                                  description="Wrong codes/PINs per caller (its configured panel, "
                                              "else its uid) within the window before a lockout.")
    wrong_code_window_s: int = Field(default=600, ge=10, le=86400,
                                     description="Sliding window for counting wrong codes.")
    lockout_base_s: int = Field(default=60, ge=1, le=3600,
                                description="First lockout; each further lockout doubles it.")
    lockout_max_s: int = Field(default=3600, ge=1, le=7 * 86400,
                               description="Longest lockout (cap of the exponential growth).")
    cabinet_wrong_limit: int = Field(default=20, ge=2, le=1000,
                                     description="Wrong codes (and, separately, wrong PINs) across "
                                                 "all callers within the cabinet window before "
                                                 "every panel is locked out (brute_force alert).")
    cabinet_wrong_window_s: int = Field(default=86400, ge=60, le=7 * 86400,
                                        description="Sliding window of the cabinet-wide ceiling.")
    cabinet_lockout_base_s: int = Field(default=3600, ge=60, le=86400,
                                        description="First cabinet-wide lockout; each further one "
                                                    "doubles it.")
    cabinet_lockout_max_s: int = Field(default=86400, ge=60, le=7 * 86400,
                                       description="Longest cabinet-wide lockout.")
    weight_tolerance_g: int = Field(default=100, ge=0, le=10_000,
                                    description="Allowed absolute gap between declared and measured "
                                                "weight (Art. 23).")
    weight_tolerance_pct: float = Field(default=10.0, ge=0, le=100,
                                        description="Allowed relative gap (percent of the declared "
                                                    "weight); the larger allowance applies.")
    pin_hash_iterations: int = Field(default=100_000, ge=10_000, le=10_000_000,
                                     description="PBKDF2-SHA256 iterations for courier PINs.")

    @model_validator(mode="after")
    def _lockout_order(self) -> Rules:
        if self.lockout_base_s > self.lockout_max_s:
            raise ValueError("lockout_base_s must not exceed lockout_max_s")
        if self.cabinet_lockout_base_s > self.cabinet_lockout_max_s:
            raise ValueError("cabinet_lockout_base_s must not exceed cabinet_lockout_max_s")
        return self
