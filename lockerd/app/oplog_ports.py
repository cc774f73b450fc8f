"""The operation log as the door and camera packages see it: their ports, served by the oplog component.

The components are built before anything is started, and the log is only open once the oplog
component has started; this adapter asks the component for its open log at each call, so a
call before the start (or after the stop) raises, which the callers treat as "cannot record".
"""

from __future__ import annotations

from typing import Any

from lockerd.oplog.component import OplogComponent


class OplogPorts:
    """Implements doors.ports.OperationRecorder and camera.guard.Secrets."""

    def __init__(self, oplog: OplogComponent) -> None:
        self._oplog = oplog

    async def record(self, kind: str, *, actor: str, body: dict[str, Any],
                     compartment: int | None) -> None:
        """Append one record to the chain (raises when the log cannot take it)."""
        await self._oplog.store.append(kind, actor=actor, body=body, compartment=compartment)

    async def secret(self, name: str) -> bytes:
        """A secret kept inside the encrypted log (the evidence database's key)."""
        return await self._oplog.store.secret(name)
