"""Carrier sync over MQTT (docs/mqtt.md): status, state, alerts and events out, commands in."""

from lockerd.sync.commands import CommandContext, CommandRegistry, Handler
from lockerd.sync.component import SyncComponent
from lockerd.sync.feed import CarrierFeed, event_message
from lockerd.sync.ports import CabinetView, LogHandle
from lockerd.sync.topics import Topics

__all__ = [
    "CabinetView",
    "CarrierFeed",
    "CommandContext",
    "CommandRegistry",
    "Handler",
    "LogHandle",
    "SyncComponent",
    "Topics",
    "event_message",
]
