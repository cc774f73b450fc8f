"""Domain test fixtures: a fake clock, a small cabinet spec and a cabinet that applies what it decides."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from lockerd.config import Size
from lockerd.domain import Cabinet, CabinetSpec, Decision, Policy

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
PIN = "482913"
CARRIERS = frozenset({"sf", "yto"})
# cheap PBKDF2 in tests: the rules, not the hashing cost, are under test
POLICY = Policy(pin_hash_iterations=1, overdue_fee_cents_per_day=150)
SPEC = CabinetSpec(
    name="Demo Garden Locker 3", address="1 Demo Road, Beijing",
    compartments=((1, Size.S), (2, Size.S), (3, Size.M), (4, Size.L)),
    carriers=CARRIERS, policy=POLICY)


@dataclass
class FakeClock:
    """Injected clock the tests move by hand."""

    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@dataclass
class Harness:
    """A cabinet plus the decisions applied to it, in order (the test's operation log)."""

    cab: Cabinet
    clock: FakeClock
    log: list[Decision] = field(default_factory=list)

    def run(self, decision: Decision) -> Decision:
        """Record, then apply (the service's write-ahead order)."""
        self.log.append(decision)
        self.cab.apply(decision)
        return decision


def make_harness(spec: CabinetSpec = SPEC, seed: int = 7) -> Harness:
    """A fresh cabinet at T0."""
    clock = FakeClock()
    return Harness(Cabinet(spec, clock, random.Random(seed)), clock)


@pytest.fixture
def h() -> Harness:
    """A fresh cabinet harness."""
    return make_harness()


def in_days(clock: FakeClock, days: float) -> datetime:
    """An expiry `days` from the fake now."""
    return clock.now + timedelta(days=days)


SIZES = list(Size)
