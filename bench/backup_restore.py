"""Benchmark: `log.backup` + pack and `restore` on a large log (default 100k operations) and evidence store.

Builds the log with real appends (operation + parcel row + outbox row each, 64 at a time), an
evidence store of camera-sized JPEGs, then times the daemon's staging copy (SQLite online
backup, verify), the pack into one tar, and the restore (unpack, digests, HMAC and quick
checks, chain walk, swap, reopen, record). Usage:
python bench/backup_restore.py [--ops 100000] [--snapshots 1000] [--dir /var/lib/...]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from lockerd.api.server import ApiServer
from lockerd.camera.evidence import EvidenceStore
from lockerd.config import example_config_path, parse_config
from lockerd.oplog import OplogKey, OutboxMessage, backup
from lockerd.oplog.component import OplogComponent
from lockerd.oplog.keys import write_key_file
from lockerd.oplog.records import insert_parcel


def _mib(path: Path) -> float:
    return path.stat().st_size / 2**20


async def _fill(comp: OplogComponent, ops: int) -> None:
    store = comp.store
    counter = 0

    async def worker() -> None:
        nonlocal counter
        while counter < ops:
            counter += 1
            pid = f"p-{counter}"

            def mutate(conn: Any, pid: str = pid) -> None:
                insert_parcel(conn, parcel_id=pid, kind="delivery", carrier="sf",
                              status="in_locker", now=datetime.now(UTC), compartment=3,
                              waybill="SF1234567889", recipient_phone="13812345678")

            await store.append("deliver.confirm", actor="courier:sf/c-101",
                               body={"size": "S", "ok": True}, parcel_id=pid, compartment=3,
                               mutate=mutate,
                               outbox=[OutboxMessage("sf", "lockers/B/carriers/sf/events",
                                                     {"type": "parcel.deposited",
                                                      "body": {"parcel_id": pid}})])

    await asyncio.gather(*(worker() for _ in range(64)))


async def main(directory: Path, ops: int, snapshots: int) -> None:
    data = tomllib.loads(example_config_path().read_text())
    key = OplogKey.generate()
    write_key_file(directory / "oplog.key", key)
    data["paths"] = {"state_dir": str(directory / "state"), "socket": str(directory / "s.sock"),
                     "key_file": str(directory / "oplog.key")}
    cfg = parse_config(data, example_config_path())
    comp = OplogComponent(cfg.oplog, cfg.paths, ApiServer(cfg.api, cfg.paths.socket),
                          cabinet=cfg.cabinet, compartments=cfg.compartments)
    await comp.start()
    rng = np.random.default_rng(7)
    frame = (rng.integers(0, 40, (480, 640, 3)) + 100).astype(np.uint8)
    evidence = EvidenceStore(cfg.paths.state_dir / backup.EVIDENCE_FILE,
                             lambda: comp.store.secret(backup.EVIDENCE_SECRET),
                             lambda: (time.monotonic(), frame))
    await evidence.open()
    t0 = time.perf_counter()
    await _fill(comp, ops)
    for i in range(snapshots):
        await evidence.snapshot(f"bench.{i}")
    print(f"filled {ops} operations and {snapshots} snapshots in "
          f"{time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    staged = await comp.backup(actor="bench")
    t_stage = time.perf_counter() - t0
    stage = Path(staged["stage"])
    archive = directory / "backup.tar"
    t0 = time.perf_counter()
    with archive.open("xb") as fh:
        backup.pack(stage, fh)
    t_pack = time.perf_counter() - t0
    shutil.rmtree(stage)
    await evidence.close()
    await comp.stop()
    log_mib = _mib(cfg.paths.state_dir / "oplog.db")
    ev_mib = _mib(cfg.paths.state_dir / backup.EVIDENCE_FILE)
    t0 = time.perf_counter()
    report = await backup.restore(archive, cfg.paths.state_dir, key, actor="bench")
    t_restore = time.perf_counter() - t0
    print(f"log {log_mib:.1f} MiB ({staged['manifest']['head_seq']} operations), evidence "
          f"{ev_mib:.1f} MiB, archive {_mib(archive):.1f} MiB")
    print(f"backup: stage (online copy + chain verify) {t_stage:.2f} s, pack {t_pack:.2f} s")
    print(f"restore (unpack, digests, HMAC + quick check, chain, swap, reopen): {t_restore:.2f} s;"
          f" restored head {report['restored_head_seq']}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ops", type=int, default=100_000)
    parser.add_argument("--snapshots", type=int, default=1000)
    parser.add_argument("--dir", type=Path, help="where to build (default: a temp directory)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        asyncio.run(main(Path(tmp), args.ops, args.snapshots))
