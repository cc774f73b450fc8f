"""Child process for the crash test: appends forever, printing each seq once append returned."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from datetime import UTC, datetime
from pathlib import Path

from lockerd.oplog import OpLog, OplogKey, OutboxMessage
from lockerd.oplog.records import insert_parcel


async def main(path: Path, key_hex: str, writers: int) -> None:
    log = await OpLog.open(path, OplogKey(bytes.fromhex(key_hex)))
    print("ready", flush=True)
    counter = 0

    async def worker(w: int) -> None:
        nonlocal counter
        while True:
            counter += 1
            pid = f"{w}-{counter}-{datetime.now(UTC).timestamp()}"

            def mutate(conn: sqlite3.Connection, pid: str = pid) -> None:
                insert_parcel(conn, parcel_id=pid, kind="delivery", carrier="sf",
                              status="in_locker", now=datetime.now(UTC), waybill="SF1234567889")

            op = await log.append("parcel.deposited", actor=f"w{w}", body={"w": w},
                                  parcel_id=pid, mutate=mutate,
                                  outbox=[OutboxMessage("sf", "t", {"p": pid})])
            sys.stdout.write(f"{op.seq} {pid}\n")
            sys.stdout.flush()

    await asyncio.gather(*(worker(w) for w in range(writers)))


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])))
