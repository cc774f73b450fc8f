"""The carrier side, for tests and the demo: subscribe to one carrier's topics and send commands."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lockerd.domain.timefmt import format_ts
from lockerd.sync.link import LinkCallbacks, MqttLink
from lockerd.sync.signing import sign
from lockerd.sync.topics import Topics


@dataclass(slots=True)
class Received:
    """One message as the carrier saw it."""

    topic: str
    payload: dict[str, Any]


@dataclass(slots=True)
class EventLedger:
    """The consumer rule of docs/mqtt.md: the last `seq` per `epoch`; accept an event whose seq
    is above its epoch's last one (an unseen epoch starts at 0: the cabinet's log was
    recreated), drop the others as repeats, note gaps."""

    last: dict[str, int] = field(default_factory=dict)
    accepted: list[dict[str, Any]] = field(default_factory=list)
    duplicates: int = 0
    gaps: list[tuple[int, int]] = field(default_factory=list)

    def offer(self, event: dict[str, Any]) -> bool:
        """True when the event is new (and in order)."""
        epoch, seq = str(event["epoch"]), int(event["seq"])
        last = self.last.get(epoch, 0)
        if seq <= last:
            self.duplicates += 1
            return False
        if seq != last + 1:
            self.gaps.append((last, seq))
        self.last[epoch] = seq
        self.accepted.append(event)
        return True


class CarrierClient:
    """A carrier backend in miniature: its own events and replies (plus the cabinet's
    status/state/alerts), a persistent session, and signed commands."""

    def __init__(self, host: str, port: int, cabinet: str, carrier: str, *,
                 prefix: str = "lockers", key: bytes | None = None,
                 client_id: str | None = None, watch_cabinet: bool = True,
                 protocol: str = "auto") -> None:
        self.topics = Topics(prefix, cabinet)
        self.carrier = carrier
        self.key = key
        self.watch_cabinet = watch_cabinet
        self.messages: asyncio.Queue[Received] = asyncio.Queue()
        self.ledger = EventLedger()
        self.all: list[Received] = []
        self._replies: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.replies: dict[str, list[dict[str, Any]]] = {}
        self._connected = asyncio.Event()
        self.link = MqttLink(host=host, port=port,
                             client_id=client_id or f"carrier-{carrier}-{uuid.uuid4().hex[:8]}",
                             reconnect_min_s=1, reconnect_max_s=2, protocol=protocol,
                             callbacks=LinkCallbacks(on_connect=self._on_connect,
                                                     on_message=self._on_message))

    async def __aenter__(self) -> CarrierClient:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self, limit_s: float = 10.0) -> None:
        """Connect and subscribe; returns once subscribed."""
        await self.link.start()
        await asyncio.wait_for(self._connected.wait(), limit_s)
        await asyncio.sleep(0.05)  # let SUBACK land before the caller publishes

    async def stop(self) -> None:
        """Disconnect."""
        await self.link.stop()

    def _on_connect(self, _session_present: bool) -> None:
        self.link.subscribe(self.topics.events(self.carrier), 1)
        self.link.subscribe(self.topics.reply(self.carrier), 1)
        if self.watch_cabinet:
            for topic in (self.topics.status, self.topics.state, self.topics.alerts,
                          self.topics.chain, self.topics.health):
                self.link.subscribe(topic, 1)
        self._connected.set()

    def _on_message(self, topic: str, payload: bytes, mid: int, qos: int) -> None:
        self.link.ack(mid, qos)
        try:
            data = json.loads(payload)
        except ValueError:
            data = {"_raw": payload.decode("utf-8", "replace")}
        msg = Received(topic, data)
        self.all.append(msg)
        if topic == self.topics.events(self.carrier):
            self.ledger.offer(data)
        elif topic == self.topics.reply(self.carrier):
            cid = str(data.get("id"))
            self.replies.setdefault(cid, []).append(data)
            fut = self._replies.pop(cid, None)
            if fut is not None and not fut.done():
                fut.set_result(data)
        self.messages.put_nowait(msg)

    def command(self, type_: str, body: dict[str, Any], *, cmd_id: str | None = None,
                exp: datetime | None = None, key: bytes | None = None,
                carrier: str | None = None) -> tuple[str, dict[str, Any]]:
        """Build (topic, command) for this carrier (or `carrier`), signed when a key is given."""
        topic = self.topics.cmd(carrier or self.carrier)
        cmd: dict[str, Any] = {"v": 1, "id": cmd_id or uuid.uuid4().hex, "type": type_,
                               "ts": format_ts(datetime.now(UTC)), "body": body}
        if exp is not None:
            cmd["exp"] = format_ts(exp)
        k = key if key is not None else self.key
        if k is not None:
            cmd["sig"] = sign(k, topic, cmd)
        return topic, cmd

    def publish_raw(self, topic: str, payload: bytes) -> None:
        """Send anything (for hostile-input tests)."""
        self.link.publish(topic, payload, 1, False)

    async def send(self, type_: str, body: dict[str, Any], *, limit_s: float = 10.0,
                   **kw: Any) -> dict[str, Any]:
        """Send a command and wait for its reply."""
        topic, cmd = self.command(type_, body, **kw)
        return await self.send_raw(topic, json.dumps(cmd).encode(), cmd["id"], limit_s=limit_s)

    async def send_raw(self, topic: str, payload: bytes, reply_id: str | None, *,
                       limit_s: float = 10.0) -> dict[str, Any]:
        """Publish bytes and wait for the reply with id `reply_id` (None for unreadable ones)."""
        key = str(reply_id)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._replies[key] = fut
        self.publish_raw(topic, payload)
        try:
            return await asyncio.wait_for(fut, limit_s)
        finally:
            self._replies.pop(key, None)

    async def wait_events(self, count: int, limit_s: float = 30.0) -> list[dict[str, Any]]:
        """Wait until `count` distinct events were accepted."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit_s
        while len(self.ledger.accepted) < count:
            if loop.time() > deadline:
                raise TimeoutError(f"{len(self.ledger.accepted)} of {count} events received")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.messages.get(), 0.5)
        return self.ledger.accepted
