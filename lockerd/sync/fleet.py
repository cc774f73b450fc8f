"""`lockerd fleet-watch`: the operator's table of every cabinet's retained health, one line each.

It subscribes to `{prefix}/+/health` and `{prefix}/+/status` (both retained, so a fresh watcher
sees the whole fleet at once) on any broker of the topology (a regional one or the central one)
and prints one line per cabinet: id, state, boards online/total, camera, outbox backlog, open
incidents and the age of its last health message. Cabinets that need a person sort first, so
the top of the table is the work list when there are hundreds of lines. Nothing here writes to
the broker; it reads only what the cabinets publish (no personal data is ever in it).
"""

from __future__ import annotations

import json
import ssl
import sys
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from lockerd.domain.timefmt import parse_ts


@dataclass(slots=True)
class Row:
    """What the table knows of one cabinet."""

    cabinet: str
    health: dict[str, Any] | None = None
    online: bool | None = None
    seen_at: datetime | None = None

    def needs_attention(self) -> bool:
        """Offline, not ready, or with open incidents."""
        h = self.health
        return (self.online is False or h is None or h.get("state") != "ready"
                or bool(h.get("incidents")))


@dataclass(slots=True)
class FleetTable:
    """Every cabinet heard from, fed topic by topic, rendered as text."""

    prefix: str = "lockers"
    rows: dict[str, Row] = field(default_factory=dict)
    rejected: int = 0

    def feed(self, topic: str, payload: bytes) -> None:
        """Take one `status` or `health` message; anything unreadable is counted, not fatal."""
        parts = topic.split("/")
        head = self.prefix.split("/")
        if len(parts) != len(head) + 2 or parts[:len(head)] != head:
            return
        cabinet, kind = parts[-2], parts[-1]
        try:
            body = json.loads(payload)
            if not isinstance(body, dict):
                raise ValueError("not an object")
        except ValueError:
            self.rejected += 1
            return
        row = self.rows.setdefault(cabinet, Row(cabinet))
        if kind == "status":
            row.online = bool(body.get("online"))
        elif kind == "health":
            row.health = body
            try:
                row.seen_at = parse_ts(str(body["ts"]))
            except (KeyError, ValueError):
                row.seen_at = None

    def lines(self, now: datetime) -> list[str]:
        """A summary line, the header, then one line per cabinet (attention first, then by id)."""
        rows = sorted(self.rows.values(), key=lambda r: (not r.needs_attention(), r.cabinet))
        states = [_state(r) for r in rows]
        counts = {s: states.count(s) for s in sorted(set(states))}
        summary = f"{len(rows)} cabinets: " + ", ".join(f"{n} {s}" for s, n in counts.items())
        out = [summary, _FMT.format("cabinet", "state", "boards", "camera", "backlog",
                                    "incidents", "age")]
        for row, state in zip(rows, states, strict=True):
            out.append(_line(row, state, now))
        return out


_FMT = "{:<16} {:<9} {:>7} {:<18} {:>8} {:<28} {:>6}"


def _state(row: Row) -> str:
    if row.online is False:
        return "offline"
    if row.health is None:
        return "no-health"
    return str(row.health.get("state", "?"))


def _age(seen: datetime | None, now: datetime) -> str:
    if seen is None:
        return "-"
    s = max(0, int((now - seen).total_seconds()))
    return f"{s}s" if s < 120 else f"{s // 60}m" if s < 7200 else f"{s // 3600}h"


def _line(row: Row, state: str, now: datetime) -> str:
    h = row.health or {}
    boards = h.get("boards") or []
    up = sum(1 for b in boards if b.get("online"))
    cam = h.get("camera") or {}
    camera = "-" if not cam else ("open" if cam.get("intake_open")
                                  else f"closed:{cam.get('reason') or '?'}")
    outbox = h.get("outbox") or {}
    backlog = "-" if not outbox else str(outbox.get("backlog", "?"))
    incidents = h.get("incidents") or {}
    inc = ",".join(f"{k}={v}" for k, v in sorted(incidents.items())) or ("-" if not h else "0")
    return _FMT.format(row.cabinet[:16], state, f"{up}/{len(boards)}" if h else "-",
                       camera[:18], backlog, inc[:28], _age(row.seen_at, now))


@dataclass(frozen=True, slots=True)
class Broker:
    """Where to watch: host, port and optional TLS files."""

    host: str
    port: int
    tls: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None


def parse_broker(text: str, *, tls: bool) -> tuple[str, int]:
    """`HOST[:PORT]` -> (host, port); the port defaults to 8883 with TLS, 1883 without."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        return text, 8883 if tls else 1883
    return host, int(port)


def watch(broker: Broker, table: FleetTable, *, stop: threading.Event,
          on_change: Callable[[], None] | None = None, connect_limit_s: float = 10.0) -> None:
    """Subscribe and feed `table` until `stop` is set (blocking; paho's thread does the I/O).

    A clean session with a random client id: the watcher wants the retained picture, not a
    backlog kept for it; the operator may run as many as they like."""
    lock = threading.Lock()
    connected = threading.Event()
    client = paho.Client(CallbackAPIVersion.VERSION2,
                         client_id=f"fleet-watch-{uuid.uuid4().hex[:8]}", clean_session=True)
    if broker.tls:
        ctx = ssl.create_default_context(cafile=broker.ca_file)
        if broker.cert_file:
            ctx.load_cert_chain(broker.cert_file, broker.key_file)
        client.tls_set_context(ctx)

    def on_connect(c: paho.Client, _ud: Any, _flags: Any, rc: Any, _props: Any) -> None:
        if not rc.is_failure:
            c.subscribe([(f"{table.prefix}/+/health", 1), (f"{table.prefix}/+/status", 1)])
            connected.set()

    def on_message(_c: paho.Client, _ud: Any, msg: paho.MQTTMessage) -> None:
        with lock:
            table.feed(msg.topic, bytes(msg.payload))
        if on_change is not None:
            on_change()

    client.on_connect = on_connect
    client.on_message = on_message
    client.connect_async(broker.host, broker.port, 30)
    client.loop_start()
    try:
        if not connected.wait(connect_limit_s):
            raise ConnectionError(f"cannot reach the broker at {broker.host}:{broker.port}")
        stop.wait()
    finally:
        client.disconnect()
        client.loop_stop()


def run(broker: Broker, *, prefix: str, once_after_s: float | None, refresh_s: float,
        out: TextIO, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> int:
    """The CLI verb: print the table once after `once_after_s`, or refresh it every `refresh_s`
    until interrupted. Returns the exit code (2 when the broker cannot be reached)."""
    table = FleetTable(prefix=prefix)
    stop = threading.Event()
    failed: list[BaseException] = []

    def target() -> None:
        try:
            watch(broker, table, stop=stop)
        except BaseException as exc:  # reported on the main thread
            failed.append(exc)
            stop.set()

    thread = threading.Thread(target=target, name="fleet-watch", daemon=True)
    thread.start()
    try:
        if once_after_s is not None:
            stop.wait(once_after_s)
            if not failed:
                out.write("\n".join(table.lines(clock())) + "\n")
        else:
            while not stop.wait(refresh_s):
                out.write("\x1b[2J\x1b[H" + "\n".join(table.lines(clock())) + "\n")
                out.flush()
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        thread.join(15)
    if failed:
        print(f"fleet-watch: {failed[0]}", file=sys.stderr)
        return 2
    return 0
