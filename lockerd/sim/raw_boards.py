"""Chooses the simulator front end of a bus whose boards speak a raw-frame profile (Kerong, 0x8A)."""

from __future__ import annotations

from lockerd.sim.board_8a import Board8AFrontEnd
from lockerd.sim.kerong import KerongFrontEnd
from lockerd.sim.line import FrontEnd
from lockerd.sim.physics import BoardModel

RAW_PROFILES = frozenset({"kerong-cu16", "rs485-8a"})


def raw_frontend(bus_name: str, profiles: set[str],
                 models: dict[int, BoardModel]) -> FrontEnd | None:
    """The front end for a bus, or None when its boards are Modbus (handled by the caller).

    One wire protocol per bus: boards of different families on one line would misread each
    other's frames, so a mixed bus is a configuration error.
    """
    raw = profiles & RAW_PROFILES
    if not raw:
        return None
    if len(profiles) > 1:
        raise ValueError(f"bus {bus_name!r} mixes board profiles {sorted(profiles)}: one wire "
                         "protocol per bus")
    if raw == {"kerong-cu16"}:
        return KerongFrontEnd(models)
    return Board8AFrontEnd(models)
