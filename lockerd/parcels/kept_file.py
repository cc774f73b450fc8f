"""The door-cycle ends kept while the disk is full, mirrored in a small side file that survives a
restart: what lets a daemon stopped before space returned record them at its next start.

Why a file outside the operation log: the log (SQLite) cannot take a page when the disk is full,
so a kept end lives in memory (lockerd/parcels/late.py), and a stop would lose it; start-up
recovery would then roll back a deposit whose parcel is inside. The side file needs no new disk
block when it matters: it is created with its full size (`SLOT` bytes, fsync'd) at start, while
there is space, and later overwritten in place through the descriptor held open.

What it holds, as one JSON document padded with spaces: per kept end its kind, compartment,
parcel id, the open operation's start (`since`, which names the operation), when the door cycle
ended, and the end's own arguments (door failure, refusal or rejection reason, accept). No
personal data and no pickup code: at start the end is decided again from the restored state (a
deposit gets a fresh code; the kept one was never recorded nor sent), and only when the
compartment still holds that very operation, so an end already in the log is not recorded twice.
"""

from __future__ import annotations

import json
import logging
import os
import stat
from datetime import datetime
from pathlib import Path
from typing import Any

from lockerd.domain import Cabinet, Decision, DoorFailure, RefusalReason, RejectReason
from lockerd.domain.timefmt import format_ts
from lockerd.oplog.secretfile import fsync_dir

log = logging.getLogger(__name__)

#: Its name in the state directory (next to the operation log).
KEPT_FILE_NAME = "unrecorded-ends.json"
#: The file's fixed size: one page, about 25 kept ends (an end takes ~150 bytes).
SLOT = 4096
#: Keys of an entry (all in lockerd/privacy.py NON_PERSONAL).
_ARGS = ("failure", "reason", "accept")

Entry = dict[str, Any]


def entry(decision: Decision, since: datetime, at: datetime) -> Entry:
    """What the side file keeps of a door-cycle end: ids, numbers, times, the end's arguments."""
    rec = decision.record
    body = rec.body or {}
    return {"kind": rec.kind, "compartment": rec.compartment, "parcel_id": rec.parcel_id,
            "since": format_ts(since), "at": format_ts(at),
            **{k: body[k] for k in _ARGS if k in body}}


def redecide(cabinet: Cabinet, kept: Entry) -> Decision | None:
    """The end decided again on the restored state; None when the compartment no longer holds
    the operation the end belongs to (recorded already, or an unreadable entry)."""
    try:
        cid = int(kept["compartment"])
        comp = cabinet.state.compartments.get(cid)
        pending = None if comp is None else comp.pending
        if comp is None or pending is None or comp.parcel_id != kept["parcel_id"] \
                or format_ts(pending.since) != kept["since"]:
            return None
        kind = str(kept["kind"])
        if kind.endswith(".rollback"):
            if kind != f"{pending.op.value}.rollback":
                return None
            return cabinet.door_failed(cid, DoorFailure(kept["failure"]))
        ends = {"deliver.confirm": cabinet.confirm_deposit, "pickup.confirm": cabinet.confirm_pickup,
                "dropoff.confirm": cabinet.confirm_dropoff,
                "retrieve.confirm": cabinet.confirm_retrieval,
                "return.confirm": cabinet.confirm_return}
        if kind in ends:
            decision = ends[kind](cid)
        elif kind == "refuse.confirm":
            decision = cabinet.confirm_refusal(cid, RefusalReason(kept["reason"]))
        elif kind == "collect.confirm":
            accept = bool(kept["accept"])
            decision = cabinet.confirm_collect(
                cid, accept, None if accept else RejectReason(kept["reason"]))
        else:
            return None
    except (KeyError, ValueError, TypeError) as exc:
        log.error("a kept door-cycle end cannot be read (%s); recovery decides instead", exc)
        return None
    return decision


class KeptFile:
    """The side file, reserved at `open` and rewritten in place by `write`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        #: the last write went through: the file holds what is kept now
        self.current = False

    def open(self) -> list[Entry]:
        """Open (create 0600 and reserve `SLOT` bytes when missing); the ends a stopped daemon
        left in it. A symlink, a foreign owner or a failure leaves the file unused (memory only)."""
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(self.path, flags, 0o600)
        except OSError as exc:
            log.error("side file for unrecorded door-cycle ends unavailable: %s", exc)
            return []
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
                raise OSError(f"{self.path} is not a regular file of this user")
            os.fchmod(fd, 0o600)
            data = os.pread(fd, SLOT + 1, 0)
            if st.st_size != SLOT:
                os.ftruncate(fd, 0)
                os.pwrite(fd, b" " * SLOT, 0)
                os.fsync(fd)
                fsync_dir(self.path.parent)
        except OSError as exc:
            os.close(fd)
            log.error("side file for unrecorded door-cycle ends unusable: %s", exc)
            return []
        self._fd = fd
        return _parse(data)

    def write(self, entries: list[Entry]) -> bool:
        """Overwrite the file with `entries` (as many as fit), fsync'd; False when it could not
        (the ends stay in memory only)."""
        if self._fd is None:
            return False
        doc = _encode(entries)
        if len(doc) > SLOT:
            log.critical("side file full: only the first kept door-cycle ends survive a restart")
            while entries and len(doc := _encode(entries)) > SLOT:
                entries = entries[:-1]
        try:
            os.pwrite(self._fd, doc.ljust(SLOT, b" "), 0)
            os.fsync(self._fd)
        except OSError as exc:
            log.error("could not save the kept door-cycle ends in %s: %s", self.path, exc)
            self.current = False
            return False
        self.current = True
        return True

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _encode(entries: list[Entry]) -> bytes:
    return json.dumps({"v": 1, "ends": entries}, separators=(",", ":")).encode()


def _parse(data: bytes) -> list[Entry]:
    text = data.decode("utf-8", "replace").strip()
    if not text:
        return []
    try:
        doc = json.loads(text)
        ends = doc["ends"]
        if doc.get("v") != 1 or not isinstance(ends, list):
            raise ValueError("unknown format")
        return [e for e in ends if isinstance(e, dict)]
    except (ValueError, KeyError, TypeError) as exc:
        log.error("side file of kept door-cycle ends unreadable (%s); recovery decides", exc)
        return []
