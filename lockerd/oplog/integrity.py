"""Integrity of the log file: SQLite's quick_check and SQLCipher's per-page HMAC check.

Why: a damaged page (bad SD card sector, a torn write the filesystem did not catch) used to
leave the cabinet `ready` while every read touching that page failed as `internal`. The check
runs at start and on a schedule (`[oplog] integrity_check_h`); a failure makes the cabinet
`degraded: oplog_corrupt` and raises the `oplog_corrupt` alert, so staff restore a backup.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: Lines of a failed check kept for status and the alert (the rest only say "more of the same").
MAX_LINES = 5


@dataclass(frozen=True, slots=True)
class IntegrityResult:
    """`ok`, or what the checks reported (no personal data: page numbers and SQLite messages)."""

    ok: bool
    problems: tuple[str, ...] = ()

    @property
    def summary(self) -> str:
        """One line for logs, status and the alert."""
        return "ok" if self.ok else "; ".join(self.problems)


def check(conn: Any, *, cipher: bool) -> IntegrityResult:
    """Run the checks on one connection; a read that fails outright is a finding too.

    `cipher_integrity_check` verifies every page's HMAC (a damaged encrypted page decrypts to
    garbage that quick_check might not notice); `quick_check` walks the b-trees.
    """
    problems: list[str] = []
    try:
        if cipher:
            rows = conn.execute("PRAGMA cipher_integrity_check").fetchall()
            problems += [str(r[0]) for r in rows[:MAX_LINES]]
        rows = conn.execute("PRAGMA quick_check").fetchall()
        found = [str(r[0]) for r in rows if str(r[0]) != "ok"]
        problems += found[:MAX_LINES]
    except Exception as exc:  # the driver's DatabaseError: the page could not be read at all
        problems.append(f"{type(exc).__name__}: {exc}")
    return IntegrityResult(not problems, tuple(problems[:MAX_LINES]))
