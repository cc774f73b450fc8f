"""The cabinet's anchoring at run time: the start gate, periodic anchors, the anchor state.

The oplog component owns one AnchorKeeper. At start it loads (or creates) the device identity
and refuses a log that does not extend the last published anchor (an empty, replaced, cut or
rewritten log) unless root left a reset request (lockerd.oplog.anchor_state). Once the log's
first records are in, it signs the committed head after every `anchor_every_ops` operations and
every `anchor_every_min` minutes, saves it as the anchor state and posts it for sync to publish
retained on `lockers/{cab}/chain`; it also lets the log sign the head at each `parcel.*` event
for that event's envelope.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from lockerd.domain.timefmt import format_ts
from lockerd.oplog import anchor_state, anchors, chain
from lockerd.oplog.anchor_state import ResetRequest
from lockerd.oplog.anchors import Anchor
from lockerd.oplog.errors import OplogError
from lockerd.oplog.identity import DeviceIdentity, load_or_create
from lockerd.oplog.store import OpLog

log = logging.getLogger(__name__)


class LogRefused(OplogError):
    """The log does not extend what this cabinet already published: the daemon will not start."""


class AnchorBoard:
    """The newest published anchor, and a wake-up for whoever publishes it (sync)."""

    def __init__(self) -> None:
        self.latest: Anchor | None = None
        self.changed = asyncio.Event()

    def post(self, anchor: Anchor) -> None:
        """A new anchor was made and saved."""
        self.latest = anchor
        self.changed.set()


class AnchorKeeper:
    """Identity, start gate and periodic anchors of one cabinet (see the module docstring)."""

    def __init__(self, cabinet: str, directory: Path, *, every_ops: int, every_min: float,
                 owner_uid: int | None = None) -> None:
        self.cabinet = cabinet
        self.directory = directory
        self.every_ops = every_ops
        self.every_s = every_min * 60.0
        self._owner_uid = owner_uid
        self.identity: DeviceIdentity | None = None
        self.board = AnchorBoard()
        self.reset: ResetRequest | None = None
        self._epoch: str | None = None
        self._last_at = 0.0  # time.monotonic() of the last periodic anchor

    async def gate(self, store: OpLog) -> ResetRequest | None:
        """Load the identity and refuse a log that does not extend the anchor state.

        Returns the pending reset request when root left one (the caller records `oplog.reset`
        before anything else); raises LogRefused with the reason otherwise.
        """
        identity, created = await asyncio.to_thread(load_or_create, self.directory,
                                                    self._owner_uid)
        self.identity = identity
        if created:
            log.warning("created the device identity %s (fingerprint %s): enrol its public key "
                        "(lockerctl identity)", identity.source, identity.fingerprint)
        state = await asyncio.to_thread(anchor_state.load_state, self.directory)
        self.reset = await asyncio.to_thread(anchor_state.load_reset, self.directory)
        if self.reset is not None:
            log.warning("reset request found (%s): a new log may begin; it is recorded as "
                        "oplog.reset", self.reset.reason)
            return self.reset
        if state is None:
            return None
        found = await store.read(lambda c: anchors.problem(c, state, identity.public_raw,
                                                           self.cabinet))
        if found is not None:
            raise LogRefused(
                "refusing to start: the log does not extend what this cabinet published (anchor "
                f"state {self.directory / anchor_state.STATE_FILE}: epoch {state.epoch}, "
                f"operation {state.seq}): {found}. If this is intended, stop here and run "
                "`lockerctl reset-log --reason TEXT` as root; the reset is recorded and anchored")
        return None

    async def begin(self, store: OpLog) -> Anchor:
        """After the start records: let the log sign event anchors, anchor the head now."""
        epoch = await store.read(anchors.chain_epoch)
        if epoch is None:
            raise OplogError("the log is empty after start; nothing to anchor")
        self._epoch = epoch
        store.anchor_signer = self._signer(epoch)
        anchor = await self.anchor_now(store)
        if self.reset is not None:
            await asyncio.to_thread(anchor_state.clear_reset, self.directory)
            self.reset = None
        return anchor

    def _signer(self, epoch: str) -> Callable[[int, str, str], Mapping[str, Any]]:
        identity = self._identity()
        cabinet = self.cabinet

        def sign(seq: int, digest: str, ts: str) -> Mapping[str, Any]:
            return anchors.make(identity, cabinet, epoch, seq, digest, ts).to_json()

        return sign

    def _identity(self) -> DeviceIdentity:
        if self.identity is None:
            raise OplogError("the device identity is not loaded")
        return self.identity

    async def anchor_now(self, store: OpLog) -> Anchor:
        """Sign the committed head (read on a reader: never a row that may still roll back),
        save it as the anchor state, post it for publication."""
        if self._epoch is None:
            raise OplogError("anchoring has not begun")
        seq, digest = await store.read(chain.read_head)
        anchor = anchors.make(self._identity(), self.cabinet, self._epoch, seq, digest,
                              format_ts(store.now()))
        await asyncio.to_thread(anchor_state.save_state, self.directory, anchor)
        self._last_at = time.monotonic()
        self.board.post(anchor)
        return anchor

    async def tick(self, store: OpLog) -> Anchor | None:
        """Anchor when `every_ops` operations or `every_min` minutes passed since the last."""
        last = self.board.latest
        if self._epoch is None or last is None:
            return None
        due = store.head[0] - last.seq >= self.every_ops or \
            time.monotonic() - self._last_at >= self.every_s
        return await self.anchor_now(store) if due else None

    async def final(self, store: OpLog) -> Anchor | None:
        """At a clean stop: anchor the head when it moved since the last anchor."""
        last = self.board.latest
        if self._epoch is None or last is None or store.head[0] == last.seq:
            return None
        return await self.anchor_now(store)

    def describe(self) -> dict[str, Any]:
        """What `lockerctl identity` prints: the public key, its fingerprint, the last anchor."""
        identity = self._identity()
        latest = self.board.latest
        return {"cabinet": self.cabinet, "algorithm": "Ed25519",
                "public_key_b64": base64.b64encode(identity.public_raw).decode("ascii"),
                "public_key_hex": identity.public_raw.hex(),
                "fingerprint_sha256": identity.fingerprint, "key_id": identity.key_id,
                "latest_anchor": None if latest is None else latest.to_json()}
