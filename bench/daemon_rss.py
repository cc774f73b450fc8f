"""Benchmark: the daemon's resident memory without the camera, glibc's default arenas vs MALLOC_ARENA_MAX=2.

Each round runs the daemon in a fresh child process on the simulator (camera off, MQTT to a
private mosquitto), grants a courier, waits, reads VmRSS ("idle"), runs parcel lifecycles
(delivery + pickup through the API socket), waits, reads VmRSS again ("after") and the peak
(VmHWM). The simulator's boards and the API client live in the same process, as in
`lockerd run` with `backend = "sim"`. glibc gives each thread that allocates its own arena (up
to 8 per core); MALLOC_ARENA_MAX=2 caps that, which the systemd unit sets when it helps.
Target (issue 19): RSS <= 80 MB with the camera (this is the part without it).

Usage: python bench/daemon_rss.py [--rounds 3] [--n 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lockerd.testing.broker import LocalBroker

TARGET_MB = 80.0
REPO = Path(__file__).resolve().parents[1]


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field}")


async def child(workdir: Path, port: int, n: int) -> dict[str, float]:
    """The in-process daemon: RSS at idle, after `n` lifecycles, and the peak."""
    from tests.fixtures.cabinet import CARRIER, PIN, Cabinet, courier, delivery

    cab = Cabinet(workdir, camera={"enabled": False},
              mqtt={"enabled": True, "host": "127.0.0.1", "port": port, "tls": False,
                    "reconnect_min_s": 0.2, "reconnect_max_s": 1.0})
    await cab.start()
    try:
        await cab.grant(CARRIER, "c-101", PIN)
        await asyncio.sleep(5.0)
        idle = _status_mb("VmRSS")
        for i in range(n):
            res = await cab.call("panel.deliver", {**courier(),
                                                   "parcel": delivery(waybill=f"SF{i:010d}")})
            rows = await cab.store.read(lambda c: c.execute(
                "SELECT payload FROM outbox ORDER BY id DESC LIMIT 20").fetchall())
            code = next(json.loads(r[0])["body"]["pickup_code"] for r in rows
                        if json.loads(r[0]).get("body", {}).get("parcel_id") == res["parcel_id"])
            got = await cab.call("panel.pickup", {"panel": "kiosk-1", "code": code})
            assert got["status"] == "pickup.confirm", got
        await asyncio.sleep(5.0)
        return {"idle": idle, "after": _status_mb("VmRSS"), "peak": _status_mb("VmHWM"),
                "threads": float(len(os.listdir("/proc/self/task")))}
    finally:
        await cab.stop()


async def _round(base: Path, n: int, arena_max: str | None) -> dict[str, float]:
    (base / "broker").mkdir()
    (base / "daemon").mkdir()
    broker = LocalBroker(base / "broker", persistence=False)
    await broker.start()
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    env["PYTHONPATH"] = str(REPO)
    if arena_max is not None:
        env["MALLOC_ARENA_MAX"] = arena_max
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--child", str(base / "daemon"), "--port", str(broker.port),
            "--n", str(n), env=env, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL)
        out, _ = await proc.communicate()
    finally:
        await broker.stop()
    if proc.returncode != 0:
        raise SystemExit(f"child failed ({proc.returncode})")
    result: dict[str, float] = json.loads(out.decode().strip().splitlines()[-1])
    return result


def _fmt(values: list[float]) -> str:
    return f"{statistics.median(values):6.1f} ({min(values):.1f}-{max(values):.1f})"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--n", type=int, default=20, help="lifecycles per round")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(await child(args.child, args.port, args.n)))
        return
    variants: dict[str, list[dict[str, float]]] = {"glibc default arenas": [],
                                                   "MALLOC_ARENA_MAX=2": []}
    t0 = time.monotonic()
    for _ in range(args.rounds):
        for label, arena in (("glibc default arenas", None), ("MALLOC_ARENA_MAX=2", "2")):
            base = Path(tempfile.mkdtemp(prefix="daemon-rss-"))
            try:
                variants[label].append(await _round(base, args.n, arena))
            finally:
                shutil.rmtree(base, ignore_errors=True)
    print(f"== daemon RSS on the simulator, camera off, MQTT on; {args.rounds} rounds, "
          f"{args.n} lifecycles each; median (min-max) MB; {time.monotonic() - t0:.0f} s")
    for label, runs in variants.items():
        def col(key: str, rs: list[dict[str, Any]] = runs) -> str:
            return _fmt([float(r[key]) for r in rs])
        print(f"{label:<22} idle {col('idle')}  after lifecycles {col('after')}  "
              f"peak {col('peak')}  threads {statistics.median(r['threads'] for r in runs):.0f}")
    after = statistics.median(r["after"] for r in variants["MALLOC_ARENA_MAX=2"])
    print(f"target: RSS <= {TARGET_MB:g} MB (with the camera; this is without): "
          f"{after:.1f} MB with MALLOC_ARENA_MAX=2")


if __name__ == "__main__":
    asyncio.run(main())
