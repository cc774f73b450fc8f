"""An idle cabinet writes nothing: the daemon on the simulator, quiet for a few seconds, changes no file.

Checked on the state directory's files (size and mtime: a write() or a write through SQLite's
shared-memory mapping both update the mtime), not through /proc/self/io: in a test process that
counter also moves when pytest's capture file takes a log line.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from tests.fixtures.cabinet import Cabinet, courier, delivery


def state_files(state_dir: Path) -> dict[str, tuple[int, int]]:
    """(size, mtime_ns) of every file under the state directory."""
    return {str(p.relative_to(state_dir)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(state_dir.rglob("*")) if p.is_file()}


async def test_an_idle_daemon_writes_nothing(cab: Cabinet) -> None:
    res = await cab.call("panel.deliver", {**courier(), "parcel": delivery()})
    assert res["status"] == "deliver.confirm"
    await asyncio.sleep(1.0)  # the door closed; its last poll and record are behind us
    # The first read transaction after a commit sets the read connection's mark in the WAL
    # index (a write to the -shm page); once set, later reads leave it. Both readers read now.
    await asyncio.gather(*(cab.store.read(lambda c: (c.execute("SELECT count(*) FROM operations")
                                                      .fetchone(), time.sleep(0.1)))
                           for _ in range(2)))
    state_dir = cab.cfg.paths.state_dir
    files = state_files(state_dir)
    assert any(name.endswith("oplog.db-wal") for name in files)
    await asyncio.sleep(4.0)
    assert state_files(state_dir) == files
