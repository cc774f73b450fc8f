"""Where the parcel flows keep their state: the encrypted log's live_state and records tables.

Each decision's changes become one `mutate` of the append that records it, so the chain row,
the outbox events, the records tables (parcels, couriers) and the live state commit together.
After a restart the cabinet is rebuilt from `live_state` alone (`load_state`). A parcel leaves
`live_state` the moment it is finished (picked up, returned, collected, rolled back, removed):
from then on only its `parcels` row holds it, and retention purges that row's personal columns.

The chain body (`chain_body`) carries facts only: ids, compartments, sizes, statuses, error
codes, evidence hashes. What lockerd.privacy.PERSONAL keeps out of the chain (waybills, code
digests, PIN hashes, verification references, declared contents) stays in the tables, which
SQLCipher encrypts and retention can purge.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from lockerd.domain import LIVE_STATUSES, CabinetState, Change, Decision, Parcel
from lockerd.domain.model import (
    Courier,
    SetCompartment,
    SetCourier,
    SetExpectation,
    SetLimiter,
    SetParcel,
    SetRevokedPass,
)
from lockerd.domain.pins import salt_of
from lockerd.domain.timefmt import format_ts
from lockerd.oplog import records
from lockerd.privacy import chain_safe

Mutation = Callable[[Any], None]


def chain_body(decision: Decision) -> dict[str, Any]:
    """The operation body of a decision: its facts and a non-personal summary of its changes.

    Every key the privacy registry keeps out of the chain is dropped from the record's body
    (at any depth); that a waybill was given is kept as `has_waybill`.
    """
    body: dict[str, Any] = chain_safe(decision.record.body)
    if "waybill" in decision.record.body:
        body["has_waybill"] = decision.record.body["waybill"] is not None
    body["ok"] = decision.ok
    if decision.error is not None:
        body["error"] = decision.error.value
    body["changes"] = [_summary(c) for c in decision.changes]
    if decision.events:
        body["events"] = [e.type for e in decision.events]
    return body


def _summary(change: Change) -> dict[str, Any]:
    if isinstance(change, SetParcel):
        p = change.value
        return {"entity": "parcel", "id": p.id, "kind": p.kind.value, "carrier": p.carrier,
                "status": p.status.value, "compartment": p.compartment, "size": p.size.value}
    if isinstance(change, SetCompartment):
        c = change.value
        return {"entity": "compartment", "id": c.id, "state": c.state.value,
                "parcel_id": c.parcel_id, "blocked_reason": c.blocked_reason,
                "pending": None if c.pending is None else c.pending.op.value}
    if isinstance(change, SetCourier):
        r = change.value
        return {"entity": "courier", "carrier": r.carrier, "courier_id": r.courier_id,
                "expires": format_ts(r.expires), "revoked": r.revoked_at is not None}
    if isinstance(change, SetLimiter):
        lim = change.value
        return {"entity": "limiter", "panel": lim.panel, "failures": len(lim.failures),
                "lockouts": lim.lockouts,
                "locked_until": None if lim.locked_until is None else format_ts(lim.locked_until)}
    if isinstance(change, SetRevokedPass):
        carrier, pass_id = change.key.split("/", 1)
        return {"entity": "revoked_pass", "carrier": carrier, "pass_id": pass_id,
                "set": change.value is not None}
    assert isinstance(change, SetExpectation)
    carrier = change.key.split("/", 1)[0]
    return {"entity": "expectation", "carrier": carrier, "set": change.value is not None}


def _live_key(change: Change) -> tuple[str, str]:
    if isinstance(change, SetParcel):
        return "parcel", change.value.id
    if isinstance(change, SetCompartment):
        return "compartment", str(change.value.id)
    if isinstance(change, SetCourier):
        return "courier", change.value.key
    if isinstance(change, SetLimiter):
        return "limiter", change.value.panel
    if isinstance(change, SetRevokedPass):
        return "revoked_pass", change.key
    return "expectation", change.key


def _live_value(change: Change) -> str | None:
    """JSON to keep, or None to delete the row (finished parcel, consumed expectation, pruned
    limiter)."""
    if isinstance(change, SetParcel) and change.value.status not in LIVE_STATUSES:
        return None
    if isinstance(change, (SetExpectation, SetRevokedPass)) and change.value is None:
        return None
    if isinstance(change, SetLimiter) and change.value.is_empty:
        return None
    value = change.value
    assert value is not None
    return value.model_dump_json()


def plan_writes(before: CabinetState, changes: Sequence[Change], now: datetime) -> Mutation | None:
    """The domain-table writes of a decision, computed against the state before it applies."""
    if not changes:
        return None
    live: list[tuple[str, str, str | None]] = [(*_live_key(c), _live_value(c)) for c in changes]
    steps: list[Mutation] = []
    for change in changes:
        if isinstance(change, SetParcel):
            prior_parcel = before.parcels.get(change.value.id)
            steps.append(_parcel_write(change.value, prior_parcel is None, now))
            steps.extend(_identity_writes(change.value, prior_parcel))
        elif isinstance(change, SetCourier):
            prior = before.couriers.get(change.value.key)
            steps.append(_courier_write(change.value, prior, now))
    ts = format_ts(now)

    def mutate(conn: Any) -> None:
        for entity, key, value in live:
            if value is None:
                conn.execute("DELETE FROM live_state WHERE entity = ? AND key = ?", (entity, key))
            else:
                conn.execute("INSERT INTO live_state (entity, key, value, updated_at) "
                             "VALUES (?,?,?,?) ON CONFLICT(entity, key) DO UPDATE SET "
                             "value = excluded.value, updated_at = excluded.updated_at",
                             (entity, key, value, ts))
        for step in steps:
            step(conn)

    return mutate


def _flags(p: Parcel) -> dict[str, Any]:
    return {"courier_id": p.courier_id, "reason": p.reason, "fee_cents": p.fee_cents,
            "deposited_at": None if p.deposited_at is None else format_ts(p.deposited_at)}


def _parcel_write(p: Parcel, new: bool, now: datetime) -> Mutation:
    closed = p.closed_at if p.closed_at is not None or p.status in LIVE_STATUSES else now

    def write(conn: Any) -> None:
        if new:
            records.insert_parcel(conn, parcel_id=p.id, kind=p.kind.value, carrier=p.carrier,
                                  status=p.status.value, now=now, compartment=p.compartment,
                                  size=p.size.value, waybill=p.waybill,
                                  sender_verification=p.verification_ref or None,
                                  declared_contents=p.declared_contents or None,
                                  deadline=p.deadline, flags=_flags(p))
        else:
            records.update_parcel(conn, p.id, now=now, status=p.status.value,
                                  compartment=p.compartment, deadline=p.deadline, flags=_flags(p),
                                  closed_at=closed)

    return write


def _identity_writes(p: Parcel, prior: Parcel | None) -> list[Mutation]:
    """A parcel's identity check, kept the first time it appears on it (Art. 9 para. 2)."""
    out: list[Mutation] = []
    for purpose, check, before in (
            ("dropoff", p.identity, None if prior is None else prior.identity),
            ("handover", p.handover_check, None if prior is None else prior.handover_check)):
        if check is not None and check != before:
            data = {**check.model_dump(mode="json"), "checked_at": format_ts(check.checked_at)}

            def write(conn: Any, purpose: str = purpose, data: dict[str, Any] = data) -> None:
                records.insert_identity_check(conn, parcel_id=p.id, purpose=purpose, check=data)

            out.append(write)
    return out


def _courier_write(c: Courier, prior: Courier | None, now: datetime) -> Mutation:
    def write(conn: Any) -> None:
        if c.revoked_at is not None and prior is not None and prior.revoked_at is None:
            records.revoke_courier(conn, carrier=c.carrier, courier_id=c.courier_id, now=now)
        elif c.revoked_at is None:
            # the records table keeps the domain's PBKDF2 string; pin_salt repeats its salt
            records.upsert_courier(conn, carrier=c.carrier, courier_id=c.courier_id,
                                   expires=c.expires, now=now,
                                   pin_hash=(c.pin_hash.encode(), salt_of(c.pin_hash)))

    return write


def load_state(conn: Any) -> dict[str, Any]:
    """The live state as CabinetState data (validated by the caller)."""
    data: dict[str, dict[str, Any]] = {"compartments": {}, "parcels": {}, "couriers": {},
                                       "limiters": {}, "expected": {}, "revoked_passes": {}}
    table = {"compartment": "compartments", "parcel": "parcels", "courier": "couriers",
             "limiter": "limiters", "expectation": "expected", "revoked_pass": "revoked_passes"}
    # Other packages keep rows of their own here (sync: refused-command counts): only ours.
    for entity, key, value in conn.execute(
            f"SELECT entity, key, value FROM live_state WHERE entity IN ({','.join('?' * len(table))})",  # noqa: S608
            list(table)):
        data[table[entity]][key] = json.loads(value)
    return data
