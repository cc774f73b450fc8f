"""[storage] fee policy: no fee can be configured within the storage period (Art. 25)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from lockerd.config import Storage, load_config
from lockerd.parcels.spec_from_config import cabinet_spec
from tests.fixtures.paths import EXAMPLE_CONFIG


def test_free_hours_never_shorter_than_the_storage_period() -> None:
    with pytest.raises(ValidationError, match=r"Art\. 25"):
        Storage(period_hours=72, free_hours=12)
    assert Storage(period_hours=12, free_hours=24).free_hours == 24


def test_one_fee_form_at_a_time() -> None:
    with pytest.raises(ValidationError, match="not both"):
        Storage(fee_cents_per_period=50, overdue_fee_cents_per_day=100)


def test_the_hive_box_policy_reaches_the_domain() -> None:
    cfg = load_config(EXAMPLE_CONFIG)
    storage = Storage(period_hours=12, fee_cents_per_period=50, fee_period_hours=12,
                      fee_cap_cents=300, max_extension_hours=48)
    policy = cabinet_spec(cfg.model_copy(update={"storage": storage})).policy
    assert (policy.storage_period, policy.fee_period) == (timedelta(hours=12), timedelta(hours=12))
    assert (policy.fee_cents_per_period, policy.fee_cap_cents) == (50, 300)
    assert policy.max_extension == timedelta(hours=48)
    # the older per-day form still means "per started day after the storage period"
    old = cabinet_spec(cfg.model_copy(update={"storage": Storage(overdue_fee_cents_per_day=150)}))
    assert (old.policy.fee_cents_per_period, old.policy.fee_period) == (150, timedelta(days=1))
