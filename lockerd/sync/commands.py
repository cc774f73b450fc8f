"""Carrier commands: validation, signatures, remembered ids, a pluggable handler registry, dispatch."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ValidationError

from lockerd.domain.errors import ErrorCode, Refused
from lockerd.oplog import CommandRecord, DuplicateCommand, Mutation, Operation, OpLog, OutboxMessage
from lockerd.sync import signing
from lockerd.sync.payloads import COMMAND_BODIES, Command, ErrorInfo, Reply
from lockerd.sync.topics import Topics

log = logging.getLogger(__name__)

COMMAND_MEMORY = timedelta(days=7)


@dataclass(slots=True)
class CommandContext:
    """What a handler knows about the command it serves, and how it commits its change.

    A handler that changes anything calls `commit()` exactly once: its operation, its outbox
    messages, the remembered command id and the reply are then one transaction. A handler
    that changes nothing just returns its result.
    """

    carrier: str
    cmd_id: str
    type: str
    received_at: datetime
    _oplog: OpLog
    _reply_topic: str
    _digest: str
    committed: Operation | None = field(default=None)
    result: Any = None

    @property
    def actor(self) -> str:
        """Actor name for operations caused by this command."""
        return f"carrier:{self.carrier}"

    async def commit(self, kind: str, *, body: Mapping[str, Any], result: Any = None,
                     outbox: Sequence[OutboxMessage] = (), compartment: int | None = None,
                     parcel_id: str | None = None, mutate: Mutation | None = None) -> Operation:
        """Append the change with the command record and the `ok:true` reply, atomically."""
        if self.committed is not None:
            raise RuntimeError("a command commits at most once")
        reply = Reply(id=self.cmd_id, ok=True, result=result).to_json()
        full_body = {**dict(body), "command": {"id": self.cmd_id, "type": self.type}}
        op = await self._oplog.append(
            kind, actor=self.actor, body=full_body, compartment=compartment, parcel_id=parcel_id,
            outbox=[*outbox, _reply_message(self.carrier, self._reply_topic, reply)],
            command=_record(self.carrier, self.cmd_id, reply, self._digest), mutate=mutate)
        self.committed = op
        self.result = result
        return op


Handler = Callable[[CommandContext, Any], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class _Entry:
    handler: Handler
    body_model: type[BaseModel] | None


class CommandRegistry:
    """`type -> async handler(ctx, body) -> result`; lockerd/parcels/carrier_commands.py fills it.

    The body reaches the handler validated against `body_model` (default: the contract's
    model for that type in payloads.COMMAND_BODIES), or as a plain dict when there is none.
    A handler refuses by raising `lockerd.domain.errors.Refused`.
    """

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}

    def register(self, type_: str, handler: Handler,
                 body_model: type[BaseModel] | None = None) -> None:
        """Add a handler; a type can have only one."""
        if type_ in self._entries:
            raise ValueError(f"command type {type_!r} already has a handler")
        self._entries[type_] = _Entry(handler, body_model or COMMAND_BODIES.get(type_))

    def get(self, type_: str) -> tuple[Handler, type[BaseModel] | None] | None:
        """Handler and body model for a type."""
        entry = self._entries.get(type_)
        return None if entry is None else (entry.handler, entry.body_model)

    @property
    def types(self) -> list[str]:
        """Registered command types."""
        return sorted(self._entries)


def _reply_message(carrier: str, topic: str, reply: Mapping[str, Any]) -> OutboxMessage:
    return OutboxMessage(stream=carrier, topic=topic, payload=reply, qos=1, retain=False,
                         event=False)


def _record(carrier: str, cmd_id: str, reply: Mapping[str, Any], digest: str) -> CommandRecord:
    # The stored value keeps the command's digest next to the reply, so a redelivery (same
    # digest) gets the first reply and a reused id with other content is refused.
    return CommandRecord(carrier=carrier, cmd_id=cmd_id,
                         reply={"reply": dict(reply), "digest": digest})


def _error(cmd_id: str | None, code: ErrorCode, message: str) -> dict[str, Any]:
    """The MQTT reply of a refusal: the one place a code becomes `ok:false` on the wire."""
    return Reply(id=cmd_id, ok=False, error=ErrorInfo(code=code, message=message)).to_json()


class CommandProcessor:
    """Turns one inbound command message into exactly one recorded outcome and one reply.

    Order of checks: size, carrier (Art. 16), JSON, version, schema, signature, remembered id,
    expiry, a stamp too far ahead (from_the_future, not remembered), type, body. Refusals
    before the signature check are recorded without remembering the id (an unauthenticated
    sender must not be able to burn a carrier's future ids).
    """

    def __init__(self, oplog: OpLog, topics: Topics, registry: CommandRegistry, *,
                 carrier_keys: Mapping[str, bytes | None], max_bytes: int,
                 clock: Callable[[], datetime], future_limit_s: float = 300.0) -> None:
        self._oplog = oplog
        self._future = timedelta(seconds=future_limit_s)
        self._topics = topics
        self._registry = registry
        self._keys = dict(carrier_keys)
        self._max_bytes = max_bytes
        self._clock = clock
        self.handled = 0
        self.refused = 0

    async def handle(self, topic: str, payload: bytes) -> dict[str, Any] | None:
        """Process one message; returns the reply put in the outbox (None: not a command topic)."""
        carrier = self._topics.carrier_of_cmd(topic)
        if carrier is None:
            log.warning("ignoring a message on unexpected topic %r", topic[:200])
            return None
        self.handled += 1
        if len(payload) > self._max_bytes:
            return await self._refuse(carrier, None, ErrorCode.TOO_LARGE,
                                      f"command is {len(payload)} bytes, limit {self._max_bytes}",
                                      size=len(payload))
        cmd_id_hint: str | None = None
        try:
            raw = json.loads(payload.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return await self._refuse(carrier, None, ErrorCode.BAD_JSON, "payload is not UTF-8 JSON",
                                      size=len(payload))
        if isinstance(raw, dict):
            hint = raw.get("id")
            if isinstance(hint, str) and 0 < len(hint) <= 64:
                cmd_id_hint = hint
        if carrier not in self._keys:
            return await self._refuse(carrier, cmd_id_hint, ErrorCode.UNKNOWN_CARRIER,
                                      "carrier is not authorised on this cabinet")
        if not isinstance(raw, dict):
            return await self._refuse(carrier, None, ErrorCode.BAD_SCHEMA, "command must be an object")
        if "v" in raw and raw["v"] != 1:
            return await self._refuse(carrier, cmd_id_hint, ErrorCode.BAD_VERSION,
                                      f"unsupported version {raw['v']!r}; this cabinet speaks v 1")
        try:
            cmd = Command.model_validate(raw)
        except ValidationError as exc:
            return await self._refuse(carrier, cmd_id_hint, ErrorCode.BAD_SCHEMA, _short(exc))
        key = self._keys[carrier]
        if key is not None:
            if cmd.sig is None:
                return await self._refuse(carrier, cmd.id, ErrorCode.BAD_SIGNATURE,
                                          "this carrier's commands must be signed")
            if not signing.verify(key, topic, raw, cmd.sig):
                return await self._refuse(carrier, cmd.id, ErrorCode.BAD_SIGNATURE,
                                          "signature does not match")
        digest = signing.command_digest(raw)
        stored = await self._oplog.command_reply(carrier, cmd.id)
        if stored is not None:
            return await self._repeated(carrier, cmd, stored, digest)
        return await self._execute(carrier, cmd, digest)

    async def _execute(self, carrier: str, cmd: Command, digest: str) -> dict[str, Any]:
        now = self._clock()
        if cmd.exp is not None and cmd.exp <= now:
            return await self._remember_error(carrier, cmd, digest, ErrorCode.EXPIRED,
                                              "the command expired before it arrived")
        if cmd.ts < now - COMMAND_MEMORY + timedelta(hours=1):
            # Ids are forgotten after 7 days: an older command could otherwise run twice.
            return await self._remember_error(carrier, cmd, digest, ErrorCode.EXPIRED,
                                              "command is older than the id memory (7 days)")
        if cmd.ts > now + self._future:
            # one clock is wrong; not remembered, so the same id works once they agree
            ahead = (cmd.ts - now).total_seconds()
            return await self._refuse(carrier, cmd.id, ErrorCode.FROM_THE_FUTURE,
                                      f"command is stamped {ahead:.0f} s ahead of the cabinet's "
                                      f"clock (limit {self._future.total_seconds():.0f} s)")
        entry = self._registry.get(cmd.type)
        if entry is None:
            return await self._remember_error(carrier, cmd, digest, ErrorCode.UNKNOWN_TYPE,
                                              f"unknown command type {cmd.type[:64]!r}")
        handler, model = entry
        try:
            body: Any = model.model_validate(cmd.body) if model is not None else dict(cmd.body)
        except ValidationError as exc:
            return await self._remember_error(carrier, cmd, digest, ErrorCode.BAD_SCHEMA, _short(exc))
        ctx = CommandContext(carrier=carrier, cmd_id=cmd.id, type=cmd.type, received_at=now,
                             _oplog=self._oplog, _reply_topic=self._topics.reply(carrier),
                             _digest=digest)
        try:
            result = await handler(ctx, body)
        except Refused as exc:
            if ctx.committed is not None:
                log.error("handler for %s raised after committing: %s", cmd.type, exc)
                return Reply(id=cmd.id, ok=True, result=ctx.result).to_json()
            return await self._remember_error(carrier, cmd, digest, exc.code, exc.message)
        except DuplicateCommand:
            stored = await self._oplog.command_reply(carrier, cmd.id)
            return await self._repeated(carrier, cmd, stored or {}, digest)
        except Exception as exc:
            log.exception("command handler for %s failed", cmd.type)
            if ctx.committed is not None:
                return Reply(id=cmd.id, ok=True, result=ctx.result).to_json()
            # Not remembered: the failure may be transient, the carrier may retry the same id.
            return await self._refuse(carrier, cmd.id, ErrorCode.INTERNAL_ERROR,
                                      f"handler failed: {type(exc).__name__}")
        if ctx.committed is not None:
            return Reply(id=cmd.id, ok=True, result=ctx.result).to_json()
        reply = Reply(id=cmd.id, ok=True, result=result).to_json()
        await self._oplog.append(
            "sync.command", actor=f"carrier:{carrier}",
            body={"carrier": carrier, "command": {"id": cmd.id, "type": cmd.type}, "ok": True},
            outbox=[_reply_message(carrier, self._topics.reply(carrier), reply)],
            command=_record(carrier, cmd.id, reply, digest))
        return reply

    async def _repeated(self, carrier: str, cmd: Command, stored: Mapping[str, Any],
                        digest: str) -> dict[str, Any]:
        first = stored.get("reply")
        if stored.get("digest") != digest or not isinstance(first, dict):
            return await self._refuse(carrier, cmd.id, ErrorCode.REPLAYED_ID,
                                      "this command id was already used for another command")
        await self._oplog.append(
            "sync.command_repeated", actor=f"carrier:{carrier}",
            body={"carrier": carrier, "command": {"id": cmd.id, "type": cmd.type},
                  "ok": bool(first.get("ok"))},
            outbox=[_reply_message(carrier, self._topics.reply(carrier), first)])
        return first

    async def _remember_error(self, carrier: str, cmd: Command, digest: str, code: ErrorCode,
                              message: str) -> dict[str, Any]:
        self.refused += 1
        reply = _error(cmd.id, code, message)
        await self._oplog.append(
            "sync.command", actor=f"carrier:{carrier}",
            body={"carrier": carrier, "command": {"id": cmd.id, "type": cmd.type[:64]},
                  "ok": False, "error": code.value},
            outbox=[_reply_message(carrier, self._topics.reply(carrier), reply)],
            command=_record(carrier, cmd.id, reply, digest))
        log.info("carrier %s command %s refused: %s", carrier, cmd.id, code)
        return reply

    async def _refuse(self, carrier: str, cmd_id: str | None, code: ErrorCode, message: str,
                      size: int | None = None) -> dict[str, Any]:
        self.refused += 1
        reply = _error(cmd_id, code, message)
        body: dict[str, Any] = {"carrier": carrier, "command": {"id": cmd_id}, "ok": False,
                                "error": code.value}
        if size is not None:
            body["size"] = size
        await self._oplog.append(
            "sync.command_refused", actor=f"carrier:{carrier}", body=body,
            outbox=[_reply_message(carrier, self._topics.reply(carrier), reply)])
        log.info("carrier %s command refused: %s", carrier, code)
        return reply


def _short(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        loc = ".".join(str(p) for p in err["loc"]) or "(command)"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)
