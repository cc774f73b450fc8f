"""Builds the domain's CabinetSpec from the validated config (the domain itself never sees `Config`)."""

from __future__ import annotations

from datetime import timedelta

from lockerd.config import Config
from lockerd.domain import CabinetSpec, Policy


def cabinet_spec(cfg: Config) -> CabinetSpec:
    """Identity, compartments, carriers and the tunable rules of [rules] and [storage]."""
    rules = cfg.rules
    policy = Policy(
        storage_period=timedelta(hours=cfg.storage.period_hours),
        overdue_fee_cents_per_day=cfg.storage.overdue_fee_cents_per_day,
        code_digits=rules.code_digits,
        wrong_code_limit=rules.wrong_code_limit,
        wrong_code_window=timedelta(seconds=rules.wrong_code_window_s),
        lockout_base=timedelta(seconds=rules.lockout_base_s),
        lockout_max=timedelta(seconds=rules.lockout_max_s),
        cabinet_wrong_limit=rules.cabinet_wrong_limit,
        cabinet_wrong_window=timedelta(seconds=rules.cabinet_wrong_window_s),
        cabinet_lockout_base=timedelta(seconds=rules.cabinet_lockout_base_s),
        cabinet_lockout_max=timedelta(seconds=rules.cabinet_lockout_max_s),
        weight_tolerance_g=rules.weight_tolerance_g,
        weight_tolerance_pct=rules.weight_tolerance_pct,
        pin_hash_iterations=rules.pin_hash_iterations,
    )
    return CabinetSpec(
        name=cfg.cabinet.name,
        address=cfg.cabinet.address,
        compartments=tuple((c.id, c.size) for c in cfg.compartments),
        carriers=frozenset(c.id for c in cfg.carriers),
        policy=policy,
        expectation_required=frozenset(c.id for c in cfg.carriers if c.require_expectation),
    )
