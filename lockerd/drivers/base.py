"""The small protocols every hardware implementation (real or simulated) provides."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, runtime_checkable

if TYPE_CHECKING:  # numpy is loaded with the camera, not by every door and board module
    from collections.abc import Callable

    import numpy as np
    import numpy.typing as npt

    from lockerd.drivers.errors import DriverError


class DoorState(StrEnum):
    """What the sensor says. A silent board makes its doors UNKNOWN, never CLOSED."""

    OPEN = "open"
    CLOSED = "closed"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class BoardSnapshot:
    """One read of a whole board: door states per channel, and occupancy where the board has it."""

    doors: tuple[DoorState, ...]
    occupied: tuple[bool, ...] | None = None


@runtime_checkable
class LockBoard(Protocol):
    """A lock-control board: pulses lock relays, reports door inputs."""

    address: int
    channels: int

    async def pulse(self, channel: int, duration_ms: int) -> None:
        """Fire the relay once; returns when the board acknowledged. Never retried inside."""

    async def read(self) -> BoardSnapshot:
        """Read all door inputs of the board in one transaction (polarity applied)."""


@runtime_checkable
class ManagedBoard(LockBoard, Protocol):
    """A lock board as the factory hands it to the door controller: any profile's driver."""

    profile: str

    async def start(self) -> None:
        """Force relays off (best effort)."""

    async def stop(self) -> None:
        """Leave relays off; finish pending work."""

    def info(self) -> dict[str, Any]:
        """Identity and counters for status output."""


class PollLine(Protocol):
    """The bus under boards that can poll without waiting (`LaterPolled`)."""

    def harvest(self) -> bool:
        """Read the reply of the poll in flight if it has arrived; True when none is left."""

    async def finish_poll(self) -> None:
        """Wait for the reply of the poll in flight (up to the read timeout), if any."""

    def min_interval(self) -> float:
        """Shortest time between two polls sent to be read later for the line to keep up."""


@runtime_checkable
class LaterPolled(Protocol):
    """A board whose idle poll can be sent now and its reply read at the next slot of its
    bus (Modbus boards; doors/bus_round.py): one event-loop wake-up per poll instead of two."""

    @property
    def line(self) -> PollLine:
        """The bus that reads the replies."""

    def poll_later(self, deliver: Callable[[BoardSnapshot | DriverError], None]) -> bool:
        """Send the poll if the line is free (False: nothing sent); `deliver` gets the result."""


Frame: TypeAlias = "npt.NDArray[np.uint8]"

SampleListener: TypeAlias = "Callable[[float, Frame], None]"
"""Called in a camera's own thread with (monotonic capture time, BGR frame) of each sampled frame."""


@runtime_checkable
class FrameSource(Protocol):
    """A camera: the latest frame, or None when it delivers nothing."""

    async def start(self) -> None:
        """Open the device (in a worker thread); failure to open is a state, not an exception."""

    async def stop(self) -> None:
        """Release the device."""

    def latest(self) -> tuple[float, Frame] | None:
        """(monotonic capture time, BGR frame) of the newest frame, or None."""


@runtime_checkable
class SampledFrameSource(FrameSource, Protocol):
    """A camera that pushes each sampled frame to a listener in its own thread.

    Judging the frame where it was decoded spares the event loop a wake-up (and the analysis
    pool a hand-off) per sample: at idle those wake-ups, not the analysis, were most of the
    camera's CPU (issue 19)."""

    def listen(self, listener: SampleListener | None) -> None:
        """Start (or with None, stop) handing sampled frames to `listener`."""

    def sample_at(self, hz: float) -> None:
        """Sample `hz` frames a second from now on (thread-safe; the guard slows down while the
        scene is steady and speeds up when it changes)."""
