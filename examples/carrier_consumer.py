"""A carrier's backend for lockerd cabinets, written from docs/mqtt.md and docs/asyncapi.yaml alone.

It imports nothing of lockerd: only paho-mqtt and the standard library. What it does, and the
part of the contract each step follows:

- connects with a persistent session (MQTT 5 clean start off with a session expiry, or 3.1.1
  clean session off) and subscribes to its own `events` and `reply` topics at QoS 1, so the
  broker keeps what the cabinet publishes while this backend is away ("Delivery guarantees");
- checks each event's envelope (`v`, `event_id`, `epoch`, `seq`, `ts`, `type`, `body`);
- applies the consumer rule: the last `seq` per `epoch`; a `seq` at or below it is a repeat and
  is dropped, an unseen epoch starts at 0, a jump is noted as a gap;
- records every new event in an append-only journal (JSON lines, flushed and fsynced) *before*
  acknowledging it to the broker; its position is rebuilt from that journal on start, so a
  crash at any point neither loses nor doubles an event;
- sends commands signed as "Signatures" says (HMAC-SHA256 over topic, LF, canonical JSON) and
  waits for the reply with the same id; resending the same command (same id) is safe.

Run it: `python examples/carrier_consumer.py --host broker --cabinet CAB-0001 --carrier sf
--key-file sf.key --journal sf-CAB-0001.jsonl follow` (prints each new event as a JSON line), or
`... send courier.revoke '{"courier_id": "c-101"}'`.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import logging
import os
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

log = logging.getLogger("carrier_consumer")

_EPOCH = re.compile(r"^[0-9a-f]{32}$")
_TIME = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$")
SESSION_EXPIRY_S = 7 * 86400


def load_key(path: Path) -> bytes:
    """The HMAC key from a key file: hexadecimal text (whitespace ignored), else the raw bytes."""
    raw = path.read_bytes()
    try:
        key = bytes.fromhex(raw.strip().decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        key = raw
    if len(key) < 16:
        raise ValueError(f"{path}: an HMAC key has at least 16 bytes")
    return key


def canonical(command: dict[str, Any]) -> bytes:
    """The command without `sig`: keys sorted, no whitespace, non-ASCII as UTF-8."""
    unsigned = {k: v for k, v in command.items() if k != "sig"}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


def signature(key: bytes, topic: str, command: dict[str, Any]) -> str:
    """Lower-case hex HMAC-SHA256 over topic, LF and the canonical command."""
    return hmac.new(key, topic.encode("utf-8") + b"\n" + canonical(command),
                    hashlib.sha256).hexdigest()


def now_rfc3339() -> str:
    """The current time as RFC 3339 UTC with milliseconds."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def envelope_problem(event: Any) -> str | None:
    """Why a message on the events topic is not an event of the contract (None: it is)."""
    if not isinstance(event, dict):
        return "not a JSON object"
    if event.get("v") != 1:
        return f"unsupported version {event.get('v')!r}"
    checks: tuple[tuple[str, Callable[[Any], bool]], ...] = (
              ("event_id", lambda v: isinstance(v, str) and bool(v)),
              ("epoch", lambda v: isinstance(v, str) and _EPOCH.match(v) is not None),
              ("seq", lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1),
              ("ts", lambda v: isinstance(v, str) and _TIME.match(v) is not None),
              ("type", lambda v: isinstance(v, str) and bool(v)),
              ("body", lambda v: isinstance(v, dict)))
    for name, ok in checks:
        if not ok(event.get(name)):
            return f"bad or missing {name}"
    return None


class Journal:
    """Accepted events, one JSON line each, fsynced; the position per epoch is rebuilt from it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.positions: dict[str, int] = {}
        self.events: list[dict[str, Any]] = []
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    event = json.loads(line)
                except ValueError:
                    continue  # a line cut short by a crash: its event was never acknowledged
                self._note(event)
        self._file = path.open("a", encoding="utf-8")

    def _note(self, event: dict[str, Any]) -> None:
        epoch, seq = event["epoch"], event["seq"]
        self.positions[epoch] = max(seq, self.positions.get(epoch, 0))
        self.events.append(event)

    def last(self, epoch: str) -> int:
        """The last seq accepted in this epoch (0: none yet)."""
        return self.positions.get(epoch, 0)

    def record(self, event: dict[str, Any]) -> None:
        """Append durably, then count it as seen."""
        self._file.write(json.dumps(event, ensure_ascii=False, sort_keys=True) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        self._note(event)

    def close(self) -> None:
        """Close the file."""
        self._file.close()


@dataclass
class Stats:
    """What the consumer saw besides new events."""

    duplicates: int = 0
    malformed: int = 0
    gaps: list[tuple[str, int, int]] = field(default_factory=list)


class CarrierConsumer:
    """One carrier's view of one cabinet: events exactly once into a journal, signed commands."""

    def __init__(self, *, host: str, port: int, cabinet: str, carrier: str, journal: Path,
                 client_id: str, key: bytes | None = None, prefix: str = "lockers",
                 on_event: Callable[[dict[str, Any]], None] | None = None) -> None:
        base = f"{prefix}/{cabinet}/carriers/{carrier}"
        self.events_topic, self.reply_topic, self.cmd_topic = (
            f"{base}/events", f"{base}/reply", f"{base}/cmd")
        self.host, self.port, self.key = host, port, key
        self.journal = Journal(journal)
        self.stats = Stats()
        self.on_event = on_event
        self._lock = threading.Lock()
        self._replies: dict[str, Future[dict[str, Any]]] = {}
        self._connected = threading.Event()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                   protocol=mqtt.MQTTv5, manual_ack=True)
        self._client.reconnect_delay_set(1, 2)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message

    # ---------------------------------------------------------------- lifecycle

    def start(self, timeout_s: float = 10.0) -> None:
        """Connect (persistent session) and return once subscribed."""
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = SESSION_EXPIRY_S
        self._client.connect_async(self.host, self.port, keepalive=30, clean_start=False,
                                   properties=props)
        self._client.loop_start()
        if not self._connected.wait(timeout_s):
            self.stop()
            raise TimeoutError(f"no connection to {self.host}:{self.port}")

    def stop(self) -> None:
        """Disconnect cleanly (the broker keeps the session) and close the journal."""
        self._client.disconnect()
        self._client.loop_stop()
        self.journal.close()

    @property
    def connected(self) -> bool:
        """Connected to the broker right now."""
        return self._connected.is_set()

    def _on_connect(self, client: Any, _ud: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if getattr(reason, "is_failure", False):
            log.warning("broker refused the connection: %s", reason)
            return
        # subscribing again is harmless and covers a session the broker lost
        client.subscribe([(self.events_topic, 1), (self.reply_topic, 1)])
        self._connected.set()

    def _on_disconnect(self, _client: Any, _ud: Any, _flags: Any, reason: Any, _props: Any) -> None:
        self._connected.clear()
        log.info("disconnected (%s); reconnecting", reason)

    # ---------------------------------------------------------------- inbound

    def _on_message(self, client: Any, _ud: Any, msg: Any) -> None:
        try:
            payload = json.loads(msg.payload)
        except ValueError:
            payload = None
        if msg.topic == self.events_topic:
            self._event(payload)
        elif msg.topic == self.reply_topic and isinstance(payload, dict):
            future = self._replies.pop(str(payload.get("id")), None)
            if future is not None and not future.done():
                future.set_result(payload)
        # acknowledged only now: an event is in the journal before the broker forgets it
        client.ack(msg.mid, msg.qos)

    def _event(self, event: Any) -> None:
        problem = envelope_problem(event)
        if problem is not None:
            # acknowledged and skipped: one broken message must not stop the stream
            self.stats.malformed += 1
            log.error("dropping a malformed event: %s", problem)
            return
        epoch, seq = event["epoch"], event["seq"]
        with self._lock:
            last = self.journal.last(epoch)
            if seq <= last:
                self.stats.duplicates += 1
                return
            if seq != last + 1:
                self.stats.gaps.append((epoch, last, seq))
                log.warning("events %d-%d of epoch %s are missing", last + 1, seq - 1, epoch)
            self.journal.record(event)
        if self.on_event is not None:
            self.on_event(event)

    # ---------------------------------------------------------------- commands

    def command(self, type_: str, body: dict[str, Any], cmd_id: str | None = None
                ) -> dict[str, Any]:
        """A command as the contract wants it, signed when this carrier has a key."""
        cmd: dict[str, Any] = {"v": 1, "id": cmd_id or uuid.uuid4().hex, "type": type_,
                               "ts": now_rfc3339(), "body": body}
        if self.key is not None:
            cmd["sig"] = signature(self.key, self.cmd_topic, cmd)
        return cmd

    def send(self, type_: str, body: dict[str, Any], *, timeout_s: float = 10.0,
             cmd_id: str | None = None) -> dict[str, Any]:
        """Publish a command and wait for its reply (a repeat with the same id is harmless)."""
        cmd = self.command(type_, body, cmd_id)
        future: Future[dict[str, Any]] = Future()
        self._replies[cmd["id"]] = future
        self._client.publish(self.cmd_topic, json.dumps(cmd, ensure_ascii=False), qos=1)
        try:
            return future.result(timeout_s)
        finally:
            self._replies.pop(cmd["id"], None)


def main(argv: list[str] | None = None) -> int:
    """`follow` prints new events; `send TYPE BODY` sends one command and prints the reply."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1883)
    parser.add_argument("--prefix", default="lockers")
    parser.add_argument("--cabinet", required=True)
    parser.add_argument("--carrier", required=True)
    parser.add_argument("--client-id", help="persistent session id (default carrier-cabinet)")
    parser.add_argument("--key-file", type=Path, help="HMAC key file of this carrier")
    parser.add_argument("--journal", type=Path, required=True, help="accepted events (JSON lines)")
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("follow")
    send = sub.add_parser("send")
    send.add_argument("type")
    send.add_argument("body", help="the body as JSON")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    consumer = CarrierConsumer(
        host=args.host, port=args.port, prefix=args.prefix, cabinet=args.cabinet,
        carrier=args.carrier, journal=args.journal,
        client_id=args.client_id or f"{args.carrier}-{args.cabinet}",
        key=load_key(args.key_file) if args.key_file else None,
        on_event=lambda e: print(json.dumps(e, ensure_ascii=False), flush=True))
    consumer.start()
    try:
        if args.action == "send":
            print(json.dumps(consumer.send(args.type, json.loads(args.body)), ensure_ascii=False))
            return 0
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0
    finally:
        consumer.stop()


if __name__ == "__main__":
    sys.exit(main())
