"""The disk fills up between a door operation's begin and its confirm (issue 16), run inside a
private mount namespace by tests/parcels/test_disk_full.py.

`python -m tests.parcels.disk_full_scenario WORKDIR` expects WORKDIR/state to be a small tmpfs
(mounted by the caller with `unshare --mount`). An in-process daemon on the simulator keeps its
operation log there. A deposit and a pickup open their doors; while the doors are held open a
filler file takes every free byte; the doors close. Then the filler is removed. The observations
are printed as one JSON line; any failed expectation raises (exit code 1).

`... WORKDIR restart`: the daemon is stopped while the disk is still full, the filler removed,
and a new daemon started on the same files: the kept ends come back from the side file.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from lockerd.api.client import ApiReplyError, AsyncApiClient
from lockerd.parcels.kept_file import KEPT_FILE_NAME
from tests.fixtures.cabinet import CARRIER, PIN, Cabinet, courier, delivery

CHUNKS = (1 << 20, 1 << 16, 1 << 12, 1 << 9)


def fill(path: Path) -> int:
    """Write `path` until the file system refuses another byte; returns its size."""
    written = 0
    with path.open("wb", buffering=0) as f:
        for size in CHUNKS:
            block = b"\xa5" * size
            while True:
                try:
                    written += f.write(block) or 0
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
        with contextlib.suppress(OSError):
            os.fsync(f.fileno())
    return written


async def until(pred: Callable[[], Awaitable[bool]], what: str, limit_s: float = 30.0) -> None:
    deadline = time.monotonic() + limit_s
    while not await pred():
        assert time.monotonic() < deadline, f"never: {what}"
        await asyncio.sleep(0.1)


async def reasons(cab: Cabinet) -> tuple[str, list[str]]:
    st = await cab.call("status")
    return st["state"], [r["code"] for r in st["reasons"]]


def side_file(path: Path) -> dict[str, Any]:
    """What the side file holds after the stop: its mode and its entries' keys."""
    doc = json.loads(path.read_bytes().decode().strip())
    return {"mode": oct(path.stat().st_mode & 0o777), "size": path.stat().st_size,
            "kinds": [e["kind"] for e in doc["ends"]],
            "keys": sorted({k for e in doc["ends"] for k in e}), "text": json.dumps(doc)}


async def run(workdir: Path, restart: bool = False) -> dict[str, Any]:
    state_dir = workdir / "state"
    cab = Cabinet(workdir, doors={"close_timeout_s": 30.0})
    await cab.start()
    out: dict[str, Any] = {}
    try:
        await cab.grant(CARRIER, "c-101", PIN)
        first = await cab.call("panel.deliver", {**courier(), "parcel": delivery("SF1000000001")})
        code = await cab.code_of(first["parcel_id"])
        out["ready_before"] = await reasons(cab)
        comps = cab.d.parcels.cabinet.state.compartments
        every = [cab.hw(c.id) for c in cab.cfg.compartments]
        for faults, bus, board, ch in every:
            faults.hold_open(bus, board, ch)
        deposit = asyncio.create_task(cab.call("panel.deliver", {
            **courier(), "parcel": delivery("SF1000000002")}))
        second = AsyncApiClient(cab.cfg.paths.socket)  # one connection answers in order
        await second.connect()
        pickup = asyncio.create_task(second.call("panel.pickup", {"panel": "kiosk-2",
                                                                  "code": code}))

        async def both_open() -> bool:
            opening = [c.id for c in comps.values() if c.pending is not None]
            return len(opening) == 2 and all(cab.d.doors.state(c).value == "open"
                                             for c in opening)
        await until(both_open, "both doors open")
        out["filler_bytes"] = fill(state_dir / "filler")
        for faults, bus, board, ch in every:
            faults.hold_open(bus, board, ch, held=False)
        replies: dict[str, Any] = {}
        for name, task in (("deposit", deposit), ("pickup", pickup)):
            try:
                replies[name] = {"ok": True, "result": await asyncio.wait_for(task, 30)}
            except ApiReplyError as exc:
                replies[name] = {"ok": False, "code": exc.code, "result": exc.reply.get("result")}
        out["replies"] = replies
        await second.close()
        deposited = (await cab.ops("deliver.begin"))[-1].parcel_id
        parcels = cab.d.parcels.cabinet.state.parcels

        def status_of(pid: str) -> str:
            """A live parcel's status; `closed` once it left the live state (picked up)."""
            return parcels[pid].status.value if pid in parcels else "closed"
        out["while_full"] = {
            "condition": await reasons(cab),
            "deposit_status": status_of(deposited),
            "pickup_status": status_of(first["parcel_id"]),
            "kept": cab.d.parcels.status().get("unrecorded"),
        }
        try:
            await cab.call("panel.deliver", {**courier(), "parcel": delivery("SF1000000003")})
            out["new_begin"] = "ok"
        except ApiReplyError as exc:
            out["new_begin"] = exc.code
        if restart:
            await cab.stop()
            out["side_file"] = side_file(state_dir / KEPT_FILE_NAME)
            (state_dir / "filler").unlink()
            cab.cfg.paths.socket.unlink(missing_ok=True)
            await cab.start()
            out["after_start"] = {"unrecorded": cab.d.parcels.status().get("unrecorded"),
                                  "blocked": cab.d.parcels.cabinet.blocked()}
            parcels = cab.d.parcels.cabinet.state.parcels
        else:
            (state_dir / "filler").unlink()

        async def recorded() -> bool:
            return not cab.d.parcels.status().get("unrecorded")

        await until(recorded, "the kept door-cycle ends are recorded")

        async def ready() -> bool:
            return (await reasons(cab))[0] == "ready"

        await until(ready, "the condition is ready again")
        out["after"] = {
            "condition": await reasons(cab),
            "deposit_status": status_of(deposited),
            "pickup_status": status_of(first["parcel_id"]),
            "deliver_confirms": [o.parcel_id for o in await cab.ops("deliver.confirm")],
            "pickup_confirms": [o.parcel_id for o in await cab.ops("pickup.confirm")],
            "rollbacks": [o.kind for o in await cab.ops() if o.kind.endswith(".rollback")],
            "recorded_late": cab.d.parcels.status().get("recorded_late"),
            "after_restart": [o.kind for o in await cab.ops()
                              if (o.body or {}).get("after_restart")],
        }
        out["ids"] = {"first": first["parcel_id"], "deposited": deposited}
        await cab.verify()
    finally:
        await cab.stop()
    return out


def main() -> None:
    workdir = Path(sys.argv[1])
    restart = sys.argv[2:] == ["restart"]
    print(json.dumps(asyncio.run(run(workdir, restart))), flush=True)


if __name__ == "__main__":
    main()
