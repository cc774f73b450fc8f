"""Benchmark: does the cabinet stay flat for a year? begin_pickup, the sweep and memory vs parcels handled.

A 96-compartment cabinet runs parcel lifecycles (deposit, then pickup of the oldest waiting
parcel, about 60 parcels waiting at any time) through the pure domain on a fast-forwarded
clock: 300 parcels a day, so 100,000 lifecycles are about a year. At checkpoints it times
`begin_pickup` with a right code (p50/p99 of 300 calls) and the overdue sweep (p50/p99 of 100
calls; nothing is overdue, so this is the scan), each figure the median of 5 such rounds, and
reads the process RSS and the number of parcels the state holds. Times are the calling
thread's CPU time (time.thread_time): a shared machine preempting the bench is not a slow call.
With `--store N` the first N lifecycles also go through the real store (`parcels/store.py`
writes in an encrypted OpLog, one append per decision, as the daemon does) and the start-up is
timed: open the log, load the live state, build the cabinet.
Targets (issue 19): flat: p99 at the end within 1.2x of the start, RSS growth <= 5 MB over the
year, start-up <= 2 s.

Usage: python bench/domain_scale.py [--n 100000] [--store 0] [--dir /var/tmp/...]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections import deque
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lockerd.domain import Cabinet, CabinetSpec, CabinetState, CourierAuth, Decision, Delivery, Policy
from lockerd.domain.ids import Size
from lockerd.oplog import OpLog, OplogKey
from lockerd.parcels.store import chain_body, load_state, plan_writes

COMPARTMENTS = 96
WAITING = 60
PER_DAY = 300
CHECKPOINTS = (0, 1_000, 10_000, 50_000, 100_000, 200_000, 500_000)
REPEATS = 5
TARGET_RATIO = 1.2
TARGET_RSS_MB = 5.0
TARGET_START_S = 2.0
KEY = b"bench-code-key-0123456789abcdef!"


class Clock:
    """The fast-forwarded domain clock."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def rss_mb() -> float:
    """Resident set size of this process now."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def digest(code: str) -> str:
    """What the daemon keeps of a pickup code (a keyed HMAC)."""
    return "hmac-sha256:" + hmac.new(KEY, code.encode(), hashlib.sha256).hexdigest()


def _spec() -> CabinetSpec:
    sizes = (Size.S, Size.M, Size.L)
    return CabinetSpec(name="Bench Locker", address="1 Bench Road",
                       compartments=tuple((i, sizes[i % 3]) for i in range(1, COMPARTMENTS + 1)),
                       carriers=frozenset({"sf"}),
                       policy=Policy(pin_hash_iterations=1))  # the rules are measured, not PBKDF2


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Run:
    """The cabinet, its waiting parcels (code, compartment) and optionally the store."""

    def __init__(self, store: OpLog | None) -> None:
        self.clock = Clock()
        self.cab = Cabinet(_spec(), self.clock, random.Random(7), code_digest=digest)
        self.waiting: deque[tuple[str, int]] = deque()
        self.store = store
        self.auth = CourierAuth(carrier="sf", courier_id="c1", pin="482913")
        self.handled = 0
        self.serial = 0

    async def apply(self, decision: Decision) -> Decision:
        assert decision.ok, (decision.record.kind, decision.error)
        if self.store is not None:
            rec = decision.record
            await self.store.append(rec.kind, actor=rec.actor, body=chain_body(decision),
                                    compartment=rec.compartment, parcel_id=rec.parcel_id,
                                    mutate=plan_writes(self.cab.state, decision.changes,
                                                       self.cab.now()))
        self.cab.apply(decision)
        return decision

    async def start(self) -> None:
        await self.apply(self.cab.grant_courier("sf", "c1", self.clock.now + timedelta(days=3650),
                                                pin="482913"))

    async def lifecycle(self) -> None:
        """Deposit one parcel, and pick up the oldest once WAITING are waiting."""
        n = self.serial
        self.serial += 1
        size = (Size.S, Size.M, Size.L)[n % 3]
        begin = await self.apply(self.cab.begin_deposit(
            self.auth, "k1", Delivery(waybill=f"SF{n:012d}", size=size, consent=True)))
        assert begin.open_door is not None
        done = await self.apply(self.cab.confirm_deposit(begin.open_door))
        self.waiting.append((done.events[0].body["pickup_code"], begin.open_door))
        if len(self.waiting) > WAITING:
            code, _ = self.waiting.popleft()
            got = await self.apply(self.cab.begin_pickup("k1", code))
            assert got.open_door is not None
            await self.apply(self.cab.confirm_pickup(got.open_door))
        self.clock.now += timedelta(seconds=86400 / PER_DAY)
        self.handled += 1

    def probe(self) -> tuple[float, float, float, float]:
        """(begin_pickup p50, p99, sweep p50, p99) in ms; decisions made, not applied.

        Each figure is the median over REPEATS rounds (300 pickups, 100 sweeps per round), so
        one preempted round on a shared machine does not make the p99.
        """
        codes = [c for c, _ in self.waiting]
        figures: list[tuple[float, float, float, float]] = []
        for _ in range(REPEATS):
            pick: list[float] = []
            for i in range(300):
                t = time.thread_time()
                d = self.cab.begin_pickup("k2", codes[i % len(codes)])
                pick.append(time.thread_time() - t)
                assert d.open_door is not None
            sweep: list[float] = []
            for _ in range(100):
                t = time.thread_time()
                assert not self.cab.sweep_overdue().changes
                sweep.append(time.thread_time() - t)
            figures.append((statistics.median(pick), _pct(pick, 0.99), statistics.median(sweep),
                            _pct(sweep, 0.99)))
        p50, p99, s50, s99 = (statistics.median(f[i] for f in figures) * 1000 for i in range(4))
        return p50, p99, s50, s99


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000, help="lifecycles (domain only)")
    parser.add_argument("--store", type=int, default=0,
                        help="lifecycles that also go through the encrypted log (slow: ~4 appends each)")
    parser.add_argument("--dir", type=Path, default=None, help="where the log goes (--store)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="domain-scale-", dir=str(args.dir or "/var/tmp")))
    key = OplogKey.generate()
    store = await OpLog.open(tmp / "oplog.db", key) if args.store else None
    run = Run(store)
    await run.start()
    while len(run.waiting) < WAITING:
        await run.lifecycle()
    run.handled = 0
    print(f"== {COMPARTMENTS} compartments, {WAITING} parcels waiting, {PER_DAY} lifecycles a day; "
          f"CPU per call: begin_pickup p50/p99 of 300 calls, overdue sweep p50/p99 of 100 calls")
    print(f"{'handled':>9} {'days':>5} {'held':>7} {'pickup p50':>11} {'p99':>7} "
          f"{'sweep p50':>10} {'p99':>7} {'RSS MB':>8}")
    rows: list[tuple[int, tuple[float, float, float, float], float]] = []
    for checkpoint in (c for c in CHECKPOINTS if c <= args.n):
        while run.handled < checkpoint:
            if store is not None and run.handled == args.store:
                await store.close()
                store = run.store = None
            await run.lifecycle()
        probe = run.probe()
        rss = rss_mb()
        rows.append((checkpoint, probe, rss))
        print(f"{checkpoint:>9} {checkpoint / PER_DAY:>5.0f} {len(run.cab.state.parcels):>7} "
              f"{probe[0]:>9.3f}ms {probe[1]:>5.3f}ms {probe[2]:>8.3f}ms {probe[3]:>5.3f}ms "
              f"{rss:>8.1f}")
    (_, start, rss0), (last, end, rss1) = rows[0], rows[-1]
    for label, i in (("begin_pickup", 1), ("overdue sweep", 3)):
        ratio = end[i] / start[i]
        print(f"target: {label} p99 after {last} lifecycles <= {TARGET_RATIO}x the start: "
              f"{ratio:.2f}x ({'met' if ratio <= TARGET_RATIO else 'NOT met'})")
    growth = rss1 - rss0
    print(f"target: RSS growth <= {TARGET_RSS_MB:g} MB: {growth:+.1f} MB "
          f"({'met' if growth <= TARGET_RSS_MB else 'NOT met'})")
    if store is not None:
        await store.close()
    if args.store:
        await _startup(tmp / "oplog.db", key, args.store)
    await asyncio.to_thread(shutil.rmtree, tmp, True)


async def _startup(path: Path, key: OplogKey, lifecycles: int) -> None:
    """Time what the daemon does at start with this log: open it, read the live state, rebuild
    the cabinet (lockerd/parcels/component.py start)."""
    t0 = time.perf_counter()
    log = await OpLog.open(path, key)
    try:
        data = await log.read(load_state)
        cab = Cabinet.from_dict(_spec(), Clock(), random.Random(), data)
        took = time.perf_counter() - t0
        ops = (await log.read(lambda c: c.execute("SELECT count(*) FROM operations").fetchone()))[0]
    finally:
        await log.close()
    size = (await asyncio.to_thread(path.stat)).st_size
    verdict = "met" if took <= TARGET_START_S else "NOT met"
    print(f"start-up with the log of {lifecycles} lifecycles ({ops} operations, "
          f"{size / 1e6:.1f} MB): {took:.2f} s, {len(cab.state.parcels)} parcels "
          f"restored (target <= {TARGET_START_S:g} s: {verdict})")
    assert isinstance(cab.state, CabinetState)


if __name__ == "__main__":
    asyncio.run(main())
