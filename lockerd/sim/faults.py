"""Run-time fault injection for simulated boards, independent of the wire protocol.

Line faults (what happens to a board's reply) are decided here; door faults (jammed latch,
forced or held-open door) are applied to the physics model. Safe to call from any thread.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from enum import StrEnum

from lockerd.sim.physics import BoardModel


class ReplyFate(StrEnum):
    """What the line does with one reply."""

    SEND = "send"
    DROP = "drop"
    CORRUPT = "corrupt"
    LATE = "late"
    TRUNCATE = "truncate"


@dataclass(slots=True)
class LineFaults:
    """Line faults of one board."""

    unplugged: bool = False
    drop_next: int = 0
    corrupt_next: int = 0
    late_next: int = 0
    truncate_next: int = 0
    drop_probability: float = 0.0
    late_probability: float = 0.0
    late_s: float = 0.5
    drop_writes_only: bool = False
    act_then_drop: int = 0
    """The next `n` commands (writes) are carried out, but their replies are lost."""
    mute_after_act: bool = False
    """Once such a command was carried out, every later reply is lost too (reads fail)."""
    muted: bool = False
    """Every reply is lost (set by `mute_after_act`); the board still acts on commands."""


class Faults:
    """Fault switches for every simulated board, keyed by (bus name, board address)."""

    def __init__(self, boards: dict[tuple[str, int], BoardModel], seed: int = 0) -> None:
        self._boards = boards
        self._line: dict[tuple[str, int], LineFaults] = {k: LineFaults() for k in boards}
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._garbage: dict[str, list[bytes]] = {}

    def _key(self, bus: str, address: int) -> tuple[str, int]:
        key = (bus, address)
        if key not in self._line:
            raise KeyError(f"no simulated board {address} on bus {bus!r}")
        return key

    def line(self, bus: str, address: int) -> LineFaults:
        """The line-fault settings of a board (mutate under `configure`)."""
        return self._line[self._key(bus, address)]

    def configure(self, bus: str, address: int, **settings: float | int | bool) -> None:
        """Set line-fault fields of a board, e.g. configure("bus0", 1, drop_probability=0.5)."""
        with self._lock:
            faults = self._line[self._key(bus, address)]
            for name, value in settings.items():
                if not hasattr(faults, name):
                    raise AttributeError(f"unknown line fault {name!r}")
                setattr(faults, name, value)

    def clear(self) -> None:
        """Remove every line fault and door fault."""
        with self._lock:
            for key in self._line:
                self._line[key] = LineFaults()
        for board in self._boards.values():
            for ch in range(board.channels):
                board.jam(ch, False)
                board.hold_open(ch, False)

    def unplug(self, bus: str, address: int, unplugged: bool = True) -> None:
        """The board stops answering (and stops acting on commands) or comes back."""
        self.configure(bus, address, unplugged=unplugged)

    def no_reply(self, bus: str, address: int, count: int = 1) -> None:
        """The board acts on the next `count` requests but its replies are lost."""
        self.configure(bus, address, drop_next=count)

    def drop_reply_after_act(self, bus: str, address: int, *, count: int = 1,
                             then_silent: bool = False) -> None:
        """The board carries out its next `count` commands (the relay pulses, the door opens) but
        their replies are lost. With `then_silent` every later reply is lost as well, so the
        door cannot be read either, until `restore_replies` (or `clear`)."""
        self.configure(bus, address, act_then_drop=count, mute_after_act=then_silent,
                       muted=False)

    def restore_replies(self, bus: str, address: int) -> None:
        """End `drop_reply_after_act`: the board answers again."""
        self.configure(bus, address, act_then_drop=0, mute_after_act=False, muted=False)

    def corrupt_crc(self, bus: str, address: int, count: int = 1) -> None:
        """The next `count` replies arrive with a broken CRC."""
        self.configure(bus, address, corrupt_next=count)

    def truncate(self, bus: str, address: int, count: int = 1) -> None:
        """The next `count` replies stop half way (the board browned out, a cable glitch)."""
        self.configure(bus, address, truncate_next=count)

    def late_reply(self, bus: str, address: int, delay_s: float, count: int = 1) -> None:
        """The next `count` replies arrive `delay_s` late."""
        self.configure(bus, address, late_next=count, late_s=delay_s)

    def inject_garbage(self, bus: str, data: bytes) -> None:
        """Noise on the line: these bytes reach the master at the next opportunity."""
        with self._lock:
            self._garbage.setdefault(bus, []).append(data)

    def take_garbage(self, bus: str) -> bytes:
        """Pending noise for a bus (consumed)."""
        with self._lock:
            return b"".join(self._garbage.pop(bus, []))

    def jam(self, bus: str, address: int, channel: int, jammed: bool = True) -> None:
        """The latch of a channel does not release."""
        self._boards[self._key(bus, address)].jam(channel, jammed)

    def force_open(self, bus: str, address: int, channel: int, now: float) -> None:
        """Pry a door open without a command."""
        self._boards[self._key(bus, address)].force_open(channel, now)

    def hold_open(self, bus: str, address: int, channel: int, held: bool = True) -> None:
        """Keep a door open until released."""
        self._boards[self._key(bus, address)].hold_open(channel, held)

    def is_unplugged(self, bus: str, address: int) -> bool:
        """True while the board is disconnected."""
        with self._lock:
            return self._line[self._key(bus, address)].unplugged

    def reply_fate(self, bus: str, address: int, is_write: bool) -> tuple[ReplyFate, float]:
        """Decide what happens to one reply; returns (fate, extra delay in seconds)."""
        with self._lock:
            f = self._line[self._key(bus, address)]
            if f.muted:
                return ReplyFate.DROP, 0.0
            if f.act_then_drop > 0 and is_write:
                f.act_then_drop -= 1
                f.muted = f.mute_after_act
                return ReplyFate.DROP, 0.0
            eligible = is_write or not f.drop_writes_only
            if f.drop_next > 0 and eligible:
                f.drop_next -= 1
                return ReplyFate.DROP, 0.0
            if f.corrupt_next > 0:
                f.corrupt_next -= 1
                return ReplyFate.CORRUPT, 0.0
            if f.truncate_next > 0:
                f.truncate_next -= 1
                return ReplyFate.TRUNCATE, 0.0
            if f.late_next > 0 and eligible:
                f.late_next -= 1
                return ReplyFate.LATE, f.late_s
            if eligible and f.drop_probability and self._rng.random() < f.drop_probability:
                return ReplyFate.DROP, 0.0
            if eligible and f.late_probability and self._rng.random() < f.late_probability:
                return ReplyFate.LATE, f.late_s
            return ReplyFate.SEND, 0.0
