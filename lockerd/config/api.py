"""[api]: the local API's Unix groups per role and its limits."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from lockerd.config.base import Strict


class Api(Strict):
    """Local API: Unix groups that carry each role (docs/local-api.md)."""

    panel_group: str = Field(default="lockerd-panel", description="Kiosk: customer flows.")
    tech_group: str = Field(default="lockerd-tech", description="Technicians: diagnostics.")
    audit_group: str = Field(default="lockerd-audit", description="Auditors: log and export.")
    socket_mode: Annotated[int, Field(ge=0o600, le=0o777)] = Field(
        default=0o660, description="Permissions of the socket file (octal).")
    max_request_bytes: int = Field(default=65536, ge=1024, le=1 << 20,
                                   description="Longest accepted request line.")
