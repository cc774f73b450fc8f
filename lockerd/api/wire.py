"""The local API's edge: what a request line may hold before any model sees it, strict params, safe replies.

Hostile lines used to reach the methods as `internal` errors or dropped connections: nesting
deep enough to overflow the parser, lone surrogates that broke the reply's UTF-8, `true` taken
for the integer 1 (`{"compartment": true}` opened door 1), naive timestamps compared with aware
ones. Here a request is refused as `bad_request` (shape) or `bad_params` (its method's model,
validated strictly from JSON: no bool for int, no number for str, no float for int).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

#: Deepest nesting a request may have (a delivery's params are 3 levels down).
MAX_DEPTH = 32


def hostile(value: Any) -> str | None:
    """Why a parsed request cannot be accepted whatever its method (too deep, a lone surrogate in
    a string or key), or None. Iterative, so the check itself cannot overflow."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if not _is_utf8(item):
                return "strings must be valid Unicode (a lone surrogate is not)"
        elif isinstance(item, (dict, list)):
            if depth > MAX_DEPTH:
                return f"request nested deeper than {MAX_DEPTH} levels"
            if isinstance(item, dict):
                stack.extend((k, depth) for k in item)
                stack.extend((v, depth + 1) for v in item.values())
            else:
                stack.extend((v, depth + 1) for v in item)
    return None


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def strict_params(model: type[BaseModel], params: dict[str, Any]) -> BaseModel:
    """Validate params as the JSON they came in, in strict mode (raises ValidationError)."""
    return model.model_validate_json(json.dumps(params, ensure_ascii=False), strict=True)


def encode_reply(reply: dict[str, Any]) -> bytes:
    """One reply line; text that cannot be UTF-8 (never expected) is escaped rather than dropping
    the connection."""
    try:
        return json.dumps(reply, ensure_ascii=False).encode() + b"\n"
    except UnicodeEncodeError:
        return json.dumps(reply).encode() + b"\n"
