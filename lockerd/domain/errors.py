"""Stable error codes of refused domain commands (the API and MQTT replies carry them as-is)."""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """Why a command was refused; values are part of the contract, never renamed."""

    # carriers and couriers (Art. 16)
    UNKNOWN_CARRIER = "unknown_carrier"
    UNKNOWN_COURIER = "unknown_courier"
    COURIER_REVOKED = "courier_revoked"
    COURIER_EXPIRED = "courier_expired"
    BAD_PIN = "bad_pin"
    WEAK_PIN = "weak_pin"
    BAD_PIN_HASH = "bad_pin_hash"
    INVALID_EXPIRY = "invalid_expiry"
    NOT_YOUR_PARCEL = "not_your_parcel"
    # delivery rules (Art. 22, 23)
    NO_CONSENT = "no_consent"
    DAMAGED = "damaged"
    WEIGHT_MISMATCH = "weight_mismatch"
    FRESH = "fresh"
    VALUABLE = "valuable"
    NO_FREE_COMPARTMENT = "no_free_compartment"
    # pickup (Art. 25, 26)
    WRONG_CODE = "wrong_code"
    LOCKED_OUT = "locked_out"
    # drop-off (Art. 11, 18, 19)
    INTAKE_CLOSED = "intake_closed"
    NO_VERIFICATION = "no_verification"
    ID_NUMBER_NOT_ALLOWED = "id_number_not_allowed"
    NO_CONTENTS = "no_contents"
    NOT_ACKNOWLEDGED = "not_acknowledged"
    # state
    BAD_STATE = "bad_state"
    UNKNOWN_COMPARTMENT = "unknown_compartment"
    UNKNOWN_PARCEL = "unknown_parcel"
    COMPARTMENT_BLOCKED = "compartment_blocked"
    CODE_SPACE_EXHAUSTED = "code_space_exhausted"
    BAD_REQUEST = "bad_request"
