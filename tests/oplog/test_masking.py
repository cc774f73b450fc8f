"""Masking: the documented forms, and properties that hold for any input (hypothesis)."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lockerd.privacy import (
    RedactingFilter,
    mask_address,
    mask_name,
    mask_phone,
    mask_record,
    mask_secret,
    mask_waybill,
    redact_text,
)

FAST = settings(max_examples=200, deadline=None)


def test_documented_examples() -> None:
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("+86 138-1234-5678") == "138****5678"
    assert mask_name("张三") == "张*"
    assert mask_name("张三丰") == "张*"
    assert mask_waybill("SF1234567889") == "SF12******89"
    assert mask_address("北京市海淀区中关村大街27号") == "北京市海淀区****"
    assert mask_address("广东省深圳市南山区科技园8栋") == "广东省深圳市南山区****"
    assert mask_address("Haidian District, 1 Demo Road, Beijing") == "Haidian District, ****"
    assert mask_secret("123456") == "******"
    assert mask_phone(None) == mask_name("") == mask_waybill(None) == ""


@FAST
@given(st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True))
def test_phone_hides_the_middle(phone: str) -> None:
    masked = mask_phone(phone)
    assert len(masked) == 11
    assert masked[:3] == phone[:3]
    assert masked[-4:] == phone[-4:]
    assert masked[3:7] == "****"


@FAST
@given(st.text(min_size=1, max_size=40))
def test_phone_never_reveals_more_than_seven_digits(phone: str) -> None:
    masked = mask_phone(phone)
    assert sum(c.isdigit() for c in masked) <= 7


@FAST
@given(st.text(min_size=1, max_size=12).filter(lambda s: s.strip()))
def test_name_keeps_one_character(name: str) -> None:
    masked = mask_name(name)
    assert masked == name.strip()[0] + "*"


@FAST
@given(st.from_regex(r"[A-Z]{2,3}[0-9]{9,15}", fullmatch=True))
def test_waybill_keeps_ends_and_length(waybill: str) -> None:
    masked = mask_waybill(waybill)
    assert len(masked) == len(waybill)
    assert masked[:4] == waybill[:4]
    assert masked[-2:] == waybill[-2:]
    assert set(masked[4:-2]) == {"*"}


@FAST
@given(st.text(max_size=20))
def test_waybill_short_inputs_reveal_little(waybill: str) -> None:
    masked = mask_waybill(waybill)
    visible = [c for c in masked if c != "*"]
    assert len(visible) <= max(6, 0)
    assert len(visible) <= len(waybill.strip())


@FAST
@given(st.sampled_from(["北京市", "上海市", "广东省广州市", "浙江省杭州市"]),
       st.sampled_from(["海淀区", "浦东新区", "天河区", "余杭区", "桐庐县"]),
       st.text(alphabet="中关村大街路号栋单元室0123456789", min_size=1, max_size=20))
def test_address_cut_at_district(city: str, district: str, street: str) -> None:
    masked = mask_address(city + district + street)
    assert masked == city + district + "****"
    assert not any(c.isdigit() for c in masked)


@FAST
@given(st.recursive(
    st.dictionaries(st.sampled_from(["phone", "waybill", "name", "note", "pin", "code"]),
                    st.from_regex(r"[0-9A-Z]{8,14}", fullmatch=True), max_size=4),
    lambda children: st.dictionaries(st.sampled_from(["body", "detail", "note"]), children,
                                     max_size=3),
    max_leaves=8))
def test_mask_record_leaves_no_personal_value(record: dict[str, object]) -> None:
    masked = mask_record(record)

    def walk(orig: object, out: object) -> None:
        assert isinstance(orig, dict)
        assert isinstance(out, dict)
        assert orig.keys() == out.keys()
        for k, v in orig.items():
            if isinstance(v, dict):
                walk(v, out[k])
            elif k in {"phone", "waybill", "name", "pin", "code"}:
                assert isinstance(out[k], str)
                assert v not in out[k]
                assert "*" in out[k]
            else:
                assert out[k] == v

    walk(record, masked)


def test_redacting_filter_masks_log_messages(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("lockerd.test.redact")
    filt = RedactingFilter()
    logger.addFilter(filt)
    try:
        with caplog.at_level(logging.INFO, logger="lockerd.test.redact"):
            logger.info("sms to %s for %s, id %s, +86 13912345678", "13812345678",
                        "SF1234567889", "11010519491231002X")
    finally:
        logger.removeFilter(filt)
    text = caplog.records[0].getMessage()
    assert "13812345678" not in text
    assert "138****5678" in text
    assert "SF1234567889" not in text
    assert "SF12******89" in text
    assert "11010519491231002X" not in text
    assert "13912345678" not in text
    assert redact_text("compartment 12 opened in 700 ms") == "compartment 12 opened in 700 ms"


@FAST
@given(st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True), st.text(alphabet="abc ,.:", max_size=10))
def test_redact_text_hides_any_mobile(phone: str, around: str) -> None:
    assert phone not in redact_text(around + phone + around)
