"""Personal data (Art. 36): the registry of personal fields, masking, export filtering, log redaction."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

MASK = "*"
_DISTRICT_CN = re.compile(r"^(.*?(?:区|县|旗|自治县))")
_CITY_CN = re.compile(r"^(.*?(?:市|州|盟))")
_EN_ADMIN = re.compile(r"\b(district|county|city|province|prefecture|municipality)\b", re.I)


def mask_phone(phone: str | None) -> str:
    """`13812345678` -> `138****5678`: first 3 and last 4 digits of a long enough number."""
    if not phone:
        return ""
    digits = re.sub(r"\D", "", phone)
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]  # +86 country code
    if len(digits) < 8:
        return MASK * 4
    return digits[:3] + MASK * (len(digits) - 7) + digits[-4:]


def mask_name(name: str | None) -> str:
    """`张三丰` -> `张*`: the first character (surname) and one star, hiding the length."""
    if not name:
        return ""
    text = name.strip()
    return (text[0] + MASK) if text else ""


def mask_waybill(waybill: str | None) -> str:
    """`SF1234567889` -> `SF12******89`: carrier prefix and 2 digits each end, length kept."""
    if not waybill:
        return ""
    text = waybill.strip()
    if len(text) <= 8:
        return text[:2] + MASK * (len(text) - 2) if len(text) > 4 else MASK * len(text)
    return text[:4] + MASK * (len(text) - 6) + text[-2:]


def mask_address(address: str | None) -> str:
    """Keep the address down to the district (`北京市海淀区****`); street and number go."""
    if not address:
        return ""
    text = address.strip()
    for pattern in (_DISTRICT_CN, _CITY_CN):
        match = pattern.match(text)
        if match and match.group(1) != text:
            return match.group(1) + MASK * 4
        if match:
            return match.group(1)
    parts = [p.strip() for p in text.split(",") if p.strip()]
    kept = [p for p in parts if _EN_ADMIN.search(p) and not re.search(r"\d", p)]
    if not kept:
        # No recognisable district: only the last component (city/country) without numbers.
        kept = [p for p in parts[-1:] if not re.search(r"\d", p)]
    return (", ".join(kept) + ", " if kept else "") + MASK * 4


def mask_id_number(value: str | None) -> str:
    """ID numbers are never shown: first and last character only."""
    if not value:
        return ""
    return value[0] + MASK * max(0, len(value) - 2) + (value[-1] if len(value) > 1 else "")


def mask_secret(value: str | bytes | None) -> str:
    """Pickup codes, PINs, keys: nothing of the value is shown."""
    return "" if not value else MASK * 6


@dataclass(frozen=True, slots=True)
class PersonalField:
    """How one personal field is treated by every output of lockerd.

    masker: what a person may see of the value (log view, masked export, panel, demo).
    in_chain: may the value enter the hash chain? The chain is immutable (its hashes cover every
        body), so a value in it can never be destroyed by retention: personal fields stay in the
        domain tables, which SQLCipher encrypts and retention purges.
    exported: is it part of an audited export at all (masked unless root asks for unmasked)?
        False: left out of every export, masked or not.
    """

    masker: Callable[[Any], str]
    in_chain: bool = False
    exported: bool = True


_CONTACT = PersonalField(mask_phone)
_NAME = PersonalField(mask_name)
_ID = PersonalField(mask_id_number)
# Secrets and what is derived from them (hashes, salts): no auditor needs them, and someone who
# has them can guess codes or PINs offline or open a door. Never in an export, masked or not.
_SECRET = PersonalField(mask_secret, exported=False)

#: THE registry of personal fields, by key (case-insensitive). Every check of personal data reads
#: it: the chain guard (oplog.chain), the chain-body filter (parcels.store.chain_body), masking
#: (mask_record), the audited export (export_record), the text-log redaction (redact_text) and
#: retention (the personal columns of the parcels table). No field is allowed in the chain.
PERSONAL: Mapping[str, PersonalField] = MappingProxyType({
    "phone": _CONTACT, "recipient_phone": _CONTACT, "sender_phone": _CONTACT, "mobile": _CONTACT,
    "name": _NAME, "recipient_name": _NAME, "sender_name": _NAME,
    "address": PersonalField(mask_address),
    "id_number": _ID, "id_card": _ID,
    # Waybill numbers are printed on the label next to the recipient's name and phone.
    "waybill": PersonalField(mask_waybill),
    # The sender's declared contents describe what a person sends (Art. 18-19).
    "declared_contents": PersonalField(mask_secret),
    # Reference of the sender's real-name check (Art. 19): `verification_ref` in the domain and
    # in carrier events, `sender_verification` as the parcels column. Before this registry the
    # chain filter dropped it but masking did not know it (it went out unmasked in masked views
    # and the chain guard let it pass): it points at a person's ID check, so it is personal,
    # masked whole like the contents, never in the chain.
    "verification_ref": PersonalField(mask_secret),
    "sender_verification": PersonalField(mask_secret),
    # Identity checks (Art. 9, 18; docs/idcard.md): only masked forms are ever produced; they
    # stay personal (a masked name and ID number with a time and place narrow a person down).
    # The keyed hashes of the ID number are secrets: with the key, a number can be tested.
    "name_masked": _NAME, "id_masked": _ID, "reference": PersonalField(mask_secret),
    "id_hash": _SECRET, "carrier_id_hash": _SECRET, "recipient_id_hash": _SECRET,
    "code": _SECRET, "pickup_code": _SECRET,
    # The sender's code that takes back a rejected drop-off (Art. 21): shown once at the kiosk,
    # kept only as a keyed digest (in `code`), never anywhere in clear.
    "retrieval_code": _SECRET,
    # The courier's PIN and its salted hash: `pin_hash` was masked and kept out of exports but
    # the chain guard let it pass; a PIN hash can be brute-forced offline (6-12 digits), so it is
    # a secret everywhere, and its salt with it.
    "pin": _SECRET, "pin_hash": _SECRET, "pin_salt": _SECRET,
    "code_hash": _SECRET, "code_salt": _SECRET,
    "password": _SECRET, "secret": _SECRET, "token": _SECRET,
    # Keys of the stores; also the live_state key column, which names a courier or a waybill.
    "key": _SECRET,
})

#: Keys known to carry no personal data: ids lockerd makes (parcel ids, event ids), compartment
#: numbers, sizes, statuses, error codes, times, counts, hashes of the chain and of evidence. A
#: key that is in neither table fails tests/test_privacy.py: decide where it belongs first.
NON_PERSONAL: frozenset[str] = frozenset({
    # Containers: what they hold is classified key by key (chain bodies, outbox payloads, command
    # replies, live_state values, parcel flags, summaries of changes, notices, evidence).
    "body", "payload", "reply", "result", "value", "changes", "flags", "notice", "evidence",
    "command", "snapshot", "camera", "acknowledged", "door_open", "door_close", "pending",
    # Rows of the log (lockerd.oplog.schema): chain, outbox, commands, destructions, streams.
    "id", "seq", "ts", "kind", "prev_hash", "hash", "stream", "topic", "qos", "retain",
    "created_at", "sent_at", "op_seq", "last_seq", "epoch", "cmd_id", "digest", "received_at",
    "updated_at", "record_class", "count", "range_from", "range_to", "at", "class", "action",
    # Who did it: carrier-assigned courier ids, panel names, actors built from them, Unix uids of
    # staff, process ids. Every door operation must be attributable in the chain (Art. 16, 37);
    # these are work identifiers, not a person's name, contact or ID.
    "actor", "by_actor", "courier_id", "panel", "uid", "pid", "carrier",
    # Free text written by staff or by lockerd itself; producers pass staff text through
    # redact_text before it is recorded (door, block and export reasons).
    "reason", "detail", "intake_reason",
    # Parcels, compartments, couriers and limiters as facts: ids lockerd makes, states, sizes,
    # times, fees, weights, the carrier's flags (Art. 22-23).
    "parcel_id", "compartment", "compartment_size", "entity", "state", "status", "size",
    "blocked", "blocked_reason", "from_status", "deadline", "storage_deadline", "expires",
    "revoked", "granted_at", "revoked_at", "closed_at", "purged_at", "deposited_at",
    "picked_up_at", "refused_at", "returned_at", "rejected_at", "overdue_at", "overdue",
    "recalled", "fee_cents", "expected", "has_waybill", "set", "parcels", "failures",
    "lockouts", "locked_until", "attempts_left", "consent", "sender_chose_locker", "fresh",
    "valuable", "agreement", "damaged", "declared_weight_g", "measured_weight_g", "accept",
    "ack_insured_value", "ack_prohibited_items", "insured_value_rules", "prohibited_items",
    "locker_name", "weight_mismatch", "deliverable", "refusal", "storage_deadline_local",
    "time_zone", "hours", "extended_hours", "starts_at", "ends_at", "had_plan", "duration_s",
    # The version of the contract terms a sender was shown and acknowledged (Art. 11).
    "terms_version",
    # Blocked compartments and what staff did about them: who blocked (an actor), since when,
    # what was released or removed, the jammed doors a deposit moved past.
    "blocked_since", "blocked_by", "keep_blocked", "released", "removed", "removed_at",
    "jammed_compartment", "jammed_compartments", "retrieval", "since", "age_s",
    # A door-cycle end recorded after a restart from the side file (lockerd/parcels/kept_file.py):
    # when it was kept, and that it came from there.
    "kept_at", "after_restart",
    # Doors, camera, alerts and the daemon itself.
    "outcome", "pulses", "failure", "verdict", "intake_open", "label", "sha256", "alert_id",
    "severity", "active", "board", "head_seq", "key_fingerprint", "old_key", "new_key",
    "version", "schema", "migrated_from",
    # Identity checks as facts: how, with what outcome, when, on which reader, for what.
    "identity", "identity_check", "handover_check", "method", "id_method", "id_outcome",
    "checked_at", "sam_id", "relation", "handover", "purpose", "collected_by", "cabinet",
    # Escalated incidents: the incident's key (kind and where) and its tier.
    "incident", "tier",
    # Backups and restores (lockerd.oplog.backup): chain heads and file digests.
    "head_hash", "verified", "oplog_sha256", "evidence_sha256", "replaced_head_seq",
    # Results of decisions and carrier messages (docs/mqtt.md).
    "ok", "error", "events", "type", "v", "event_id",
    # Refused carrier commands counted per window (lockerd/sync/refusals.py): code and count.
    "refused",
    # Audited exports (the chain record of each export).
    "from", "to", "rows", "operations", "masked",
    # Offline courier passes (docs/passes.md): the carrier's pass ids and the revocation list.
    # The token itself is never recorded (`token` is a secret above).
    "pass_id", "pass_ids", "passes", "revoked_pass", "revoked_passes", "until", "unchanged",
    # The regulator report (Art. 28, lockerd.oplog.regreport) and its record: counts by day and
    # carrier, the cabinet's identity (`cabinet_name`, `location`: the cabinet's, not a
    # person's), the device key's public half and the signature.
    "report", "report_version", "produced_at", "cabinet_name", "location",
    "registration_number", "timezone", "device_key", "public_key", "compartments", "total",
    "by_size", "period", "days", "day", "deliveries", "pickups", "refusals", "dropoffs",
    "collections", "rejections", "rejections_by_reason", "returns", "returned_to_sender",
    "removed_by_staff", "denied", "fees_cents", "monitoring", "intake_closed_s",
    "intake_closed_hours", "camera_incidents", "door_incidents", "board_outages",
    "board_offline_s", "totals", "signature", "alg", "document", "csv", "format", "seconds",
    # Anchors (lockerd.oplog.anchors): signed chain heads in event envelopes, and the reset of
    # a log (its old head); the cabinet id, key ids and signatures are the device's, not a
    # person's.
    "anchor", "key_id", "sig", "requested_at", "previous_epoch", "previous_seq",
    "previous_hash",
})

def personal(key: str) -> PersonalField | None:
    """The registry entry of a key, None when it is not personal."""
    return PERSONAL.get(key.lower())


def known(key: str) -> bool:
    """True when the registry classifies `key` (personal or explicitly non-personal)."""
    return key.lower() in PERSONAL or key.lower() in NON_PERSONAL


def chain_allowed(key: str) -> bool:
    """May a value under `key` enter the hash chain?"""
    field = personal(key)
    return field is None or field.in_chain


def chain_violations(value: Any, path: str = "body") -> list[str]:
    """Paths of every key in a (nested) body that must not enter the chain."""
    found: list[str] = []
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not chain_allowed(str(k)):
                found.append(f"{path}.{k}")
            found.extend(chain_violations(v, f"{path}.{k}"))
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            found.extend(chain_violations(v, f"{path}[{i}]"))
    return found


def chain_safe(value: Any) -> Any:
    """Copy of a (nested) body without the keys that must not enter the chain."""
    if isinstance(value, Mapping):
        return {k: chain_safe(v) for k, v in value.items() if chain_allowed(str(k))}
    if isinstance(value, list | tuple):
        return [chain_safe(v) for v in value]
    return value


def export_record(record: Mapping[str, Any], *, masked: bool) -> dict[str, Any]:
    """An export line's record: never-exported fields dropped, the rest masked unless `masked` is False."""
    kept = _without_unexported(record)
    return mask_record(kept) if masked else kept


def _without_unexported(value: Any) -> Any:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            field = personal(str(k))
            if field is None or field.exported:
                out[k] = _without_unexported(v)
        return out
    if isinstance(value, list | tuple):
        return [_without_unexported(v) for v in value]
    return value


def mask_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """Copy of a (possibly nested) record with every known personal field masked."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        field = personal(str(key))
        if field is not None and value is not None:
            out[key] = field.masker(value if isinstance(value, str | bytes) else str(value))
        else:
            out[key] = _mask_value(value)
    return out


def _mask_value(value: Any) -> Any:
    if isinstance(value, Mapping):
        return mask_record(value)
    if isinstance(value, list | tuple):
        return [_mask_value(v) for v in value]
    return value


_ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")
_MOBILE = re.compile(r"(?<!\d)(?:\+?86[- ]?)?1[3-9]\d{9}(?!\d)")
_WAYBILL = re.compile(r"(?<![0-9A-Za-z])[A-Z]{2,4}\d{8,20}(?![0-9A-Za-z])")
# `field=value`, `field: value` and `"field": "value"` for every field of the registry (longest
# names first, so `pickup_code` wins over `code`). In free text the end of a value is a guess,
# so the whole value is replaced rather than masked; the shapes below keep their masked forms.
_FIELD_VALUE = re.compile(
    r"(?i)(?<!\w)([\"']?)(" + "|".join(sorted(map(re.escape, PERSONAL), key=len, reverse=True))
    + r")\1(\s*[=:]\s*)(\"[^\"]*\"|'[^']*'|\S+)")


def _redact_field(match: re.Match[str]) -> str:
    quote, name, sep, value = match.groups()
    around = value[0] if value[:1] in {'"', "'"} else ""
    return f"{quote}{name}{quote}{sep}{around}[redacted]{around}"


def redact_shapes(text: str) -> str:
    """Mask only what has the shape of a personal number (ID, mobile, waybill) in free text."""
    text = _ID_NUMBER.sub(lambda m: mask_id_number(m.group(0)), text)
    text = _MOBILE.sub(lambda m: mask_phone(m.group(0)), text)
    return _WAYBILL.sub(lambda m: mask_waybill(m.group(0)), text)


def redact_text(text: str) -> str:
    """Mask the values of registry fields, ID numbers, mobile and waybill numbers in free text."""
    return redact_shapes(_FIELD_VALUE.sub(_redact_field, text))


def own_words(value: object) -> bool:
    """True for an argument whose text lockerd composed from its own words, config key names
    and file paths, never from a caller's value (an exception class sets `own_words = True`,
    e.g. the missing-key refusal): the log keeps its hints (`set paths.key_file`)."""
    return getattr(value, "own_words", False) is True


class RedactingFilter(logging.Filter):
    """Logging filter: a personal value that slips into a log message is masked before output.

    Attach it to the handlers (the text log goes to journald, which is not encrypted). An
    argument in lockerd's own words (`own_words`) is masked by shape only: `field: value`
    redaction would eat its hints (`key: set paths.key_file` read as a key's value).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Render the message, redact it, and keep the record."""
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: let logging report it as usual
            return True
        args = record.args if isinstance(record.args, tuple) else ()
        if any(own_words(a) for a in args):
            marks = tuple(f"\x00{i}\x00" if own_words(a) else a for i, a in enumerate(args))
            redacted = redact_text(str(record.msg) % marks)
            for i, arg in enumerate(args):
                if own_words(arg):
                    redacted = redacted.replace(f"\x00{i}\x00", redact_shapes(str(arg)))
        else:
            redacted = redact_text(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True
