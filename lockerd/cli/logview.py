"""`lockerctl log`: the operation log as people read it, newest first, paged, or followed.

Why newest first: a technician at a cabinet asks "what just happened"; the first page used to be
the oldest hundred operations of months. `--before-seq` pages back (the footer names the next
page), `--follow` prints new operations as they are recorded until Ctrl-C. Rows fit an 80-column
terminal: the detail column is cut to what is left.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from lockerd.cli.output import clip, display_width, emit_json, table
from lockerd.domain.timefmt import format_ts

if TYPE_CHECKING:
    from lockerd.cli.lockerctl import Ctx

EXIT_OK = 0
#: Terminal width the table is cut to.
WIDTH = 80
#: How often `--follow` asks for new operations.
FOLLOW_EVERY_S = 1.0
HEADERS = ["seq", "time (UTC)", "kind", "actor", "comp", "detail"]


def _detail(body: dict[str, Any], room: int) -> str:
    return clip(", ".join(f"{k}={v}" for k, v in body.items()
                          if not isinstance(v, (dict, list))), room)


def _row(op: dict[str, Any]) -> list[Any]:
    # seconds are enough for people; the JSON output keeps the milliseconds
    return [op["seq"], str(op["ts"])[:19].replace("T", " "), op["kind"], op["actor"],
            op.get("compartment"), op.get("body") or {}]


def _render(ops: list[dict[str, Any]], *, header: bool = True) -> str:
    """The table cut to WIDTH columns: every column but the detail at its natural width."""
    rows = [_row(op) for op in ops]
    fixed = table(HEADERS[:-1], [r[:-1] for r in rows]).splitlines()
    used = max((display_width(line) for line in fixed), default=0) + 2
    room = max(10, WIDTH - used)
    lines = table(HEADERS, [[*r[:-1], _detail(r[-1], room)] for r in rows]).splitlines()
    return "\n".join(lines if header else lines[2:])


def _params(args: argparse.Namespace) -> dict[str, Any]:
    params: dict[str, Any] = {"limit": args.limit}
    if args.since:
        params["from"] = format_ts(args.since)
    if args.to:
        params["to"] = format_ts(args.to)
    if args.kind:
        params["kind"] = args.kind
    if args.compartment is not None:
        params["compartment"] = args.compartment
    return params


def cmd_log(ctx: Ctx) -> int:
    """The newest operations (masked), filtered by time, compartment and kind; paged or followed."""
    params = _params(ctx.args)
    params["newest_first"] = True
    if ctx.args.before_seq is not None:
        params["before_seq"] = ctx.args.before_seq
    result = ctx.call("log.view", params)
    ops = result["operations"]
    if ctx.args.follow:
        return _follow(ctx, ops)
    if ctx.json:
        emit_json(result)
        return EXIT_OK
    print(_render(ops))
    if result.get("next_before_seq") is not None:
        print(f"older: lockerctl log --before-seq {result['next_before_seq']}")
    return EXIT_OK


def _follow(ctx: Ctx, newest: list[dict[str, Any]],
            sleep: Callable[[float], None] = time.sleep) -> int:
    """Show the newest page oldest-first, then every new operation until Ctrl-C (exit 0)."""
    shown = list(reversed(newest))
    after = shown[-1]["seq"] if shown else 0
    params = _params(ctx.args)
    if ctx.json:  # JSON lines: one operation per line, as they come
        for op in shown:
            print(json.dumps(op, ensure_ascii=False), flush=True)
    else:
        print(_render(shown), flush=True)
    try:
        while True:
            page = ctx.call("log.view", {**params, "after_seq": after})["operations"]
            for op in page:
                if ctx.json:
                    print(json.dumps(op, ensure_ascii=False), flush=True)
                else:
                    print(_render([op], header=False), flush=True)
            if page:
                after = page[-1]["seq"]
            else:
                sleep(FOLLOW_EVERY_S)
    except KeyboardInterrupt:
        return EXIT_OK


def add_log_command(subparsers: Any, common_parent: argparse.ArgumentParser,
                    when: Callable[[str], datetime]) -> None:
    """Add `log` to lockerctl's parser."""
    p = subparsers.add_parser("log", parents=[common_parent],
                              help="the operation log, newest first (masked)")
    p.add_argument("--from", dest="since", type=when, help="start (RFC 3339)")
    p.add_argument("--to", type=when, help="end (RFC 3339)")
    p.add_argument("--kind", action="append", help="operation kind (repeatable)")
    p.add_argument("--compartment", type=int)
    p.add_argument("--limit", type=int, default=20, help="operations per page (default 20)")
    p.add_argument("--before-seq", type=int, metavar="SEQ",
                   help="the page of operations older than SEQ")
    p.add_argument("--follow", "-f", action="store_true",
                   help="keep printing new operations until Ctrl-C")
    p.set_defaults(func=cmd_log)
