"""[paths]: where state, the API socket, the log key and the device identity live."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from lockerd.config.base import Strict


class Paths(Strict):
    """Where state, socket and secrets live."""

    state_dir: Path = Field(default=Path("/var/lib/lockerd"),
                            description="Operation log and evidence (StateDirectory=).")
    socket: Path = Field(default=Path("/run/lockerd/api.sock"),
                         description="Local API Unix socket (RuntimeDirectory=).")
    key_file: Path | None = Field(
        default=None,
        description="Operation-log key file (0600). Unset: $CREDENTIALS_DIRECTORY/oplog.key.")
    identity_dir: Path | None = Field(
        default=None,
        description="Device identity key (0600) and anchor state. Unset: the log key file's "
                    "directory when paths.key_file is set, else <state_dir>/identity.")
