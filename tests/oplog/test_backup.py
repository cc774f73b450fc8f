"""Backup while the log is busy restores to an identical, verifying log; an altered backup is refused.

The oplog component and a real evidence store run on a state directory; writers append
operations with outbox rows, parcel rows and evidence snapshots while `log.backup` is called
through the API dispatcher as root. The archive is packed as `lockerctl backup` packs it and
restored into the same state directory after the component stopped.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import tarfile
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lockerd.api.server import ALL_ROLES, ApiServer, Caller, Role
from lockerd.app import daemon
from lockerd.camera import guard
from lockerd.camera.evidence import EvidenceStore
from lockerd.oplog import OpLog, OplogKey, OutboxMessage, backup, sqlcipher
from lockerd.oplog.canonical import row_hash
from lockerd.oplog.component import OplogComponent
from lockerd.oplog.records import insert_parcel
from tests.fixtures.oplog import example_config

ROOT = Caller(pid=1, uid=0, gid=0, roles=ALL_ROLES)
AUDITOR = Caller(pid=2, uid=1500, gid=1500, roles=frozenset({Role.AUDIT}))
FRAME = np.full((48, 64, 3), 128, dtype=np.uint8)


class Running:
    """The oplog component with an API dispatcher and a real evidence store."""

    def __init__(self, comp: OplogComponent, api: ApiServer, evidence: EvidenceStore,
                 state: Path, key: OplogKey) -> None:
        self.comp, self.api, self.evidence, self.state, self.key = comp, api, evidence, state, key

    async def call(self, caller: Caller, method: str) -> dict[str, Any]:
        line = json.dumps({"id": 1, "method": method, "params": {}}).encode()
        return await self.api.dispatch(line, caller)

    async def stop(self) -> None:
        await self.evidence.close()
        await self.comp.stop()


@pytest.fixture
async def running(tmp_path: Path, key_file: Path, key: OplogKey) -> AsyncIterator[Running]:
    cfg = example_config(tmp_path, key_file)
    api = ApiServer(cfg.api, cfg.paths.socket)
    comp = OplogComponent(cfg.oplog, cfg.paths, api, cabinet=cfg.cabinet,
                          compartments=cfg.compartments)
    await comp.start()
    evidence = EvidenceStore(cfg.paths.state_dir / backup.EVIDENCE_FILE,
                             lambda: comp.store.secret(backup.EVIDENCE_SECRET),
                             lambda: (time.monotonic(), FRAME))
    await evidence.open()
    run = Running(comp, api, evidence, cfg.paths.state_dir, key)
    try:
        yield run
    finally:
        await run.stop()


async def _busy(run: Running, stop: asyncio.Event, writers: int = 4) -> int:
    """Deliveries as the flows record them: an evidence snapshot, then one operation with its
    parcel row and carrier event. Returns how many were committed."""
    store = run.comp.store
    done = 0

    async def writer(w: int) -> None:
        nonlocal done
        n = 0
        while not stop.is_set():
            n += 1
            pid = f"p-{w}-{n}"
            ref = await run.evidence.snapshot(f"deliver.{w}.{n}")
            assert ref is not None

            def mutate(conn: Any, pid: str = pid) -> None:
                insert_parcel(conn, parcel_id=pid, kind="delivery", carrier="sf",
                              status="in_locker", now=datetime.now(UTC), compartment=w + 1,
                              waybill="SF1234567889")

            await store.append("deliver.confirm", actor=f"courier:sf/c-{w}",
                               body={"evidence": {"snapshot": ref.as_dict()}}, parcel_id=pid,
                               compartment=w + 1, mutate=mutate,
                               outbox=[OutboxMessage("sf", "lockers/T/carriers/sf/events",
                                                     {"type": "parcel.deposited",
                                                      "body": {"parcel_id": pid}})])
            done += 1

    await asyncio.gather(*(writer(w) for w in range(writers)))
    return done


def _rows(conn: Any, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in conn.execute(sql).fetchall()]


async def _dump(store: OpLog) -> dict[str, Any]:
    def read(conn: Any) -> dict[str, Any]:
        return {
            "operations": _rows(conn, "SELECT * FROM operations ORDER BY seq"),
            "outbox": _rows(conn, "SELECT id, stream, seq, topic, payload, op_seq FROM outbox "
                                  "ORDER BY id"),
            "parcels": _rows(conn, "SELECT id, compartment, waybill FROM parcels ORDER BY id"),
            "streams": dict(_rows(conn, "SELECT stream, last_seq FROM outbox_streams")),
            "secrets": _rows(conn, "SELECT name, value FROM secrets ORDER BY name"),
        }

    return await store.read(read)


async def _take(run: Running, out: Path) -> dict[str, Any]:
    reply = await run.call(ROOT, "log.backup")
    assert reply["ok"], reply
    stage = Path(reply["result"]["stage"])
    with out.open("xb") as fh:
        backup.pack(stage, fh)
    shutil.rmtree(stage)
    result: dict[str, Any] = reply["result"]
    return result


def _digests(state: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(state.iterdir()) if p.is_file()}


async def test_backup_during_a_busy_run_restores_to_an_identical_log(running: Running,
                                                                   tmp_path: Path) -> None:
    stop = asyncio.Event()
    stream = asyncio.create_task(_busy(running, stop))
    await asyncio.sleep(0.5)
    archive = tmp_path / "backup.tar"
    taken = await _take(running, archive)
    await asyncio.sleep(0.3)
    stop.set()
    written = await stream
    head = taken["manifest"]["head_seq"]
    live = await _dump(running.comp.store)
    live_head = live["operations"][-1][0]
    assert written > 20
    assert 2 < head < live_head  # taken mid-stream; the stream went on after it
    assert taken["manifest"]["verified"]
    assert taken["manifest"]["files"][backup.EVIDENCE_FILE]["size"] > 0
    record = [op for op in live["operations"] if op[2] == "oplog.backup"]
    assert [r[0] for r in record] == [taken["record_seq"]]
    assert json.loads(record[0][6])["head_seq"] == head
    await running.stop()

    report = await backup.restore(archive, running.state, running.key, actor="uid:0")
    assert report["restored_head_seq"] == head
    assert report["replaced_head_seq"] == live_head
    assert report["lost_operations"] == live_head - head
    assert report["matched_backup_record"] == taken["record_seq"]
    assert (Path(report["kept_aside"]) / backup.LOG_FILE).exists()

    restored = await OpLog.open(running.state / backup.LOG_FILE, running.key)
    try:
        assert (await restored.verify()).ok
        got = await _dump(restored)
        evidence_key = await restored.secret(backup.EVIDENCE_SECRET)
    finally:
        await restored.close()
    # Identical up to the backup's head, nothing after it but the restore's own record.
    assert got["operations"][:-1] == live["operations"][:head]
    assert got["operations"][-1][2] == "oplog.restored"
    assert got["outbox"] == [r for r in live["outbox"] if r[5] <= head]
    in_backup = {op[5] for op in live["operations"][:head] if op[5]}
    assert {p[0] for p in got["parcels"]} == in_backup
    assert got["parcels"] == [p for p in live["parcels"] if p[0] in in_backup]
    assert got["secrets"] == live["secrets"]
    # Carriers saw event numbers up to the live log's: new events continue after them.
    assert got["streams"] == live["streams"]
    # Every snapshot the restored chain names is in the restored evidence store, unchanged.
    store = EvidenceStore(running.state / backup.EVIDENCE_FILE, evidence_key, lambda: None)
    await store.open()
    try:
        for op in got["operations"]:
            snap = json.loads(op[6]).get("evidence", {}).get("snapshot")
            if snap:
                jpeg = await store.load(snap["id"])
                assert jpeg is not None
                assert hashlib.sha256(jpeg).hexdigest() == snap["sha256"]
    finally:
        await store.close()


async def test_backup_is_root_only(running: Running) -> None:
    reply = await running.call(AUDITOR, "log.backup")
    assert reply["error"]["code"] == "forbidden"
    assert not (running.state / backup.STAGING_DIR).exists()


def _repack(archive: Path, work: Path, change: Any) -> None:
    """Unpack, let `change(work)` alter it, pack it again in place."""
    work.mkdir()
    with tarfile.open(archive) as tar:
        tar.extractall(work, filter="data")
    change(work)
    archive.unlink()
    with archive.open("xb") as fh:
        backup.pack(work, fh)


def _fix_manifest(work: Path, **head: Any) -> None:
    manifest = json.loads((work / backup.MANIFEST).read_text())
    for name, meta in manifest["files"].items():
        meta["sha256"] = backup.sha256_file(work / name)
        meta["size"] = (work / name).stat().st_size
    manifest.update(head)
    (work / backup.MANIFEST).write_text(json.dumps(manifest))


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x40
    path.write_bytes(bytes(data))


def _edit_row(work: Path, key: bytes, *, rehash: bool) -> dict[str, Any]:
    """Change operation 3's body with the key; with `rehash`, recompute every later hash too."""
    conn = sqlcipher.connect(work / backup.LOG_FILE, key)
    try:
        conn.execute("UPDATE operations SET body = '{\"reason\":\"edited\"}' WHERE seq = 3")
        if rehash:
            rows = conn.execute("SELECT seq, ts, kind, actor, compartment, parcel_id, body, "
                                "prev_hash FROM operations ORDER BY seq").fetchall()
            prev = rows[0][7]
            for seq, ts, kind, actor, comp, pid, body, _prev in rows:
                digest = row_hash(seq, ts, kind, actor, comp, pid, body, prev)
                conn.execute("UPDATE operations SET prev_hash = ?, hash = ? WHERE seq = ?",
                             (prev, digest, seq))
                prev = digest
            head = {"head_hash": prev}
        else:
            head = {}
        conn.execute("PRAGMA journal_mode = DELETE").fetchone()
    finally:
        conn.close()
    return head


TAMPERING = {
    "bytes changed": ("does not match its manifest digest",
                      lambda w, k: _flip(w / backup.LOG_FILE, 9000)),
    "bytes and manifest changed": ("fail their HMAC",
                                   lambda w, k: (_flip(w / backup.LOG_FILE, 9000),
                                                 _fix_manifest(w))),
    "row edited with the key": ("chain is broken at operation 3",
                                lambda w, k: _fix_manifest(w, **_edit_row(w, k, rehash=False))),
    "chain rewritten with the key": ("does not match the record made when this backup was taken",
                                     lambda w, k: _fix_manifest(w, **_edit_row(w, k, rehash=True))),
    "not a backup": ("unexpected member",
                     lambda w, k: (w / "notes.txt").write_text("x")),
}


@pytest.mark.parametrize("how", sorted(TAMPERING))
async def test_an_altered_backup_is_refused_and_nothing_replaced(running: Running,
                                                                tmp_path: Path, how: str) -> None:
    for i in range(3):
        await running.comp.store.append("maintenance.open", actor="uid:0",
                                        body={"reason": f"check {i}"}, compartment=1)
    archive = tmp_path / "backup.tar"
    await _take(running, archive)
    await running.stop()
    message, change = TAMPERING[how]
    if how == "not a backup":
        def add_file(work: Path) -> None:
            change(work, running.key.raw)
            manifest = json.loads((work / backup.MANIFEST).read_text())
            manifest["files"]["notes.txt"] = {"sha256": backup.sha256_file(work / "notes.txt"),
                                              "size": 1}
            (work / backup.MANIFEST).write_text(json.dumps(manifest))

        _repack(archive, tmp_path / "work", add_file)
    else:
        _repack(archive, tmp_path / "work", lambda w: change(w, running.key.raw))
    before = _digests(running.state)
    with pytest.raises(backup.BackupRefused, match=message):
        await backup.restore(archive, running.state, running.key, actor="uid:0")
    assert _digests(running.state) == before
    assert sorted(p.name for p in running.state.iterdir() if p.is_dir()) == [backup.STAGING_DIR]


async def test_a_backup_made_with_another_key_is_refused_by_name(running: Running,
                                                                tmp_path: Path) -> None:
    archive = tmp_path / "backup.tar"
    await _take(running, archive)
    await running.stop()
    other = OplogKey.generate()
    with pytest.raises(backup.BackupRefused,
                       match=f"made with key {running.key.fingerprint}, the key given is "
                             f"{other.fingerprint}"):
        await backup.restore(archive, running.state, other, actor="uid:0")


def test_file_and_secret_names_agree_with_the_daemon_and_camera() -> None:
    assert backup.EVIDENCE_FILE == daemon.EVIDENCE_DB
    assert backup.EVIDENCE_SECRET == guard.EVIDENCE_KEY
