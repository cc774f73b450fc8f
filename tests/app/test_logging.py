"""The text log never carries phone numbers, ID numbers or secrets."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lockerd.privacy import RedactingFilter
from lockerd.privacy import redact_text as redact


def test_redacts_known_shapes() -> None:
    assert redact("call 13812345678 now") == "call 138****5678 now"
    assert redact("id 11010519491231002X ok") == "id 1****************X ok"
    assert redact("waybill SF1234567889") == "waybill SF12******89"
    assert redact("pickup code=48213377 pin: 1234") == "pickup code=[redacted] pin: [redacted]"


@given(st.from_regex(r"1[3-9]\d{9}", fullmatch=True), st.text(max_size=20))
def test_no_phone_survives(phone: str, noise: str) -> None:
    out = redact(f"{noise} {phone} {noise}")
    assert phone not in out


def test_filter_applies_to_formatted_message(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("lockerd.test.redact")
    logger.addFilter(RedactingFilter())
    with caplog.at_level(logging.INFO, logger="lockerd.test.redact"):
        logger.info("recipient %s", "13912345678")
    assert "13912345678" not in caplog.text
    assert "139****5678" in caplog.text
