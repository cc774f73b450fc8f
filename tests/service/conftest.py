"""An in-process daemon on the simulator, driven through its real API socket and command processor."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from lockerd.client import ApiReplyError, AsyncApiClient
from lockerd.config import load_config
from lockerd.daemon import Daemon
from lockerd.oplog import OpLog
from tests.skeleton.helpers import make_config

# PBKDF2 cost kept at the config's minimum so grants and logins stay fast in tests. The camera
# learns the empty scene from fewer frames sampled faster and reopens intake sooner (defaults: 5
# frames at 5 Hz, then 3 s of good frames, ~4 s per daemon start); the checks are the same.
FAST: dict[str, dict[str, Any]] = {
    "rules": {"pin_hash_iterations": 10_000},
    "doors": {"close_timeout_s": 4.0},
    "camera": {"sample_hz": 10.0, "learn_frames": 3, "good_hold_s": 0.3},
}
# The simulated person shuts a door this long after it springs open (open_boards' default is 3 s).
# Still longer than the relay pulse (pulse_ms = 700) and many door polls (poll_moving_ms = 50).
SIM_CLOSE_AFTER_S = 0.8


def speed_up_sim_doors(daemon: Daemon, close_after_s: float = SIM_CLOSE_AFTER_S) -> None:
    """Every simulated door of a running daemon is shut `close_after_s` after it opens."""
    board_set = daemon.doors.board_set
    assert board_set is not None
    assert board_set.sim is not None
    for board in daemon.cfg.hardware.boards:
        model = board_set.sim.board(board.bus, board.address)
        for channel in range(board.channels):
            model.set_close_after(channel, close_after_s)


class Cabinet:
    """One daemon run on a state directory; `restart()` starts a new daemon on the same files."""

    def __init__(self, workdir: Path, **overrides: Any) -> None:
        merged = {k: dict(v) for k, v in FAST.items()}
        for section, values in overrides.items():
            merged.setdefault(section, {}).update(values)
        self.config_path = make_config(workdir, **merged)
        self.cfg = load_config(self.config_path)
        self.workdir = workdir
        self.daemon: Daemon | None = None
        self._task: asyncio.Task[int] | None = None
        self.api: AsyncApiClient | None = None

    @property
    def d(self) -> Daemon:
        assert self.daemon is not None
        return self.daemon

    @property
    def store(self) -> OpLog:
        return self.d.oplog.store

    async def start(self) -> None:
        self.daemon = Daemon(self.cfg, self.config_path)
        self._task = asyncio.create_task(self.daemon.run(), name="daemon")
        sock = self.cfg.paths.socket
        deadline = time.monotonic() + 30
        while not sock.exists():
            if self._task.done():
                raise AssertionError(f"daemon exited: {self._task.result()}")
            assert time.monotonic() < deadline, "daemon did not come up"
            await asyncio.sleep(0.05)
        self.api = AsyncApiClient(sock)
        await self.api.connect()
        await self.wait_camera()
        speed_up_sim_doors(self.d)

    async def wait_camera(self, limit_s: float = 20.0) -> None:
        deadline = time.monotonic() + limit_s
        assert self.d.camera is not None
        while not self.d.camera.is_open():
            assert time.monotonic() < deadline, "camera intake never opened"
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        if self.api is not None:
            await self.api.close()
            self.api = None
        if self.daemon is not None and self._task is not None:
            self.daemon.request_stop()
            assert await asyncio.wait_for(self._task, 30) == 0
        self.daemon = None

    async def restart(self) -> None:
        await self.stop()
        sock = self.cfg.paths.socket
        if sock.exists():
            sock.unlink()
        await self.start()

    # ---- calls ---------------------------------------------------------------------------------

    async def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        assert self.api is not None
        return await self.api.call(method, params)

    async def refused(self, method: str, params: dict[str, Any]) -> ApiReplyError:
        """Call and expect a refusal; returns it."""
        with pytest.raises(ApiReplyError) as info:
            await self.call(method, params)
        return info.value

    async def command(self, carrier: str, type_: str, body: dict[str, Any]) -> dict[str, Any]:
        """A carrier command through the sync component's real processor (as if from MQTT)."""
        processor = self.d.sync.processor
        assert processor is not None
        msg = {"v": 1, "id": uuid.uuid4().hex[:16], "type": type_,
               "ts": datetime.now(UTC).isoformat(), "body": body}
        reply = await processor.handle(self.d.sync.topics.cmd(carrier), json.dumps(msg).encode())
        assert reply is not None
        return reply

    async def grant(self, carrier: str, courier_id: str, pin: str, days: int = 30) -> None:
        expires = (datetime.now(UTC) + timedelta(days=days)).isoformat()
        reply = await self.command(carrier, "courier.grant",
                                   {"courier_id": courier_id, "pin": pin, "expires": expires})
        assert reply["ok"], reply

    async def events(self, type_: str | None = None) -> list[dict[str, Any]]:
        """Unsent carrier events in the outbox (no broker in tests, so all of them)."""
        rows = await self.store.outbox_pending(limit=10_000)
        out = []
        for row in rows:
            payload = json.loads(row.payload_bytes)
            if "type" in payload and (type_ is None or payload["type"] == type_):
                out.append({**payload, "_stream": row.stream})
        return out

    async def code_of(self, parcel_id: str) -> str:
        """The pickup code the owning carrier got in parcel.deposited."""
        for ev in await self.events("parcel.deposited"):
            if ev["body"]["parcel_id"] == parcel_id:
                return str(ev["body"]["pickup_code"])
        raise AssertionError(f"no parcel.deposited for {parcel_id}")

    async def verify(self) -> None:
        res = await self.store.verify()
        assert res.ok, res

    async def ops(self, kind: str | None = None) -> list[Any]:
        ops = await self.store.operations(limit=100_000)
        return [o for o in ops if kind is None or o.kind == kind]

    def comp_of(self, size: str) -> list[int]:
        return [c.id for c in self.cfg.compartments if c.size.value == size]

    def hw(self, compartment: int) -> tuple[Any, str, int, int]:
        """(sim faults, bus, board, channel) of a compartment."""
        comp = self.cfg.compartment(compartment)
        assert comp is not None
        bus = next(b.bus for b in self.cfg.hardware.boards if b.address == comp.board)
        sim = self.d.doors.board_set.sim if self.d.doors.board_set else None
        assert sim is not None
        return sim.faults, bus, comp.board, comp.channel


CARRIER = "sf"
OTHER = "yto"
PIN = "482913"
PIN2 = "730164"


def courier(panel: str = "kiosk-1", cid: str = "c-101", pin: str = PIN, carrier: str = CARRIER
            ) -> dict[str, Any]:
    return {"panel": panel, "carrier": carrier, "courier_id": cid, "pin": pin}


def delivery(waybill: str = "SF1234567890", size: str = "S", **flags: Any) -> dict[str, Any]:
    return {"waybill": waybill, "size": size, "consent": True, **flags}


def dropoff(**over: Any) -> dict[str, Any]:
    base = {"carrier": CARRIER, "size": "S", "verification_ref": "RN-7f3a9c21",
            "declared_contents": "books", "ack_insured_value": True, "ack_prohibited_items": True}
    return {**base, **over}


@pytest.fixture
async def cab(tmp_path: Path) -> AsyncIterator[Cabinet]:
    c = Cabinet(tmp_path)
    await c.start()
    await c.grant(CARRIER, "c-101", PIN)
    try:
        yield c
    finally:
        if c.daemon is not None:
            await c.verify()
        await c.stop()
