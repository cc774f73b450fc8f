"""doors.list and doors.open through the real Unix socket, with validation of hostile params."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

import pytest

from lockerd.api.server import ApiServer
from lockerd.app.events import EventBus
from lockerd.config import Api, Board, Compartment, Doors, Hardware, SerialPort, Size
from lockerd.doors.api import DoorsApi
from lockerd.doors.controller import DoorController
from lockerd.drivers.factory import ConfiguredBoards


async def _call(sock: Path, method: str, params: dict[str, Any]) -> dict[str, Any]:
    reader, writer = await asyncio.open_unix_connection(str(sock))
    writer.write(json.dumps({"id": 1, "method": method, "params": params}).encode() + b"\n")
    reply: dict[str, Any] = json.loads(await reader.readline())
    writer.close()
    await writer.wait_closed()
    return reply


async def test_doors_api_over_socket_with_sim_backend(tmp_path: Path) -> None:
    hw = Hardware(backend="sim", buses=[SerialPort(baudrate=115200)], boards=[Board(address=1)])
    comps = [Compartment(id=c, size=Size.M, board=1, channel=c - 1) for c in (1, 2)]
    ctl = DoorController(Doors(open_confirm_s=0.6), comps, EventBus(),
                         ConfiguredBoards(hw, sim_close_after_s=0.3))
    api = ApiServer(Api(), tmp_path / "api.sock")
    DoorsApi(ctl).register(api)
    await api.start()
    await ctl.start()
    task = asyncio.create_task(ctl.run())
    try:
        assert ctl.board_set is not None
        assert ctl.board_set.sim is not None
        ok = await _call(tmp_path / "api.sock", "doors.open", {"compartment": 2, "reason": "check"})
        assert ok["ok"], ok
        assert ok["result"]["outcome"] == "opened"
        assert ctl.board_set.sim.board("bus0", 1).pulse_counts() == [0, 1, 0, 0, 0, 0, 0, 0]
        listed = await _call(tmp_path / "api.sock", "doors.list", {})
        assert [d["compartment"] for d in listed["result"]["doors"]] == [1, 2]
        assert listed["result"]["boards"][0]["online"] is True
        for bad in ({"compartment": 2, "reason": "   "}, {"compartment": 2, "reason": "x" * 201},
                    {"compartment": 0, "reason": "x"}, {"compartment": 2},
                    {"compartment": 2, "reason": "x", "extra": 1}):
            reply = await _call(tmp_path / "api.sock", "doors.open", bad)
            assert reply["error"]["code"] == "bad_params", bad
        unknown = await _call(tmp_path / "api.sock", "doors.open", {"compartment": 9, "reason": "x"})
        assert unknown["error"]["code"] == "unknown_compartment"
        ctl.board_set.sim.faults.jam("bus0", 1, 0)
        jam = await _call(tmp_path / "api.sock", "doors.open", {"compartment": 1, "reason": "x"})
        assert jam["error"]["code"] == "door_jammed"
        assert jam["result"]["pulses"] == 2
        assert ctl.board_set.sim.board("bus0", 1).pulse_counts()[:2] == [2, 1]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await ctl.stop()
        await api.stop()


def test_hardware_rejects_duplicate_board_addresses_across_buses() -> None:
    with pytest.raises(ValueError, match="unique across buses"):
        Hardware(buses=[SerialPort(name="a"), SerialPort(name="b")],
                 boards=[Board(address=1, bus="a"), Board(address=1, bus="b")])
