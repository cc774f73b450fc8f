"""A sync component on an already open log, for tests and benches that run it without a daemon."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from lockerd.app.events import EventBus
from lockerd.config import Compartment, Config
from lockerd.oplog import OpLog
from lockerd.sync.commands import CommandRegistry
from lockerd.sync.component import SyncComponent
from lockerd.sync.feed import CarrierFeed
from lockerd.sync.topics import Topics


@dataclass(frozen=True, slots=True)
class OpenLog:
    """The log handle of a log the caller opened itself (the daemon passes its oplog component)."""

    store: OpLog


class ConfigView:
    """A cabinet without parcel flows: every configured compartment free, intake open."""

    def __init__(self, compartments: list[Compartment]) -> None:
        self._free = Counter({"S": 0, "M": 0, "L": 0})
        self._free.update(c.size.value for c in compartments)

    def intake(self) -> tuple[bool, str | None]:
        """Always open: nothing here watches a camera."""
        return True, None

    def free_counts(self) -> dict[str, int]:
        """Every compartment, by size."""
        return dict(self._free)

    def blocked(self) -> list[int]:
        """Nothing is blocked."""
        return []


def sync_component(cfg: Config, log: OpLog, *, registry: CommandRegistry | None = None,
                   bus: EventBus | None = None) -> SyncComponent:
    """A SyncComponent wired as the daemon wires it, over `log` and a config-only cabinet view."""
    feed = CarrierFeed(Topics(cfg.mqtt.prefix, cfg.cabinet.id))
    return SyncComponent(cfg.mqtt, cfg.cabinet, cfg.carriers, log=OpenLog(log),
                         bus=bus or EventBus(), feed=feed, view=ConfigView(cfg.compartments),
                         registry=registry)
