"""Carrier sync over MQTT (DESIGN section 4): status, state, alerts and events out, commands in."""

from lockerd.sync.commands import CommandContext, CommandError, CommandRegistry, Handler
from lockerd.sync.component import StateSource, SyncComponent
from lockerd.sync.messages import event_message
from lockerd.sync.publisher import OutboxWritten
from lockerd.sync.topics import Topics

__all__ = [
    "CommandContext",
    "CommandError",
    "CommandRegistry",
    "Handler",
    "OutboxWritten",
    "StateSource",
    "SyncComponent",
    "Topics",
    "event_message",
]
