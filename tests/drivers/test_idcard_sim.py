"""The SAM ID-card reader driver against the simulated reader on a real pseudo-terminal.

Cards are laid on and taken off the simulated reader at run time; faults (a reply with a
wrong check byte, a reply too late) are injected per command. The golden request bytes are
those of tests/drivers/test_idcard_frames.py (public sources named there).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest

from lockerd.drivers import idcard_frames as fr
from lockerd.drivers.errors import DriverError, DriverTimeout, DriverUnavailable, FrameError
from lockerd.drivers.idcard import IdReader, SamSerialReader
from lockerd.sim import idcard as sim_idcard
from lockerd.sim.idcard import (
    BAD_ID_CARD,
    EXPIRED_CARD,
    LONG_TERM_CARD,
    PHOTO_FILLER,
    TEST_SAM_ID,
    VALID_CARD,
    IdCardSim,
)

H = bytes.fromhex
FIND = H("AA AA AA 96 69 00 03 20 01 22")
SELECT = H("AA AA AA 96 69 00 03 20 02 21")
READ = H("AA AA AA 96 69 00 03 30 01 32")
STATUS = H("AA AA AA 96 69 00 03 11 FF ED")
TIMEOUT_S = 0.3
READ_TIMEOUT_S = 0.8
TOO_LATE_S = 1.2
TODAY = date(2026, 6, 1)


@dataclass
class Rig:
    """A simulated reader and the driver opened on its pty."""

    sim: IdCardSim
    reader: SamSerialReader


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    sim = IdCardSim().start()
    reader = SamSerialReader(sim.port, timeout_s=TIMEOUT_S, read_timeout_s=READ_TIMEOUT_S)
    try:
        await reader.open()
        yield Rig(sim, reader)
    finally:
        await reader.close()
        sim.close()


def test_the_serial_reader_is_an_id_reader() -> None:
    reader: IdReader = SamSerialReader("/dev/null")
    assert callable(reader.read_card)


async def test_valid_card_is_read_with_the_golden_requests(rig: Rig) -> None:
    rig.sim.present(VALID_CARD)
    card = await rig.reader.read_card()
    assert card is not None
    assert card.to_text() == VALID_CARD
    assert card.name == "测试一"
    assert card.id_number == "990101199001010019"
    assert not card.is_expired(TODAY)
    assert rig.sim.requests() == [FIND, SELECT, READ]
    assert rig.sim.bus.tx_frames[-1][1][:14] == H("AA AA AA 96 69 05 08 00 00 90 01 00 04 00")
    assert rig.reader.cards_read == 1


async def test_expired_card_is_read_and_reported_expired(rig: Rig) -> None:
    rig.sim.present(EXPIRED_CARD)
    card = await rig.reader.read_card()
    assert card is not None
    assert card.is_expired(TODAY)
    assert card.valid_to == date(2010, 1, 1)


async def test_long_term_card_never_expires(rig: Rig) -> None:
    rig.sim.present(LONG_TERM_CARD)
    card = await rig.reader.read_card()
    assert card is not None
    assert card.valid_to is None
    assert not card.is_expired(date(2999, 1, 1))


async def test_no_card_is_none_after_one_retry_of_find(rig: Rig) -> None:
    assert await rig.reader.read_card() is None
    assert rig.sim.requests() == [FIND, FIND]
    assert rig.reader.no_card == 1


async def test_cards_come_and_go_at_run_time(rig: Rig) -> None:
    rig.sim.present(VALID_CARD)
    first = await rig.reader.read_card()
    rig.sim.remove()
    gone = await rig.reader.read_card()
    rig.sim.present(EXPIRED_CARD)
    second = await rig.reader.read_card()
    assert first is not None
    assert first.to_text() == VALID_CARD
    assert gone is None
    assert second is not None
    assert second.to_text() == EXPIRED_CARD


async def test_a_card_with_a_bad_id_check_digit_is_rejected(rig: Rig) -> None:
    rig.sim.present(BAD_ID_CARD)
    with pytest.raises(fr.CardError, match="check digit"):
        await rig.reader.read_card()
    assert rig.reader.rejected == 1
    assert rig.reader.cards_read == 0


async def test_a_reply_with_a_bad_check_byte_is_a_frame_error_then_reads_recover(rig: Rig) -> None:
    rig.sim.present(VALID_CARD)
    rig.sim.corrupt_next(fr.Command.READ_BASE)
    with pytest.raises(FrameError) as caught:
        await rig.reader.read_card()
    assert not isinstance(caught.value, fr.CardError)
    assert rig.reader.counters()["garbled"] == 1
    card = await rig.reader.read_card()
    assert card is not None
    assert card.to_text() == VALID_CARD
    assert rig.sim.requests()[3:5] == [STATUS, FIND]  # back in step before the next read


async def test_a_corrupted_find_reply_is_covered_by_the_retry(rig: Rig) -> None:
    rig.sim.present(VALID_CARD)
    rig.sim.corrupt_next(fr.Command.FIND_CARD)
    card = await rig.reader.read_card()
    assert card is not None
    assert rig.sim.requests() == [FIND, FIND, SELECT, READ]


async def test_a_slow_read_is_a_timeout_and_its_late_reply_never_answers_the_next_read(rig: Rig) -> None:
    """The late reply holds the first person's card; the next read must give the second's."""
    rig.sim.present(VALID_CARD)
    rig.sim.slow_next(TOO_LATE_S, fr.Command.READ_BASE)
    with pytest.raises(DriverTimeout):
        await rig.reader.read_card()
    rig.sim.present(EXPIRED_CARD)
    card = await rig.reader.read_card()
    assert card is not None
    assert card.to_text() == EXPIRED_CARD
    assert rig.reader.resyncs == 1
    assert rig.reader.counters()["echo_mismatches"] >= 1  # the late read reply, discarded
    assert rig.sim.requests()[3] == STATUS


async def test_a_find_too_slow_twice_is_a_timeout(rig: Rig) -> None:
    rig.sim.present(VALID_CARD)
    rig.sim.slow_next(TOO_LATE_S, fr.Command.FIND_CARD, count=2)
    with pytest.raises(DriverTimeout):
        await rig.reader.read_card()
    assert rig.sim.requests() == [FIND, FIND]


async def test_a_silent_reader_is_a_timeout_every_time(rig: Rig) -> None:
    rig.sim.line_faults.configure(sim_idcard.BUS, sim_idcard.UNIT, drop_probability=1.0)
    with pytest.raises(DriverTimeout):
        await rig.reader.read_card()
    with pytest.raises(DriverTimeout):
        await rig.reader.read_card()  # the resync itself times out
    rig.sim.line_faults.clear()
    rig.sim.present(VALID_CARD)
    assert await rig.reader.read_card() is not None


async def test_noise_on_the_line_is_skipped(rig: Rig) -> None:
    rig.sim.present(VALID_CARD)
    rig.sim.line_faults.inject_garbage(sim_idcard.BUS, H("AA AA AA 96 69 00 03 20 AA 55 00 13"))
    await asyncio.sleep(0.1)
    card = await rig.reader.read_card()
    assert card is not None
    assert card.to_text() == VALID_CARD


async def test_select_failure_is_a_driver_error(rig: Rig) -> None:
    rig.sim.present(VALID_CARD)
    rig.sim.frontend.find_s = 0.01
    # The card goes away between find and select: the module answers select with 0x81.
    original = rig.sim.frontend._answer

    def vanish(command: fr.Command | None) -> tuple[bytes, float]:
        result = original(command)
        if command is fr.Command.FIND_CARD:
            rig.sim.frontend._card = None
        return result

    rig.sim.frontend._answer = vanish  # type: ignore[method-assign]
    with pytest.raises(DriverError, match="not selected"):
        await rig.reader.read_card()
    assert rig.sim.requests() == [FIND, SELECT, SELECT]


async def test_sam_id_is_read_once(rig: Rig) -> None:
    assert await rig.reader.sam_id() == TEST_SAM_ID
    assert await rig.reader.sam_id() == TEST_SAM_ID
    assert rig.sim.requests() == [H("AA AA AA 96 69 00 03 12 FF EE")]
    await rig.reader.self_test()
    assert rig.sim.requests()[-1] == STATUS


def _walk(obj: Any, seen: set[int], depth: int = 0) -> Iterator[tuple[str, Any]]:
    """Every attribute value reachable from obj (a few levels down), with its path."""
    if id(obj) in seen or depth > 5:
        return
    seen.add(id(obj))
    children: list[tuple[str, Any]] = []
    if isinstance(obj, dict):
        children = [(repr(k), v) for k, v in obj.items()]
    elif isinstance(obj, (list, tuple, set, frozenset)) or type(obj).__name__ == "deque":
        children = [(f"[{i}]", v) for i, v in enumerate(obj)]
    elif not isinstance(obj, (str, bytes, bytearray, int, float, bool, type(None))):
        names = list(getattr(obj, "__dict__", {}))
        for klass in type(obj).__mro__:
            names += [n for n in getattr(klass, "__slots__", ()) if isinstance(n, str)]
        children = [(n, getattr(obj, n, None)) for n in names]
    for name, value in children:
        yield name, value
        yield from ((f"{name}.{sub}", v) for sub, v in _walk(value, seen, depth + 1))


async def test_the_photo_and_the_raw_text_are_never_kept(rig: Rig) -> None:
    rig.sim.present(VALID_CARD)
    card = await rig.reader.read_card()
    assert card is not None
    photo_piece = PHOTO_FILLER[100:164]
    name_bytes = VALID_CARD.name.encode("utf-16-le")
    held = [(path, value) for path, value in _walk((rig.reader, card), set())
            if isinstance(value, (bytes, bytearray, memoryview))]
    for path, value in held:
        assert photo_piece not in bytes(value), path
        assert name_bytes not in bytes(value), path
    assert not [p for p, _ in _walk((rig.reader, card), set()) if "photo" in p.lower()]
    assert len(rig.reader._bus.trace) == 0  # the line keeps no wire trace


async def test_nothing_personal_reaches_the_log(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    rig.sim.present(VALID_CARD)
    card = await rig.reader.read_card()
    rig.sim.present(BAD_ID_CARD)
    with pytest.raises(fr.CardError):
        await rig.reader.read_card()
    assert card is not None
    logging.getLogger("test").info("read %s", card)
    for secret in ("测试一", "测试路", "990101199001010019", "990101199001010018", "19900101"):
        assert secret not in caplog.text
    assert "测*" in caplog.text


async def test_a_missing_port_is_unavailable() -> None:
    reader = SamSerialReader("/dev/does-not-exist-idcard")
    with pytest.raises(DriverUnavailable):
        await reader.open()
    await reader.close()
