"""Benchmark: SD-card wear of the operation log: bytes written and fsyncs per parcel lifecycle.

A lifecycle is one delivery (courier deposits, door closes) and its pickup (recipient opens with
the code, door closes), run through the real API socket of an in-process daemon on the
simulator, carriers' events published to a private mosquitto and marked sent on PUBACK. The
camera is off: these are the log's writes alone (evidence snapshots are another file). The
daemon runs in a child process under `strace -f -e trace=fsync,fdatasync` (when strace is
installed); its /proc/self/io `write_bytes` (pages the process dirtied, i.e. what reaches the
disk) and `wchar` (bytes passed to write()) are read before the first lifecycle and after the
daemon stopped (stopping closes the log, which checkpoints whatever the WAL still holds, so the
figure includes getting every row into the database file).

Baseline in the same run: every statement the log's write connection ran (captured with
sqlite3's trace callback, bound values expanded) is replayed into plain sqlite3 with WAL and
synchronous=FULL and SQLite's default auto-checkpoint, same transactions, same rows.
Target (issue 19): log bytes per lifecycle <= 2x the plain-SQLite baseline; no writes at idle.

The idle figure: bytes the daemon wrote during `--idle` seconds after the last acknowledgement
was written (excluded from the per-lifecycle figures). Usage:
python bench/oplog_wear.py [--n 20] [--rounds 3] [--gap 0] [--idle 10] [--dir /var/tmp/...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lockerd.domain.timefmt import format_ts
from lockerd.oplog import sqlcipher
from lockerd.testing.broker import LocalBroker

TARGET_RATIO = 2.0
MARKER_FD = 987
SYNC_CALL = re.compile(r"\b(fsync|fdatasync)\((\d+)\)")


def proc_io() -> dict[str, int]:
    """This process's I/O counters (all threads)."""
    out: dict[str, int] = {}
    for line in Path("/proc/self/io").read_text().splitlines():
        name, value = line.split(":")
        out[name] = int(value)
    return out


class Marker:
    """An fsync on a private file: the parent finds these two calls in the strace output and
    counts the fsyncs in between."""

    def __init__(self, directory: Path) -> None:
        fd = os.open(directory / "marker", os.O_WRONLY | os.O_CREAT, 0o600)
        # a number nothing else uses, so `fsync(MARKER_FD)` appears only for the marks
        self.fd = os.dup2(fd, MARKER_FD)
        os.close(fd)

    def mark(self) -> dict[str, int]:
        io = proc_io()
        os.fsync(self.fd)
        return io


# ---------------------------------------------------------------- child: the daemon


class Capture:
    """Every statement run on the log's write connections, bound values expanded."""

    def __init__(self) -> None:
        self.statements: list[str] = []
        self.start = 0

    def install(self) -> None:
        real = sqlcipher.connect

        def connect(path: Path, key: bytes | None, *, readonly: bool = False,
                    cipher: bool = True,
                    cache_kib: int = sqlcipher.CACHE_KIB) -> sqlcipher.Connection:
            conn = real(path, key, readonly=readonly, cipher=cipher, cache_kib=cache_kib)
            if not readonly and path.name == "oplog.db":
                conn.set_trace_callback(self.statements.append)
            return conn

        sqlcipher.connect = connect


async def _outbox_code(store: Any, parcel_id: str) -> str:
    def find(conn: Any) -> list[bytes]:
        return [bytes(r[0]) for r in conn.execute(
            "SELECT payload FROM outbox ORDER BY id DESC LIMIT 50").fetchall()]

    for raw in await store.read(find):
        payload = json.loads(raw)
        body = payload.get("body") or {}
        if payload.get("type") == "parcel.deposited" and body.get("parcel_id") == parcel_id:
            return str(body["pickup_code"])
    raise AssertionError(f"no parcel.deposited for {parcel_id}")


async def daemon_child(workdir: Path, port: int, n: int, gap_s: float,
                       idle_s: float) -> dict[str, Any]:
    """N lifecycles through an in-process daemon; I/O counters around them."""
    capture = Capture()
    capture.install()
    from tests.fixtures.cabinet import CARRIER, PIN, Cabinet, courier, delivery

    cab = Cabinet(workdir, camera={"enabled": False},
              mqtt={"enabled": True, "host": "127.0.0.1", "port": port, "tls": False,
                    "reconnect_min_s": 0.2, "reconnect_max_s": 1.0})
    await cab.start()
    await cab.grant(CARRIER, "c-101", PIN)
    deadline = time.monotonic() + 20
    while not cab.d.sync.status()["connected"]:
        assert time.monotonic() < deadline, "no broker connection"
        await asyncio.sleep(0.05)
    await _drained(cab)
    marker = Marker(workdir)
    capture.start = len(capture.statements)
    io0 = marker.mark()
    t0 = time.monotonic()
    for i in range(n):
        res = await cab.call("panel.deliver", {**courier(),
                                               "parcel": delivery(waybill=f"SF{900000 + i:010d}")})
        assert res["status"] == "deliver.confirm", res
        code = await _outbox_code(cab.store, res["parcel_id"])
        if gap_s:
            await asyncio.sleep(gap_s)
        got = await cab.call("panel.pickup", {"panel": "kiosk-1", "code": code})
        assert got["status"] == "pickup.confirm", got
        if gap_s:
            await asyncio.sleep(gap_s)
    await _drained(cab)
    elapsed = time.monotonic() - t0
    io_drained = proc_io()
    await asyncio.sleep(idle_s)
    io_idle = proc_io()
    commits = cab.store.commits
    await cab.stop()
    io1 = marker.mark()
    sql = workdir / "statements.jsonl"
    with sql.open("w", encoding="utf-8") as fh:
        for stmt in capture.statements:
            fh.write(json.dumps(stmt) + "\n")
    return {"io0": io0, "io_drained": io_drained, "io_idle": io_idle, "io1": io1, "marker_fd": marker.fd,
            "elapsed_s": elapsed, "sql": str(sql), "start": capture.start, "commits": commits}


async def _drained(cab: Any) -> None:
    deadline = time.monotonic() + 30
    while (await cab.store.outbox_stats())[0] > 0:
        assert time.monotonic() < deadline, "outbox not drained"
        await asyncio.sleep(0.05)


# ---------------------------------------------------------------- child: the baseline


def _replayable(stmt: str) -> bool:
    head = stmt.lstrip().upper()
    # PRAGMAs are lockerd's own settings (key, checkpoints); '--' lines are trigger bodies
    # the trace reports inside their statement; reads write nothing.
    return not head.startswith(("PRAGMA", "--", "SELECT"))


def replay_child(workdir: Path, sql: Path, start: int) -> dict[str, Any]:
    """The captured statements into plain sqlite3 (WAL, FULL, default auto-checkpoint)."""
    statements = [json.loads(line) for line in sql.read_text(encoding="utf-8").splitlines()]
    path = workdir / "plain.db"
    conn = sqlcipher.connect(path, None, cipher=False)
    conn.execute("PRAGMA wal_autocheckpoint = 1000")  # SQLite's default, stated
    for stmt in statements[:start]:
        if _replayable(stmt):
            conn.execute(stmt)
    marker = Marker(workdir)
    io0 = marker.mark()
    commits = 0
    for stmt in statements[start:]:
        if _replayable(stmt):
            conn.execute(stmt)
            commits += stmt.strip().upper() == "COMMIT"
    conn.close()
    io1 = marker.mark()
    return {"io0": io0, "io1": io1, "marker_fd": marker.fd, "commits": commits}


# ---------------------------------------------------------------- parent


def _run_child(args: list[str], trace: Path | None) -> dict[str, Any]:
    cmd = [sys.executable, __file__, *args]
    if trace is not None:
        cmd = ["strace", "-f", "-qq", "--seccomp-bpf", "-e", "trace=fsync,fdatasync", "-o",
               str(trace), *cmd]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-4000:])
        raise SystemExit(f"child {args[:2]} failed ({done.returncode})")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _fsyncs(trace: Path | None, marker_fd: int) -> int | None:
    if trace is None:
        return None
    inside, count = False, 0
    for line in trace.read_text().splitlines():
        call = SYNC_CALL.search(line)
        if call is None:
            continue
        if int(call.group(2)) == marker_fd:
            if inside:
                return count
            inside = True
        elif inside:
            count += 1
    return None


def _delta(a: dict[str, int], b: dict[str, int], name: str) -> int:
    return b[name] - a[name]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20, help="lifecycles per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (median and spread)")
    parser.add_argument("--gap", type=float, default=0.0,
                        help="seconds between delivery and pickup and between lifecycles")
    parser.add_argument("--idle", type=float, default=10.0,
                        help="seconds of idle after the lifecycles, writes counted separately")
    parser.add_argument("--dir", type=Path, default=None,
                        help="work directory (default: a temp dir under /var/tmp, a real disk)")
    parser.add_argument("--child", choices=("daemon", "replay"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--sql", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--start", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "daemon":
        print(json.dumps(asyncio.run(daemon_child(args.dir, args.port, args.n, args.gap,
                                                  args.idle))))
        return
    if args.child == "replay":
        print(json.dumps(replay_child(args.dir, args.sql, args.start)))
        return

    strace = shutil.which("strace") is not None
    rounds: list[dict[str, float]] = []
    for _ in range(args.rounds):
        base = Path(tempfile.mkdtemp(prefix="oplog-wear-", dir=str(args.dir or "/var/tmp")))
        try:
            rounds.append(asyncio.run(_round(base, args.n, args.gap, args.idle, strace)))
        finally:
            shutil.rmtree(base, ignore_errors=True)
    _report(rounds, args.n, args.gap, args.idle, strace)


async def _round(base: Path, n: int, gap: float, idle: float, strace: bool) -> dict[str, float]:
    """One daemon run and its replay; figures per lifecycle."""
    for sub in ("broker", "daemon", "plain"):
        (base / sub).mkdir()
    broker = LocalBroker(base / "broker", persistence=False)
    await broker.start()
    try:
        trace = base / "daemon.strace" if strace else None
        d = await asyncio.to_thread(_run_child, [
            "--child", "daemon", "--dir", str(base / "daemon"), "--port", str(broker.port),
            "--n", str(n), "--gap", str(gap), "--idle", str(idle)], trace)
    finally:
        await broker.stop()
    ptrace = base / "plain.strace" if strace else None
    p = await asyncio.to_thread(_run_child, ["--child", "replay", "--dir", str(base / "plain"),
                                             "--sql", d["sql"], "--start", str(d["start"])],
                                ptrace)
    await asyncio.to_thread(Path(d["sql"]).unlink)  # synthetic data, but no reason to keep it
    out: dict[str, float] = {"elapsed_s": d["elapsed_s"],
                             "idle_write_bytes": _delta(d["io_drained"], d["io_idle"], "write_bytes"),
                             "drained_kib": _delta(d["io0"], d["io_drained"], "write_bytes") / 1024 / n,
                             "commits": d["commits"] / n, "plain_commits": p["commits"] / n}
    for name in ("write_bytes", "wchar"):
        out[name] = (_delta(d["io0"], d["io_drained"], name)
                     + _delta(d["io_idle"], d["io1"], name)) / 1024 / n
        out["plain_" + name] = _delta(p["io0"], p["io1"], name) / 1024 / n
    d_fs, p_fs = _fsyncs(trace, d["marker_fd"]), _fsyncs(ptrace, p["marker_fd"])
    if d_fs is not None and p_fs is not None:
        out["fsyncs"], out["plain_fsyncs"] = d_fs / n, p_fs / n
    return out


def _fmt(values: list[float], digits: int = 1) -> str:
    med = statistics.median(values)
    return f"{med:.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def _report(rounds: list[dict[str, float]], n: int, gap: float, idle: float, strace: bool) -> None:
    print(f"== {len(rounds)} rounds x {n} parcel lifecycles (delivery + pickup) through the daemon "
          f"on the simulator, camera off, MQTT acks from a local mosquitto, gap {gap:g} s, "
          f"{statistics.median(r['elapsed_s'] for r in rounds):.1f} s per round; "
          f"{format_ts(datetime.now(UTC))}")
    print("per lifecycle, median (min-max)    lockerd log            plain SQLite       ratio")
    rows = [("write_bytes", "disk writes (write_bytes) KiB"), ("wchar", "bytes to write() KiB"),
            ("commits", "commits (write transactions)")]
    if strace:
        rows.append(("fsyncs", "fsync + fdatasync"))
    for key, label in rows:
        mine = [r[key] for r in rounds]
        plain = [r["plain_" + key] for r in rounds]
        ratio = statistics.median(m / p for m, p in zip(mine, plain, strict=True) if p)
        print(f"{label:<34}{_fmt(mine):<23}{_fmt(plain):<19}{ratio:5.2f}x")
    if not strace:
        print("fsyncs: strace not installed, not counted")
    print(f"(of the disk writes, {_fmt([r['drained_kib'] for r in rounds])} KiB were written "
          f"before the log closed; closing folds the rest of the WAL into the file)")
    ratios = [r["write_bytes"] / r["plain_write_bytes"] for r in rounds]
    ratio = statistics.median(ratios)
    print(f"target: disk writes <= {TARGET_RATIO:g}x plain SQLite: {ratio:.2f}x "
          f"({'met' if ratio <= TARGET_RATIO else 'NOT met'})")
    idle_bytes = max(r["idle_write_bytes"] for r in rounds)
    print(f"target: no writes at idle: {idle_bytes:.0f} bytes in {idle:g} s after the last "
          f"acknowledgement (worst round) ({'met' if idle_bytes == 0 else 'NOT met'})")


if __name__ == "__main__":
    main()
