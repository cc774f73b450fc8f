"""No personal value is readable in the database, its WAL, or any other file next to it."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from lockerd.domain.pins import hash_pin
from lockerd.oplog import OpLog, OplogKey, OutboxMessage
from lockerd.oplog.records import insert_parcel, update_parcel, upsert_courier

PHONE = "13812345678"
WAYBILL = "SF1234567889"
VERIFICATION = "RNV-7f3a9c-ZHANGSAN"
CONTENTS = "蓝色羊毛围巾 blue-scarf-unique"
CODE = "864213"
PIN = "739164"
NAME = "张三丰"
ADDRESS = "北京市海淀区中关村大街27号"
SECRETS = [PHONE, WAYBILL, VERIFICATION, CONTENTS, CODE, PIN, NAME, ADDRESS]


def _scan(directory: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in directory.rglob("*"):
        if not path.is_file():
            continue
        data = path.read_bytes()
        for secret in SECRETS:
            for enc in ("utf-8", "utf-16-le", "utf-16-be"):
                if secret.encode(enc) in data:
                    found.setdefault(path.name, []).append(f"{secret} ({enc})")
    return found


async def _demo(log: OpLog) -> None:
    now = datetime.now(UTC)

    def deposit(conn: sqlite3.Connection) -> None:
        insert_parcel(conn, parcel_id="p1", kind="delivery", carrier="sf", status="in_locker",
                      now=now, compartment=4, size="M", waybill=WAYBILL, recipient_phone=PHONE,
                      deadline=now + timedelta(days=3))
        insert_parcel(conn, parcel_id="d1", kind="dropoff", carrier="sf", status="received",
                      now=now, compartment=5, sender_verification=VERIFICATION,
                      declared_contents=CONTENTS, flags={"insured": False})
        salt = bytes(range(16))
        upsert_courier(conn, carrier="sf", courier_id="c7", now=now,
                       pin_hash=(hash_pin(PIN, salt, 10_000).encode(), salt),
                       expires=now + timedelta(days=30))

    await log.append("parcel.deposited", actor="courier:sf/c7", body={"size": "M"},
                     compartment=4, parcel_id="p1", mutate=deposit, outbox=[
                         OutboxMessage("sf", "lockers/CAB/carriers/sf/events",
                                       {"type": "parcel.deposited",
                                        "body": {"waybill": WAYBILL, "recipient": NAME,
                                                 "address": ADDRESS, "pickup_code": CODE}})])
    for i in range(50):
        await log.append("door.polled", actor="doors", body={"i": i})
    await log.append("parcel.picked_up", actor="panel", body={}, parcel_id="p1",
                     mutate=lambda c: update_parcel(c, "p1", now=now, status="picked_up",
                                                    closed_at=now))


async def test_no_personal_value_on_disk(db_path: Path, key: OplogKey) -> None:
    log = await OpLog.open(db_path, key)
    try:
        await _demo(log)
        wal = db_path.with_name(db_path.name + "-wal")
        assert wal.exists()
        assert wal.stat().st_size > 0
        assert _scan(db_path.parent) == {}
        for path in db_path.parent.iterdir():
            assert path.stat().st_mode & 0o077 == 0, path.name
        rows = await log.outbox_pending(10)
        assert WAYBILL.encode() in rows[0].payload_bytes  # decrypted through the store
    finally:
        await log.close()
    assert _scan(db_path.parent) == {}


async def test_plain_sqlite_would_leak(tmp_path: Path) -> None:
    """The scanner itself works: the same demo on plain sqlite3 shows the values."""
    log = await OpLog.open(tmp_path / "plain.db", None, cipher=False)
    try:
        await _demo(log)
    finally:
        await log.close()
    leaked = _scan(tmp_path)
    assert any(PHONE in hit for hits in leaked.values() for hit in hits)
    assert any(CODE in hit for hits in leaked.values() for hit in hits)  # the outbox carries it
    assert all(PIN not in hit for hits in leaked.values() for hit in hits)  # only its hash
