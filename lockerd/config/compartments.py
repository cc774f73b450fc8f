"""[[compartments]]: each compartment's size and the board channel of its lock."""

from __future__ import annotations

from pydantic import Field

from lockerd.config.base import Strict
from lockerd.domain.ids import Size
from lockerd.drivers.profiles import MAX_ADDRESS, MAX_CHANNELS


class Compartment(Strict):
    """A compartment: its size and where its lock and sensor are wired."""

    id: int = Field(description="Compartment number as printed on the door.", ge=1, le=9999)
    size: Size = Field(description="Size class S, M or L.")
    board: int = Field(description="Address of the board that drives the lock.", ge=0,
                       le=MAX_ADDRESS)
    channel: int = Field(description="Lock channel on that board, 0-based.", ge=0,
                         le=MAX_CHANNELS - 1)
