"""A real Modbus master (mbpoll, libmodbus) reads the simulator's coils and inputs over its pty."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator

import pytest

from lockerd import sim
from lockerd.config import Board, Hardware, SerialPort

MBPOLL = shutil.which("mbpoll")


@pytest.fixture
def handle() -> Iterator[sim.SimHandle]:
    h = sim.start_for_config(Hardware(buses=[SerialPort(baudrate=9600)],
                                      boards=[Board(address=1)]), close_after_s=None)
    yield h
    h.close()


def _poll(path: str, table: str) -> list[str]:
    out = subprocess.run(["mbpoll", "-m", "rtu", "-a", "1", "-b", "9600", "-P", "none", "-t", table,
                          "-r", "1", "-c", "8", "-1", path],
                         capture_output=True, text=True, timeout=20, check=True).stdout
    return [line.split("\t")[-1].strip() for line in out.splitlines() if line.startswith("[")]


@pytest.mark.skipif(MBPOLL is None, reason="mbpoll not installed")
def test_mbpoll_reads_coils_and_inputs(handle: sim.SimHandle) -> None:
    board = handle.board("bus0", 1)
    board.energise(2, 30.0, handle.now())
    board.force_open(5, handle.now())
    assert _poll(handle.port("bus0"), "0") == ["0", "0", "1", "0", "0", "0", "0", "0"]
    assert _poll(handle.port("bus0"), "1") == ["0", "0", "0", "0", "0", "1", "0", "0"]
