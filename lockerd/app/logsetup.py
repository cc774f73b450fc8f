"""Text logging to stderr for journald, with a redaction filter so no personal data reaches the journal."""

from __future__ import annotations

import logging
import os
import sys

from lockerd.privacy import RedactingFilter


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
