"""Text logging to stderr for journald: syslog priorities under systemd, redaction, library noise.

Under systemd (stderr is the stream named by `JOURNAL_STREAM`) every line starts with its syslog
priority, `<4>` for a warning, which journald reads (SyslogLevelPrefix=, on by default) so
`journalctl -u lockerd -p warning` shows the warnings; the journal adds time and unit. Anywhere
else (a terminal, a test, the demo) the lines are plain, with a time. A redaction filter keeps
personal data out of the journal, which is not encrypted. pymodbus's own lines (its
"Repeating...." and the retried-transaction errors the door controller already reports as
`board offline`) are passed once per distinct text at INFO.
"""

from __future__ import annotations

import logging
import os
import sys
from collections import OrderedDict
from typing import TextIO

from lockerd.privacy import RedactingFilter

#: logging level -> syslog priority (sd-daemon(3)): 2 crit, 3 err, 4 warning, 6 info, 7 debug.
_PRIORITY = ((logging.CRITICAL, 2), (logging.ERROR, 3), (logging.WARNING, 4), (logging.INFO, 6))

#: Distinct pymodbus texts remembered to pass each once (a board flapping repeats a handful).
_NOISE_MEMORY = 256


def syslog_priority(levelno: int) -> int:
    """The syslog priority of a logging level (custom levels fall to the next lower one)."""
    return next((prio for level, prio in _PRIORITY if levelno >= level), 7)


def under_journal(stream: TextIO | None = None, env: dict[str, str] | None = None) -> bool:
    """True when `stream` (stderr) is the journal stream systemd named in JOURNAL_STREAM
    (`device:inode`): a process started by the unit, not a shell it started that redirected."""
    value = (os.environ if env is None else env).get("JOURNAL_STREAM", "")
    stream = sys.stderr if stream is None else stream
    try:
        dev, ino = (int(part) for part in value.split(":"))
        st = os.fstat(stream.fileno())
    except (ValueError, OSError, AttributeError):
        return False
    return (st.st_dev, st.st_ino) == (dev, ino)


class JournalFormatter(logging.Formatter):
    """`LEVEL logger: message`; under the journal each line gets its `<N>` priority prefix (a
    traceback's lines too, or journald files them at the unit's default priority) and no time."""

    def __init__(self, journal: bool) -> None:
        fmt = "" if journal else "%(asctime)s "
        super().__init__(fmt + "%(levelname)s %(name)s: %(message)s")
        self.journal = journal

    def format(self, record: logging.LogRecord) -> str:
        """The record as one or more lines, each with the priority prefix under the journal."""
        text = super().format(record)
        if not self.journal:
            return text
        prefix = f"<{syslog_priority(record.levelno)}>"
        return "\n".join(prefix + line for line in text.split("\n"))


class LibraryNoise(logging.Filter):
    """pymodbus through our logging at the right level, once: drops its "Repeating...." lines,
    cuts the frame dump it appends to errors, and passes each distinct text once at INFO (the
    driver raises, the door controller reports `board offline` as the warning that matters)."""

    def __init__(self) -> None:
        super().__init__()
        self._seen: OrderedDict[str, None] = OrderedDict()

    def filter(self, record: logging.LogRecord) -> bool:
        """False for a repeat; otherwise the record demoted to INFO."""
        if not record.name.startswith("pymodbus"):
            return True
        text = record.getMessage().split("\n>>>>>", 1)[0].strip()
        if text.startswith("Repeating") or text in self._seen:
            return False
        self._seen[text] = None
        if len(self._seen) > _NOISE_MEMORY:
            self._seen.popitem(last=False)
        record.msg, record.args = text, None
        if record.levelno > logging.INFO:
            record.levelno, record.levelname = logging.INFO, "INFO"
        return logging.getLogger().isEnabledFor(record.levelno)


def setup_logging(level: str = "INFO", *, journal: bool | None = None) -> None:
    """Configure the root logger once: stderr, priorities under the journal, redaction, level."""
    if journal is None:
        journal = under_journal()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JournalFormatter(journal))
    handler.addFilter(LibraryNoise())
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("pymodbus").setLevel(max(logging.WARNING, root.level))
