"""Why a command is refused: the one code list and the one exception every adapter maps to its reply.

A refusal starts either in the domain (a decision with an `error`) or in the carrier-command
envelope (bad JSON, bad signature ...). Both use `ErrorCode`; `Refused` carries a code out of the
use cases, and each transport maps it to its wire form exactly once: the local API in
`lockerd/api/server.py`, MQTT in `lockerd/sync/commands.py`. The MQTT schema's `error.code` enum
in docs/asyncapi.yaml lists every member (tests/sync/test_docs.py checks it).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Protocol


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
    # offline courier passes (docs/passes.md)
    PASS_MALFORMED = "pass_malformed"  # noqa: S105 - a refusal code, not a password
    PASS_BAD_SIGNATURE = "pass_bad_signature"  # noqa: S105 - a refusal code, not a password
    PASS_WRONG_CARRIER = "pass_wrong_carrier"  # noqa: S105 - a refusal code, not a password
    PASS_WRONG_CABINET = "pass_wrong_cabinet"  # noqa: S105 - a refusal code, not a password
    PASS_NOT_YET_VALID = "pass_not_yet_valid"  # noqa: S105 - a refusal code, not a password
    PASS_EXPIRED = "pass_expired"  # noqa: S105 - a refusal code, not a password
    PASS_REVOKED = "pass_revoked"  # noqa: S105 - a refusal code, not a password
    # delivery rules (Art. 22, 23)
    NO_CONSENT = "no_consent"
    DAMAGED = "damaged"
    WEIGHT_MISMATCH = "weight_mismatch"
    FRESH = "fresh"
    VALUABLE = "valuable"
    NO_FREE_COMPARTMENT = "no_free_compartment"
    NOT_EXPECTED = "not_expected"
    # pickup (Art. 25, 26)
    WRONG_CODE = "wrong_code"
    LOCKED_OUT = "locked_out"
    FEE_DUE = "fee_due"
    # drop-off (Art. 11, 18, 19)
    INTAKE_CLOSED = "intake_closed"
    NO_VERIFICATION = "no_verification"
    ID_NUMBER_NOT_ALLOWED = "id_number_not_allowed"
    NO_CONTENTS = "no_contents"
    NOT_ACKNOWLEDGED = "not_acknowledged"
    # identity at the cabinet (Art. 9, 18; government documents: ID-checked handover)
    ID_CARD_EXPIRED = "id_card_expired"
    ID_CHECK_REQUIRED = "id_check_required"
    ID_MISMATCH = "id_mismatch"
    NO_ID_READER = "no_id_reader"
    # state
    BAD_STATE = "bad_state"
    UNKNOWN_COMPARTMENT = "unknown_compartment"
    UNKNOWN_PARCEL = "unknown_parcel"
    COMPARTMENT_BLOCKED = "compartment_blocked"
    CODE_SPACE_EXHAUSTED = "code_space_exhausted"
    BAD_REQUEST = "bad_request"
    HOLDS_PARCEL = "holds_parcel"
    # a door operation that did not happen (recorded, but never reported as success)
    DOOR_JAMMED = "door_jammed"
    DOOR_NOT_OPENED = "door_not_opened"
    DOOR_NOT_CLOSED = "door_not_closed"
    ITEM_STILL_INSIDE = "item_still_inside"
    ROLLED_BACK = "rolled_back"
    DOOR_STATE_UNKNOWN = "door_state_unknown"
    # the operation log cannot append (the disk is full): a begin is refused; a door cycle that
    # already happened is kept in memory and recorded once there is space again
    DISK_FULL = "disk_full"
    # the carrier-command envelope (checked before any handler runs; docs/mqtt.md)
    TOO_LARGE = "too_large"
    BAD_JSON = "bad_json"
    BAD_VERSION = "bad_version"
    BAD_SCHEMA = "bad_schema"
    BAD_SIGNATURE = "bad_signature"
    REPLAYED_ID = "replayed_id"
    EXPIRED = "expired"
    TS_IN_FUTURE = "ts_in_future"
    UNKNOWN_TYPE = "unknown_type"
    NOT_PERMITTED = "not_permitted"
    INTERNAL_ERROR = "internal_error"
    # the cabinet's clock (boards without a real-time clock, before time sync)
    CLOCK_NOT_SET = "clock_not_set"


class Refused(Exception):
    """A command refused with a stable code; `detail` is extra JSON the local API passes on."""

    def __init__(self, code: ErrorCode, message: str = "", detail: dict[str, Any] | None = None
                 ) -> None:
        super().__init__(f"{code.value}: {message}" if message else code.value)
        self.code = code
        self.message = message or code.value
        self.detail = detail


class Outcome(Protocol):
    """What `refuse_unless_ok` reads of a domain decision."""

    @property
    def error(self) -> ErrorCode | None:
        """The refusal code, None when accepted."""
        ...

    @property
    def failed(self) -> ErrorCode | None:
        """Accepted and recorded, but the door operation did not happen (jam, rollback ...)."""
        ...

    @property
    def message(self) -> str:
        """Human-readable reason of a refusal."""
        ...

    @property
    def result(self) -> dict[str, Any]:
        """What the caller learns (on a refusal too, e.g. when a lockout ends)."""
        ...


def refuse_unless_ok(outcome: Outcome) -> None:
    """Raise `Refused` for a refused decision, or for a recorded door failure (a door operation
    that did not happen is never reported as success): the one place a decision becomes a
    refusal."""
    code = outcome.error or outcome.failed
    if code is not None:
        raise Refused(code, outcome.message, outcome.result or None)
