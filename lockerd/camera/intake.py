"""What the rest of the daemon needs to know of the camera guard, without loading OpenCV.

The intake event and the evidence place are named by the parcel flows, the health snapshots
and the daemon whether or not a camera is configured; importing them from camera/guard.py
loaded OpenCV and numpy (about 28 MB of RSS) into a daemon that has no camera.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

from lockerd.app.events import utc_now


@dataclass(frozen=True, slots=True)
class IntakeChanged:
    """Intake opened or closed; `reason` is the machine code shown in the cabinet state."""

    open: bool
    reason: str | None
    detail: str
    ts: datetime = field(default_factory=utc_now)


class Secrets(Protocol):
    """Where the evidence key is kept: the operation log, readable once it is open."""

    async def secret(self, name: str) -> bytes:
        """The named secret (created on first use)."""
        ...


@dataclass(frozen=True, slots=True)
class EvidencePlace:
    """Where the guard keeps its evidence snapshots: the database file and its key (or its keeper)."""

    path: Path
    key: bytes | Secrets
