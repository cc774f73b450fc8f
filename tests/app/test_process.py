"""The daemon process cannot dump core: its memory holds the log key, PINs, codes and names."""

from __future__ import annotations

import subprocess
import sys

import pytest

from lockerd.app import process
from lockerd.cli import main as lockerd_main


def test_forbid_core_dumps_in_a_child_process() -> None:
    code = ("import resource; from lockerd.app import process; "
            "assert process.is_dumpable(); process.forbid_core_dumps(); "
            "print(process.is_dumpable(), resource.getrlimit(resource.RLIMIT_CORE))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=30).stdout
    assert out.strip() == "False (0, 0)"


def test_lockerd_run_forbids_core_dumps_before_reading_anything(
        monkeypatch: pytest.MonkeyPatch) -> None:
    class Stop(Exception):
        pass

    def spy() -> None:
        raise Stop

    monkeypatch.setattr(process, "forbid_core_dumps", spy)
    with pytest.raises(Stop):
        lockerd_main.main(["run", "-c", "/nonexistent/lockerd.toml"])
