"""The domain's CabinetSpec built from the shipped example config: identity, carriers, rules."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from lockerd.config import load_config
from lockerd.parcels.spec_from_config import cabinet_spec

REPO = Path(__file__).resolve().parents[2]


def test_spec_from_the_example_config() -> None:
    cfg = load_config(REPO / "lockerd" / "config" / "example.toml")
    spec = cabinet_spec(cfg)
    assert spec.name == cfg.cabinet.name
    assert spec.carriers == {"sf", "yto"}
    assert spec.compartments == tuple((c.id, c.size) for c in cfg.compartments)
    assert spec.policy.storage_period == timedelta(hours=cfg.storage.period_hours)
    assert spec.policy.fee_cents_per_period == cfg.storage.fee_cents_per_period
    assert spec.timezone == cfg.cabinet.timezone
    assert spec.policy.wrong_code_limit == 5
    assert spec.policy.wrong_code_window == timedelta(minutes=10)
    assert spec.policy.pin_hash_iterations == cfg.rules.pin_hash_iterations
