"""Example and property tests of the pure rule functions: allocation, Art. 22-25, codes, limiter, PINs."""

from __future__ import annotations

import dataclasses
import hashlib
import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lockerd.domain import (
    CabinetSpec,
    Compartment,
    CompartmentState,
    Delivery,
    Dropoff,
    ErrorCode,
    Policy,
    limiter,
    rules,
)
from lockerd.domain.ids import Size
from lockerd.domain.model import SIZE_ORDER
from lockerd.domain.pins import hash_pin, pin_hash_is_valid, pin_is_acceptable, verify_pin

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
POLICY = Policy()
CALLER = limiter.caller_ladder(POLICY)


def delivery(**kw: object) -> Delivery:
    base: dict[str, object] = {"waybill": "SF1234567", "size": Size.S, "consent": True}
    return Delivery.model_validate({**base, **kw})


def dropoff(**kw: object) -> Dropoff:
    base: dict[str, object] = {"carrier": "sf", "size": Size.S, "verification_ref": "RN-77aa",
                               "declared_contents": "books", "ack_insured_value": True,
                               "ack_prohibited_items": True}
    return Dropoff.model_validate({**base, **kw})


# ---- allocation -------------------------------------------------------------------------------

def comps(*specs: tuple[int, Size, CompartmentState]) -> list[Compartment]:
    return [Compartment(id=i, size=s, state=st_) for i, s, st_ in specs]


def test_allocate_picks_the_smallest_free_size_that_fits() -> None:
    free = CompartmentState.FREE
    cs = comps((1, Size.L, free), (2, Size.M, free), (3, Size.S, free), (4, Size.M, free))
    assert rules.allocate(cs, Size.S).id == 3  # type: ignore[union-attr]
    assert rules.allocate(cs, Size.M).id == 2  # type: ignore[union-attr]
    assert rules.allocate(cs, Size.L).id == 1  # type: ignore[union-attr]


def test_allocate_skips_blocked_reserved_and_occupied() -> None:
    cs = comps((1, Size.S, CompartmentState.BLOCKED), (2, Size.S, CompartmentState.OCCUPIED),
               (3, Size.S, CompartmentState.RESERVED), (4, Size.M, CompartmentState.OPENING),
               (5, Size.L, CompartmentState.FREE))
    assert rules.allocate(cs, Size.S).id == 5  # type: ignore[union-attr]
    assert rules.allocate(cs[:4], Size.S) is None


@given(st.lists(st.tuples(st.sampled_from(list(Size)), st.sampled_from(list(CompartmentState))),
                max_size=12), st.sampled_from(list(Size)))
@settings(max_examples=200, deadline=None)
def test_allocate_property(layout: list[tuple[Size, CompartmentState]], want: Size) -> None:
    cs = [Compartment(id=i + 1, size=s, state=state) for i, (s, state) in enumerate(layout)]
    got = rules.allocate(cs, want)
    fitting = [c for c in cs if c.state is CompartmentState.FREE
               and SIZE_ORDER[c.size] >= SIZE_ORDER[want]]
    if not fitting:
        assert got is None
        return
    assert got is not None
    assert got.state is CompartmentState.FREE
    assert SIZE_ORDER[got.size] == min(SIZE_ORDER[c.size] for c in fitting)


# ---- Art. 22, 23 --------------------------------------------------------------------------------

def test_consent_needs_recipient_or_sender_choice() -> None:
    assert rules.check_consent(delivery(consent=False)) is ErrorCode.NO_CONSENT
    assert rules.check_consent(delivery(consent=True)) is None
    assert rules.check_consent(delivery(consent=False, sender_chose_locker=True)) is None


@pytest.mark.parametrize(("flags", "code"), [
    ({"damaged": True}, ErrorCode.DAMAGED),
    ({"damaged": True, "agreement": True}, ErrorCode.DAMAGED),
    ({"declared_weight_g": 1000, "measured_weight_g": 1200}, ErrorCode.WEIGHT_MISMATCH),
    ({"declared_weight_g": 1000, "measured_weight_g": 1200, "agreement": True}, ErrorCode.WEIGHT_MISMATCH),
    ({"fresh": True}, ErrorCode.FRESH),
    ({"valuable": True}, ErrorCode.VALUABLE),
    ({"fresh": True, "agreement": True}, None),
    ({"valuable": True, "agreement": True}, None),
    ({"declared_weight_g": 1000, "measured_weight_g": 1100}, None),   # 10 % allowance
    ({"declared_weight_g": 300, "measured_weight_g": 400}, None),     # 100 g allowance
    ({"declared_weight_g": 300, "measured_weight_g": 401}, ErrorCode.WEIGHT_MISMATCH),
    ({"declared_weight_g": 1000}, None),                              # nothing measured
    ({}, None),
])
def test_acceptance_rules(flags: dict[str, object], code: ErrorCode | None) -> None:
    assert rules.check_acceptance(delivery(**flags), POLICY) is code


@given(st.integers(0, 100_000), st.integers(0, 100_000))
def test_weight_allowance_is_the_larger_of_absolute_and_relative(a: int, b: int) -> None:
    ok = rules.weight_matches(a, b, POLICY)
    assert ok == (abs(a - b) <= max(100, a * 0.1))   # relative to the declared weight


# ---- drop-off (Art. 11, 18, 19) --------------------------------------------------------------------

@pytest.mark.parametrize(("kw", "intake", "code"), [
    ({}, False, ErrorCode.INTAKE_CLOSED),
    ({"verification_ref": ""}, True, ErrorCode.NO_VERIFICATION),
    ({"verification_ref": "   "}, True, ErrorCode.NO_VERIFICATION),
    ({"verification_ref": "11010119900307451X"}, True, ErrorCode.ID_NUMBER_NOT_ALLOWED),
    ({"declared_contents": "id 110101199003074512 inside"}, True, ErrorCode.ID_NUMBER_NOT_ALLOWED),
    ({"declared_contents": ""}, True, ErrorCode.NO_CONTENTS),
    ({"ack_insured_value": False}, True, ErrorCode.NOT_ACKNOWLEDGED),
    ({"ack_prohibited_items": False}, True, ErrorCode.NOT_ACKNOWLEDGED),
    ({}, True, None),
])
def test_dropoff_preconditions(kw: dict[str, object], intake: bool, code: ErrorCode | None) -> None:
    assert rules.check_dropoff(dropoff(**kw), intake) is code


def test_id_number_detection() -> None:
    assert rules.looks_like_id_number("110101199003074512")
    assert rules.looks_like_id_number("x 11010119900307451x y")
    assert rules.looks_like_id_number("110101900307451")          # 15-digit legacy
    assert not rules.looks_like_id_number("RN-2026-000123")
    assert not rules.looks_like_id_number("1101011990030745123")    # 19 digits: not an ID


# ---- codes, ids, fees, notice ----------------------------------------------------------------------

class StuckRng:
    """Always the same bits: the code generator must give up, not loop forever."""

    def getrandbits(self, k: int, /) -> int:
        return 42 % (1 << k)


@pytest.mark.parametrize("digits", [6, 7, 8])
def test_codes_have_the_configured_digits_and_avoid_taken(digits: int) -> None:
    rng = random.Random(5)
    taken: set[str] = set()
    for _ in range(300):
        code = rules.new_code(rng, digits, taken)
        assert code is not None
        assert len(code) == digits
        assert code.isdigit()
        assert code not in taken
        taken.add(code)


def test_code_generator_gives_up_when_every_try_is_taken() -> None:
    first = rules.new_code(StuckRng(), 6, set())
    assert first == "000042"
    assert rules.new_code(StuckRng(), 6, {first}) is None


@given(st.integers(1, 10**9), st.integers(0, 2**32))
def test_random_below_in_range(n: int, seed: int) -> None:
    assert 0 <= rules.random_below(random.Random(seed), n) < n


def test_fee_is_zero_inside_the_storage_period_art25() -> None:
    policy = Policy(fee_cents_per_period=150)
    deadline = T0 + policy.storage_period
    assert rules.fee_cents(T0, deadline, T0, policy) == 0
    assert rules.fee_cents(T0, deadline, deadline, policy) == 0
    assert rules.fee_cents(T0, deadline, deadline + timedelta(seconds=1), policy) == 150
    assert rules.fee_cents(T0, deadline, deadline + timedelta(days=1), policy) == 150
    assert rules.fee_cents(T0, deadline, deadline + timedelta(days=1, seconds=1), policy) == 300
    assert rules.fee_cents(T0, deadline, deadline + timedelta(days=9), Policy()) == 0  # no fee set


def test_a_hive_box_style_fee_policy() -> None:
    """12 h free, 50 fen per started 12 h, at most 300 fen per parcel."""
    policy = Policy(storage_period=timedelta(hours=12), fee_cents_per_period=50,
                    fee_period=timedelta(hours=12), fee_cap_cents=300)
    deadline = T0 + timedelta(hours=12)
    fee = [rules.fee_cents(T0, deadline, T0 + timedelta(hours=h), policy)
           for h in (0, 12, 12.01, 24, 24.01, 36, 72, 84, 500)]
    assert fee == [0, 0, 50, 50, 100, 100, 250, 300, 300]
    # an extended deadline moves the fee back: still nothing within the (longer) period
    assert rules.fee_cents(T0, deadline + timedelta(hours=24), T0 + timedelta(hours=36), policy) == 0
    # free hours beyond the storage period delay the fee further, never the other way
    longer = Policy(storage_period=timedelta(hours=12), free_period=timedelta(hours=24),
                    fee_cents_per_period=50, fee_period=timedelta(hours=12))
    assert rules.fee_cents(T0, deadline, T0 + timedelta(hours=24), longer) == 0
    assert rules.fee_cents(T0, deadline, T0 + timedelta(hours=25), longer) == 50


def test_notice_has_the_art24_fields() -> None:
    spec = CabinetSpec(name="Garden 3", address="1 Road", compartments=((1, Size.S),),
                       carriers=frozenset({"sf"}))
    assert rules.notice(spec, Size.M, T0) == {"locker_name": "Garden 3", "address": "1 Road",
                                              "compartment_size": "M",
                                              "storage_deadline": "2026-03-01T08:00:00.000Z",
                                              "storage_deadline_local": "2026-03-01T08:00:00.000+00:00",
                                              "time_zone": "UTC"}
    shanghai = dataclasses.replace(spec, timezone="Asia/Shanghai")
    assert rules.notice(shanghai, Size.M, T0)["storage_deadline_local"] == \
        "2026-03-01T16:00:00.000+08:00"


def test_notice_deadline_is_utc_with_milliseconds() -> None:
    spec = CabinetSpec(name="Garden 3", address="1 Road", compartments=((1, Size.S),),
                       carriers=frozenset({"sf"}))
    local = datetime(2026, 3, 1, 16, 0, 0, 123_456, tzinfo=ZoneInfo("Asia/Shanghai"))
    assert rules.notice(spec, Size.S, local)["storage_deadline"] == "2026-03-01T08:00:00.123Z"


# ---- wrong-code limiter ------------------------------------------------------------------------

def test_limiter_locks_on_the_fifth_failure_then_doubles() -> None:
    lim = None
    for i in range(4):
        lim = limiter.record_failure(lim, "k1", T0 + timedelta(seconds=i), CALLER)
        assert limiter.locked_until(lim, T0 + timedelta(seconds=i)) is None
    lim = limiter.record_failure(lim, "k1", T0 + timedelta(seconds=4), CALLER)
    assert limiter.locked_until(lim, T0 + timedelta(seconds=5)) == T0 + timedelta(seconds=64)
    assert limiter.locked_until(lim, T0 + timedelta(seconds=64)) is None
    t = T0 + timedelta(seconds=70)
    for _ in range(5):
        lim = limiter.record_failure(lim, "k1", t, CALLER)
    assert lim.lockouts == 2
    assert limiter.locked_until(lim, t) == t + timedelta(seconds=120)


def test_limiter_window_slides_and_lockout_is_capped() -> None:
    lim = None
    for i in range(4):
        lim = limiter.record_failure(lim, "k1", T0 + timedelta(minutes=i), CALLER)
    # the first failures leave the 10-minute window: no lockout on the next one
    lim = limiter.record_failure(lim, "k1", T0 + timedelta(minutes=10, seconds=30), CALLER)
    assert limiter.locked_until(lim, T0 + timedelta(minutes=10, seconds=31)) is None
    recent = (T0 + timedelta(minutes=10),) * 4
    bumped = lim.model_copy(update={"lockouts": 40, "failures": recent})
    capped = limiter.record_failure(bumped, "k1", T0 + timedelta(minutes=11), CALLER)
    assert capped.locked_until == T0 + timedelta(minutes=11) + POLICY.lockout_max


def test_limiter_success_clears_failures_and_ladder_fades() -> None:
    lim = None
    for _ in range(3):
        lim = limiter.record_failure(lim, "k1", T0, CALLER)
    cleared = limiter.record_success(lim)
    assert cleared is not None
    assert cleared.failures == ()
    assert limiter.record_success(cleared) is None          # nothing to record twice
    laddered = cleared.model_copy(update={"lockouts": 5})
    later = limiter.record_failure(laddered, "k1", T0 + timedelta(days=2), CALLER)
    assert later.lockouts == 0


# ---- PINs --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("pin", "ok"), [
    ("482913", True), ("48291377", True), ("12345", False), ("111111", False), ("123456", False),
    ("987654", False), ("890123", False), ("48a913", False), ("4829137755331", False)])
def test_pin_acceptability(pin: str, ok: bool) -> None:
    assert pin_is_acceptable(pin) is ok


def test_pin_hash_roundtrip_and_malformed_hashes() -> None:
    encoded = hash_pin("482913", b"\x01" * 16, 1000)
    assert "482913" not in encoded
    assert pin_hash_is_valid(encoded)
    assert verify_pin("482913", encoded)
    assert not verify_pin("482914", encoded)
    assert not verify_pin("482913", encoded[:-1] + ("0" if encoded[-1] != "0" else "1"))
    assert not verify_pin("482913", "plain:482913")
    too_costly = hash_pin("482913", b"\x01" * 16, 1).replace("$i=1$", "$i=99999999$")
    assert not pin_hash_is_valid(too_costly)
    assert not verify_pin("482913", too_costly)
    assert "$i=99999999$" in too_costly
    # one hash, one spelling: unused trailing base64 bits must be zero
    salt = encoded.split("$")[3]
    assert not verify_pin("482913", encoded.replace(f"${salt}$", f"${salt[:-1]}B$"))
    # a courier granted before the PHC format keeps working; the old form is not accepted new
    legacy = ("pbkdf2_sha256$1000$" + "01" * 16 + "$"
              + hashlib.pbkdf2_hmac("sha256", b"482913", b"\x01" * 16, 1000).hex())
    assert verify_pin("482913", legacy)
    assert not pin_hash_is_valid(legacy)
