"""After a demo-like day with known personal values, none is in clear in any state file or log."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from lockerd import demo_flows
from lockerd.demo import DemoContext, Timeline, demo_day


async def test_no_personal_value_in_clear(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    seen: dict[str, list[str]] = {}

    async def keep_codes(ctx: DemoContext) -> None:
        seen["codes"] = list(ctx.extras.get("codes", []))
        await ctx.daemon.oplog.store.verify()

    scenes = [demo_flows.scene_couriers, demo_flows.scene_deliveries, demo_flows.scene_wrong_codes,
              demo_flows.scene_refusal, demo_flows.scene_dropoff, keep_codes]
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
