"""Simulated ID-card reader: the SAM module protocol byte for byte on a pseudo-terminal, with test cards.

The reader runs on the simulator's line engine (sim/line.py): a pty pair whose slave end a
driver opens like /dev/ttyUSB0, replies timed by the baud rate. The module keeps the real
sequence: select only after a successful find, read only after a select, and removing the
card resets it. Tests (and, later, the kiosk demo) drive it at run time:
`present(card)` / `remove()` lay a card on the reader and take it away; `corrupt_next()`
sends a reply with a wrong check byte, `slow_next()` a reply that comes too late; the line
engine's generic `line_faults` (lost reply, noise) work too.

Test cards are fictional: names 测试一..., addresses 测试路..., ID numbers that start with 99 (no
such province) and carry a correct check digit. The photo is a fixed filler, not a picture.
"""

from __future__ import annotations

import struct
import threading
from collections import deque
from dataclasses import dataclass, replace

from lockerd.drivers import idcard_frames as fr
from lockerd.drivers.errors import FrameError
from lockerd.drivers.framing import split_stream
from lockerd.sim.faults import Faults
from lockerd.sim.line import LineEngine, SimBus, char_time
from lockerd.sim.modbus_rtu import Reply
from lockerd.sim.physics import BoardModel

BUS = "idcard"
UNIT = 0
TEST_SAM_ID = "05.01-20240101-0000000001-0000000042"
PHOTO_FILLER = bytes(range(256)) * (fr.PHOTO_LEN // 256)
"""Stands in for the 1024-byte WLT photo; never a real picture."""

VALID_CARD = fr.CardText("测试一", "1", "01", "19900101", "测试路1号", "990101199001010019",
                         "测试市公安局", "20200101", "20400101")
EXPIRED_CARD = fr.CardText("测试二", "2", "01", "19851224", "测试路2号", "990102198512240029",
                           "测试市公安局", "20000101", "20100101")
LONG_TERM_CARD = fr.CardText("测试三", "1", "03", "19700615", "测试路3号", "990103197006150057",
                             "测试市公安局", "20150615", fr.LONG_TERM)
X_CARD = fr.CardText("测试四", "1", "01", "20000229", "测试路4号", "99010420000229007X",
                     "测试市公安局", "20180301", "20230301")
"""A check character X, a leap-day birth date, a five-year child's card (expired)."""
BAD_ID_CARD = replace(VALID_CARD, id_number="990101199001010018")
"""The valid card with a wrong check digit: a reader must reject it."""
TEST_CARDS = {"valid": VALID_CARD, "expired": EXPIRED_CARD, "long_term": LONG_TERM_CARD,
              "check_x": X_CARD, "bad_id": BAD_ID_CARD}

FIND_S = 0.01
"""Module think time before answering a SAM, find or select command."""
READ_S = 0.05
"""Module think time before answering a read (a real module takes up to about a second)."""


def encode_sam_id(sam_id: str) -> bytes:
    """The 16 bytes of a SAM id: inverse of `idcard_frames.parse_sam_id`."""
    head, c, d, e = sam_id.split("-")
    a, b = head.split(".")
    return struct.pack("<HHIII", int(a), int(b), int(c), int(d), int(e))


@dataclass(slots=True)
class _ReplyFault:
    command: fr.Command | None
    corrupt: bool = False
    delay_s: float = 0.0


class SamReaderFrontEnd:
    """The SAM module behind the pty: answers requests, holds the presented card."""

    def __init__(self, sam_id: str = TEST_SAM_ID, *, baudrate: int = 115200, find_s: float = FIND_S,
                 read_s: float = READ_S) -> None:
        self.sam_id = sam_id
        self.char_s = char_time(baudrate)
        self.find_s = find_s
        self.read_s = read_s
        self.requests: list[fr.Command | None] = []
        self.bad_frames = 0
        self._card: fr.CardText | None = None
        self._found = False
        self._selected = False
        self._faults: deque[_ReplyFault] = deque()
        self._free_at = 0.0
        self._lock = threading.Lock()

    # fault injector (any thread)

    def present(self, card: fr.CardText) -> None:
        """Lay a card on the reader (replacing any other)."""
        with self._lock:
            self._card, self._found, self._selected = card, False, False

    def remove(self) -> None:
        """Take the card away."""
        with self._lock:
            self._card, self._found, self._selected = None, False, False

    @property
    def card(self) -> fr.CardText | None:
        """The card on the reader."""
        with self._lock:
            return self._card

    def corrupt_next(self, command: fr.Command | None = fr.Command.READ_BASE, count: int = 1) -> None:
        """The next `count` replies to `command` (None: to any) carry a wrong check byte."""
        with self._lock:
            self._faults.extend(_ReplyFault(command, corrupt=True) for _ in range(count))

    def slow_next(self, delay_s: float, command: fr.Command | None = None, count: int = 1) -> None:
        """The next `count` replies to `command` (None: to any) start `delay_s` late."""
        with self._lock:
            self._faults.extend(_ReplyFault(command, delay_s=delay_s) for _ in range(count))

    def clear_faults(self) -> None:
        """Drop pending reply faults."""
        with self._lock:
            self._faults.clear()

    # line-engine front end (simulator thread)

    def target(self, frame: bytes) -> int | None:
        """The one unit on this line, when the bytes hold a valid frame."""
        return UNIT if fr.SamDecoder().feed(frame) else None

    def split(self, data: bytes) -> list[bytes]:
        """Whole frames in bytes that arrived together; leftovers as one last (bad) item."""
        return split_stream(data, fr.SamDecoder())

    def handle(self, frame: bytes, now: float) -> Reply | None:
        """Answer the first valid request; garbage and bad check bytes get silence."""
        decoder = fr.SamDecoder()
        frames = decoder.feed(frame)
        self.bad_frames += decoder.bad_frames + (1 if decoder.pending else 0)
        if not frames:
            return None
        try:
            request = fr.parse_request(frames[0])
        except FrameError:
            self.bad_frames += 1
            return None
        command = request.command
        with self._lock:
            self.requests.append(command)
            data, think_s = self._answer(command)
            fault = self._take_fault(command)
        if fault is not None and fault.corrupt:
            data = data[:-1] + bytes([data[-1] ^ 0x5A])
        # One command at a time, in order: a request that arrives while the module is still
        # working on (or sending) an earlier reply waits for it, as on the real module.
        delay = max(0.0, self._free_at - now) + think_s + (fault.delay_s if fault is not None else 0.0)
        self._free_at = now + delay + len(data) * self.char_s
        return Reply(UNIT, False, data, delay_s=delay)

    def _answer(self, command: fr.Command | None) -> tuple[bytes, float]:
        """The module's reply to one command, and its think time (lock held)."""
        ok, card = fr.Status.OK, self._card
        if command is fr.Command.FIND_CARD:
            self._found = card is not None
            self._selected = False
            if card is None:
                return fr.encode_reply(fr.Status.NO_CARD), self.find_s
            return fr.encode_reply(fr.Status.CARD_FOUND, bytes(4)), self.find_s
        if command is fr.Command.SELECT_CARD:
            self._selected = card is not None and self._found
            if not self._selected:
                return fr.encode_reply(fr.Status.SELECT_FAILED), self.find_s
            return fr.encode_reply(ok, bytes(8)), self.find_s
        if command is fr.Command.READ_BASE:
            if card is None or not self._selected:
                return fr.encode_reply(fr.Status.READ_FAILED), self.read_s
            return fr.encode_reply(ok, fr.encode_base_info(card, PHOTO_FILLER)), self.read_s
        if command is fr.Command.SAM_ID:
            return fr.encode_reply(ok, encode_sam_id(self.sam_id)), self.find_s
        if command in (fr.Command.SAM_STATUS, fr.Command.SAM_RESET):
            return fr.encode_reply(ok), self.find_s
        return fr.encode_reply(fr.Status.BAD_COMMAND), self.find_s

    def _take_fault(self, command: fr.Command | None) -> _ReplyFault | None:
        for fault in self._faults:
            if fault.command is None or fault.command is command:
                self._faults.remove(fault)
                return fault
        return None


class IdCardSim:
    """A running simulated reader: `port` for the driver, the front end's fault injector."""

    def __init__(self, *, baudrate: int = 115200, sam_id: str = TEST_SAM_ID,
                 find_s: float = FIND_S, read_s: float = READ_S) -> None:
        self.frontend = SamReaderFrontEnd(sam_id, baudrate=baudrate, find_s=find_s, read_s=read_s)
        self.bus = SimBus(BUS, baudrate, self.frontend)
        # The line engine's fault switches are keyed by board; the reader is the one unit.
        self.line_faults = Faults({(BUS, UNIT): BoardModel(UNIT, 0, close_after_s=None)})
        self._engine = LineEngine([self.bus], self.line_faults)
        self._started = False

    def start(self) -> IdCardSim:
        """Create the pty and start the simulator thread; returns self."""
        self._engine.start()
        self._started = True
        return self

    @property
    def port(self) -> str:
        """Path of the pty a driver opens."""
        return self.bus.path

    def present(self, card: fr.CardText) -> None:
        """Lay a card on the reader."""
        self.frontend.present(card)

    def remove(self) -> None:
        """Take the card away."""
        self.frontend.remove()

    def corrupt_next(self, command: fr.Command | None = fr.Command.READ_BASE, count: int = 1) -> None:
        """See `SamReaderFrontEnd.corrupt_next`."""
        self.frontend.corrupt_next(command, count)

    def slow_next(self, delay_s: float, command: fr.Command | None = None, count: int = 1) -> None:
        """See `SamReaderFrontEnd.slow_next`."""
        self.frontend.slow_next(delay_s, command, count)

    def requests(self) -> list[bytes]:
        """Request frames the reader received, in order."""
        return [frame for _, frame in self.bus.rx_frames]

    def close(self) -> None:
        """Stop the thread and close the pty."""
        if self._started:
            self._started = False
            self._engine.close()

    def __enter__(self) -> IdCardSim:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
