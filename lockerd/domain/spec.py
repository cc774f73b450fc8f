"""What the domain needs to know about the cabinet and its rules (built from the config by `parcels`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from lockerd.domain.ids import Size


class Rng(Protocol):
    """Random source; `secrets.SystemRandom()` in the daemon, a seeded `random.Random` in tests."""

    def getrandbits(self, k: int, /) -> int:
        """k random bits."""
        ...


@dataclass(frozen=True, slots=True)
class Policy:
    """Tunable rules (config section [rules] plus [storage])."""

    storage_period: timedelta = timedelta(hours=72)
    #: Fee policy (Art. 25: nothing within the storage period): free until the later of the
    #: storage deadline and `free_period` after the deposit, then `fee_cents_per_period` per
    #: started `fee_period`, at most `fee_cap_cents` per parcel (None: no cap).
    fee_cents_per_period: int = 0
    fee_period: timedelta = timedelta(days=1)
    fee_cap_cents: int | None = None
    free_period: timedelta | None = None
    #: How far a carrier may push a parcel's storage deadline in total (`parcel.extend`).
    max_extension: timedelta = timedelta(days=7)
    code_digits: int = 6
    wrong_code_limit: int = 5
    wrong_code_window: timedelta = timedelta(minutes=10)
    lockout_base: timedelta = timedelta(minutes=1)
    lockout_max: timedelta = timedelta(hours=1)
    #: A lockout ladder is forgotten after this long without a failure.
    lockout_memory: timedelta = timedelta(hours=24)
    #: Cabinet-wide ceiling over every caller (per credential: codes, PINs); see limiter.py.
    cabinet_wrong_limit: int = 20
    cabinet_wrong_window: timedelta = timedelta(hours=24)
    cabinet_lockout_base: timedelta = timedelta(hours=1)
    cabinet_lockout_max: timedelta = timedelta(hours=24)
    weight_tolerance_g: int = 100
    weight_tolerance_pct: float = 10.0
    pin_hash_iterations: int = 100_000


@dataclass(frozen=True, slots=True)
class CabinetSpec:
    """Identity, compartments and authorised carriers (Art. 16, 24)."""

    name: str
    address: str
    compartments: tuple[tuple[int, Size], ...]
    carriers: frozenset[str]
    policy: Policy = Policy()
    #: Carriers whose waybills are delivered only when announced with `parcel.expect` first.
    expectation_required: frozenset[str] = frozenset()
    #: IANA zone of the cabinet: deadlines go to carriers in it as well as in UTC (Art. 24).
    timezone: str = "UTC"
    #: The cabinet has an ID-card reader (ID-checked handovers need one).
    id_reader: bool = False
    #: This cabinet's id (topics, receipts) and the groups it belongs to, as offline courier
    #: passes name them.
    cabinet_id: str = ""
    groups: frozenset[str] = frozenset()
