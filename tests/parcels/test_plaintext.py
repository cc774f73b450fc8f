"""After a demo-like day with known personal values, none is in clear in any state file or log."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from lockerd.config import Config
from lockerd.demo import day as demo
from lockerd.demo import flows as demo_flows
from lockerd.demo.day import DemoContext, Timeline, demo_day
from tests.fixtures.cabinet import FAST, speed_up_sim_doors


def _fast_demo_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo's own config with the service tests' faster camera start (validated again)."""
    original = demo.demo_config

    def fast(workdir: Path, **kwargs: Any) -> Config:
        cfg = original(workdir, **kwargs)
        camera = type(cfg.camera).model_validate({**cfg.camera.model_dump(), **FAST["camera"]})
        return cfg.model_copy(update={"camera": camera})

    monkeypatch.setattr(demo, "demo_config", fast)


async def fast_doors(ctx: DemoContext) -> None:
    speed_up_sim_doors(ctx.daemon)


async def test_no_personal_value_in_clear(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          caplog: pytest.LogCaptureFixture,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    caplog.set_level(logging.DEBUG)
    _fast_demo_config(monkeypatch)
    seen: dict[str, list[str]] = {}

    async def keep_codes(ctx: DemoContext) -> None:
        seen["codes"] = list(ctx.extras.get("codes", []))
        await ctx.daemon.oplog.store.verify()

    scenes = [fast_doors, demo_flows.scene_couriers, demo_flows.scene_deliveries,
              demo_flows.scene_wrong_codes, demo_flows.scene_refusal, demo_flows.scene_dropoff,
              keep_codes]
    await demo_day(tmp_path, timeline=Timeline(), scenes=scenes)
    assert len(seen["codes"]) == 2
    secrets = [*demo_flows.WAYBILLS[:2], demo_flows.PIN_A, demo_flows.PIN_B, demo_flows.PIN_Y,
               "RN-7f3a9c21", "ceramic vase", *seen["codes"]]
    files = [p for p in (tmp_path / "state").rglob("*") if p.is_file()]
    assert files
    for path in files:
        raw = path.read_bytes()
        for value in secrets:
            assert value.encode() not in raw, f"{value!r} in clear in {path.name}"
    out = capsys.readouterr()
    logs = "\n".join(r.getMessage() for r in caplog.records)
    for value in secrets:
        assert value not in out.out, value
        assert value not in out.err, value
        assert value not in logs, value
