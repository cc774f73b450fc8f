"""Builds the domain's CabinetSpec from the validated config (the domain itself never sees `Config`)."""

from __future__ import annotations

from datetime import timedelta

from lockerd.config import Config
from lockerd.domain import CabinetSpec, Policy


def cabinet_spec(cfg: Config) -> CabinetSpec:
    """Identity, compartments, carriers and the tunable rules of [rules] and [storage]."""
    rules = cfg.rules
    storage = cfg.storage
    per_day = storage.overdue_fee_cents_per_day
    policy = Policy(
        storage_period=timedelta(hours=storage.period_hours),
        fee_cents_per_period=per_day or storage.fee_cents_per_period,
        fee_period=timedelta(hours=24 if per_day else storage.fee_period_hours),
        fee_cap_cents=storage.fee_cap_cents,
        free_period=None if storage.free_hours is None else timedelta(hours=storage.free_hours),
        max_extension=timedelta(hours=storage.max_extension_hours),
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
        timezone=cfg.cabinet.timezone,
        id_reader=cfg.hardware.idcard.enabled,
        cabinet_id=cfg.cabinet.id,
        groups=frozenset(cfg.cabinet.groups),
    )
