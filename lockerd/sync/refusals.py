"""Refused carrier commands, counted per carrier and window instead of chained one by one.

Why: anyone who can publish on a carrier's command topic (a leaked certificate, a bug in a
carrier's backend) could otherwise grow the hash chain by one row per message: a flood of
3,000 bad signatures added 3,001 rows that nothing purges. A refusal still gets its reply
(through the outbox, so it survives a crash), and is counted in `live_state` in the same
transaction; once its window has closed, one `sync.commands_refused` row per carrier and window
records the counts by error code. At most one window's rows are chained late after a crash,
never lost: the counts are on disk from the first refusal on.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from lockerd.domain.timefmt import format_ts, parse_ts
from lockerd.oplog import OpLog, OutboxMessage

log = logging.getLogger(__name__)

KIND = "sync.commands_refused"
# live_state rows: key "<carrier>|<window start>", value [{"error": code, "count": n}, ...]
# (registered keys only: lockerd/privacy.py classifies every key of a live_state value)
ENTITY = "sync_refusals"


def _counts(value: str) -> dict[str, int]:
    return {str(e["error"]): int(e["count"]) for e in json.loads(value)}


def _value(counts: dict[str, int]) -> str:
    return json.dumps([{"error": c, "count": n} for c, n in sorted(counts.items())])


def _window_start(now: datetime, window_s: int) -> datetime:
    epoch = int(now.timestamp())
    return datetime.fromtimestamp(epoch - epoch % window_s, tz=now.tzinfo)


class RefusalTally:
    """Counts refusals per (carrier, window) on disk and chains each closed window once."""

    def __init__(self, oplog: Callable[[], OpLog], *, window_s: int,
                 clock: Callable[[], datetime]) -> None:
        self._oplog = oplog
        self.window_s = max(1, int(window_s))
        self._clock = clock
        self.recorded = 0

    async def record(self, carrier: str, code: str, reply: OutboxMessage) -> None:
        """Queue `reply` and count `code` for `carrier` in the current window, atomically."""
        now = self._clock()
        key = f"{carrier}|{format_ts(_window_start(now, self.window_s))}"
        stamp = format_ts(now)

        def count(conn: Any) -> None:
            row = conn.execute("SELECT value FROM live_state WHERE entity = ? AND key = ?",
                               (ENTITY, key)).fetchone()
            counts = _counts(row[0]) if row else {}
            counts[code] = counts.get(code, 0) + 1
            conn.execute("INSERT INTO live_state (entity, key, value, updated_at) "
                         "VALUES (?, ?, ?, ?) ON CONFLICT(entity, key) DO UPDATE SET "
                         "value = excluded.value, updated_at = excluded.updated_at",
                         (ENTITY, key, _value(counts), stamp))

        oplog = self._oplog()
        self.recorded += 1
        if oplog.head[0] == 0:
            # An empty chain has no row for the reply to name (outbox.op_seq references one):
            # this first refusal is chained on its own. A daemon's log never starts empty.
            await oplog.append(KIND, actor=f"carrier:{carrier}", outbox=[reply],
                               body={"carrier": carrier, "from": stamp, "to": stamp, "count": 1,
                                     "refused": [{"error": code, "count": 1}]})
            return
        await oplog.enqueue([reply], mutate=count)

    async def flush(self, *, everything: bool = False) -> int:
        """Chain every closed window (all of them with `everything`, at stop); returns rows added."""
        oplog = self._oplog()
        rows = await oplog.read(lambda c: c.execute(
            "SELECT key, value FROM live_state WHERE entity = ? ORDER BY key",
            (ENTITY,)).fetchall())
        now = self._clock()
        added = 0
        for key, value in rows:
            carrier, _, start_text = str(key).rpartition("|")
            start = parse_ts(start_text)
            end = start + timedelta(seconds=self.window_s)
            if end > now and not everything:
                continue
            counts = _counts(value)
            body = {"carrier": carrier, "from": start_text, "to": format_ts(end),
                    "count": sum(counts.values()),
                    "refused": [{"error": c, "count": n} for c, n in sorted(counts.items())]}

            def forget(conn: Any, key: str = str(key)) -> None:
                conn.execute("DELETE FROM live_state WHERE entity = ? AND key = ?", (ENTITY, key))

            await oplog.append(KIND, actor=f"carrier:{carrier}", body=body, mutate=forget)
            added += 1
            log.warning("carrier %s: %d commands refused between %s and %s (%s)", carrier,
                        body["count"], start_text, body["to"],
                        ", ".join(f"{c} {n}" for c, n in sorted(counts.items())))
        return added
