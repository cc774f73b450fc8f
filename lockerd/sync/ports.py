"""The ports of the sync component: the log it drains and the cabinet whose state it reports."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from lockerd.oplog import OpLog


class LogHandle(Protocol):
    """Whoever owns the log (the oplog component): open only once that component has started."""

    @property
    def store(self) -> OpLog:
        """The open log; raises before it is open."""
        ...


class CabinetView(Protocol):
    """What the retained `state` topic and `state.get` report (the parcel flows in the daemon)."""

    def intake(self) -> tuple[bool, str | None]:
        """Whether drop-offs are accepted now, and why not."""
        ...

    def free_counts(self) -> Mapping[str, int]:
        """Free compartments per size class S, M, L (reserved, occupied, blocked ones excluded)."""
        ...

    def blocked(self) -> list[int]:
        """Blocked compartment ids."""
        ...
