"""Commissioning API (technician role): list boards, read a board raw, pulse one channel by bus/board/channel.

Used by `lockerctl commission` to find which door hangs on which channel before the
compartment map exists. A channel that is already mapped to a compartment is opened through
the door controller (so its opening is expected, recorded as a command and never raised as a
forced door); an unmapped channel is pulsed directly, with the configured `doors.pulse_ms`.
Every pulse is written to the operation log through the `recorder` port and logged; no personal
data is involved.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from lockerd.api.server import ApiError, ApiServer, Caller, NoParams, Role
from lockerd.config import Compartment
from lockerd.config import Doors as DoorsConfig
from lockerd.doors.ports import DoorOpener, OpenedBoards, OperationRecorder
from lockerd.drivers.base import ManagedBoard
from lockerd.drivers.errors import DriverError, DriverUnavailable
from lockerd.drivers.profiles import MAX_ADDRESS, MAX_CHANNELS
from lockerd.privacy import redact_text

log = logging.getLogger(__name__)

RECORDED = ("bus", "board", "channel", "via", "acknowledged", "outcome")
"""Fields of a commissioning pulse that go into its operation record (with the redacted reason)."""


class BoardReadParams(BaseModel):
    """boards.read: which board."""

    model_config = ConfigDict(extra="forbid")
    bus: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")
    board: int = Field(ge=0, le=MAX_ADDRESS)


class BoardPulseParams(BoardReadParams):
    """boards.pulse: which channel, and why (audited)."""

    channel: int = Field(ge=0, le=MAX_CHANNELS - 1)
    reason: str = Field(min_length=1, max_length=200)

    @field_validator("reason")
    @classmethod
    def _printable(cls, value: str) -> str:
        value = value.strip()
        if not value or any(ord(c) < 32 for c in value):
            raise ValueError("reason must be printable text")
        return value


class BoardCommissioning:
    """Registers boards.list, boards.read and boards.pulse on the API server."""

    def __init__(self, boards: OpenedBoards, compartments: Sequence[Compartment],
                 cfg: DoorsConfig, *, controller: DoorOpener | None = None,
                 recorder: OperationRecorder | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._boards_source = boards
        self._by_channel = {(c.board, c.channel): c.id for c in compartments}
        self._pulse_ms = cfg.pulse_ms
        self._controller = controller
        self._recorder = recorder
        self._clock = clock
        self.recent: deque[dict[str, Any]] = deque(maxlen=50)

    def register_api(self, api: ApiServer) -> None:
        """Technician-only methods."""
        api.route("boards.list", {Role.TECH}, NoParams, self._api_list)
        api.route("boards.read", {Role.TECH}, BoardReadParams, self._api_read)
        api.route("boards.pulse", {Role.TECH}, BoardPulseParams, self._api_pulse)

    def _boards(self) -> list[ManagedBoard]:
        board_set = self._boards_source.board_set
        if board_set is None:
            raise ApiError("boards_unavailable", "the boards are not open (daemon starting?)")
        return list(board_set.boards.values())

    def _find(self, bus: str, address: int) -> ManagedBoard:
        for board in self._boards():
            if board.address == address and board.info().get("bus") == bus:
                return board
        raise ApiError("unknown_board", f"no board {address} on bus {bus!r}")

    async def _api_list(self, _params: NoParams, _caller: Caller) -> dict[str, Any]:
        boards = []
        for b in self._boards():
            info = b.info()
            boards.append({"bus": info.get("bus"), "board": b.address, "profile": b.profile,
                           "channels": b.channels,
                           "inputs_active_low": bool(info.get("inputs_active_low"))})
        return {"boards": sorted(boards, key=lambda x: (str(x["bus"]), x["board"]))}

    async def _api_read(self, params: BoardReadParams, _caller: Caller) -> dict[str, Any]:
        board = self._find(params.bus, params.board)
        try:
            snap = await board.read()
        except DriverError as exc:
            raise ApiError("board_silent", f"board {params.board}: {exc}") from None
        return {"bus": params.bus, "board": params.board, "profile": board.profile,
                "inputs_active_low": bool(board.info().get("inputs_active_low")),
                "doors": [d.value for d in snap.doors],
                "occupied": None if snap.occupied is None else list(snap.occupied)}

    async def _api_pulse(self, params: BoardPulseParams, caller: Caller) -> dict[str, Any]:
        board = self._find(params.bus, params.board)
        if params.channel >= board.channels:
            raise ApiError("unknown_channel", f"board {params.board} has {board.channels} channels")
        actor = f"uid:{caller.uid}"
        compartment = self._by_channel.get((params.board, params.channel))
        record: dict[str, Any] = {"action": "board_pulse", "bus": params.bus,
                                  "board": params.board, "channel": params.channel,
                                  "compartment": compartment, "actor": actor,
                                  "reason": params.reason}
        t0 = self._clock()
        if compartment is not None and self._controller is not None:
            result = await self._controller.open(compartment, params.reason, actor,
                                                 allow_blocked=True)
            record.update(via="doors", outcome=result.outcome.value,
                          acknowledged=result.outcome.value != "failed", detail=result.detail)
        else:
            try:
                await board.pulse(params.channel, self._pulse_ms)
                record.update(via="raw", acknowledged=True, detail="")
            except DriverUnavailable as exc:
                record.update(via="raw", acknowledged=False, detail=str(exc))
            except DriverError as exc:
                # Not retried: the latch may have released although the reply was lost.
                record.update(via="raw", acknowledged=False, detail=str(exc))
        record["elapsed_ms"] = round((self._clock() - t0) * 1000)
        log.info("commissioning pulse bus %s board %d channel %d by %s: %s", params.bus,
                 params.board, params.channel, actor,
                 "acknowledged" if record["acknowledged"] else "not acknowledged")
        self.recent.append(record)
        if self._recorder is not None:
            body = {k: record.get(k) for k in RECORDED}
            body["reason"] = redact_text(params.reason)
            await self._recorder.record("commission.pulse", actor=actor, body=body,
                                        compartment=compartment)
        return record
