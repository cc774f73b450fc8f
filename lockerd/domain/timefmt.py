"""The one RFC 3339 time format of lockerd: UTC, exactly milliseconds, `Z` (payloads, records, exports).

Every time that leaves a component as text goes through `format_ts`, so an event body, an
operation-log row, an MQTT payload and an export line spell the same instant the same way. The
fixed width (24 characters for years 1000-9999) keeps text order equal to time order, which the
operation log's range queries rely on.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

#: Length of every `format_ts` result (`2026-03-01T08:00:00.000Z`).
TS_LENGTH = 24


def format_ts(when: datetime) -> str:
    """`when` as `YYYY-MM-DDTHH:MM:SS.mmmZ` in UTC; sub-millisecond digits are cut, not rounded.

    Cutting (never rounding up) means a formatted time is never later than the instant itself.
    A naive datetime is refused: its zone would be a guess.
    """
    if when.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_ts(text: str) -> datetime:
    """An RFC 3339 time as an aware UTC datetime; also reads older rows written with microseconds.

    A time without a zone is taken as UTC (what every writer of this code base meant).
    """
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def format_local(when: datetime, zone: str) -> str:
    """`when` in the IANA zone `zone` as RFC 3339 with milliseconds and the zone's offset
    (`2026-03-01T16:00:00.000+08:00`): the same instant as `format_ts`, as a recipient reads it."""
    if when.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return when.astimezone(ZoneInfo(zone)).isoformat(timespec="milliseconds")
