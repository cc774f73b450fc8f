"""What the Kerong and 0x8A lock-board drivers share: identity, channel checks, status, no-op relay reset."""

from __future__ import annotations

from typing import Any

from lockerd.drivers.lockboard_common import LockBoardBase
from lockerd.drivers.rawbus import RawSerialBus


class RawLockBoard(LockBoardBase[RawSerialBus]):
    """A board on a `RawSerialBus`; subclasses implement `_pulse()` and `read()`.

    Both profiles time the relay pulse on the board itself, so no relay can be left energised
    by a lost "off" command: `start()` (relays forced off, docs/boards.md) has nothing to send.
    """

    async def start(self) -> None:
        """Nothing to force off: the board ends every pulse itself."""

    async def stop(self) -> None:
        """Nothing pending."""

    def info(self) -> dict[str, Any]:
        """Identity and counters for status output, with the raw line's frame counters."""
        return {**super().info(), "line": self.bus.counters()}
