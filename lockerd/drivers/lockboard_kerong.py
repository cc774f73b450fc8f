"""Kerong CU16 lock board (`kerong-cu16`, 19200 8N1): 16 locks with hook and infrared occupancy bits."""

from __future__ import annotations

import logging

from lockerd.drivers import frames_kerong as fk
from lockerd.drivers.base import BoardSnapshot
from lockerd.drivers.bus import Priority
from lockerd.drivers.lockboard_raw import RawLockBoard
from lockerd.drivers.rawbus import RawSerialBus

log = logging.getLogger(__name__)


class KerongBoard(RawLockBoard):
    """One CU16 board: address 0-15 on the bus, up to 16 channels (channel = lock - 1)."""

    profile = "kerong-cu16"

    def __init__(self, bus: RawSerialBus, address: int, channels: int = fk.MAX_LOCKS, *,
                 inputs_active_low: bool = False) -> None:
        super().__init__(bus, address, channels, inputs_active_low=inputs_active_low)

    async def _pulse(self, channel: int, duration_ms: int) -> None:
        """Send 0x31 once and wait for the echo; the CU16 times its pulse, `duration_ms` is unused."""
        lock = channel + 1
        await self.bus.exchange(
            Priority.UNLOCK, fk.encode_open(self.address, lock), fk.KerongDecoder(),
            lambda f: fk.check_open_reply(f, self.address, lock),
            timeout_s=self.bus.write_timeout_s, attempts=1)

    async def read(self) -> BoardSnapshot:
        """0x30: door hooks (polarity applied) and infrared occupancy in one reply; retried once."""
        status = await self.bus.exchange(
            Priority.POLL, fk.encode_read(self.address), fk.KerongDecoder(),
            lambda f: fk.parse_status(f, self.address),
            timeout_s=self.bus.read_timeout_s, attempts=2)
        return BoardSnapshot(self._doors(status.hooks), status.occupied[:self.channels])
