"""Human-readable tables (CJK-width aware) and JSON output for the CLIs."""

from __future__ import annotations

import json
import sys
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any, TextIO


def display_width(text: str) -> int:
    """Terminal columns a string takes (wide CJK characters count two)."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def clip(text: str, room: int) -> str:
    """`text` cut to `room` terminal columns, with an ellipsis when cut (80-column tables)."""
    if display_width(text) <= room:
        return text
    out = ""
    for ch in text:
        if display_width(out + ch) > room - 1:
            break
        out += ch
    return out + "…"


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return ",".join(_cell(v) for v in value) or "-"
    return str(value)


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A plain aligned table with a header rule."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [display_width(h) for h in headers]
    for row in cells:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], display_width(cell))

    def line(values: Sequence[str]) -> str:
        return "  ".join(v + " " * (widths[i] - display_width(v))
                         for i, v in enumerate(values)).rstrip()

    out = [line(list(headers)), line(["-" * w for w in widths])]
    out.extend(line(row) for row in cells)
    return "\n".join(out)


def key_values(pairs: Iterable[tuple[str, Any]]) -> str:
    """`key: value` lines, keys aligned."""
    items = [(k, _cell(v)) for k, v in pairs]
    width = max((display_width(k) for k, _ in items), default=0)
    return "\n".join(f"{k}:{' ' * (width - display_width(k) + 1)}{v}" for k, v in items)


def emit_json(value: Any, stream: TextIO | None = None) -> None:
    """One JSON document on stdout (UTF-8, not ASCII-escaped)."""
    out = stream or sys.stdout
    out.write(json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True, default=str) + "\n")
