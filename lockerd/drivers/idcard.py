"""ID-card reader interface (`IdReader`) and its serial SAM-module driver (`SamSerialReader`).

The kiosk flows only see `IdReader`: read the card on the reader (None when there is none),
the reader's SAM serial for the identity-check record, close. A USB/PCSC reader can be added
behind the same protocol later.

`SamSerialReader` runs each request/reply exchange through `RawSerialBus` (drivers/rawbus.py):
the same pyserial + asyncio line handling and `BusScheduler` as the raw lock boards, but on the
reader's own port, never on a lock-board bus. A read is find card, select card, read base
information. Find and select are retried once (after a timeout, a garbled reply or a failure
status: a card laid down a moment ago often needs a second find); the read is not.

Replies do not echo their command, so a read reply that comes too late could answer the next
read, the next person's. After any lost or garbled reply the reader is out of step: its next
operation first asks for the SAM status and waits for that reply. The module answers in
order, so whatever it still owed has arrived (and been discarded) before it. The wire trace
of the line is disabled, because replies carry the card's text and photo: nothing of a reply
outlives the call that parsed it.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import Protocol

from lockerd.drivers import idcard_frames as fr
from lockerd.drivers.bus import Priority
from lockerd.drivers.errors import DriverError, DriverTimeout, FrameError
from lockerd.drivers.rawbus import RawSerialBus

log = logging.getLogger(__name__)

DEFAULT_BAUDRATE = 115200
"""The SAM modules' factory setting."""
STEP_ATTEMPTS = 2
"""Find and select: one try and one retry."""


class IdReader(Protocol):
    """What the kiosk flows need from an ID-card reader, whatever its transport."""

    async def read_card(self) -> fr.IdCard | None:
        """The card on the reader, None when there is none; `DriverError` when it cannot be read."""

    async def sam_id(self) -> str:
        """The serial of the reader's security module, recorded with every identity check."""

    async def close(self) -> None:
        """Release the reader."""


class SamSerialReader:
    """A SAM-module ID-card reader on a serial port (RS-232 or USB-serial)."""

    def __init__(self, port: str, *, name: str = "idcard", baudrate: int = DEFAULT_BAUDRATE,
                 timeout_s: float = 0.5, read_timeout_s: float = 2.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """`timeout_s` bounds find, select and the SAM commands; `read_timeout_s` the read,
        which takes the module up to about a second plus 1295 bytes on the wire."""
        self.name = name
        self.timeout_s = timeout_s
        self.read_timeout_s = read_timeout_s
        self._bus = RawSerialBus(name, port, baudrate=baudrate, read_timeout_s=timeout_s,
                                 clock=clock)
        self._bus.trace = deque(maxlen=0)  # replies hold personal data: no wire trace
        self._sam_id: str | None = None
        self._out_of_step = False
        self.cards_read = 0
        self.no_card = 0
        self.rejected = 0
        self.resyncs = 0

    @property
    def port(self) -> str:
        """The serial port path."""
        return self._bus.port

    async def open(self) -> None:
        """Open the port (`DriverUnavailable` when it is not there)."""
        await self._bus.open()

    async def close(self) -> None:
        """Close the port."""
        self._bus.close()

    async def _exchange(self, command: fr.Command, timeout_s: float, attempts: int = 1) -> fr.SamReply:
        try:
            return await self._bus.exchange(Priority.CONTROL, fr.encode_request(command),
                                            fr.SamDecoder(), partial(fr.parse_reply_to, command),
                                            timeout_s=timeout_s, attempts=attempts)
        except (DriverTimeout, FrameError):
            self._out_of_step = True
            raise

    async def _resync(self) -> None:
        """After a lost or garbled reply: the SAM status reply, once every owed reply is in.

        Waits as long as a read may take, since a late read reply may still be on its way.
        """
        if not self._out_of_step:
            return
        reply = await self._bus.exchange(Priority.CONTROL, fr.encode_request(fr.Command.SAM_STATUS),
                                         fr.SamDecoder(), _status_reply, timeout_s=self.read_timeout_s)
        self._out_of_step = False
        self.resyncs += 1
        if reply.sw3 != fr.Status.OK:
            raise DriverError(f"id reader {self.name}: SAM not ready: {fr.describe(reply.sw3)}")

    async def _step(self, command: fr.Command) -> int:
        """SW3 of a find or select, tried again once when the first try did not succeed.

        The last try's outcome counts: its status, or its timeout or garbled reply raised.
        """
        failure: DriverError | None = None
        success, sw3 = fr.success_status(command), -1
        for _ in range(STEP_ATTEMPTS):
            try:
                sw3 = (await self._exchange(command, self.timeout_s)).sw3
            except (DriverTimeout, FrameError) as exc:
                failure = exc
                continue
            failure = None
            if sw3 == success:
                break
        if failure is not None:
            raise failure
        return sw3

    async def read_card(self) -> fr.IdCard | None:
        """Find, select and read the card on the reader.

        None when no card is there. `DriverTimeout` when the module does not answer in time,
        `FrameError` for a garbled reply, `CardError` (a `FrameError`) for a reply whose card
        text is not a valid card, `DriverError` for a card that cannot be selected or read.
        """
        await self._resync()
        sw3 = await self._step(fr.Command.FIND_CARD)
        if sw3 == fr.Status.NO_CARD:
            self.no_card += 1
            return None
        if sw3 != fr.Status.CARD_FOUND:
            raise DriverError(f"id reader {self.name}: find card failed: {fr.describe(sw3)}")
        sw3 = await self._step(fr.Command.SELECT_CARD)
        if sw3 != fr.Status.OK:
            raise DriverError(f"id reader {self.name}: card found but not selected "
                              f"({fr.describe(sw3)}); was it moved?")
        reply = await self._exchange(fr.Command.READ_BASE, self.read_timeout_s)
        if reply.sw3 != fr.Status.OK:
            raise DriverError(f"id reader {self.name}: reading the card failed: {fr.describe(reply.sw3)}")
        try:
            card = fr.parse_base_info(reply.data)
        except fr.CardError as exc:
            self.rejected += 1
            log.warning("id reader %s: card rejected: %s", self.name, exc)
            raise
        self.cards_read += 1
        return card

    async def sam_id(self) -> str:
        """The SAM module's serial (`05.01-20240101-0000000001-0000000042`), read once and kept."""
        if self._sam_id is None:
            await self._resync()
            reply = await self._exchange(fr.Command.SAM_ID, self.timeout_s, attempts=2)
            if reply.sw3 != fr.Status.OK:
                raise DriverError(f"id reader {self.name}: SAM id: {fr.describe(reply.sw3)}")
            self._sam_id = fr.parse_sam_id(reply.data)
        return self._sam_id

    async def self_test(self) -> None:
        """Ask the SAM module for its status; `DriverError` unless it is ready (0x90)."""
        await self._resync()
        reply = await self._exchange(fr.Command.SAM_STATUS, self.timeout_s, attempts=2)
        if reply.sw3 != fr.Status.OK:
            raise DriverError(f"id reader {self.name}: SAM not ready: {fr.describe(reply.sw3)}")

    def counters(self) -> dict[str, int]:
        """Reads and line statistics for status output."""
        return {"cards_read": self.cards_read, "no_card": self.no_card, "rejected": self.rejected,
                "resyncs": self.resyncs, **self._bus.counters()}


def _status_reply(frame: fr.SamFrame) -> fr.SamReply:
    """Only the SAM status reply itself ends a resync: ready (0x90) or self-test failed (0x60),
    no data. A late failure reply to another command (no card, 0x80) must not end it early."""
    reply = fr.parse_reply_to(fr.Command.SAM_STATUS, frame)
    if reply.sw3 not in (fr.Status.OK, fr.Status.SELF_TEST_FAILED):
        raise FrameError(f"sam: {fr.describe(reply.sw3)} is not a SAM status reply")
    return reply
