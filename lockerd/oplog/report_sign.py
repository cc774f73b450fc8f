"""Signing and checking the regulator report: the JSON document and its CSV rendering.

JSON: `{"report": {...}, "signature": {"alg": "Ed25519", "public_key", "key_fingerprint",
"value"}}`; the signed bytes are the canonical JSON of `report` (sorted keys, no spaces, UTF-8;
lockerd.oplog.canonical.dumps), so re-indenting the file does not break it but changing any
value does. CSV: one row per figure; the last line is `#signature,Ed25519,<public key>,<value>`
over every byte before it. Keys and values are standard base64. Verification needs no daemon
and no network; it proves the file is unchanged since a holder of the printed key signed it —
compare the fingerprint with the one enrolled for the cabinet.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
from dataclasses import dataclass
from typing import Any

from lockerd.oplog.canonical import dumps
from lockerd.oplog.identity import DeviceIdentity, fingerprint, verify_signature

ALG = "Ed25519"
PUBLIC_BYTES = 32
CSV_SIGNATURE_PREFIX = "#signature,"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def device_fields(key: DeviceIdentity) -> dict[str, str]:
    """The report's `cabinet.device_key`: the public key and its SHA-256 fingerprint (what
    `lockerctl identity` prints for enrolment)."""
    return {"public_key": _b64(key.public_raw), "key_fingerprint": key.fingerprint}


def signed_json(report: dict[str, Any], key: DeviceIdentity) -> dict[str, Any]:
    """The report wrapped with its signature."""
    value = key.sign(dumps(report).encode("utf-8"))
    return {"report": report,
            "signature": {"alg": ALG, **device_fields(key), "value": _b64(value)}}


def digest(document: dict[str, Any]) -> str:
    """SHA-256 of the canonical signed document (what the chain records of it)."""
    return hashlib.sha256(dumps(document).encode("utf-8")).hexdigest()


def csv_rows(report: dict[str, Any]) -> list[list[str]]:
    """`section, day, carrier, metric, key, value` rows of every figure."""
    rows: list[list[str]] = [["section", "day", "carrier", "metric", "key", "value"]]
    cab = report["cabinet"]
    for name in ("id", "cabinet_name", "location", "registration_number", "timezone"):
        rows.append(["cabinet", "", "", name, "", str(cab[name])])
    rows.append(["cabinet", "", "", "device_key", "", cab["device_key"]["public_key"]])
    rows.append(["period", "", "", "from", "", report["period"]["from"]])
    rows.append(["period", "", "", "to", "", report["period"]["to"]])
    rows.append(["compartments", "", "", "total", "", str(report["compartments"]["total"])])
    for item in report["compartments"]["by_size"]:
        rows.append(["compartments", "", "", "by_size", item["size"], str(item["count"])])
    for entry in report["days"]:
        rows += _figures("days", entry["day"], entry["carrier"], entry, {"day", "carrier"})
    for mon in report["monitoring"]:
        rows += _figures("monitoring", mon["day"], "", mon, {"day"})
    for metric, value in report["totals"].items():
        rows.append(["totals", "", "", metric, "", str(value)])
    return rows


def _figures(section: str, day: str, carrier: str, entry: dict[str, Any], skip: set[str]
             ) -> list[list[str]]:
    """Rows of one day's entry: a list of pairs gives one row per pair (its value as `key`)."""
    rows: list[list[str]] = []
    for metric, value in entry.items():
        if metric in skip:
            continue
        if isinstance(value, list):
            for item in value:
                key, n = (str(v) for v in item.values())
                rows.append([section, day, carrier, metric, key, n])
        else:
            rows.append([section, day, carrier, metric, "", str(value)])
    return rows


def signed_csv(report: dict[str, Any], key: DeviceIdentity) -> str:
    """The CSV rendering with its signature line."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(csv_rows(report))
    text = buf.getvalue()
    value = _b64(key.sign(text.encode("utf-8")))
    return f"{text}{CSV_SIGNATURE_PREFIX}{ALG},{_b64(key.public_raw)},{value}\n"


@dataclass(frozen=True, slots=True)
class Verification:
    """The outcome of checking a report file."""

    ok: bool
    format: str
    key_fingerprint: str | None
    reason: str


def _check(pub_b64: str, sig_b64: str, data: bytes, fmt: str,
           expected_fingerprint: str | None) -> Verification:
    try:
        pub = base64.b64decode(pub_b64, validate=True)
        sig = base64.b64decode(sig_b64, validate=True)
    except ValueError as exc:
        return Verification(False, fmt, None, f"malformed key or signature: {exc}")
    if len(pub) != PUBLIC_BYTES:
        return Verification(False, fmt, None, "the public key is not 32 bytes")
    found = fingerprint(pub)
    # the enrolled fingerprint, whole (64 hex) or as the key id (its first 16)
    if expected_fingerprint is not None and expected_fingerprint.lower() not in (found,
                                                                                 found[:16]):
        return Verification(False, fmt, found,
                            f"signed by key {found}, expected {expected_fingerprint}")
    if not verify_signature(pub, sig, data):
        return Verification(False, fmt, found, "signature does not match the content")
    return Verification(True, fmt, found, "signature OK")


def verify(data: bytes, expected_fingerprint: str | None = None) -> Verification:
    """Check a JSON or CSV report file's signature (format told by its first byte)."""
    if data.lstrip()[:1] == b"{":
        try:
            doc = json.loads(data)
            report, sig = doc["report"], doc["signature"]
            if sig.get("alg") != ALG:
                return Verification(False, "json", None, f"unknown algorithm {sig.get('alg')!r}")
            payload = dumps(report).encode("utf-8")
            return _check(sig["public_key"], sig["value"], payload, "json", expected_fingerprint)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            return Verification(False, "json", None, f"not a signed report: {exc!r}")
    marker = b"\n" + CSV_SIGNATURE_PREFIX.encode()
    cut = data.rfind(marker)
    if cut < 0:
        return Verification(False, "csv", None, "no signature line")
    body, line = data[:cut + 1], data[cut + 1:].decode("utf-8", "replace").strip()
    parts = line.split(",")
    if len(parts) != 4 or parts[1] != ALG:
        return Verification(False, "csv", None, "malformed signature line")
    return _check(parts[2], parts[3], body, "csv", expected_fingerprint)
