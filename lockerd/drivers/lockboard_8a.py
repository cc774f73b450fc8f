"""Generic 8-50 channel "0x8A" lock board (`rs485-8a`, 9600 8N1); its open reply comes after ~500 ms."""

from __future__ import annotations

import logging

from lockerd.drivers import frames_8a as f8
from lockerd.drivers.base import BoardSnapshot
from lockerd.drivers.bus import Priority
from lockerd.drivers.lockboard_raw import RawLockBoard
from lockerd.drivers.rawbus import RawSerialBus

log = logging.getLogger(__name__)

UNLOCK_REPLY_S = 0.5
"""The board pulses the lock first and answers afterwards (docs/boards.md: about 500 ms)."""


class Board8A(RawLockBoard):
    """One 0x8A board: address 0-255, 1-56 channels (channel = lock - 1)."""

    profile = "rs485-8a"

    def __init__(self, bus: RawSerialBus, address: int, channels: int = 8, *,
                 inputs_active_low: bool = False) -> None:
        self.n_bytes = f8.state_bytes(channels)
        super().__init__(bus, address, channels, inputs_active_low=inputs_active_low)
        self.last_open_status: bool | None = None

    @property
    def unlock_timeout_s(self) -> float:
        """The configured write timeout on top of the board's own pulse time."""
        return UNLOCK_REPLY_S + self.bus.write_timeout_s

    async def _pulse(self, channel: int, duration_ms: int) -> None:
        """Send the open frame once; the board times its pulse, `duration_ms` is unused.

        The bus stays reserved until the answer (or the timeout): a frame to another board
        while this one is still going to answer would collide with that answer.
        """
        lock = channel + 1
        self.last_open_status = await self.bus.exchange(
            Priority.UNLOCK, f8.encode_open(self.address, lock), f8.Decoder8A(self.n_bytes),
            lambda f: f8.check_open_reply(f, self.address, lock),
            timeout_s=self.unlock_timeout_s, attempts=1)
        if not self.last_open_status:
            log.info("board %d lock %d: board reports the lock still closed after the pulse",
                     self.address, lock)

    async def read(self) -> BoardSnapshot:
        """`80 BRD 00 33`: one bit per lock (polarity applied); retried once."""
        bits = await self.bus.exchange(
            Priority.POLL, f8.encode_read(self.address), f8.Decoder8A(self.n_bytes),
            lambda f: f8.parse_read_reply(f, self.address, self.channels),
            timeout_s=self.bus.read_timeout_s, attempts=2)
        return BoardSnapshot(self._doors(bits))
