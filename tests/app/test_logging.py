"""The text log never carries phone numbers, ID numbers or secrets."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lockerd.app.logsetup import JournalFormatter, setup_logging, syslog_priority
from lockerd.privacy import RedactingFilter
from lockerd.privacy import redact_text as redact
from tests.fixtures.daemon_proc import make_config, without_asyncio_debug


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


# ------------------------------------------------------------------ journal priorities and noise


def _run_logged(tmp_path: Path, config: Path, *, journal: bool, seconds: float,
                env: dict[str, str] | None = None) -> str:
    """`lockerd run` with stderr in a file; under the journal JOURNAL_STREAM names that file."""
    err_path = tmp_path / "stderr.txt"
    with err_path.open("w") as err:
        st = os.fstat(err.fileno())
        stream = f"{st.st_dev}:{st.st_ino}" if journal else f"{st.st_dev}:{st.st_ino + 1}"
        proc = subprocess.Popen([sys.executable, "-m", "lockerd", "run", "-c", str(config)],
                                stdout=subprocess.DEVNULL, stderr=err,
                                env={**without_asyncio_debug(env or os.environ),
                                     "JOURNAL_STREAM": stream})
        try:
            proc.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    return err_path.read_text()


def test_under_the_journal_every_line_has_its_priority_and_native_noise_is_ours(
        tmp_path: Path) -> None:
    """Real backend, nothing attached: warnings are <4>, info <6>; OpenCV's own V4L2 lines do
    not reach stderr, the driver says once why the camera has no frames."""
    config = make_config(tmp_path, hardware={"backend": "real"})
    text = _run_logged(tmp_path, config, journal=True, seconds=12)
    lines = text.splitlines()
    assert lines, text
    assert all(re.match(r"<[2-7]>", line) for line in lines), text
    assert any(line.startswith("<4>WARNING lockerd.drivers.camera: camera 0: no frames "
                               "(cannot open: no device /dev/video0)") for line in lines), text
    assert sum("lockerd.drivers.camera: camera 0: no frames" in line for line in lines) == 1
    assert any(line.startswith("<6>INFO ") for line in lines), text
    assert any(line.startswith("<4>WARNING lockerd.app.daemon: cabinet degraded: ")
               for line in lines), text
    assert "[ WARN" not in text, text
    assert "VIDEOIO" not in text, text


def test_plain_lines_when_stderr_is_not_the_journal_stream(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    (tmp_path / "oplog.key").unlink()
    text = _run_logged(tmp_path, config, journal=False, seconds=60)
    assert text
    assert not any(re.match(r"<\d>", line) for line in text.splitlines()), text
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ ", text), text


def test_redaction_keeps_the_missing_key_hint(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    data = config.read_text().replace(f'key_file = "{tmp_path / "oplog.key"}"\n', "")
    config.write_text(data)
    env = {k: v for k, v in os.environ.items() if k != "CREDENTIALS_DIRECTORY"}
    text = _run_logged(tmp_path, config, journal=True, seconds=60, env=env)
    assert "<3>ERROR lockerd.app.daemon: cannot start: oplog: no operation-log key: set " \
           "paths.key_file or run under systemd with LoadCredential=oplog.key:..." in text, text
    assert "[redacted]" not in text


def test_own_words_are_masked_by_shape_only_and_the_rest_as_before() -> None:
    from lockerd.oplog import KeyRefused

    record = logging.LogRecord("t", logging.ERROR, __file__, 1, "pin: %s then %s", (
        KeyRefused("key: set paths.key_file for 13812345678"), "1234"), None)
    RedactingFilter().filter(record)
    assert record.getMessage() == ("pin: [redacted] then 1234"), record.getMessage()
    record = logging.LogRecord("t", logging.ERROR, __file__, 1, "start: %s; code=%s", (
        KeyRefused("key: set paths.key_file for 13812345678"), "1234"), None)
    RedactingFilter().filter(record)
    assert record.getMessage() == ("start: key: set paths.key_file for 138****5678; "
                                   "code=[redacted]")


def test_pymodbus_lines_pass_once_at_info_without_repeating(
        capsys: pytest.CaptureFixture[str]) -> None:
    from pymodbus.logging import Log

    before = logging.getLogger().handlers[:], logging.getLogger().level
    try:
        setup_logging("INFO", journal=True)
        for _ in range(5):
            Log.error("No response received after {} retries, continue with next request", 3)
        Log.warning("Cleanup recv buffer before send: {}", "0x01", ":str")
        Log.warning("Cleanup recv buffer before send: {}", "0x01", ":str")
    finally:
        root = logging.getLogger()
        for h in root.handlers[:]:
            root.removeHandler(h)
        for h in before[0]:
            root.addHandler(h)
        root.setLevel(before[1])
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "<6>INFO pymodbus.logging: No response received after 3 retries, continue with next "
        "request",
        "<6>INFO pymodbus.logging: Cleanup recv buffer before send: 0x01"], err


def test_syslog_priorities_of_levels() -> None:
    assert [syslog_priority(level) for level in (50, 40, 30, 25, 20, 10, 5)] == [
        2, 3, 4, 6, 6, 7, 7]


def test_journal_formatter_prefixes_every_line_of_a_traceback() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None,
                                   sys.exc_info())
    lines = JournalFormatter(journal=True).format(record).splitlines()
    assert len(lines) > 3
    assert all(line.startswith("<3>") for line in lines), lines
