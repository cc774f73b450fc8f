"""The anchor state next to the identity key, and the reset request `lockerctl reset-log` leaves.

`anchor-state.json` holds the last anchor the cabinet published (signed, so it cannot be
edited without the identity key). At start the log must extend it: an empty, replaced, cut or
rewritten log is refused (lockerd.oplog.anchoring). `reset-request.json` is the one way past
that refusal: written by root with a reason while the daemon is stopped, honoured once at the
next start, which records `oplog.reset` (naming the old head) before anything else and anchors
it at once. docs/oplog.md describes the mechanism.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lockerd.oplog import anchors
from lockerd.oplog.anchors import Anchor
from lockerd.oplog.errors import OplogError
from lockerd.oplog.secretfile import write_private_file

STATE_FILE = "anchor-state.json"
RESET_FILE = "reset-request.json"
REASON_MAX = 500


class AnchorStateError(OplogError):
    """The anchor state or a reset request cannot be read (damaged, or not ours)."""


def save_state(directory: Path, anchor: Anchor) -> None:
    """Replace the anchor state durably (0600)."""
    data = json.dumps(anchor.to_json(), sort_keys=True) + "\n"
    write_private_file(directory / STATE_FILE, data.encode("ascii"))


def load_state(directory: Path) -> Anchor | None:
    """The last published anchor, or None when this cabinet never anchored."""
    path = directory / STATE_FILE
    try:
        text = path.read_text("ascii")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise AnchorStateError(f"{path}: cannot read the anchor state: {exc}") from None
    try:
        return anchors.from_json(json.loads(text))
    except (ValueError, anchors.AnchorError) as exc:
        raise AnchorStateError(f"{path}: the anchor state is damaged ({exc}); it is the "
                               "cabinet's memory of its published log head, so the daemon "
                               "will not start without it: see `lockerctl reset-log`") from None


@dataclass(frozen=True, slots=True)
class ResetRequest:
    """Root's request to begin a new log: why, who, when, and the head it replaces."""

    reason: str
    uid: int
    at: str
    previous: dict[str, Any] | None  # the anchor state's anchor (wire form), None if none

    def record_body(self) -> dict[str, Any]:
        """The `oplog.reset` chain body (non-personal: ids, times, hashes, staff reason)."""
        prev = self.previous or {}
        return {"reason": self.reason, "uid": self.uid, "requested_at": self.at,
                "previous_epoch": prev.get("epoch"), "previous_seq": prev.get("seq"),
                "previous_hash": prev.get("hash")}


def save_reset(directory: Path, request: ResetRequest) -> Path:
    """Write the request durably (0600); the daemon honours it once at its next start."""
    path = directory / RESET_FILE
    data = {"v": 1, "reason": request.reason, "uid": request.uid, "at": request.at,
            "previous": request.previous}
    write_private_file(path, (json.dumps(data, sort_keys=True) + "\n").encode("utf-8"))
    return path


def load_reset(directory: Path) -> ResetRequest | None:
    """The pending reset request, or None."""
    path = directory / RESET_FILE
    try:
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise AnchorStateError(f"{path}: cannot read the reset request: {exc}") from None
    reason = data.get("reason") if isinstance(data, dict) else None
    if not isinstance(reason, str) or not 3 <= len(reason) <= REASON_MAX:
        raise AnchorStateError(f"{path}: the reset request has no valid reason")
    previous = data.get("previous")
    return ResetRequest(reason, int(data.get("uid", -1)), str(data.get("at")),
                        previous if isinstance(previous, dict) else None)


def clear_reset(directory: Path) -> None:
    """The request was honoured (recorded and anchored): remove it."""
    with contextlib.suppress(FileNotFoundError):
        (directory / RESET_FILE).unlink()
