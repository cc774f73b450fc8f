"""Reading a config: TOML to a validated Config, one line per problem; the shipped example."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from lockerd.config.base import ConfigErrorList
from lockerd.config.model import Config


class ConfigError(Exception):
    """A configuration file that cannot be used; `problems` holds one line per problem."""

    def __init__(self, path: Path, problems: ConfigErrorList) -> None:
        self.path = path
        self.problems = problems
        super().__init__("\n".join(problems))


def _location(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out or "(top level)"


def _problems(path: Path, exc: ValidationError) -> ConfigErrorList:
    lines = []
    for err in exc.errors():
        loc = _location(tuple(p for p in err["loc"] if p not in ("function-after",)))
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        lines.append(f"{path}: {loc}: {msg}")
    return lines


def parse_config(data: dict[str, Any], path: Path) -> Config:
    """Validate an already-parsed TOML document."""
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(path, _problems(path, exc)) from None


def load_config(path: Path) -> Config:
    """Read and validate a TOML config file; raises ConfigError with one line per problem."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(path, [f"{path}: cannot read: {exc.strerror}"]) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(path, [f"{path}: not UTF-8 text"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, [f"{path}: TOML syntax error: {exc}"]) from None
    return parse_config(data, path)


EXAMPLE_CONFIG_RESOURCE = "example.toml"


def example_config_path() -> Path:
    """Where the example config shipped inside the package lies (a real file in a wheel or checkout)."""
    return Path(str(resources.files(__package__ or "lockerd.config") / EXAMPLE_CONFIG_RESOURCE))


def example_config_text() -> str:
    """The example config: documents every key and runs as-is on the simulator (`lockerd demo`)."""
    return example_config_path().read_text(encoding="utf-8")
