"""Kerong CU16 front end of the simulator: `02 ADDR CMD 03 SUM` frames byte for byte, with IR occupancy.

Drives the same door physics (sim/physics.py) as the Modbus front end; line faults (no reply,
bad checksum, truncated or late reply, noise) are applied by the line engine as for Modbus.
The infrared occupancy bits are an item lying in the compartment, set by tests and the demo.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from lockerd.drivers import frames_kerong as fk
from lockerd.drivers.framing import split_stream
from lockerd.sim.modbus_rtu import Reply
from lockerd.sim.physics import BoardModel

PULSE_S = 0.5
"""The CU16 times its own lock pulse."""


@dataclass(slots=True)
class KerongFrontEnd:
    """Every Kerong board on one bus, answering by the high nibble of ADDR."""

    boards: dict[int, BoardModel]
    pulse_log: list[tuple[float, int, int]] = field(default_factory=list)
    bad_frames: int = 0
    _occupied: dict[int, list[bool]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _frames(self, frame: bytes) -> list[fk.KerongFrame]:
        decoder = fk.KerongDecoder()
        frames = decoder.feed(frame)
        self.bad_frames += decoder.bad_frames + (1 if decoder.pending else 0)
        return frames

    def target(self, frame: bytes) -> int | None:
        """Board a request is for (None when no valid frame is in it)."""
        frames = fk.KerongDecoder().feed(frame)
        return frames[0].board if frames else None

    def split(self, data: bytes) -> list[bytes]:
        """Whole frames in bytes that arrived together; leftovers as one last (bad) item."""
        return split_stream(data, fk.KerongDecoder())

    def handle(self, frame: bytes, now: float) -> Reply | None:
        """Answer the first valid request for a board on this bus; garbage gets silence."""
        for req in self._frames(frame):
            model = self.boards.get(req.board)
            if model is None:
                continue
            if req.cmd == fk.CMD_OPEN:
                channel = req.lock - 1
                if channel >= model.channels:
                    return None  # no such lock: a real board stays silent
                model.energise(channel, PULSE_S, now)
                self.pulse_log.append((now, req.board, channel))
                return Reply(req.board, True, req.encode())
            if req.cmd == fk.CMD_READ:
                hooks = model.input_bits(now)
                return Reply(req.board, False, fk.encode_status(req.board, hooks,
                                                                self.occupied(req.board)))
        return None

    def occupied(self, address: int) -> list[bool]:
        """Infrared bits of a board (True = something in the compartment)."""
        with self._lock:
            return list(self._occupied.get(address, [False] * self.boards[address].channels))

    def set_occupied(self, address: int, channel: int, item: bool = True) -> None:
        """Put an item in (or take it out of) a compartment."""
        with self._lock:
            bits = self._occupied.setdefault(address, [False] * self.boards[address].channels)
            bits[channel] = item
