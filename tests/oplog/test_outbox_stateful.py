"""Stateful property test: outbox and chain against a model across appends, failures, sends, reopen."""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from lockerd.oplog import OpLog, OplogKey, OutboxMessage

STREAMS = ["sf", "yto", "_cabinet"]


class OutboxMachine(RuleBasedStateMachine):
    """The store must agree with a trivial in-memory model after every step."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.dir = Path(tempfile.mkdtemp(prefix="oplog-sm-"))
        self.key = OplogKey.generate()
        self.log: OpLog = self._run(OpLog.open(self.dir / "db", self.key, readers=1))
        self.ops = 0
        self.pending: list[tuple[str, int | None, int]] = []  # (stream, seq, tag) in id order
        self.last_seq: dict[str, int] = {}
        self.tag = 0

    def _run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    @rule(streams=st.lists(st.sampled_from(STREAMS), max_size=3), fail=st.booleans(),
          event=st.booleans())
    def append(self, streams: list[str], fail: bool, event: bool) -> None:
        msgs = []
        planned = []
        seqs = dict(self.last_seq)
        for stream in streams:
            self.tag += 1
            msgs.append(OutboxMessage(stream, f"t/{stream}", {"tag": self.tag}, event=event))
            seq = None
            if event:
                seqs[stream] = seqs.get(stream, 0) + 1
                seq = seqs[stream]
            planned.append((stream, seq, self.tag))

        def mutate(conn: sqlite3.Connection) -> None:
            if fail:
                raise RuntimeError("refused")

        try:
            self._run(self.log.append("k", actor="a", body={}, outbox=msgs, mutate=mutate))
        except RuntimeError:
            assert fail
            return
        assert not fail
        self.ops += 1
        self.last_seq = seqs
        self.pending.extend(planned)

    @rule(count=st.integers(0, 4))
    def mark_sent_oldest(self, count: int) -> None:
        rows = self._run(self.log.outbox_pending(count))
        assert self._run(self.log.outbox_mark_sent([r.id for r in rows])) == len(rows)
        del self.pending[:len(rows)]

    @rule()
    def reopen(self) -> None:
        self._run(self.log.close())
        self.log = self._run(OpLog.open(self.dir / "db", self.key, readers=1))

    @invariant()
    def store_matches_model(self) -> None:
        rows = self._run(self.log.outbox_pending(10_000))
        got = [(r.stream, r.seq, json.loads(r.payload_bytes)["tag"]) for r in rows]
        assert got == self.pending
        assert self._run(self.log.outbox_stats())[0] == len(self.pending)
        assert self.log.head[0] == self.ops

    def teardown(self) -> None:
        result = self._run(self.log.verify())
        assert result.ok
        assert result.checked == self.ops
        self._run(self.log.close())
        self.loop.run_until_complete(self.loop.shutdown_default_executor())
        self.loop.close()
        shutil.rmtree(self.dir, ignore_errors=True)


TestOutboxMachine = OutboxMachine.TestCase
TestOutboxMachine.settings = settings(max_examples=15, stateful_step_count=15, deadline=None)
