"""The profile registry is the one table the config, the driver factory and the simulator read."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, get_args

import pytest
from pydantic import ValidationError

from lockerd.config import Board, Compartment, Config, Hardware, SerialPort, example_config_text
from lockerd.drivers.base import ManagedBoard
from lockerd.drivers.factory import LINES, open_boards
from lockerd.drivers.lockboard_common import LockBoardBase
from lockerd.drivers.profiles import MAX_ADDRESS, PROFILES, BoardProfile, bus_line, profile
from lockerd.sim.frontends import FRONT_ENDS

CABINET = {"id": "CAB-1", "name": "n", "address": "a", "registration_number": "r"}


def test_the_config_accepts_exactly_the_registry_profiles() -> None:
    assert set(get_args(BoardProfile)) == set(PROFILES)
    with pytest.raises(ValidationError):
        Board(address=1, profile="modbus-unknown")  # type: ignore[arg-type]
    with pytest.raises(KeyError, match="known: modbus-waveshare"):
        profile("modbus-unknown")


@pytest.mark.parametrize("name", list(PROFILES))
def test_every_row_names_a_driver_of_that_profile(name: str) -> None:
    spec = PROFILES[name]  # type: ignore[index]
    cls = spec.load_board_class()
    assert issubclass(cls, LockBoardBase)
    assert cls.profile == name
    assert spec.wire in FRONT_ENDS  # the simulator speaks it
    assert 1 <= spec.max_pulse_ms <= 10_000
    assert spec.native_baud in (9600, 19200, 38400, 57600, 115200)


@pytest.mark.parametrize("name", list(PROFILES))
def test_config_limits_come_from_the_registry(name: str) -> None:
    spec = PROFILES[name]  # type: ignore[index]
    hw = Hardware(boards=[Board(address=spec.max_address, channels=spec.max_channels,
                                profile=spec.name)])
    assert hw.boards[0].profile == name
    if spec.max_address < MAX_ADDRESS:
        with pytest.raises(ValidationError, match=f"{name} boards have addresses"):
            Hardware(boards=[Board(address=spec.max_address + 1, profile=spec.name)])
    with pytest.raises(ValidationError, match=f"at most {spec.max_channels} channels|less than "
                                              f"or equal to {spec.max_channels}"):
        Hardware(boards=[Board(address=spec.min_address, channels=spec.max_channels + 1,
                               profile=spec.name)])


def test_the_pulse_length_must_fit_every_configured_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    data: dict[str, Any] = {
        "cabinet": CABINET, "doors": {"pulse_ms": 900},
        "hardware": {"boards": [{"address": 1, "profile": "modbus-coil"}]},
        "compartments": [{"id": 1, "size": "S", "board": 1, "channel": 0}]}
    assert Config.model_validate(data).doors.pulse_ms == 900
    monkeypatch.setitem(PROFILES, "modbus-coil", replace(PROFILES["modbus-coil"], max_pulse_ms=800))
    with pytest.raises(ValidationError, match="exceeds the 800 ms maximum pulse of board 1"):
        Config.model_validate(data)


def test_one_wire_protocol_per_bus() -> None:
    assert bus_line("b", ["modbus-coil", "modbus-waveshare"]) is PROFILES["modbus-coil"].line
    assert bus_line("b", []) is None
    with pytest.raises(ValueError, match="mixes wire protocols"):
        bus_line("b", ["kerong-cu16", "rs485-8a"])


@pytest.mark.parametrize("name", list(PROFILES))
async def test_the_factory_builds_each_profile_on_its_line(name: str) -> None:
    spec = PROFILES[name]  # type: ignore[index]
    hw = Hardware(buses=[SerialPort(baudrate=spec.native_baud)],
                  boards=[Board(address=spec.min_address + 1, channels=4, profile=spec.name)])
    boards = await open_boards(hw, sim_close_after_s=0.5)
    try:
        board = boards.boards[spec.min_address + 1]
        assert isinstance(board, ManagedBoard)
        assert board.profile == name
        assert isinstance(boards.buses["bus0"], LINES[spec.line])
        assert (await board.read()).doors  # the simulator answers in the profile's protocol
    finally:
        await boards.close()


def test_compartments_may_use_every_channel_a_profile_has() -> None:
    widest = max(PROFILES.values(), key=lambda p: p.max_channels)
    Compartment(id=1, size="S", board=widest.max_address,  # type: ignore[arg-type]
                channel=widest.max_channels - 1)


def test_the_example_config_names_every_profile() -> None:
    text = example_config_text()
    assert [name for name in PROFILES if name not in text] == []


def test_the_boards_doc_lists_the_registry() -> None:
    """docs/boards.md's limits table is the registry, row for row (one source, checked)."""
    from tests.fixtures.paths import REPO

    text = (REPO / "docs" / "boards.md").read_text(encoding="utf-8")
    for name, spec in PROFILES.items():
        row = (f"| `{name}` | {spec.native_baud} | {spec.min_address}-{spec.max_address} | "
               f"{spec.max_channels} | {spec.max_pulse_ms} | "
               f"{'board' if spec.board_timed else 'driver'} |")
        assert row in text, row
