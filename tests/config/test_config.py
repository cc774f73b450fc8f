"""Config loading: the example loads; bad files give one clear line per problem naming key and file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lockerd.cli import lockerctl
from lockerd.config import ConfigError, load_config
from tests.fixtures.paths import EXAMPLE_CONFIG

MINIMAL = """
[cabinet]
id = "CAB-1"
name = "Test locker"
address = "1 Test Road"
registration_number = "REG-1"

[[hardware.boards]]
address = 1

[[compartments]]
id = 1
size = "S"
board = 1
channel = 0
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "lockerd.toml"
    path.write_text(text, encoding="utf-8")
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return info.value.problems


def test_example_config_loads() -> None:
    cfg = load_config(EXAMPLE_CONFIG)
    assert cfg.hardware.backend == "sim"
    assert len(cfg.compartments) == 12
    assert {c.id for c in cfg.carriers} == {"sf", "yto"}


def test_minimal_config_takes_defaults(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, MINIMAL))
    assert cfg.doors.open_confirm_s == 2.0
    assert cfg.hardware.buses[0].baudrate == 9600


def test_unknown_key_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace('name = "Test locker"',
                                           'name = "Test locker"\nnmae = "typo"'))
    assert problems(path) == [f"{path}: cabinet.nmae: unknown key"]


def test_several_problems_one_line_each(tmp_path: Path) -> None:
    text = MINIMAL.replace('size = "S"', 'size = "XL"').replace("channel = 0", "channel = -1")
    text += '\n[doors]\npoll_moving_ms = "fast"\n'
    path = write(tmp_path, text)
    assert problems(path) == [
        f"{path}: compartments[0].size: Input should be 'S', 'M' or 'L'",
        f"{path}: compartments[0].channel: Input should be greater than or equal to 0",
        f"{path}: doors.poll_moving_ms: Input should be a valid integer, unable to parse "
        "string as an integer",
    ]


def test_missing_section(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.split("[[hardware.boards]]", maxsplit=1)[0]
                 .replace("[cabinet]", "[cabinet]") + "\n")
    assert problems(path) == [f"{path}: compartments: Field required"]


def test_cross_field_rules(tmp_path: Path) -> None:
    text = MINIMAL + '\n[[compartments]]\nid = 2\nsize = "M"\nboard = 1\nchannel = 0\n'
    path = write(tmp_path, text)
    assert problems(path) == [f"{path}: (top level): compartments 1 and 2 share board 1 channel 0"]
    path = write(tmp_path, MINIMAL.replace("board = 1", "board = 9"))
    assert problems(path) == [f"{path}: (top level): compartment 1: board 9 is not configured"]


def test_escalation_order(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "\n[doors]\nleft_open_alert_s = 5.0\n")
    assert problems(path) == [f"{path}: doors: left_open_prompt_s < left_open_alert_s < "
                              "left_open_incident_s must hold"]


def test_plain_mqtt_only_on_loopback(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + '\n[mqtt]\nenabled = true\nhost = "broker.example"\n'
                                     "tls = false\n")
    assert problems(path) == [f"{path}: mqtt: tls = false is only allowed for a broker on "
                              "loopback"]


def test_syntax_error_and_missing_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[cabinet\n")
    (line,) = problems(path)
    assert line.startswith(f"{path}: TOML syntax error:")
    missing = tmp_path / "nope.toml"
    assert problems(missing) == [f"{missing}: cannot read: No such file or directory"]


def test_lockerctl_config_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # the example is valid; on this box the files it names (the log key credential) are not
    # there, which `config check` now reports (tests/cli/test_config_check.py: the files)
    code = lockerctl.main(["config", "check", str(EXAMPLE_CONFIG)])
    out = capsys.readouterr().out
    assert "(cabinet CAB-0001, 12 compartments" in out
    assert code == (0 if ": OK (" in out else 1)
    assert code == 0 or "PROBLEM  log key: /etc/lockerd/credentials/oplog.key" in out
    bad = write(tmp_path, MINIMAL.replace('size = "S"', 'size = "XL"'))
    assert lockerctl.main(["config", "check", str(bad)]) == 2
    assert capsys.readouterr().err == (f"{bad}: compartments[0].size: Input should be 'S', "
                                       "'M' or 'L'\n")


def test_lockerd_run_bad_config_exits_2_without_traceback(tmp_path: Path) -> None:
    bad = write(tmp_path, MINIMAL.replace("channel = 0", "channel = 9"))
    proc = subprocess.run([sys.executable, "-m", "lockerd", "run", "-c", str(bad)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (f"{bad}: (top level): compartment 1: channel 9 is beyond "
                                   "board 1's 8 channels")
