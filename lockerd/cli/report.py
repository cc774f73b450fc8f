"""`lockerctl report`: the signed regulator report (Art. 28), and `--verify FILE` to check one.

Producing needs the daemon (audit role): it signs with the cabinet's device key and records the
production in the chain. Verifying needs nothing but the file: the signature covers every
figure, and the key fingerprint printed is what the operator enrolled for the cabinet.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lockerd.cli.output import emit_json, key_values
from lockerd.domain.timefmt import format_ts
from lockerd.oplog import report_sign

if TYPE_CHECKING:
    from lockerd.cli.lockerctl import Ctx

EXIT_OK = 0
EXIT_FAILED = 1


def _write_new(path: Path, text: str) -> None:
    """Create FILE 0600 (never an existing file or a symlink) and write the report."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)


def cmd_verify(ctx: Ctx) -> int:
    """Check a report file's signature; exit 1 when it does not verify."""
    data = Path(ctx.args.verify).read_bytes()
    result = report_sign.verify(data, ctx.args.fingerprint)
    if ctx.json:
        emit_json({"ok": result.ok, "format": result.format,
                   "key_fingerprint": result.key_fingerprint, "reason": result.reason})
    else:
        print(key_values([("file", ctx.args.verify), ("format", result.format),
                          ("key", result.key_fingerprint or "-"),
                          ("result", result.reason)]))
    return EXIT_OK if result.ok else EXIT_FAILED


def cmd_report(ctx: Ctx) -> int:
    """Produce the signed report for --from/--to (default: the last 30 days)."""
    if ctx.args.verify:
        return cmd_verify(ctx)
    until = ctx.args.to or datetime.now(UTC)
    since = ctx.args.since or until - timedelta(days=30)
    params: dict[str, Any] = {"from": format_ts(since), "to": format_ts(until),
                              "format": ctx.args.format}
    result = ctx.call("log.report", params)
    if result["format"] == "csv":
        text = result["csv"]
    else:
        text = json.dumps(result["document"], ensure_ascii=False, indent=2, sort_keys=True) + "\n"
    if ctx.args.out:
        _write_new(Path(ctx.args.out), text)
        print(f"report written to {ctx.args.out}; recorded as operation {result['record_seq']} "
              f"(sha256 {result['digest'][:16]}…)", file=sys.stderr if ctx.json else sys.stdout)
        return EXIT_OK
    sys.stdout.write(text)
    return EXIT_OK


def add_report_command(subparsers: Any, common_parent: argparse.ArgumentParser,
                       when: Any) -> None:
    """Add `report` to lockerctl's parser (`when` parses --from/--to)."""
    p = subparsers.add_parser("report", parents=[common_parent],
                              help="signed regulator report (Art. 28), or --verify FILE")
    p.add_argument("--from", dest="since", type=when, help="start (default: 30 days ago)")
    p.add_argument("--to", type=when, help="end (default: now)")
    p.add_argument("--format", choices=["json", "csv"], default="json")
    p.add_argument("--out", help="write to FILE (created 0600, never overwritten)")
    p.add_argument("--verify", metavar="FILE", help="check FILE's signature (no daemon needed)")
    p.add_argument("--fingerprint", help="with --verify: the enrolled key fingerprint to expect")
    p.set_defaults(func=cmd_report)
