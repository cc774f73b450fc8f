"""[api]: the local API's Unix groups per role, the panel each kiosk user stands for, and its limits."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from lockerd.config.base import Strict
from lockerd.domain.ids import PANEL_PATTERN


class PanelBinding(Strict):
    """`[[api.panels]]`: the physical panel a Unix user's processes stand for.

    Wrong-code lockouts and open door operations are keyed on it (never on a name the client
    sends); a panel-role caller with no binding is keyed as `uid:<n>`.
    """

    user: str | Annotated[int, Field(ge=0, le=2**32 - 2)] = Field(
        description="Unix user name or uid of the kiosk process.")
    panel: str = Field(pattern=PANEL_PATTERN, description="Physical panel name (e.g. front).")


class Api(Strict):
    """Local API: Unix groups that carry each role (docs/local-api.md)."""

    panel_group: str = Field(default="lockerd-panel", description="Kiosk: customer flows.")
    tech_group: str = Field(default="lockerd-tech", description="Technicians: diagnostics.")
    audit_group: str = Field(default="lockerd-audit", description="Auditors: log and export.")
    socket_mode: Annotated[int, Field(ge=0o600, le=0o777)] = Field(
        default=0o660, description="Permissions of the socket file (octal).")
    max_request_bytes: int = Field(default=65536, ge=1024, le=1 << 20,
                                   description="Longest accepted request line.")
    max_connections: int = Field(default=64, ge=1, le=512,
                                 description="Open connections at once, all callers (root and "
                                             "the daemon's user have a few more).")
    max_connections_per_uid: int = Field(default=8, ge=1, le=512,
                                         description="Open connections at once per uid (root and "
                                                     "the daemon's user are exempt).")
    idle_timeout_s: float = Field(default=300.0, ge=1.0, le=86400.0,
                                  description="A connection with no request for this long is "
                                              "closed (clients reconnect).")
    max_requests_per_s: float = Field(default=20.0, ge=0.1, le=10_000.0,
                                      description="Requests per second per connection (bursts of "
                                                  "twice that); beyond it: rate_limited.")
    panels: list[PanelBinding] = Field(default_factory=list, max_length=256,
                                       description="Which physical panel each kiosk user is.")

    @model_validator(mode="after")
    def _one_panel_per_user(self) -> Api:
        users = [str(b.user) for b in self.panels]
        if len(users) != len(set(users)):
            raise ValueError("api.panels: a user is bound to one panel only")
        return self
