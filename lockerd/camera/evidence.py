"""Evidence snapshots: JPEGs at door open and close, encrypted at rest in their own SQLCipher file."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import cv2
import numpy as np

from lockerd.domain.timefmt import format_ts
from lockerd.drivers.base import Frame
from lockerd.oplog import sqlcipher

log = logging.getLogger(__name__)

T = TypeVar("T")
FrameGetter = Callable[[], tuple[float, Frame] | None]
LABEL = re.compile(r"^[A-Za-z0-9_.:-]{1,80}$")
SCHEMA = """
CREATE TABLE IF NOT EXISTS evidence (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    label TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    camera TEXT NOT NULL,
    jpeg BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS evidence_ts ON evidence (ts);
"""


class EvidenceError(Exception):
    """The evidence store cannot be used (bad key, closed, corrupt file)."""


@dataclass(frozen=True, slots=True)
class EvidenceRef:
    """What an operation record keeps of a snapshot: where it is and its SHA-256."""

    id: int
    sha256: str
    ts: str
    label: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-able."""
        return {"id": self.id, "sha256": self.sha256, "ts": self.ts, "label": self.label}


def _checked_key(key: bytes) -> bytes:
    """At least 16 bytes; 32 are used raw, others as a passphrase (lockerd.oplog.sqlcipher)."""
    if len(key) < 16:
        raise EvidenceError("evidence key must be at least 16 bytes")
    return key


KeyProvider = Callable[[], Awaitable[bytes]]


class EvidenceStore:
    """Snapshots stored as JPEG blobs in an SQLCipher database, one writer thread.

    Labels are operation ids and event names (`op-42:door_open`), never personal data. The camera
    state at capture time is stored next to the image. Rows older than the retention are purged.
    """

    def __init__(self, path: Path, key: bytes | KeyProvider, frames: FrameGetter, *,
                 retention_days: int = 30,
                 jpeg_quality: int = 70, max_width: int = 640,
                 camera_state: Callable[[], dict[str, Any]] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self._path = path
        # The daemon's key lives in the operation log, readable only once the log is open.
        self._key: bytes | KeyProvider = key
        self._raw_key = _checked_key(key) if isinstance(key, bytes) else b""
        self._frames = frames
        self._retention_s = retention_days * 86400.0
        self._quality = jpeg_quality
        self._max_width = max_width
        self._camera_state = camera_state
        self._clock = clock
        self._pool: ThreadPoolExecutor | None = None
        self._db: Any = None

    async def _call(self, fn: Callable[[], T]) -> T:
        if self._pool is None:
            raise EvidenceError("evidence store is not open")
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn)

    async def open(self) -> None:
        """Open (or create) the database in the writer thread; a wrong key raises EvidenceError."""
        if self._pool is not None:
            return
        if not isinstance(self._key, bytes):
            self._raw_key = _checked_key(await self._key())
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="evidence")
        try:
            await self._call(self._open_sync)
        except Exception:
            await self.close()
            raise

    def _open_sync(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        # The operation log's helper: same cipher settings and PRAGMAs (temp_store = MEMORY, so
        # no plaintext temp file), a new file created 0600 before its -wal and -shm exist.
        try:
            db = sqlcipher.connect(self._path, self._raw_key)
        except Exception as exc:
            raise EvidenceError(f"cannot open evidence store {self._path}: {exc}") from None
        try:
            db.executescript(SCHEMA)
        except Exception as exc:
            db.close()
            raise EvidenceError(f"cannot open evidence store {self._path}: {exc}") from None
        self._path.chmod(0o600)  # files made before the helper created them 0600
        self._db = db

    async def close(self) -> None:
        """Close the database and stop the writer thread (idempotent)."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        db, self._db = self._db, None
        if db is not None:
            await asyncio.get_running_loop().run_in_executor(pool, db.close)
        pool.shutdown(wait=True)

    async def snapshot(self, label: str) -> EvidenceRef | None:
        """Store the newest frame under `label`; None when the camera has no frame to give.

        The frame is fetched in the store's worker thread: a camera that keeps its newest
        frame compressed decodes it on that request, which must not hold up the loop."""
        if not LABEL.match(label):
            raise ValueError("evidence label must be 1-80 of [A-Za-z0-9_.:-] (no personal data)")
        state = self._camera_state() if self._camera_state is not None else {}
        ts = self._clock()
        ref = await self._call(lambda: self._snapshot_sync(label, ts, state))
        if ref is None:
            log.warning("no camera frame for evidence %s", label)
        return ref

    def _snapshot_sync(self, label: str, ts: float, state: dict[str, Any]) -> EvidenceRef | None:
        latest = self._frames()
        return None if latest is None else self._store_sync(label, latest[1], ts, state)

    def _store_sync(self, label: str, frame: Frame, ts: float, state: dict[str, Any]) -> EvidenceRef:
        frame = fit_width(frame, self._max_width)
        ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, self._quality])
        if not ok:
            raise EvidenceError("JPEG encoding failed")
        jpeg = buf.tobytes()
        digest = hashlib.sha256(jpeg).hexdigest()
        # autocommit (the helper's mode): the single INSERT is its own transaction
        cur = self._db.execute(
            "INSERT INTO evidence (ts, label, sha256, camera, jpeg) VALUES (?, ?, ?, ?, ?)",
            (ts, label, digest, json.dumps(state, sort_keys=True), jpeg))
        return EvidenceRef(int(cur.lastrowid), digest, format_ts(datetime.fromtimestamp(ts, UTC)), label)

    async def load(self, evidence_id: int) -> bytes | None:
        """The JPEG bytes of a snapshot (what `verify` hashes), or None once purged."""
        def q() -> bytes | None:
            row = self._db.execute("SELECT jpeg FROM evidence WHERE id = ?", (evidence_id,)).fetchone()
            return None if row is None else bytes(row[0])
        return await self._call(q)

    async def verify(self, ref: EvidenceRef) -> bool:
        """True when the stored JPEG still hashes to the SHA-256 the operation recorded."""
        jpeg = await self.load(ref.id)
        return jpeg is not None and hashlib.sha256(jpeg).hexdigest() == ref.sha256

    async def purge(self) -> int:
        """Delete snapshots older than the retention; returns how many went."""
        cutoff = self._clock() - self._retention_s

        def q() -> int:
            cur = self._db.execute("DELETE FROM evidence WHERE ts < ?", (cutoff,))
            return int(cur.rowcount)
        count = await self._call(q)
        if count:
            log.info("evidence retention: %d snapshots deleted", count)
        return count

    async def count(self) -> int:
        """Snapshots held."""
        return await self._call(
            lambda: int(self._db.execute("SELECT count(*) FROM evidence").fetchone()[0]))


def fit_width(frame: Frame, max_width: int) -> Frame:
    """The frame scaled down (area average, aspect kept) to at most `max_width` pixels wide."""
    height, width = frame.shape[:2]
    if width <= max_width:
        return frame
    size = (max_width, max(1, round(height * max_width / width)))
    return np.asarray(cv2.resize(frame, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)
