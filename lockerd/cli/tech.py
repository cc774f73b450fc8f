"""`lockerctl block|unblock|clear|incidents`: a technician's blocked compartments and what needs a person.

Every change goes through the daemon (compartments.* on the local API, tech role), which records
it in the operation log before anything changes; the reason is required and is redacted there.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from lockerd.cli.output import emit_json, key_values, table

if TYPE_CHECKING:
    from lockerd.cli.lockerctl import Ctx

EXIT_OK = 0


def human_age(seconds: float | None) -> str:
    """`42 s`, `12 min`, `3 h 05 min`, `2 d 04 h`: how long an incident has lasted."""
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    return f"{s // 86400} d {s % 86400 // 3600:02d} h"


def _what(row: dict[str, Any]) -> str:
    if row.get("compartment") is not None:
        return f"comp {row['compartment']}"
    if row.get("board") is not None:
        return f"board {row['board']}"
    return "camera" if row["kind"].startswith("camera") else "-"


def _show(ctx: Ctx, result: dict[str, Any]) -> int:
    if ctx.json:
        emit_json(result)
    else:
        print(key_values([(k, v) for k, v in result.items()]))
    return EXIT_OK


def cmd_block(ctx: Ctx) -> int:
    """Take a compartment out of customer use (recorded with the reason)."""
    return _show(ctx, ctx.call("compartments.block", {"compartment": ctx.args.compartment,
                                                      "reason": ctx.args.reason}))


def cmd_unblock(ctx: Ctx) -> int:
    """Return a repaired compartment to service; refused while a parcel its code cannot claim
    is inside (clear it instead)."""
    return _show(ctx, ctx.call("compartments.unblock", {"compartment": ctx.args.compartment,
                                                        "reason": ctx.args.reason}))


def cmd_clear(ctx: Ctx) -> int:
    """Record that staff removed what was inside (each parcel removed_by_staff, carriers told)."""
    return _show(ctx, ctx.call("compartments.clear", {"compartment": ctx.args.compartment,
                                                      "reason": ctx.args.reason,
                                                      "keep_blocked": ctx.args.keep_blocked}))


def cmd_incidents(ctx: Ctx) -> int:
    """Blocked compartments, stuck parcels, rejected drop-offs, overdue parcels, unknown doors,
    boards offline, camera down; each with its age, the oldest first within a kind."""
    rows: list[dict[str, Any]] = ctx.call("incidents")["incidents"]
    if ctx.json:
        emit_json({"incidents": rows})
        return EXIT_OK
    if not rows:
        print("no incidents")
        return EXIT_OK
    # 80 columns: the parcel ids and times are in --json
    print(table(["incident", "where", "age", "detail"],
                [[r["kind"], _what(r), human_age(r.get("age_s")),
                  _short(str(r.get("detail", "")))] for r in rows]))
    return EXIT_OK


def _short(text: str, width: int = 37) -> str:
    return text if len(text) <= width else text[:width - 3] + "..."


def add_tech_commands(subparsers: Any, common_parent: argparse.ArgumentParser) -> None:
    """Add block, unblock, clear and incidents to lockerctl's parser."""
    for name, func, help_ in (("block", cmd_block, "take a compartment out of service"),
                              ("unblock", cmd_unblock, "return a repaired compartment to service"),
                              ("clear", cmd_clear, "record that staff emptied a compartment")):
        p = subparsers.add_parser(name, parents=[common_parent], help=help_)
        p.add_argument("compartment", type=int, help="compartment number")
        p.add_argument("--reason", required=True, help="why (recorded in the operation log)")
        if name == "clear":
            p.add_argument("--keep-blocked", action="store_true",
                           help="leave it out of service (default: free again)")
        p.set_defaults(func=func)
    p = subparsers.add_parser("incidents", parents=[common_parent],
                              help="what needs a person, with ages")
    p.set_defaults(func=cmd_incidents)
