"""Retention purge: expired personal data destroyed, destruction recorded, chain still verifies."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from lockerd.config import Oplog as OplogConfig
from lockerd.oplog import CommandRecord, OpLog, OplogKey, OutboxMessage
from lockerd.oplog.records import (
    find_parcels,
    get_courier,
    get_parcel,
    insert_identity_check,
    insert_parcel,
    revoke_courier,
    update_parcel,
    upsert_courier,
)
from lockerd.oplog.retention import purge

T0 = datetime(2026, 1, 1, tzinfo=UTC)
PIN_HASH = (b"pbkdf2_sha256$10000$00112233445566778899aabbccddeeff$" + b"ab" * 32,
            bytes.fromhex("00112233445566778899aabbccddeeff"))


async def test_purge_destroys_and_records(db_path: Path, key: OplogKey) -> None:
    now = [T0]
    log = await OpLog.open(db_path, key, clock=lambda: now[0])
    policy = OplogConfig(parcel_personal_days=30, parcel_days=60, courier_days=10,
                         outbox_sent_days=7, command_days=7, identity_check_days=30)
    try:
        def setup(conn: sqlite3.Connection) -> None:
            for pid, closed in (("old", True), ("mid", True), ("open", False)):
                insert_parcel(conn, parcel_id=pid, kind="delivery", carrier="sf",
                              status="in_locker", now=T0, waybill=f"SF00{pid}99",
                              recipient_phone="13812345678", sender_verification="RN-1",
                              declared_contents="books")
                if closed:
                    update_parcel(conn, pid, now=T0, status="picked_up", closed_at=T0)
            upsert_courier(conn, carrier="sf", courier_id="gone", pin_hash=PIN_HASH, now=T0,
                           expires=T0 + timedelta(days=365))
            revoke_courier(conn, carrier="sf", courier_id="gone", now=T0)
            upsert_courier(conn, carrier="sf", courier_id="active", pin_hash=PIN_HASH, now=T0,
                           expires=T0 + timedelta(days=365))
            # identity checks (their own class): one past its 30 days at the first purge
            for pid, at in (("old", "2026-01-01T00:00:00.000Z"), ("mid", "2026-01-25T00:00:00.000Z")):
                insert_identity_check(conn, parcel_id=pid, purpose="dropoff", check={
                    "method": "reader", "outcome": "passed", "checked_at": at,
                    "name_masked": "测*", "id_masked": "9****************9",
                    "id_hash": "hmac-sha256:" + "0" * 64, "sam_id": "05.01-20240101-1-42"})

        await log.append("setup", actor="test", body={}, mutate=setup,
                         command=CommandRecord("sf", "cmd-1", {"ok": True}),
                         outbox=[OutboxMessage("sf", "t", {"x": 1})])
        sent = await log.outbox_pending(10)
        await log.outbox_mark_sent([r.id for r in sent])
        # "mid" closes later, so it is still inside its period at the first purge
        now[0] = T0 + timedelta(days=20)
        await log.append("closed", actor="test", body={},
                         mutate=lambda c: update_parcel(c, "mid", now=now[0], closed_at=now[0]))
        head_before = log.head[0]

        now[0] = T0 + timedelta(days=31)
        done = await purge(log, policy)
        assert done == {"parcel_personal": 1, "parcels": 0, "couriers": 1, "outbox_sent": 1,
                        "command_ids": 1, "identity_checks": 1}
        left = await log.read(lambda c: c.execute(
            "SELECT parcel_id FROM identity_checks").fetchall())
        assert [r[0] for r in left] == ["mid"]
        old = await log.read(lambda c: get_parcel(c, "old"))
        assert old is not None
        assert old.purged_at == now[0]
        assert (old.waybill, old.recipient_phone, old.sender_verification,
                old.declared_contents) == (None, None, None, None)
        assert (old.status, old.carrier) == ("picked_up", "sf")  # the row itself stays
        mid = await log.read(lambda c: get_parcel(c, "mid"))
        assert mid is not None
        assert mid.waybill == "SF00mid99"
        still_open = await log.read(lambda c: get_parcel(c, "open"))
        assert still_open is not None
        assert still_open.recipient_phone == "13812345678"
        assert await log.read(lambda c: get_courier(c, "sf", "gone")) is None
        assert await log.read(lambda c: get_courier(c, "sf", "active")) is not None
        assert await log.command_reply("sf", "cmd-1") is None

        records = await log.operations(after_seq=head_before)
        assert [o.kind for o in records] == ["oplog.destroyed"] * 5
        classes = {o.body["class"]: o.body for o in records}
        assert classes["identity_checks"]["count"] == 1
        assert classes["identity_checks"]["action"] == "deleted"
        assert classes["parcel_personal"]["count"] == 1
        assert classes["parcel_personal"]["action"] == "nulled"
        assert classes["parcel_personal"]["range_from"] == "2026-01-01T00:00:00.000Z"
        assert all(o.actor == "lockerd:retention" for o in records)
        table = await log.read(lambda c: c.execute(
            "SELECT record_class, count, by_actor FROM destructions ORDER BY id").fetchall())
        assert ("parcel_personal", 1, "lockerd:retention") in table
        assert (await log.verify()).ok

        # idempotent: a second run destroys and records nothing
        head = log.head[0]
        assert sum((await purge(log, policy)).values()) == 0
        assert log.head[0] == head

        now[0] = T0 + timedelta(days=61)
        done = await purge(log, policy)
        assert done["parcel_personal"] == 1
        assert done["parcels"] == 1
        remaining = await log.read(lambda c: [p.id for p in find_parcels(c)])
        assert remaining == ["mid", "open"]
        assert (await log.verify()).ok
    finally:
        await log.close()
