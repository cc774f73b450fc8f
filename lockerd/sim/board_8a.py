"""Generic 0x8A board front end of the simulator: `8A`/`80` frames byte for byte, slow open reply, busy.

The board pulses the lock and answers the open only afterwards (`unlock_reply_s`, about 500 ms
on the boards this models); while it is busy with an open it ignores every frame addressed to
it. `busy()` injects the same silence on demand. Line faults come from the line engine.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from lockerd.drivers import frames_8a as f8
from lockerd.drivers.framing import split_stream
from lockerd.sim.modbus_rtu import Reply
from lockerd.sim.physics import BoardModel

PULSE_S = 0.5
UNLOCK_REPLY_S = 0.5


@dataclass(slots=True)
class Board8AFrontEnd:
    """Every 0x8A board on one bus, answering by the BRD byte."""

    boards: dict[int, BoardModel]
    unlock_reply_s: float = UNLOCK_REPLY_S
    pulse_log: list[tuple[float, int, int]] = field(default_factory=list)
    bad_frames: int = 0
    ignored_busy: int = 0
    _busy_until: dict[int, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def target(self, frame: bytes) -> int | None:
        """Board a request is for (None when no valid frame is in it)."""
        frames = f8.Decoder8A(1).feed(frame)
        return frames[0].board if frames else None

    def split(self, data: bytes) -> list[bytes]:
        """Whole frames in bytes that arrived together; leftovers as one last (bad) item."""
        return split_stream(data, f8.Decoder8A(1))

    def busy(self, address: int, seconds: float, now: float) -> None:
        """The board ignores frames for `seconds` from `now` (fault injection)."""
        with self._lock:
            self._busy_until[address] = max(self._busy_until.get(address, 0.0), now + seconds)

    def handle(self, frame: bytes, now: float) -> Reply | None:
        """Answer the first valid request for a board on this bus; garbage gets silence."""
        decoder = f8.Decoder8A(1)
        requests = decoder.feed(frame)
        self.bad_frames += decoder.bad_frames + (1 if decoder.pending else 0)
        for req in requests:
            model = self.boards.get(req.board)
            if model is None:
                continue
            with self._lock:
                if now < self._busy_until.get(req.board, 0.0):
                    self.ignored_busy += 1
                    return None
            if req.header == f8.OPEN and req.payload[1] == f8.CMD_OPEN:
                channel = req.payload[0] - 1
                if not 0 <= channel < model.channels:
                    return None
                door = model.doors[channel]
                model.energise(channel, PULSE_S, now)
                self.pulse_log.append((now, req.board, channel))
                lock_open = door.is_open or door.opens_at is not None
                self.busy(req.board, self.unlock_reply_s, now)
                return Reply(req.board, True, f8.encode_open_reply(req.board, channel + 1, lock_open),
                             delay_s=self.unlock_reply_s)
            if req.header == f8.READ and req.payload == bytes([0x00, f8.CMD_READ]):
                n = f8.state_bytes(model.channels)
                return Reply(req.board, False, f8.encode_read_reply(req.board, model.input_bits(now), n))
        return None
