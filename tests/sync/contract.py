"""docs/asyncapi.yaml as a validator: the schema of each message by its type, checked with jsonschema."""

from __future__ import annotations

from functools import cache
from typing import Any

import yaml
from jsonschema import Draft7Validator

from tests.fixtures.paths import REPO

DOC_PATH = REPO / "docs" / "asyncapi.yaml"


@cache
def doc() -> dict[str, Any]:
    """The parsed contract document."""
    loaded: dict[str, Any] = yaml.safe_load(DOC_PATH.read_text(encoding="utf-8"))
    return loaded


def _last(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


@cache
def validator(schema: str) -> Draft7Validator:
    """A validator of one component schema, with every `#/components/...` reference resolvable."""
    root = {"$ref": f"#/components/schemas/{schema}", "components": doc()["components"]}
    return Draft7Validator(root)


def messages(channel: str) -> dict[str, str]:
    """Message name (the `type` for commands and events) -> payload schema of a channel."""
    out: dict[str, str] = {}
    for ref in doc()["channels"][channel]["messages"].values():
        message = doc()["components"]["messages"][_last(ref["$ref"])]
        out[message["name"]] = _last(message["payload"]["$ref"])
    return out


def reply_schemas() -> dict[str, str]:
    """Command type -> the schema of its accepted reply (from each operation's `reply`)."""
    channel_msgs = doc()["channels"]
    out: dict[str, str] = {}
    for op in doc()["operations"].values():
        if "reply" not in op:
            continue
        cmd = channel_msgs["cmd"]["messages"][_last(op["messages"][0]["$ref"])]
        cmd_name = doc()["components"]["messages"][_last(cmd["$ref"])]["name"]
        for ref in op["reply"]["messages"]:
            msg = channel_msgs["reply"]["messages"][_last(ref["$ref"])]
            schema = _last(doc()["components"]["messages"][_last(msg["$ref"])]["payload"]["$ref"])
            if schema != "RefusalReply":
                out[cmd_name] = schema
    return out


def errors(schema: str, payload: Any) -> list[str]:
    """Every violation of `payload` against `schema`, as readable lines (empty: valid)."""
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
            for e in validator(schema).iter_errors(payload)]


def schema_of(topic: str, payload: dict[str, Any], command_types: dict[str, str]) -> str:
    """The schema a message on `topic` must match; replies by the type of the command they answer."""
    tail = topic.rsplit("/", 1)[-1]
    if tail == "events":
        return messages("events")[payload["type"]]
    if tail == "cmd":
        return messages("cmd")[payload["type"]]
    if tail == "reply":
        if not payload.get("ok"):
            return "RefusalReply"
        return reply_schemas()[command_types[str(payload["id"])]]
    if tail == "status":
        return "StatusOnline" if payload.get("online") else "StatusOffline"
    return {"state": "State", "alerts": "Alert", "chain": "Anchor", "health": "Health"}[tail]
