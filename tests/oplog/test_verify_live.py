"""verify-log on a live cabinet (issue 16): one snapshot, so no false break while appending.

Before: verification walked the chain and then read the outbox's highest op_seq in separate
snapshots; operations appended in between made it report "outbox refers to operation N beyond
the head (operations were removed from the end)" in 60 of 64 runs on a busy cabinet.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from lockerd.oplog import OpLog, OplogKey, OutboxMessage

PRELOAD = 3000
STREAM_S = 4.0


def _delivery(n: int) -> OutboxMessage:
    return OutboxMessage(stream="sf", topic="lockers/CAB/carriers/sf/events",
                         payload={"type": "parcel.deposited", "body": {"parcel_id": f"p-{n:016x}"}})


async def _deliver(oplog: OpLog, n: int) -> None:
    # the shape of a delivery's commit: a chain row and the carrier's event in one transaction
    await oplog.append("parcel.deposited", actor="courier:sf:c-1", body={"compartment": 1},
                       parcel_id=f"p-{n:016x}", outbox=[_delivery(n)])


async def test_verify_during_a_stream_of_deliveries_never_sees_a_false_break(
        tmp_path: Path) -> None:
    oplog = await OpLog.open(tmp_path / "oplog.db", OplogKey.generate())
    try:
        for start in range(0, PRELOAD, 500):  # a chain long enough for the walk to take time
            await asyncio.gather(*(_deliver(oplog, n) for n in range(start, start + 500)))
        stop = asyncio.Event()

        async def stream() -> int:
            n = PRELOAD
            while not stop.is_set():
                await _deliver(oplog, n)
                n += 1
            return n - PRELOAD

        async def verify_loop() -> tuple[int, list[str]]:
            runs, broken = 0, []
            deadline = time.monotonic() + STREAM_S
            while time.monotonic() < deadline:
                result = await oplog.verify()
                runs += 1
                if not result.ok:
                    broken.append(str(result.reason))
            stop.set()
            return runs, broken

        delivered, (runs, broken) = await asyncio.gather(stream(), verify_loop())
        print(f"{runs} verifications during {delivered} deliveries: {len(broken)} false breaks")
        assert delivered > 20
        assert runs >= 5
        assert broken == []
        assert (await oplog.verify()).ok
    finally:
        await oplog.close()
