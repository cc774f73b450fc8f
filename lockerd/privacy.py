"""The one place that masks personal data for every human-facing output (Art. 36)."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
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


_BY_FIELD: dict[str, Callable[[Any], str]] = {
    "phone": mask_phone, "recipient_phone": mask_phone, "sender_phone": mask_phone,
    "mobile": mask_phone, "name": mask_name, "recipient_name": mask_name,
    "sender_name": mask_name, "waybill": mask_waybill, "address": mask_address,
    "id_number": mask_id_number, "id_card": mask_id_number, "code": mask_secret,
    "pickup_code": mask_secret, "pin": mask_secret, "password": mask_secret,
    "key": mask_secret, "code_hash": mask_secret, "pin_hash": mask_secret,
    "sender_verification": mask_secret, "declared_contents": mask_secret,
}

PERSONAL_FIELDS = frozenset(_BY_FIELD)


def mask_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """Copy of a (possibly nested) record with every known personal field masked."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        masker = _BY_FIELD.get(str(key).lower())
        if masker is not None and value is not None:
            out[key] = masker(value if isinstance(value, str | bytes) else str(value))
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
_SECRET = re.compile(r"(?i)\b(pin|code|key|password|secret|token)(\s*[=:]\s*)\S+")


def redact_text(text: str) -> str:
    """Mask ID numbers, mobile numbers, waybill numbers and key=value secrets in free text."""
    text = _SECRET.sub(r"\1\2[redacted]", text)
    text = _ID_NUMBER.sub(lambda m: mask_id_number(m.group(0)), text)
    text = _MOBILE.sub(lambda m: mask_phone(m.group(0)), text)
    return _WAYBILL.sub(lambda m: mask_waybill(m.group(0)), text)


class RedactingFilter(logging.Filter):
    """Logging filter: a personal value that slips into a log message is masked before output.

    Attach it to the handlers (the text log goes to journald, which is not encrypted).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Render the message, redact it, and keep the record."""
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: let logging report it as usual
            return True
        redacted = redact_text(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True
