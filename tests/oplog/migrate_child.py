"""Child process for the kill-during-migration test: opens the log, pausing at one migration step.

argv: database, key hex, step. Step k pauses before the k-th statement `migrate` executes (0 is
its first read of user_version); a step past the last one pauses after `migrate` returned. At
the pause it prints `paused <k> <statement>` and sleeps until the parent SIGKILLs it. The hook is
a proxy around the connection, set up here only: production code has no test switch.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

from lockerd.oplog import OpLog, OplogKey, schema, store


class Pausing:
    """Passes every call to the real connection; stops the process before statement `at`."""

    def __init__(self, conn: Any, at: int) -> None:
        self._conn = conn
        self._at = at
        self.calls = 0

    def execute(self, sql: str, *args: Any) -> Any:
        if self.calls == self._at:
            pause(self._at, sql)
        self.calls += 1
        return self._conn.execute(sql, *args)


def pause(step: int, what: str) -> None:
    print(f"paused {step} {' '.join(what.split())[:60]}", flush=True)
    time.sleep(60)
    raise SystemExit("not killed")


def main(path: Path, key_hex: str, step: int) -> None:
    real = schema.migrate

    def migrate(conn: Any) -> int:
        proxy = Pausing(conn, step)
        found = real(proxy)
        if proxy.calls <= step:
            pause(step, "after migrate")
        return found

    store.migrate = migrate  # type: ignore[assignment]
    asyncio.run(OpLog.open(path, OplogKey(bytes.fromhex(key_hex))))
    print("opened without pausing", flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]))
