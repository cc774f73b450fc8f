"""Shell completion and the man page come from lockerctl's parser: bash completes real commands
and options, zsh has the same table, groff reads the man page without a warning."""

from __future__ import annotations

import argparse
import shutil
import subprocess
from pathlib import Path

import pytest

from lockerd.cli import lockerctl
from lockerd.cli.docgen import bash_completion, completion_table, man_page, walk, zsh_completion


def _complete(script: Path, *words: str) -> list[str]:
    """What bash offers after `words` (the last one is the word being completed)."""
    array = " ".join(f"'{w}'" for w in ("lockerctl", *words))
    res = subprocess.run(
        ["bash", "-c", f"source {script}; COMP_WORDS=({array}); COMP_CWORD={len(words)}; "
                       "_lockerctl; printf '%s\\n' \"${COMPREPLY[@]}\""],
        capture_output=True, text=True, timeout=30, check=True)
    return [w for w in res.stdout.splitlines() if w]


def test_bash_completes_commands_subcommands_and_options(tmp_path: Path) -> None:
    script = tmp_path / "lockerctl.bash"
    script.write_text(bash_completion(lockerctl.build_parser()))
    assert _complete(script, "st") == ["status"]
    assert set(_complete(script, "")) >= {"status", "doors", "log", "panel", "unblock", "--json"}
    assert _complete(script, "panel", "pi") == ["pickup"]
    assert _complete(script, "--json", "panel", "pickup", "--code") == ["--code-env"]
    assert set(_complete(script, "log", "--")) >= {"--before-seq", "--follow", "--limit",
                                                   "--json", "--socket"}
    assert _complete(script, "completion", "") == ["bash", "zsh", "--config", "--help",
                                                   "--json", "--socket"]


def test_the_table_follows_the_parser_and_zsh_uses_it() -> None:
    parser = argparse.ArgumentParser(prog="lockerctl")
    sub = parser.add_subparsers()
    p = sub.add_parser("fresh", help="a new command")
    p.add_argument("--brand-new")
    table = completion_table(parser)
    assert table["fresh"] == ["--brand-new", "--help"]
    assert table[""] == ["fresh", "--help"]
    full = completion_table(lockerctl.build_parser())
    zsh = zsh_completion(lockerctl.build_parser())
    assert zsh.startswith("#compdef lockerctl\n")
    for path, words in full.items():
        key = f"lockerctl {path}".rstrip()
        assert f'    "{key}" "{" ".join(words)}"' in zsh


def test_man_page_covers_every_command_and_groff_reads_it(tmp_path: Path) -> None:
    parser = lockerctl.build_parser()
    page = man_page(parser)
    leaves = [" ".join(path) for path, p, _ in walk(parser)
              if path and not any(isinstance(a, argparse._SubParsersAction) for a in p._actions)]
    for leaf in leaves:
        escaped = leaf.replace("-", "\\-")
        assert f".SS lockerctl {escaped}\n" in page, leaf
    assert "\\fB\\-\\-before\\-seq\\fR \\fISEQ\\fR" in page
    groff = shutil.which("groff")
    assert groff is not None, "groff (man-db's renderer) is part of the dev and CI images"
    path = tmp_path / "lockerctl.1"
    path.write_text(page)
    res = subprocess.run([groff, "-man", "-Tutf8", "-ww", "-z", str(path)], capture_output=True,
                         text=True, timeout=30, check=False)
    assert res.returncode == 0
    assert res.stderr == "", res.stderr


def test_lockerctl_prints_them(capsys: pytest.CaptureFixture[str]) -> None:
    assert lockerctl.main(["completion", "zsh"]) == 0
    assert capsys.readouterr().out.startswith("#compdef lockerctl")
    assert lockerctl.main(["man"]) == 0
    assert capsys.readouterr().out.startswith(".TH LOCKERCTL 1")
