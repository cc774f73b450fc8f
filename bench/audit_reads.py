"""Benchmark: audit reads on a year-long log must not block the cabinet (issue 19).

Builds (once, reused from --dir) a real SQLCipher log of --ops operations (default 1M) with a
valid chain, written with the chain's own hash function in large transactions, their times
spread evenly over the past year (35 days ~ 96k operations), one parcel row per ten operations
(personal fields as retention leaves them: nulled after 30 days). Then, per mode, the server
side runs in a child process (OplogComponent + ApiServer on a unix socket, as in the daemon)
with a task ticking every 10 ms that records its lateness (the door poll timer's stand-in),
while a client process runs a masked 35-day export through lockerctl's own code path and this
process calls `log.view` (limit 1) every 50 ms recording its latency. Modes:

- `paged`: today's `log.export` (pages read, masked and encoded in the reader; lockerctl
  writes page by page);
- `single`: the code path before pages (every row read in one call, every line built in the
  event loop, all lines in one reply), registered in the child as `log.export_single`.

Then `log.verify` of the whole chain through the API, timed, with the same tick and call
probes. Printed with their targets: max and p99 tick lateness and call latency (<= 20 ms), the
child's RSS rise (VmRSS before the export vs VmHWM during it, the peak reset via clear_refs;
<= 20 MB), export rows/s, verify operations/s (>= 200k/s). Usage:
python bench/audit_reads.py [--ops 1000000] [--days 35] [--dir /var/tmp/audit-bench]
                            [--modes paged,single] [--rounds 1] [--page-kib 256]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lockerd.oplog.canonical import GENESIS_HASH, dumps, format_ts, row_hash

TARGET_DELAY_MS = 20.0
TARGET_RSS_MB = 20.0
TARGET_VERIFY = 200_000
TICK_S = 0.010
CALL_S = 0.050
YEAR = timedelta(days=365)
BATCH = 50_000
PAGE_KIB_ENV = "AUDIT_BENCH_PAGE_KIB"  # --page-kib, passed to the server child


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field}")


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# ------------------------------------------------------------------ the log

_KINDS = (("parcel.deposited", {"size": "M"}), ("door.closed", {"state": "closed"}),
          ("parcel.notified", {"channel": "sms"}), ("door.opened", {"reason": "pickup"}),
          ("parcel.picked_up", {"fee_cents": 0}), ("door.closed", {"state": "closed"}),
          ("outbox.acked", {"stream": "sf"}), ("door.opened", {"reason": "deposit"}),
          ("door.closed", {"state": "closed"}), ("anchor.signed", {"every": 50}))


async def build(workdir: Path, ops: int) -> None:
    """The log file, its key and a marker naming the operation count (reused when it matches)."""
    from lockerd.oplog import OpLog, OplogKey, sqlcipher
    from lockerd.oplog.chain import OP_COLUMNS
    from lockerd.oplog.keys import write_key_file
    from lockerd.oplog.records import PARCEL_COLUMNS

    marker = workdir / "built.json"
    if marker.exists() and json.loads(marker.read_text()).get("ops") == ops:
        return
    state = workdir / "state"
    state.mkdir(parents=True, exist_ok=True)
    for old in state.glob("oplog.db*"):
        old.unlink()
    key = OplogKey.generate()
    write_key_file(workdir / "oplog.key", key)
    path = state / "oplog.db"

    await (await OpLog.open(path, key)).close()
    t0 = time.monotonic()
    conn: Any = sqlcipher.connect(path, key.raw)
    rng = random.Random(19)
    end = datetime.now(UTC) - timedelta(minutes=5)
    start, step = end - YEAR, YEAR / ops
    prev, parcel_no = GENESIS_HASH, 0
    op_sql = f"INSERT INTO operations ({OP_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)"
    parcel_sql = f"INSERT INTO parcels ({PARCEL_COLUMNS}) VALUES ({','.join('?' * 16)})"
    personal_until = end - timedelta(days=30)
    for lo in range(1, ops + 1, BATCH):
        rows, parcels = [], []
        for seq in range(lo, min(ops, lo + BATCH - 1) + 1):
            when = start + step * seq
            ts = format_ts(when)
            kind, body = _KINDS[seq % len(_KINDS)]
            compartment = 1 + rng.randrange(96)
            parcel_id = None
            if kind == "parcel.deposited":
                parcel_no += 1
                parcel_id = f"p{parcel_no:07d}"
                purged = when < personal_until
                parcels.append((parcel_id, "delivery", "sf", compartment, "picked_up", "M",
                                None if purged else f"SF{rng.randrange(10**10):010d}",
                                None if purged else f"138{rng.randrange(10**8):08d}",
                                None, None, None, "{}", ts, ts, ts,
                                ts if purged else None))
            body_json = dumps(body)
            digest = row_hash(seq, ts, kind, "lockerd", compartment, parcel_id, body_json, prev)
            rows.append((seq, ts, kind, "lockerd", compartment, parcel_id, body_json, prev,
                         digest))
            prev = digest
        conn.execute("BEGIN")
        conn.executemany(op_sql, rows)
        conn.executemany(parcel_sql, parcels)
        conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    marker.write_text(json.dumps({"ops": ops, "parcels": parcel_no, "end": format_ts(end)}))
    print(f"built {ops} operations and {parcel_no} parcels in {time.monotonic() - t0:.1f} s "
          f"({path.stat().st_size / 2**20:.0f} MiB)", flush=True)


# ------------------------------------------------------------------ the server side (child)

def _config(workdir: Path) -> Any:
    from lockerd.config import parse_config
    example = Path(__file__).resolve().parents[1] / "lockerd" / "config" / "example.toml"
    data = tomllib.loads(example.read_text())
    data["paths"] = {"state_dir": str(workdir / "state"), "socket": str(workdir / "api.sock"),
                     "key_file": str(workdir / "oplog.key")}
    data["oplog"]["max_export_rows"] = 10_000_000
    if os.environ.get(PAGE_KIB_ENV):
        data["oplog"]["export_page_kib"] = int(os.environ[PAGE_KIB_ENV])
    return parse_config(data, example)


async def _single_export(store: Any, since: datetime, until: datetime, uid: int
                         ) -> dict[str, Any]:
    """The export before pages (lockerd 351eff05 audit.export): every row in one read, every
    line built in the event loop, the record after the read, all lines in one reply."""
    from lockerd.oplog.chain import OP_COLUMNS
    from lockerd.oplog.records import PARCEL_COLUMN_NAMES, PARCEL_COLUMNS
    from lockerd.privacy import export_record

    lo, hi = format_ts(since), format_ts(until)

    def collect(conn: Any) -> tuple[list[Any], list[Any]]:
        ops = conn.execute(f"SELECT {OP_COLUMNS} FROM operations WHERE ts >= ? AND ts < ? "
                           "ORDER BY seq", (lo, hi)).fetchall()
        parcels = conn.execute(f"SELECT {PARCEL_COLUMNS} FROM parcels WHERE created_at >= ? "
                               "AND created_at < ? ORDER BY created_at, id", (lo, hi)).fetchall()
        return ops, parcels

    ops, parcels = await store.read(collect)
    lines: list[str] = []
    for seq, ts, kind, actor, compartment, parcel_id, body, prev_hash, digest in ops:
        rec: dict[str, Any] = {"type": "operation", "seq": seq, "ts": ts, "kind": kind,
                               "actor": actor, "compartment": compartment,
                               "parcel_id": parcel_id, "body": json.loads(body),
                               "prev_hash": prev_hash, "hash": digest}
        lines.append(json.dumps(export_record(rec, masked=True), ensure_ascii=False))
    for row in parcels:
        prec = {"type": "parcel", **{n: json.loads(v) if n == "flags" else v
                                     for n, v in zip(PARCEL_COLUMN_NAMES, row, strict=True)}}
        lines.append(json.dumps(export_record(prec, masked=True), ensure_ascii=False))
    record = await store.append("oplog.exported", actor=f"uid:{uid}",
                                body={"uid": uid, "from": lo, "to": hi, "rows": len(lines),
                                      "operations": len(ops), "parcels": len(parcels),
                                      "masked": True, "reason": None})
    return {"lines": lines, "rows": len(lines), "masked": True, "record_seq": record.seq}


def _watch_loop_steps() -> list[float]:
    """CPU time (ms, this thread's own: neither waiting for the GIL nor preempted by other
    processes count) of every callback the event loop runs; on a loaded machine the lateness
    figures include both, this is what the loop itself was kept busy by."""
    steps: list[float] = []
    run = asyncio.events.Handle._run

    def timed(handle: asyncio.events.Handle) -> None:
        t0 = time.thread_time()
        run(handle)
        steps.append((time.thread_time() - t0) * 1000)
        if len(steps) > 100_000:
            steps[:] = [max(steps)]

    asyncio.events.Handle._run = timed  # type: ignore[method-assign,assignment]
    return steps


async def child(workdir: Path) -> None:
    """The log and its API in this process; commands on stdin, one JSON reply line each."""
    from lockerd.api.server import ALL_ROLES, ApiServer, Caller
    from lockerd.oplog.component import ExportParams, OplogComponent

    cfg = _config(workdir)
    api = ApiServer(cfg.api, cfg.paths.socket)
    comp = OplogComponent(cfg.oplog, cfg.paths, api, cabinet=cfg.cabinet,
                          compartments=cfg.compartments)

    async def single(params: ExportParams, caller: Caller) -> dict[str, Any]:
        assert params.since is not None
        assert params.until is not None
        return await _single_export(comp.store, params.since, params.until, caller.uid)

    api.route("log.export_single", set(ALL_ROLES), ExportParams, single)
    await comp.start()
    await api.start()
    loop = asyncio.get_running_loop()
    late: list[float] = []

    async def ticker() -> None:
        due = loop.time() + TICK_S
        while True:
            await asyncio.sleep(max(0.0, due - loop.time()))
            now = loop.time()
            late.append((now - due) * 1000)
            due = max(due + TICK_S, now)

    steps = _watch_loop_steps()
    tick = asyncio.create_task(ticker())
    reply: dict[str, Any] = {"rss_mb": _status_mb("VmRSS")}
    try:
        while True:
            print(json.dumps(reply), flush=True)
            cmd = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
            if cmd in {"", "quit"}:
                return
            if cmd == "begin":
                await asyncio.to_thread(Path("/proc/self/clear_refs").write_text, "5")  # HWM:=RSS
                late.clear()
                steps.clear()
                reply = {"rss_mb": _status_mb("VmRSS"), "cpu_s": time.process_time()}
            elif cmd == "end":
                reply = {"hwm_mb": _status_mb("VmHWM"), "rss_mb": _status_mb("VmRSS"),
                         "late_max": max(late, default=0.0), "late_p99": _pct(late, 0.99),
                         "ticks": len(late), "cpu_s": time.process_time(),
                         "step_cpu_max": max(steps, default=0.0)}
    finally:
        tick.cancel()
        await api.stop()
        await comp.stop()


# ------------------------------------------------------------------ the clients (parent)

class Child:
    """The server child process and its command line."""

    def __init__(self, workdir: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, __file__, "--child", str(workdir)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.ready = self._reply()

    def _reply(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the server child died")
        result: dict[str, Any] = json.loads(line)
        return result

    def ask(self, cmd: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()
        return self._reply()

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("quit\n")
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


async def _probe(sock: Path, stop: asyncio.Event) -> list[float]:
    """log.view (limit 1) every 50 ms until `stop`: latencies in ms."""
    from lockerd.api.client import AsyncApiClient
    out: list[float] = []
    async with AsyncApiClient(sock) as client:
        while not stop.is_set():
            t0 = time.perf_counter()
            await client.call("log.view", {"limit": 1, "newest_first": True})
            out.append((time.perf_counter() - t0) * 1000)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), CALL_S)
    return out


def _export(mode: str, sock: Path, since: str, until: str, out: Path) -> int:
    """The export client in its own process, as lockerctl is (its JSON parsing must not slow
    this process's probe); the number of lines written."""
    subprocess.run([sys.executable, __file__, "--export", mode, str(sock), since, until,
                    str(out)], check=True, stdout=subprocess.DEVNULL)
    return sum(1 for _ in out.open(encoding="utf-8"))


def export_client(mode: str, sock: Path, since: str, until: str, out: Path) -> None:
    """paged: lockerctl export itself; single: the client of the single-reply export."""
    if mode == "paged":
        from lockerd.cli import lockerctl
        code = lockerctl.main(["export", "--from", since, "--to", until, "--out", str(out),
                               "--socket", str(sock)])
        assert code == 0, code
        return
    from lockerd.api.client import ApiClient
    with ApiClient(sock, timeout=600) as client:
        result = client.call("log.export_single", {"from": since, "to": until})
    with out.open("w", encoding="utf-8") as fh:
        fh.writelines(line + "\n" for line in result["lines"])


def _verify(sock: Path) -> dict[str, Any]:
    from lockerd.api.client import ApiClient
    with ApiClient(sock, timeout=600) as client:
        result: dict[str, Any] = client.call("log.verify")
    return result


async def _measured(child_proc: Child, sock: Path, job: Any) -> tuple[Any, float, dict[str, Any],
                                                                       list[float]]:
    """Run `job` in a thread with the probes on; its result, seconds, child stats, latencies."""
    before = child_proc.ask("begin")
    stop = asyncio.Event()
    probe = asyncio.create_task(_probe(sock, stop))
    await asyncio.sleep(0.3)
    t0 = time.perf_counter()
    result = await asyncio.to_thread(job)
    took = time.perf_counter() - t0
    await asyncio.sleep(0.2)
    stop.set()
    latencies = await probe
    stats = child_proc.ask("end")
    stats["rss_before"] = before["rss_mb"]
    stats["cpu_s"] -= before["cpu_s"]
    return result, took, stats, latencies


async def run_mode(workdir: Path, mode: str, days: int) -> dict[str, float]:
    """One server child: a 35-day export in `mode`, then a verify; their figures."""
    end = datetime.fromisoformat(json.loads((workdir / "built.json").read_text())["end"])
    since, until = format_ts(end - timedelta(days=days)), format_ts(end)
    child_proc = Child(workdir)
    sock = workdir / "api.sock"
    out = workdir / f"export-{mode}.jsonl"
    out.unlink(missing_ok=True)
    try:
        _, _, istats, ilat = await _measured(child_proc, sock, lambda: time.sleep(2.0))
        rows, took, stats, lat = await _measured(child_proc, sock,
                                                 lambda: _export(mode, sock, since, until, out))
        verdict, vtook, vstats, vlat = await _measured(child_proc, sock, lambda: _verify(sock))
    finally:
        child_proc.close()
        out.unlink(missing_ok=True)
    assert verdict["ok"], verdict
    return {"idle_late_max": istats["late_max"], "idle_late_p99": istats["late_p99"],
            "idle_call_max": max(ilat),
            "rows": rows, "export_s": took, "rows_per_s": rows / took,
            "export_cpu_s": stats["cpu_s"],
            "late_max": stats["late_max"], "late_p99": stats["late_p99"],
            "call_max": max(lat), "call_p99": _pct(lat, 0.99), "calls": len(lat),
            "step_cpu_max": stats["step_cpu_max"],
            "rss_rise": stats["hwm_mb"] - stats["rss_before"], "rss_after": stats["rss_mb"],
            "verify_ops": verdict["checked"], "verify_s": vtook,
            "verify_per_s": verdict["checked"] / vtook,
            "verify_per_cpu_s": verdict["checked"] / vstats["cpu_s"],
            "v_late_max": vstats["late_max"], "v_step": vstats["step_cpu_max"], "v_call_max": max(vlat)}


def _report(mode: str, runs: list[dict[str, float]]) -> None:
    def fig(key: str, fmt: str = "{:.1f}") -> str:
        vals = sorted(r[key] for r in runs)
        med = vals[len(vals) // 2]
        spread = f" ({fmt.format(vals[0])}-{fmt.format(vals[-1])})" if len(vals) > 1 else ""
        return fmt.format(med) + spread

    print(f"--- {mode} export ({len(runs)} round(s), median (min-max)) ---")
    print(f"noise floor (2 s, nothing running): tick max {fig('idle_late_max')} ms, p99 "
          f"{fig('idle_late_p99')} ms; log.view max {fig('idle_call_max')} ms")
    print(f"export: {fig('rows', '{:.0f}')} rows in {fig('export_s', '{:.2f}')} s = "
          f"{fig('rows_per_s', '{:.0f}')} rows/s; server CPU {fig('export_cpu_s', '{:.2f}')} s")
    print(f"door-poll tick lateness during export: max {fig('late_max')} ms, "
          f"p99 {fig('late_p99')} ms (target <= {TARGET_DELAY_MS:.0f} ms)")
    print(f"log.view latency during export: max {fig('call_max')} ms, p99 {fig('call_p99')} ms "
          f"(target <= {TARGET_DELAY_MS:.0f} ms)")
    print(f"longest event-loop step during export (loop thread CPU): {fig('step_cpu_max')} ms")
    print(f"server RSS rise during export: {fig('rss_rise')} MB (target <= "
          f"{TARGET_RSS_MB:.0f} MB); RSS after: {fig('rss_after')} MB")
    print(f"verify: {fig('verify_ops', '{:.0f}')} ops in {fig('verify_s', '{:.2f}')} s = "
          f"{fig('verify_per_s', '{:.0f}')} ops/s (target >= {TARGET_VERIFY}), "
          f"{fig('verify_per_cpu_s', '{:.0f}')} ops per server CPU-second; during it tick "
          f"max {fig('v_late_max')} ms, log.view max {fig('v_call_max')} ms, longest loop step "
          f"{fig('v_step')} ms")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ops", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=35)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "audit-bench")
    parser.add_argument("--modes", default="paged,single")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--page-kib", type=int, help="[oplog] export_page_kib (default: config)")
    args = parser.parse_args()
    if args.page_kib:
        os.environ[PAGE_KIB_ENV] = str(args.page_kib)
    args.dir.mkdir(parents=True, exist_ok=True)
    await build(args.dir, args.ops)
    for mode in args.modes.split(","):
        runs = [await run_mode(args.dir, mode, args.days) for _ in range(args.rounds)]
        _report(mode, runs)


if __name__ == "__main__":
    if len(sys.argv) == 7 and sys.argv[1] == "--export":
        export_client(sys.argv[2], Path(sys.argv[3]), sys.argv[4], sys.argv[5], Path(sys.argv[6]))
    elif len(sys.argv) == 3 and sys.argv[1] == "--child":
        os.environ.pop("PYTHONASYNCIODEBUG", None)
        asyncio.run(child(Path(sys.argv[2])))
    else:
        asyncio.run(main())
