"""Benchmark: operation-log appends/s and commit latency, SQLCipher vs plain sqlite3, same schema.

Both run the same OpLog code (writer thread, chain hash, outbox row, parcel insert) with
WAL + synchronous=FULL; only the driver differs. Targets: SQLCipher >= 0.8x the plain rate,
commit p99 <= 20 ms. Usage: python bench/oplog_throughput.py [--n 2000] [--dir /var/lib/...]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lockerd.oplog import OpLog, OplogKey, OutboxMessage
from lockerd.oplog.records import insert_parcel


def _remove(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)


async def _run(directory: Path, cipher: bool, n: int, concurrency: int,
               parcel: bool) -> tuple[float, list[float]]:
    path = directory / ("cipher.db" if cipher else "plain.db")
    _remove(path)
    log = await OpLog.open(path, OplogKey.generate() if cipher else None, cipher=cipher)
    latencies: list[float] = []
    counter = 0

    async def one() -> None:
        nonlocal counter
        counter += 1
        pid = f"p{counter}"

        def mutate(conn: Any) -> None:
            insert_parcel(conn, parcel_id=pid, kind="delivery", carrier="sf",
                          status="in_locker", now=datetime.now(UTC), compartment=counter % 12,
                          waybill="SF1234567889", recipient_phone="13812345678")

        t0 = time.perf_counter()
        await log.append("parcel.deposited", actor="courier:sf/7", body={"size": "M"},
                         compartment=counter % 12 + 1, parcel_id=pid,
                         mutate=mutate if parcel else None,
                         outbox=[OutboxMessage("sf", "lockers/CAB/carriers/sf/events",
                                               {"type": "parcel.deposited", "body": {"p": pid}})])
        latencies.append(time.perf_counter() - t0)

    async def worker(count: int) -> None:
        for _ in range(count):
            await one()

    try:
        for _ in range(20):  # warm up
            await one()
        latencies.clear()
        start = time.perf_counter()
        await asyncio.gather(*(worker(n // concurrency) for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
        assert (await log.verify()).ok
    finally:
        await log.close()
    return len(latencies) / elapsed, latencies


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1000, help="appends per run")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds per backend")
    parser.add_argument("--dir", type=Path, default=None, help="directory (default: a temp dir "
                        "under /var/tmp, i.e. a real disk, not tmpfs)")
    args = parser.parse_args()
    base = args.dir or Path(tempfile.mkdtemp(prefix="oplog-bench-", dir="/var/tmp"))
    cases = [(1, False, "sequential (1 caller, 1 commit per append), op + outbox row"),
             (1, True, "sequential, op + outbox row + parcel row (heaviest append)"),
             (16, False, "concurrent (16 callers, group commit), op + outbox row"),
             (16, True, "concurrent, op + outbox row + parcel row")]
    for concurrency, parcel, label in cases:
        rates: dict[bool, list[float]] = {True: [], False: []}
        lats: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(args.rounds):
            for cipher in (False, True):
                rate, lat = await _run(base, cipher, args.n, concurrency, parcel)
                rates[cipher].append(rate)
                lats[cipher].extend(lat)
        print(f"== {label}, {args.n} appends x {args.rounds} rounds, WAL, synchronous=FULL, "
              f"dir {base}")
        for cipher in (False, True):
            name = "sqlcipher" if cipher else "sqlite3  "
            print(f"{name}: {statistics.median(rates[cipher]):8.0f} appends/s (median of "
                  f"rounds)  commit p50 {_pct(lats[cipher], 0.50):6.2f} ms  "
                  f"p99 {_pct(lats[cipher], 0.99):6.2f} ms  max {max(lats[cipher]) * 1000:6.2f} ms")
        # Paired ratio: each round runs plain then cipher back to back, so load drift on a
        # shared machine cancels out better than in the ratio of medians.
        paired = sorted(c / p for c, p in zip(rates[True], rates[False], strict=True))
        print(f"paired per-round ratios: {', '.join(f'{r:.2f}' for r in paired)}")
        ratio = statistics.median(paired)
        p99 = _pct(lats[True], 0.99)
        print(f"ratio sqlcipher/sqlite3 (median paired): {ratio:.2f}x (target >= 0.80: "
              f"{'met' if ratio >= 0.8 else 'NOT met'}); sqlcipher p99 {p99:.2f} ms (target <= 20: "
              f"{'met' if p99 <= 20 else 'NOT met'})")


if __name__ == "__main__":
    asyncio.run(main())
