"""The one place that builds and parses MQTT topic names (docs/mqtt.md)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from lockerd.domain.ids import CARRIER_PATTERN

# The carrier id pattern config validates with: a topic level built from it never holds '+', '#' or '/'.
_CARRIER = re.compile(CARRIER_PATTERN)


@dataclass(frozen=True, slots=True)
class Topics:
    """Topic names of one cabinet under a prefix (default `lockers`)."""

    prefix: str
    cabinet: str

    @property
    def base(self) -> str:
        """`{prefix}/{cab}`."""
        return f"{self.prefix}/{self.cabinet}"

    @property
    def status(self) -> str:
        """Retained online/offline status (birth, LWT, clean stop)."""
        return f"{self.base}/status"

    @property
    def state(self) -> str:
        """Retained cabinet state: intake, free compartments, blocked ids."""
        return f"{self.base}/state"

    @property
    def chain(self) -> str:
        """Retained signed head of the operation log (an anchor, docs/oplog.md)."""
        return f"{self.base}/chain"

    @property
    def health(self) -> str:
        """Retained fleet health telemetry for the operator (no personal data)."""
        return f"{self.base}/health"

    @property
    def alerts(self) -> str:
        """Alerts raised and cleared."""
        return f"{self.base}/alerts"

    def cmd(self, carrier: str) -> str:
        """Commands from one carrier."""
        return f"{self.base}/carriers/{_checked(carrier)}/cmd"

    def reply(self, carrier: str) -> str:
        """Replies to one carrier's commands."""
        return f"{self.base}/carriers/{_checked(carrier)}/reply"

    def events(self, carrier: str) -> str:
        """Events about one carrier's parcels and couriers."""
        return f"{self.base}/carriers/{_checked(carrier)}/events"

    @property
    def cmd_filter(self) -> str:
        """Subscription filter for every carrier's commands."""
        return f"{self.base}/carriers/+/cmd"

    def carrier_of_cmd(self, topic: str) -> str | None:
        """The carrier id in a command topic, or None when the topic is not one of ours."""
        head = f"{self.base}/carriers/"
        if not topic.startswith(head) or not topic.endswith("/cmd"):
            return None
        carrier = topic[len(head):-len("/cmd")]
        return carrier if _CARRIER.match(carrier) else None


def _checked(carrier: str) -> str:
    if not _CARRIER.match(carrier):
        raise ValueError(f"not a valid carrier id for a topic: {carrier!r}")
    return carrier
