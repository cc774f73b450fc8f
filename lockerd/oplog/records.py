"""Records tables of the log (parcels, couriers): writes for `mutate`, reads for audits and tests.

Write helpers take the writer's connection inside `OpLog.append(..., mutate=...)`, so a records
change is committed together with the operation that records it (lockerd.parcels.store plans
them). Read helpers take any connection (use them through `OpLog.read`). Personal columns
(lockerd.privacy.PERSONAL) are nullable: retention nulls them once a parcel is closed and its
retention period has passed. Pickup codes and PINs are checked by the domain against its live
state, never against these tables.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from lockerd.oplog.canonical import dumps, format_ts, parse_ts

ParcelKind = Literal["delivery", "dropoff"]

# Columns a caller may change with update_parcel (id, kind, carrier and created_at are fixed).
_UPDATABLE = frozenset({
    "compartment", "status", "size", "waybill", "recipient_phone", "sender_verification",
    "declared_contents", "deadline", "flags", "closed_at",
})

PARCEL_COLUMN_NAMES = ("id", "kind", "carrier", "compartment", "status", "size", "waybill",
                       "recipient_phone", "sender_verification", "declared_contents", "deadline",
                       "flags", "created_at", "updated_at", "closed_at", "purged_at")
PARCEL_COLUMNS = ", ".join(PARCEL_COLUMN_NAMES)


@dataclass(frozen=True, slots=True)
class ParcelRow:
    """A parcel as stored. Personal fields are None once purged (purged_at set)."""

    id: str
    kind: str
    carrier: str
    compartment: int | None
    status: str
    size: str | None
    waybill: str | None
    recipient_phone: str | None
    sender_verification: str | None
    declared_contents: str | None
    deadline: datetime | None
    flags: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    purged_at: datetime | None


@dataclass(frozen=True, slots=True)
class CourierRow:
    """A courier grant by a carrier; only the PIN's salted hash is stored (the domain's PBKDF2)."""

    carrier: str
    courier_id: str
    pin_hash: bytes | None
    pin_salt: bytes | None
    expires: datetime
    revoked: bool
    granted_at: datetime
    revoked_at: datetime | None

    def usable(self, now: datetime) -> bool:
        """Not revoked and not expired."""
        return not self.revoked and now < self.expires


def _ts(value: datetime | None) -> str | None:
    return None if value is None else format_ts(value)


def _dt(value: str | None) -> datetime | None:
    return None if value is None else parse_ts(value)


# ----------------------------------------------------------------------------- writes


def insert_parcel(conn: Any, *, parcel_id: str, kind: ParcelKind, carrier: str, status: str,
                  now: datetime, compartment: int | None = None, size: str | None = None,
                  waybill: str | None = None, recipient_phone: str | None = None,
                  sender_verification: str | None = None, declared_contents: str | None = None,
                  deadline: datetime | None = None, flags: dict[str, Any] | None = None) -> None:
    """Create a parcel row."""
    conn.execute(
        f"INSERT INTO parcels ({PARCEL_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",  # noqa: S608
        (parcel_id, kind, carrier, compartment, status, size, waybill, recipient_phone,
         sender_verification, declared_contents, _ts(deadline), dumps(flags or {}),
         format_ts(now), format_ts(now), None, None))


def update_parcel(conn: Any, parcel_id: str, *, now: datetime, **fields: Any) -> None:
    """Change some columns of a parcel (see _UPDATABLE); raises KeyError if it does not exist."""
    unknown = set(fields) - _UPDATABLE
    if unknown:
        raise ValueError(f"cannot update parcel columns {sorted(unknown)}")
    values: list[Any] = []
    sets: list[str] = []
    for name, raw in fields.items():
        sets.append(f"{name} = ?")
        if name == "flags":
            values.append(dumps(raw))
        elif isinstance(raw, datetime):
            values.append(format_ts(raw))
        else:
            values.append(raw)
    sets.append("updated_at = ?")
    values.append(format_ts(now))
    cur = conn.execute(f"UPDATE parcels SET {', '.join(sets)} WHERE id = ?",  # noqa: S608
                       [*values, parcel_id])
    if cur.rowcount != 1:
        raise KeyError(f"no parcel {parcel_id!r}")


def upsert_courier(conn: Any, *, carrier: str, courier_id: str, expires: datetime,
                   now: datetime, pin_hash: tuple[bytes, bytes]) -> None:
    """Grant (or re-grant) a courier with the (hash, salt) of its PIN made by the domain."""
    digest, salt = pin_hash
    conn.execute(
        "INSERT INTO couriers (carrier, courier_id, pin_hash, pin_salt, expires, revoked, "
        "granted_at, revoked_at) VALUES (?,?,?,?,?,0,?,NULL) "
        "ON CONFLICT(carrier, courier_id) DO UPDATE SET pin_hash = excluded.pin_hash, "
        "pin_salt = excluded.pin_salt, expires = excluded.expires, revoked = 0, "
        "granted_at = excluded.granted_at, revoked_at = NULL",
        (carrier, courier_id, digest, salt, format_ts(expires), format_ts(now)))


def revoke_courier(conn: Any, *, carrier: str, courier_id: str, now: datetime) -> bool:
    """Revoke a grant; False when there was no such courier."""
    cur = conn.execute("UPDATE couriers SET revoked = 1, revoked_at = ? WHERE carrier = ? AND "
                       "courier_id = ?", (format_ts(now), carrier, courier_id))
    return bool(cur.rowcount)


# ----------------------------------------------------------------------------- reads


def _parcel(row: Sequence[Any]) -> ParcelRow:
    return ParcelRow(
        id=row[0], kind=row[1], carrier=row[2], compartment=row[3], status=row[4], size=row[5],
        waybill=row[6], recipient_phone=row[7], sender_verification=row[8],
        declared_contents=row[9], deadline=_dt(row[10]), flags=json.loads(row[11]),
        created_at=parse_ts(row[12]), updated_at=parse_ts(row[13]), closed_at=_dt(row[14]),
        purged_at=_dt(row[15]))


def get_parcel(conn: Any, parcel_id: str) -> ParcelRow | None:
    """One parcel by id."""
    row = conn.execute(f"SELECT {PARCEL_COLUMNS} FROM parcels WHERE id = ?",  # noqa: S608
                       (parcel_id,)).fetchone()
    return None if row is None else _parcel(row)


def find_parcels(conn: Any, *, status: Sequence[str] | None = None,
                 compartment: int | None = None, carrier: str | None = None,
                 waybill: str | None = None, open_only: bool = False,
                 limit: int = 1000) -> list[ParcelRow]:
    """Parcels filtered by status, compartment, carrier, waybill; `open_only`: not closed."""
    where: list[str] = []
    args: list[Any] = []
    if status:
        where.append(f"status IN ({','.join('?' * len(status))})")
        args.extend(status)
    if compartment is not None:
        where.append("compartment = ?")
        args.append(compartment)
    if carrier is not None:
        where.append("carrier = ?")
        args.append(carrier)
    if waybill is not None:
        where.append("waybill = ?")
        args.append(waybill)
    if open_only:
        where.append("closed_at IS NULL")
    sql = f"SELECT {PARCEL_COLUMNS} FROM parcels"  # noqa: S608
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY created_at, id LIMIT ?"
    return [_parcel(r) for r in conn.execute(sql, [*args, limit]).fetchall()]


def get_courier(conn: Any, carrier: str, courier_id: str) -> CourierRow | None:
    """A courier grant."""
    row = conn.execute("SELECT carrier, courier_id, pin_hash, pin_salt, expires, revoked, "
                       "granted_at, revoked_at FROM couriers WHERE carrier = ? AND courier_id = ?",
                       (carrier, courier_id)).fetchone()
    if row is None:
        return None
    return CourierRow(carrier=row[0], courier_id=row[1],
                      pin_hash=None if row[2] is None else bytes(row[2]),
                      pin_salt=None if row[3] is None else bytes(row[3]),
                      expires=parse_ts(row[4]), revoked=bool(row[5]),
                      granted_at=parse_ts(row[6]), revoked_at=_dt(row[7]))


def insert_identity_check(conn: Any, *, parcel_id: str, purpose: str, check: Mapping[str, Any]
                          ) -> None:
    """Keep one identity check's masked result (Art. 9 para. 2); `check` is the domain's
    IdentityCheck as JSON data (its carrier-keyed hash is not kept: it only matches a handover)."""
    conn.execute("INSERT INTO identity_checks (parcel_id, purpose, method, outcome, checked_at, "
                 "name_masked, id_masked, id_hash, sam_id, reference, relation) "
                 "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                 (parcel_id, purpose, check["method"], check["outcome"], check["checked_at"],
                  check.get("name_masked"), check.get("id_masked"), check.get("id_hash"),
                  check.get("sam_id"), check.get("reference"), check.get("relation")))
