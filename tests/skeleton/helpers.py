"""Helpers for tests that run a real `lockerd run` subprocess on the simulator."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

from tests.conftest import EXAMPLE_CONFIG


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(type(value))


def dump_toml(data: dict[str, Any], prefix: str = "") -> str:
    """Enough of a TOML writer for config dicts (tables, arrays of tables, scalars)."""
    lines: list[str] = []
    tables: list[tuple[str, Any]] = []
    for key, value in data.items():
        if isinstance(value, dict) or (isinstance(value, list) and value and isinstance(value[0], dict)):
            tables.append((key, value))
        else:
            lines.append(f"{key} = {_toml_value(value)}")
    out = "\n".join(lines) + ("\n" if lines else "")
    for key, value in tables:
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out += f"\n[{name}]\n" + dump_toml(value, name + ".")
        else:
            for item in value:
                out += f"\n[[{name}]]\n" + dump_toml(item, name + ".")
    return out


def make_config(workdir: Path, **overrides: Any) -> Path:
    """The example config with state, socket and a fresh key moved into `workdir`."""
    data = tomllib.loads(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    key = workdir / "oplog.key"
    key.write_text(secrets.token_hex(32) + "\n")
    os.chmod(key, 0o600)
    data["paths"] = {"state_dir": str(workdir / "state"), "socket": str(workdir / "api.sock"),
                     "key_file": str(key)}
    for section, values in overrides.items():
        data.setdefault(section, {}).update(values)
    path = workdir / "lockerd.toml"
    path.write_text(dump_toml(data), encoding="utf-8")
    return path


def start_daemon(config: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """`lockerd run -c config` as a real subprocess, stderr captured."""
    return subprocess.Popen(
        [sys.executable, "-m", "lockerd", "run", "-c", str(config)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **(env or {})})


def wait_for(path: Path, proc: subprocess.Popen[str], limit_s: float = 20.0) -> None:
    """Wait until `path` exists (the daemon's socket), failing early if the daemon died."""
    deadline = time.monotonic() + limit_s
    while not path.exists():
        if proc.poll() is not None:
            err = proc.stderr.read() if proc.stderr else ""
            raise AssertionError(f"daemon exited {proc.returncode}: {err}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} did not appear")
        time.sleep(0.05)
