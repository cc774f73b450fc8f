"""The regulation's rules as pure functions: allocation, Art. 22-26 checks, codes, fees, drop-off."""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Any

from lockerd.domain.errors import ErrorCode
from lockerd.domain.ids import Size
from lockerd.domain.model import SIZE_ORDER, Compartment, CompartmentState, Expectation
from lockerd.domain.requests import Delivery, Dropoff
from lockerd.domain.spec import CabinetSpec, Policy, Rng
from lockerd.domain.timefmt import format_local, format_ts

# Mainland resident ID (18 chars) and 15-digit legacy form: must never be recorded (Art. 19 uses a
# reference from the real-name system instead).
_ID_NUMBER = re.compile(r"(?<![0-9])([0-9]{17}[0-9Xx]|[0-9]{15})(?![0-9])")
CODE_ATTEMPTS = 64


def allocate(compartments: Iterable[Compartment], size: Size) -> Compartment | None:
    """Smallest free compartment that fits; blocked (jammed, faulty) ones are never offered."""
    fitting = [c for c in compartments
               if c.state is CompartmentState.FREE and SIZE_ORDER[c.size] >= SIZE_ORDER[size]]
    if not fitting:
        return None
    return min(fitting, key=lambda c: (SIZE_ORDER[c.size], c.id))


def check_consent(req: Delivery) -> ErrorCode | None:
    """Art. 22: locker delivery needs the recipient's consent or the sender's choice of a locker."""
    if req.consent or req.sender_chose_locker:
        return None
    return ErrorCode.NO_CONSENT


def weight_matches(declared_g: int | None, measured_g: int | None, policy: Policy) -> bool:
    """Declared vs measured weight within the larger of the absolute and relative allowances."""
    if declared_g is None or measured_g is None:
        return True
    allowance = max(policy.weight_tolerance_g, declared_g * policy.weight_tolerance_pct / 100)
    return abs(declared_g - measured_g) <= allowance


def check_acceptance(req: Delivery, policy: Policy) -> ErrorCode | None:
    """Art. 23: damaged packaging or a weight mismatch is always refused; fresh produce and
    valuables only when the parcel carries the sender/recipient agreement flag."""
    if req.damaged:
        return ErrorCode.DAMAGED
    if not weight_matches(req.declared_weight_g, req.measured_weight_g, policy):
        return ErrorCode.WEIGHT_MISMATCH
    if req.fresh and not req.agreement:
        return ErrorCode.FRESH
    if req.valuable and not req.agreement:
        return ErrorCode.VALUABLE
    return None


def with_announcement(req: Delivery, exp: Expectation) -> Delivery:
    """The delivery as the carrier announced it: the carrier decides consent, the sender's choice,
    the agreement and the declared weight (they come from the recipient, the sender and the
    waybill, which the courier cannot vouch for: Art. 22 `consent: false` is not overridden at
    the panel); the courier can only add what it sees (damage, fresh produce, valuables)."""
    return req.model_copy(update={
        "consent": exp.consent,
        "sender_chose_locker": exp.sender_chose_locker,
        "agreement": exp.agreement,
        "damaged": req.damaged or exp.damaged,
        "fresh": req.fresh or exp.fresh,
        "valuable": req.valuable or exp.valuable,
        "declared_weight_g": exp.declared_weight_g if exp.declared_weight_g is not None
        else req.declared_weight_g,
    })


def check_delivery(req: Delivery, exp: Expectation | None, policy: Policy) -> ErrorCode | None:
    """Art. 22 then Art. 23 for one deposit, with the carrier's announcement when there is one
    (`req` already merged by `with_announcement`): a weight mismatch the carrier noted on the way
    refuses as one measured at the panel does."""
    code = check_consent(req)
    if code is not None:
        return code
    if req.damaged:
        return ErrorCode.DAMAGED
    if exp is not None and exp.weight_mismatch:
        return ErrorCode.WEIGHT_MISMATCH
    return check_acceptance(req, policy)


def check_expectation(exp: Expectation, policy: Policy) -> ErrorCode | None:
    """Would a deposit of this announced waybill be refused whatever the courier declares?
    (`parcel.expect` answers it, so the carrier learns at once that it must deliver in person.)"""
    probe = Delivery(waybill=exp.waybill, size=exp.size)
    return check_delivery(with_announcement(probe, exp), exp, policy)


def looks_like_id_number(text: str) -> bool:
    """True when the text contains what looks like a resident ID number."""
    return _ID_NUMBER.search(text) is not None


def check_dropoff(req: Dropoff, intake_open: bool) -> ErrorCode | None:
    """Art. 11, 18, 19: intake open (camera healthy), real-name reference (never the ID number),
    declared contents, and both acknowledgements."""
    if not intake_open:
        return ErrorCode.INTAKE_CLOSED
    if not req.verification_ref.strip():
        return ErrorCode.NO_VERIFICATION
    if looks_like_id_number(req.verification_ref) or looks_like_id_number(req.declared_contents):
        return ErrorCode.ID_NUMBER_NOT_ALLOWED
    if not req.declared_contents.strip():
        return ErrorCode.NO_CONTENTS
    if not (req.ack_insured_value and req.ack_prohibited_items):
        return ErrorCode.NOT_ACKNOWLEDGED
    return None


def random_below(rng: Rng, n: int) -> int:
    """Uniform integer in [0, n) by rejection sampling (no modulo bias)."""
    bits = max(1, (n - 1).bit_length())
    while True:
        value = rng.getrandbits(bits)
        if value < n:
            return value


def new_code(rng: Rng, digits: int, taken: Collection[str]) -> str | None:
    """A pickup code of `digits` digits not used by any live parcel; None if none found."""
    for _ in range(CODE_ATTEMPTS):
        code = str(random_below(rng, 10 ** digits)).zfill(digits)
        if code not in taken:
            return code
    return None


def new_id(rng: Rng, prefix: str) -> str:
    """An opaque random id (no sequence that leaks volume)."""
    return f"{prefix}-{rng.getrandbits(64):016x}"


def storage_deadline(deposited_at: datetime, policy: Policy) -> datetime:
    """End of the free storage period announced to the recipient (Art. 24)."""
    return deposited_at + policy.storage_period


def fee_cents(deposited_at: datetime, deadline: datetime, at: datetime, policy: Policy) -> int:
    """Art. 25: nothing until the later of the storage deadline (extensions included) and the
    free period; then the fee per started fee period, capped per parcel."""
    free_until = max(deadline, deposited_at + (policy.free_period or policy.storage_period))
    if at <= free_until or policy.fee_cents_per_period <= 0:
        return 0
    periods = math.ceil((at - free_until) / policy.fee_period)
    fee = periods * policy.fee_cents_per_period
    return fee if policy.fee_cap_cents is None else min(fee, policy.fee_cap_cents)


def deadline_fields(deadline: datetime, spec: CabinetSpec) -> dict[str, str]:
    """The storage deadline in UTC and in the cabinet's zone, as every parcel event carries it."""
    return {"storage_deadline": format_ts(deadline),
            "storage_deadline_local": format_local(deadline, spec.timezone)}


def notice(spec: CabinetSpec, size: Size, deadline: datetime) -> dict[str, Any]:
    """Art. 24 notice: locker name, address, compartment size and storage deadline (UTC and local)."""
    return {
        "locker_name": spec.name,
        "address": spec.address,
        "compartment_size": size.value,
        **deadline_fields(deadline, spec),
        "time_zone": spec.timezone,
    }
