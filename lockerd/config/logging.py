"""[logging]: the text log to stderr (journald); the audit trail is the operation log."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from lockerd.config.base import Strict


class Logging(Strict):
    """Text log to stderr (journald); the operation log is the audit trail, not this."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(default="INFO",
                                                                description="Minimum level.")
