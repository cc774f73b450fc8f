"""`lockerctl commission` and `lockerctl test-all`: walk the lock channels with a technician, test every door.

Both take the API call function of lockerctl (`ctx.call`), so they run unchanged against a
daemon on real boards or on the simulator; prompts and output go through `input_fn` and
`print_fn` so tests script the technician.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from lockerd.api.client import ApiReplyError
from lockerd.cli.output import table

Call = Callable[..., Any]
Prompt = Callable[[str], str]
Say = Callable[[str], None]

EXIT_OK = 0
EXIT_FAILED = 1


@dataclass
class _Board:
    bus: str
    address: int
    profile: str
    channels: int
    active_low: bool
    flipped: bool = False


@dataclass
class _Found:
    compartment: int
    size: str
    board: _Board
    channel: int
    sensor_open: bool | None
    closed: bool


@dataclass
class _Walk:
    found: list[_Found] = field(default_factory=list)
    unmapped: list[tuple[_Board, int]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _states(call: Call, b: _Board) -> list[str] | None:
    """Door states of a board as the technician should see them (polarity corrected)."""
    try:
        raw = call("boards.read", {"bus": b.bus, "board": b.address})["doors"]
    except ApiReplyError:
        return None
    if not b.flipped:
        return list(raw)
    swap = {"open": "closed", "closed": "open"}
    return [swap.get(s, s) for s in raw]


def _known_sizes(call: Call) -> dict[int, str]:
    try:
        return {d["compartment"]: d["size"] for d in call("doors.list")["doors"]}
    except (ApiReplyError, KeyError, TypeError):
        return {}


def _check_polarity(call: Call, boards: list[_Board], say: Say, walk: _Walk) -> None:
    """Every door is closed now: a board whose inputs mostly read open has inverted polarity."""
    for b in boards:
        states = _states(call, b)
        if states is None:
            walk.notes.append(f"board {b.address} on {b.bus} does not answer")
            say(f"board {b.address} on {b.bus}: no answer, its channels are skipped")
            continue
        reads_open = [ch for ch, s in enumerate(states) if s == "open"]
        if len(reads_open) * 2 > len(states):
            b.flipped = True
            b.active_low = not b.active_low
            say(f"board {b.address}: inputs read open with every door closed: "
                f"inputs_active_low set to {str(b.active_low).lower()}")
        elif reads_open:
            note = (f"board {b.address}: channels {reads_open} read open with the doors closed "
                    "(check those sensors)")
            walk.notes.append(note)
            say(note)


@dataclass(frozen=True)
class _Poll:
    timeout_s: float
    every_s: float
    sleep: Callable[[float], None]
    clock: Callable[[], float]

    def until(self, done: Callable[[], bool]) -> bool:
        end = self.clock() + self.timeout_s
        while self.clock() < end:
            if done():
                return True
            self.sleep(self.every_s)
        return False


def _reads_closed(call: Call, b: _Board, channel: int) -> bool:
    states = _states(call, b)
    return states is not None and states[channel] == "closed"


def _ask_compartment(ask: Prompt, say: Say, b: _Board, channel: int,
                     taken: set[int]) -> int | str | None:
    while True:
        answer = ask(f"board {b.address} channel {channel}: which door opened? "
                     "(number, Enter = none, q = stop) ").strip().lower()
        if answer in ("", "none", "-"):
            return None
        if answer in ("q", "quit"):
            return "quit"
        if not answer.isdigit() or not 1 <= int(answer) <= 9999:
            say("  a compartment number 1-9999, please")
            continue
        if int(answer) in taken:
            say(f"  compartment {answer} is already mapped; check and answer again")
            continue
        return int(answer)


def _ask_size(ask: Prompt, say: Say, compartment: int) -> str:
    while True:
        size = ask(f"size of compartment {compartment}? (S/M/L) ").strip().upper()
        if size in ("S", "M", "L"):
            return size
        say("  S, M or L, please")


def render_toml(walk: _Walk, boards: list[_Board]) -> str:
    """The [[hardware.boards]] and [[compartments]] snippet for the config."""
    lines = ["# Written by `lockerctl commission`: paste over [[hardware.boards]] and [[compartments]].",
             ""]
    for b in boards:
        lines += ["[[hardware.boards]]", f"address = {b.address}", f'bus = "{b.bus}"',
                  f'profile = "{b.profile}"', f"channels = {b.channels}",
                  f"inputs_active_low = {str(b.active_low).lower()}", ""]
    for f in sorted(walk.found, key=lambda f: f.compartment):
        lines += ["[[compartments]]", f"id = {f.compartment}", f'size = "{f.size}"',
                  f"board = {f.board.address}", f"channel = {f.channel}", ""]
    return "\n".join(lines)


def commission(ctx_call: Call, input_fn: Prompt, print_fn: Say, out_path: Path, *,
               close_timeout_s: float = 120.0, poll_s: float = 0.2,
               sleep: Callable[[float], None] = time.sleep,
               clock: Callable[[], float] = time.monotonic) -> int:
    """Walk every channel: pulse, ask which door opened, wait until it is closed; write the map."""
    boards = [_Board(b["bus"], b["board"], b["profile"], b["channels"], b["inputs_active_low"])
              for b in ctx_call("boards.list")["boards"]]
    if not boards:
        print_fn("no boards configured")
        return EXIT_FAILED
    sizes = _known_sizes(ctx_call)
    answer = input_fn("Close every compartment door, then type y to start: ").strip().lower()
    if answer not in ("y", "yes"):
        print_fn("commissioning not started")
        return EXIT_FAILED
    walk = _Walk()
    poll = _Poll(close_timeout_s, poll_s, sleep, clock)
    _check_polarity(ctx_call, boards, print_fn, walk)
    taken: set[int] = set()
    stop = False
    for b in boards:
        if stop:
            break
        for channel in range(b.channels):
            reply = ctx_call("boards.pulse", {"bus": b.bus, "board": b.address,
                                              "channel": channel, "reason": "commissioning"})
            if not reply.get("acknowledged"):
                print_fn(f"  board {b.address} channel {channel}: no acknowledgement "
                         f"({reply.get('detail') or 'silent'}); not pulsed again")
            got = _ask_compartment(input_fn, print_fn, b, channel, taken)
            if got == "quit":
                stop = True
                break
            if got is None or isinstance(got, str):
                walk.unmapped.append((b, channel))
                continue
            states = _states(ctx_call, b)
            sensor_open = None if states is None else states[channel] == "open"
            if sensor_open is False:
                note = (f"compartment {got} (board {b.address} channel {channel}): the door is "
                        "open but its input reads closed: check the sensor wiring")
                walk.notes.append(note)
                print_fn("  " + note)
            size = sizes.get(got) or _ask_size(input_fn, print_fn, got)
            print_fn(f"  close compartment {got} now")
            closed = poll.until(partial(_reads_closed, ctx_call, b, channel))
            if not closed:
                note = f"compartment {got}: its input never read closed"
                walk.notes.append(note)
                print_fn("  " + note)
            taken.add(got)
            walk.found.append(_Found(got, size, b, channel, sensor_open, closed))
    out_path.write_text(render_toml(walk, boards), encoding="utf-8")
    print_fn(table(["compartment", "size", "bus", "board", "channel", "sensor saw open", "closed"],
                   [[f.compartment, f.size, f.board.bus, f.board.address, f.channel, f.sensor_open,
                     f.closed] for f in sorted(walk.found, key=lambda f: f.compartment)]))
    if walk.unmapped:
        print_fn("channels with no door: " + ", ".join(f"{b.address}/{ch}" for b, ch in walk.unmapped))
    print_fn(f"map written to {out_path}")
    return EXIT_OK if walk.found and not walk.notes else EXIT_FAILED


def check_all_doors(ctx_call: Call, print_fn: Say, *, close_timeout_s: float = 120.0,
                    poll_s: float = 0.2, sleep: Callable[[float], None] = time.sleep,
                    clock: Callable[[], float] = time.monotonic) -> int:
    """Open each free compartment in turn, confirm it opened, wait for it to close; print a report."""
    poll = _Poll(close_timeout_s, poll_s, sleep, clock)
    doors = ctx_call("doors.list")["doors"]
    rows: list[list[Any]] = []
    ok = True
    for d in sorted(doors, key=lambda d: d["compartment"]):
        cid = d["compartment"]
        if d.get("blocked") or d.get("occupied"):
            rows.append([cid, d["board"], d["channel"], "skipped",
                         d.get("blocked_reason") or "occupied", None, None])
            continue
        try:
            result = ctx_call("doors.open", {"compartment": cid, "reason": "test-all"})
        except ApiReplyError as exc:
            ok = False
            result = exc.reply.get("result") or {"outcome": exc.code, "elapsed_s": None}
        outcome = result.get("outcome", "failed")
        closed: bool | None = None
        if outcome in ("opened", "already_open", "acknowledged"):
            print_fn(f"compartment {cid}: {outcome}, close it now")
            closed = poll.until(partial(_door_closed, ctx_call, cid))
        ok = ok and outcome == "opened" and bool(closed)
        elapsed = result.get("elapsed_s")
        rows.append([cid, d["board"], d["channel"], outcome, result.get("detail") or "",
                     None if elapsed is None else round(elapsed * 1000), closed])
    print_fn(table(["compartment", "board", "channel", "outcome", "detail", "open ms", "closed"], rows))
    return EXIT_OK if ok else EXIT_FAILED


def _door_closed(call: Call, compartment: int) -> bool:
    return any(d["compartment"] == compartment and d["state"] == "closed"
               for d in call("doors.list")["doors"])


test_all = check_all_doors
"""The name lockerctl wires to `lockerctl test-all`."""
