"""`lockerctl maintenance`: announce a planned interruption to carriers ahead of time (guidance 004 §7)."""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from lockerd.cli.output import emit_json, key_values
from lockerd.domain.timefmt import format_ts

if TYPE_CHECKING:
    from lockerd.cli.lockerctl import Ctx

EXIT_OK = 0
_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def duration_s(text: str) -> int:
    """`2h`, `90m`, `1h30m`, `1d`, `45s` as seconds."""
    match = _DURATION.match(text.strip())
    if match is None or not any(match.groups()):
        raise argparse.ArgumentTypeError(f"not a duration (e.g. 2h, 90m, 1h30m): {text!r}")
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def _at(text: str) -> datetime:
    if text == "now":
        return datetime.now(UTC)
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an RFC 3339 time: {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def cmd_maintenance(ctx: Ctx) -> int:
    """Plan (or cancel) the interruption; carriers see it on the retained status topic."""
    args = ctx.args
    if args.cancel:
        result: dict[str, Any] = ctx.call("sync.maintenance_cancel")
    else:
        if args.at is None or args.duration is None or not args.reason:
            raise SystemExit("lockerctl maintenance: --at, --for and --reason are required "
                             "(or --cancel)")
        result = ctx.call("sync.maintenance", {"at": format_ts(args.at),
                                               "duration_s": args.duration,
                                               "reason": args.reason})
    if ctx.json:
        emit_json(result)
    else:
        print(key_values(list(result.items())))
    return EXIT_OK


def add_maintenance_command(subparsers: Any, common_parent: argparse.ArgumentParser) -> None:
    """Add `maintenance` to lockerctl's parser."""
    p = subparsers.add_parser("maintenance", parents=[common_parent],
                              help="announce a planned interruption to carriers")
    p.add_argument("--at", type=_at, help="start: RFC 3339 time or 'now'")
    p.add_argument("--for", dest="duration", type=duration_s, help="length, e.g. 2h or 1h30m")
    p.add_argument("--reason", help="shown to carriers (no personal data)")
    p.add_argument("--cancel", action="store_true", help="withdraw the planned interruption")
    p.set_defaults(func=cmd_maintenance)
