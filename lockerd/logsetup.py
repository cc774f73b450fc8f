"""Text logging to stderr for journald, with a redaction filter so no personal data reaches the journal."""

from __future__ import annotations

import logging
import os
import re
import sys

# Mainland mobile numbers, 18-digit resident ID numbers, and key=value secrets.
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?<!\d)(1[3-9]\d)\d{4}(\d{4})(?!\d)"), r"\1****\2"),
    (re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])"), "[id-number]"),
    (re.compile(r"(?i)\b(pin|code|key|password|secret|token)(\s*[=:]\s*)\S+"), r"\1\2[redacted]"),
)


def redact(text: str) -> str:
    """Mask phone numbers, ID numbers and key=value secrets in a log line."""
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text


class RedactingFilter(logging.Filter):
    """Applies `redact` to the fully formatted message of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        record.msg = redact(message)
        record.args = None
        return True


class JournalFormatter(logging.Formatter):
    """`LEVEL logger: message`; journald adds time and unit, so none is printed under systemd."""

    def __init__(self, with_time: bool) -> None:
        fmt = "%(asctime)s " if with_time else ""
        super().__init__(fmt + "%(levelname)s %(name)s: %(message)s")


def setup_logging(level: str = "INFO", *, with_time: bool | None = None) -> None:
    """Configure the root logger once: stderr, redaction, level."""
    if with_time is None:
        with_time = "JOURNAL_STREAM" not in os.environ
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JournalFormatter(with_time))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("pymodbus").setLevel(max(logging.WARNING, root.level))
