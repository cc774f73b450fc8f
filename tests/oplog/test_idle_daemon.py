"""An idle cabinet writes nothing: the daemon on the simulator, quiet for a while, changes no file.

Checked on the state directory's files (size and mtime: a write() or a write through SQLite's
shared-memory mapping both update the mtime), not through /proc/self/io: in a test process that
counter also moves when pytest's capture file takes a log line. The long test also checks the
log's own commit counter, online (MQTT to the real broker, camera on) for a whole idle minute:
periodic work (state publication, sweeps, prunes, camera sampling) must not write (issue 19).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from lockerd.testing.broker import LocalBroker
from tests.fixtures.cabinet import CARRIER, PIN, Cabinet, courier, delivery, mqtt_settings, until


def state_files(state_dir: Path) -> dict[str, tuple[int, int]]:
    """(size, mtime_ns) of every file under the state directory."""
    return {str(p.relative_to(state_dir)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(state_dir.rglob("*")) if p.is_file()}


async def settle(cab: Cabinet) -> None:
    """Let the last operation's door poll and record pass, and set the readers' WAL marks."""
    await asyncio.sleep(1.0)  # the door closed; its last poll and record are behind us
    # The first read transaction after a commit sets the read connection's mark in the WAL
    # index (a write to the -shm page); once set, later reads leave it. Both readers read now.
    await asyncio.gather(*(cab.store.read(lambda c: (c.execute("SELECT count(*) FROM operations")
                                                      .fetchone(), time.sleep(0.1)))
                           for _ in range(2)))


async def test_an_idle_daemon_writes_nothing(cab: Cabinet) -> None:
    res = await cab.call("panel.deliver", {**courier(), "parcel": delivery()})
    assert res["status"] == "deliver.confirm"
    await settle(cab)
    state_dir = cab.cfg.paths.state_dir
    files = state_files(state_dir)
    assert any(name.endswith("oplog.db-wal") for name in files)
    await asyncio.sleep(4.0)
    assert state_files(state_dir) == files


async def test_an_idle_minute_online_writes_nothing(tmp_path: Path, broker: LocalBroker) -> None:
    workdir = tmp_path / "cab"
    workdir.mkdir()
    cab = Cabinet(workdir, mqtt=mqtt_settings(broker))
    await cab.start()
    try:
        await until(lambda: cab.d.sync.link is not None and cab.d.sync.link.connected)
        await cab.grant(CARRIER, "c-101", PIN)
        res = await cab.call("panel.deliver", {**courier(), "parcel": delivery()})
        assert res["status"] == "deliver.confirm"
        # the events went out and their acknowledgements were written (they ride a batch)
        for _ in range(200):
            pending, _ = await cab.store.outbox_stats()
            if pending == 0:
                break
            await asyncio.sleep(0.1)
        assert pending == 0
        await asyncio.sleep(3.0)
        await settle(cab)
        state_dir = cab.cfg.paths.state_dir
        files, commits = state_files(state_dir), cab.store.commits
        await asyncio.sleep(60.0)
        assert cab.store.commits == commits
        assert state_files(state_dir) == files
        assert cab.d.camera is not None
        assert cab.d.camera.is_open()  # the guard sampled all along
    finally:
        await cab.verify()
        await cab.stop()
