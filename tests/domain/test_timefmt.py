"""The one RFC 3339 formatter: UTC, exactly milliseconds, `Z`, fixed width, round trip at ms precision."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lockerd.domain.timefmt import TS_LENGTH, format_ts, parse_ts

# Years 1000-9998 keep the 4-digit year (and leave room for any zone offset without overflow).
OFFSETS = st.integers(min_value=-14 * 3600, max_value=14 * 3600).map(
    lambda s: timezone(timedelta(seconds=s)))
TIMES = st.datetimes(min_value=datetime(1000, 1, 2), max_value=datetime(9998, 12, 30),
                     timezones=st.one_of(OFFSETS, st.timezones()))


def _ms(when: datetime) -> datetime:
    utc = when.astimezone(UTC)
    return utc.replace(microsecond=utc.microsecond - utc.microsecond % 1000)


@given(TIMES)
def test_round_trip_at_millisecond_precision(when: datetime) -> None:
    assert parse_ts(format_ts(when)) == _ms(when)


@given(TIMES)
def test_always_utc_z_and_24_characters(when: datetime) -> None:
    text = format_ts(when)
    assert len(text) == TS_LENGTH == 24
    assert text.endswith("Z")
    assert text[19] == "."
    assert text[20:23].isdigit()


@given(TIMES, TIMES)
def test_text_order_is_time_order(a: datetime, b: datetime) -> None:
    assert (format_ts(a) < format_ts(b)) == (_ms(a) < _ms(b))


def test_examples() -> None:
    shanghai = timezone(timedelta(hours=8))
    assert format_ts(datetime(2026, 3, 1, 16, 0, tzinfo=shanghai)) == "2026-03-01T08:00:00.000Z"
    # cut, never rounded up (a formatted time is never later than the instant)
    assert format_ts(datetime(2026, 3, 1, 8, 0, 0, 999_999, tzinfo=UTC)) == "2026-03-01T08:00:00.999Z"
    assert parse_ts("2026-03-01T08:00:00.123456Z") == datetime(2026, 3, 1, 8, 0, 0, 123_456, tzinfo=UTC)
    assert parse_ts("2026-03-01T16:00:00+08:00") == datetime(2026, 3, 1, 8, tzinfo=UTC)
    assert parse_ts("2026-03-01T08:00:00") == datetime(2026, 3, 1, 8, tzinfo=UTC)


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        format_ts(datetime(2026, 3, 1, 8, 0))
