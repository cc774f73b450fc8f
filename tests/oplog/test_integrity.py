"""A damaged page of the log file (issue 16): detected at start, `degraded: oplog_corrupt`, alert.

Before: a log with a damaged page opened as `ready`, and every read touching the page failed
as `internal`. Now the integrity check (cipher_integrity_check + quick_check) runs at start and
on a schedule; a failure makes the cabinet degraded and raises `oplog_corrupt`.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from lockerd.app.events import Alert, AlertKind, EventBus, Severity
from lockerd.app.supervisor import CabinetState, Supervisor
from lockerd.config import Config
from lockerd.oplog.component import OplogComponent
from tests.fixtures.oplog import example_config

PAGE = 4096  # SQLCipher 4's page size


def _component(cfg: Config, bus: EventBus) -> OplogComponent:
    return OplogComponent(cfg.oplog, cfg.paths, None, cabinet=cfg.cabinet,
                          compartments=cfg.compartments, bus=bus)


async def _real_log(cfg: Config) -> Path:
    comp = _component(cfg, EventBus())
    await comp.start()
    for i in range(600):  # a few dozen pages of operations
        await comp.store.append("parcel.deposited", actor="courier:sf:c-1",
                                body={"compartment": 1 + i % 8, "detail": "x" * 200},
                                parcel_id=f"p-{i:016x}")
    assert comp.degraded() == []
    await comp.stop()
    return cfg.paths.state_dir / cfg.oplog.db_name


def _damage_a_page(path: Path) -> int:
    pages = path.stat().st_size // PAGE
    victim = pages // 2
    with path.open("r+b") as f:
        f.seek(victim * PAGE + 512)
        f.write(os.urandom(64))
    return victim


async def test_damaged_page_makes_the_cabinet_degraded_with_an_alert(tmp_path: Path,
                                                                     key_file: Path) -> None:
    original = example_config(tmp_path / "a", key_file)
    source = await _real_log(original)
    copy_cfg = example_config(tmp_path / "b", key_file)
    copy = copy_cfg.paths.state_dir / copy_cfg.oplog.db_name
    copy.parent.mkdir(parents=True, mode=0o700)
    shutil.copy2(source, copy)
    victim = _damage_a_page(copy)

    bus = EventBus()
    alerts = bus.subscribe(Alert)
    comp = _component(copy_cfg, bus)
    supervisor = Supervisor()
    supervisor.add(comp)
    await supervisor.start_all()
    try:
        assert comp.degraded() == ["oplog_corrupt"], f"page {victim} damaged, not detected"
        assert supervisor.cabinet_state() == CabinetState.DEGRADED
        assert supervisor.degraded_reasons() == ["oplog_corrupt"]
        status = comp.status()["integrity"]
        assert status["ok"] is False
        assert status["problems"]
        print("found:", status["problems"])
        alert = alerts.queue.get_nowait()
        assert alert.kind == AlertKind.OPLOG_CORRUPT
        assert alert.severity == Severity.CRITICAL
        assert alert.active is True
        # the scheduled check keeps it, without a second alert
        assert await comp.check_integrity() is False
        assert alerts.queue.empty()
    finally:
        await supervisor.stop_all()

    # the undamaged original starts ready
    bus = EventBus()
    comp = _component(original, bus)
    supervisor = Supervisor()
    supervisor.add(comp)
    await supervisor.start_all()
    try:
        assert comp.degraded() == []
        assert comp.status()["integrity"]["ok"] is True
        assert supervisor.cabinet_state() == CabinetState.READY
    finally:
        await supervisor.stop_all()
