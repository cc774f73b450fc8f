"""Backup and restore of the log and evidence store: consistent, still-encrypted copies, verified before use.

Taking a backup (the daemon, `log.backup`): SQLite's online backup API copies each database in
one step from its own read-only SQLCipher connection, so the copy is one consistent snapshot
while the writer keeps committing (WAL: readers never block it). The log is copied before the
evidence store, so every snapshot the copied chain names is in the copied evidence. The copies
keep their keys (the log's key; the evidence key lives inside the log) and are staged in
`<state_dir>/backups/`; `lockerctl backup` packs them into one tar file and removes the stage.
The chain records each backup (`oplog.backup`: head, digests), which a restore checks against.

Restoring (`lockerctl restore`, daemon stopped): the archive is unpacked next to the live files
and must prove itself before anything is replaced: digests as in its manifest, every page's
HMAC (cipher_integrity_check), SQLite's quick_check, the whole chain, and the record made when it
was taken. Only then are the live files moved aside (kept, never deleted) and the backup moved
in; the restored log is opened with this release (migrating it if it is older), carrier stream
numbers are raised to what the replaced log had already sent, and `oplog.restored` is appended.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from lockerd import __version__
from lockerd.oplog import chain, sqlcipher
from lockerd.oplog.errors import NewerSchema, OplogError, WrongKey
from lockerd.oplog.keys import OplogKey
from lockerd.oplog.schema import SCHEMA_VERSION
from lockerd.oplog.secretfile import fsync_dir
from lockerd.oplog.store import OpLog

FORMAT = 1
MANIFEST = "manifest.json"
LOG_FILE = "oplog.db"
EVIDENCE_FILE = "evidence.db"
EVIDENCE_SECRET = "evidence.key"  # noqa: S105 -- not a secret: the name lockerd.camera.guard keeps the evidence key under
STAGING_DIR = "backups"
STALE_STAGE_S = 3600.0  # a stage lockerctl never collected (it died) is removed after this
SIDE_FILES = ("", "-wal", "-shm", "-journal")
CHUNK = 1 << 20


class BackupRefused(OplogError):
    """A backup cannot be used (damaged, altered, wrong key, newer schema): nothing was replaced."""


# ------------------------------------------------------------------ taking a backup (daemon)


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _copy_db(source: Path, target: Path, key: bytes) -> None:
    """One consistent copy of an open SQLCipher database, same key, as a single file."""
    src = sqlcipher.connect(source, key, readonly=True)
    try:
        dst = sqlcipher.connect(target, key)
        try:
            src.backup(dst)  # pages=-1: the whole database in one step, one read snapshot
            # A rollback-journal file needs no -wal/-shm beside it; the daemon turns WAL back on.
            dst.execute("PRAGMA journal_mode = DELETE").fetchone()
        finally:
            dst.close()
    finally:
        src.close()


def _remove_stale(root: Path) -> None:
    cutoff = time.time() - STALE_STAGE_S
    for old in root.iterdir():
        with contextlib.suppress(OSError):
            if old.stat().st_mtime < cutoff:
                shutil.rmtree(old) if old.is_dir() else old.unlink()


def stage(log_path: Path, key: OplogKey, evidence: tuple[Path, bytes] | None, state_dir: Path
          ) -> tuple[Path, dict[str, Any]]:
    """Copy the log (then the evidence store) into a new stage directory; returns it and its
    manifest. Blocking: the daemon runs it in a thread."""
    root = state_dir / STAGING_DIR
    root.mkdir(mode=0o700, exist_ok=True)
    _remove_stale(root)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    work = Path(os.fspath(root / f"{stamp}-{os.getpid()}-{time.monotonic_ns() % 10**6}"))
    work.mkdir(mode=0o700)
    try:
        _copy_db(log_path, work / LOG_FILE, key.raw)
        conn = sqlcipher.connect(work / LOG_FILE, key.raw, readonly=True)
        try:
            head = chain.read_head(conn)
            verified = chain.verify_chain(conn).ok
            schema = int(conn.execute("PRAGMA user_version").fetchone()[0])
        finally:
            conn.close()
        if evidence is not None:
            _copy_db(evidence[0], work / EVIDENCE_FILE, evidence[1])
        files = {name: {"sha256": sha256_file(work / name), "size": (work / name).stat().st_size}
                 for name in (LOG_FILE, EVIDENCE_FILE) if (work / name).exists()}
        manifest = {"format": FORMAT, "made_by": f"lockerd {__version__}", "schema": schema,
                    "created_at": datetime.now(UTC).isoformat(), "head_seq": head[0],
                    "head_hash": head[1], "verified": verified,
                    "key_fingerprint": key.fingerprint, "files": files}
        (work / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return work, manifest


def record_body(manifest: dict[str, Any]) -> dict[str, Any]:
    """What the chain keeps of a backup (or a restore): head and file digests, nothing personal."""
    files = manifest["files"]
    return {"head_seq": manifest["head_seq"], "head_hash": manifest["head_hash"],
            "verified": manifest["verified"], "oplog_sha256": files[LOG_FILE]["sha256"],
            "evidence_sha256": files.get(EVIDENCE_FILE, {}).get("sha256")}


# ------------------------------------------------------------------ the archive (lockerctl)


def pack(stage_dir: Path, out: IO[bytes]) -> str:
    """Write the stage as a tar archive to `out` (already created 0600); returns its SHA-256."""
    manifest = json.loads((stage_dir / MANIFEST).read_text())
    names = [MANIFEST, *manifest["files"]]
    hashing = _HashingWriter(out)
    with tarfile.open(fileobj=hashing, mode="w", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
        for name in names:
            info = tar.gettarinfo(str(stage_dir / name), arcname=name)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mode = 0o600
            with (stage_dir / name).open("rb") as fh:
                tar.addfile(info, fh)
    out.flush()
    os.fsync(out.fileno())
    return hashing.digest.hexdigest()


class _HashingWriter:
    """A write-only file object that hashes what passes through it."""

    def __init__(self, out: IO[bytes]) -> None:
        self._out = out
        self.digest = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        return self._out.write(data)

    def tell(self) -> int:
        return self._out.tell()

    def flush(self) -> None:
        self._out.flush()


def _unpack(archive: Path, work: Path) -> dict[str, Any]:
    """Extract only the expected regular files (no paths, links or devices) into `work`."""
    allowed = {MANIFEST, LOG_FILE, EVIDENCE_FILE}
    try:
        with tarfile.open(archive, mode="r:") as tar:
            for member in tar:
                if member.name not in allowed or not member.isfile():
                    raise BackupRefused(f"{archive}: unexpected member {member.name!r}; "
                                        "not a lockerd backup")
                allowed.discard(member.name)
                source = tar.extractfile(member)
                assert source is not None
                fd = os.open(work / member.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL
                             | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
                with os.fdopen(fd, "wb") as target:
                    shutil.copyfileobj(source, target, CHUNK)
    except (tarfile.TarError, EOFError) as exc:
        raise BackupRefused(f"{archive}: not a readable tar archive ({exc})") from None
    if not (work / MANIFEST).exists() or not (work / LOG_FILE).exists():
        raise BackupRefused(f"{archive}: no {MANIFEST} or {LOG_FILE}; not a lockerd backup")
    try:
        manifest: dict[str, Any] = json.loads((work / MANIFEST).read_text())
    except ValueError:
        raise BackupRefused(f"{archive}: {MANIFEST} is not JSON") from None
    if manifest.get("format") != FORMAT:
        raise BackupRefused(f"{archive}: backup format {manifest.get('format')!r}, this lockerd "
                            f"reads format {FORMAT}")
    return manifest


# ------------------------------------------------------------------ restoring (lockerctl, daemon stopped)


@dataclass(frozen=True, slots=True)
class LiveFacts:
    """What the log about to be replaced says (when it still opens with the key)."""

    head_seq: int
    streams: dict[str, int]
    backup_records: dict[int, tuple[int, dict[str, Any]]]  # head_seq -> (record seq, body)


def _pragma_rows(conn: Any, pragma: str) -> list[str]:
    return [str(r[0]) for r in conn.execute(f"PRAGMA {pragma}").fetchall()]


def _verify_staged(work: Path, manifest: dict[str, Any], key: OplogKey, name: str) -> int:
    """Prove the unpacked backup sound before anything is replaced; returns its schema version."""
    files: dict[str, dict[str, Any]] = manifest.get("files") or {}
    if LOG_FILE not in files:
        raise BackupRefused(f"{name}: the manifest lists no {LOG_FILE}")
    for file, meta in files.items():
        path = work / file
        if not path.exists() or path.stat().st_size != meta.get("size") \
                or sha256_file(path) != meta.get("sha256"):
            raise BackupRefused(f"{name}: {file} does not match its manifest digest "
                                "(damaged or altered)")
    try:
        conn = sqlcipher.connect(work / LOG_FILE, key.raw, readonly=True)
    except WrongKey:
        if manifest.get("key_fingerprint") == key.fingerprint:
            raise BackupRefused(f"{name}: the log cannot be decrypted with the key it was made "
                                "with (damaged or altered)") from None
        raise BackupRefused(f"{name}: made with key {manifest.get('key_fingerprint')}, the key "
                            f"given is {key.fingerprint} (was the log rekeyed since? restore "
                            "with the key of the backup's time)") from None
    try:
        schema = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if schema > SCHEMA_VERSION:
            raise BackupRefused(str(NewerSchema(
                f"{name}: the backup has schema version {schema}, written by a newer lockerd; "
                f"lockerd {__version__} knows versions up to {SCHEMA_VERSION} and will not "
                "downgrade it")))
        bad = _pragma_rows(conn, "cipher_integrity_check")
        if bad:
            raise BackupRefused(f"{name}: {len(bad)} page(s) of the log fail their HMAC "
                                f"(altered): {bad[0]}")
        if _pragma_rows(conn, "quick_check") != ["ok"]:
            raise BackupRefused(f"{name}: the log fails SQLite's quick_check")
        result = chain.verify_chain(conn)
        if not result.ok:
            raise BackupRefused(f"{name}: the chain is broken at operation {result.broken_seq}: "
                                f"{result.reason}")
        if (result.head_seq, result.head_hash) != (manifest.get("head_seq"),
                                                   manifest.get("head_hash")):
            raise BackupRefused(f"{name}: the chain ends at {result.head_seq}, the manifest says "
                                f"{manifest.get('head_seq')}")
        row = conn.execute("SELECT value FROM secrets WHERE name = ?",
                           (EVIDENCE_SECRET,)).fetchone()
    finally:
        conn.close()
    if EVIDENCE_FILE in files:
        if row is None:
            raise BackupRefused(f"{name}: an evidence store without its key in the log")
        try:
            ev = sqlcipher.connect(work / EVIDENCE_FILE, bytes(row[0]), readonly=True)
        except WrongKey:
            raise BackupRefused(f"{name}: the evidence store does not open with its key "
                                "(damaged or altered)") from None
        try:
            if _pragma_rows(ev, "cipher_integrity_check") or \
                    _pragma_rows(ev, "quick_check") != ["ok"]:
                raise BackupRefused(f"{name}: the evidence store fails its integrity checks")
        finally:
            ev.close()
    return schema


def _live_facts(path: Path, key: OplogKey) -> LiveFacts | None:
    """Head, carrier stream numbers and backup records of the log being replaced, if it opens."""
    if not path.exists():
        return None
    try:
        conn = sqlcipher.connect(path, key.raw, readonly=True)
    except OplogError:
        return None
    try:
        head = chain.read_head(conn)[0]
        streams = {str(s): int(n) for s, n in conn.execute(
            "SELECT stream, last_seq FROM outbox_streams")}
        records: dict[int, tuple[int, dict[str, Any]]] = {}
        for seq, body in conn.execute(
                "SELECT seq, body FROM operations WHERE kind = 'oplog.backup' ORDER BY seq"):
            parsed = json.loads(body)
            records[int(parsed.get("head_seq", -1))] = (int(seq), parsed)
    except Exception:  # a damaged live log is the usual reason to restore: carry on without it
        return None
    finally:
        conn.close()
    return LiveFacts(head, streams, records)


@contextlib.contextmanager
def _swapped(state_dir: Path, pairs: list[tuple[Path, str]], aside: Path) -> Iterator[None]:
    """Move the live files (with -wal/-shm) aside and the restored ones in; undo on error."""
    moved: list[tuple[Path, Path]] = []
    placed: list[Path] = []
    try:
        for _source, target in pairs:
            for suffix in SIDE_FILES:
                live = state_dir / f"{target}{suffix}"
                if live.exists():
                    os.replace(live, aside / live.name)
                    moved.append((aside / live.name, live))
        for source, target in pairs:
            os.replace(source, state_dir / target)
            placed.append(state_dir / target)
        yield
    except BaseException:
        for path in placed:
            for suffix in SIDE_FILES:
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        for kept, original in moved:
            os.replace(kept, original)
        raise


def _chown(state_dir: Path, names: tuple[str, ...], owner: tuple[int, int]) -> None:
    for name in names:
        for suffix in SIDE_FILES:
            path = state_dir / f"{name}{suffix}"
            if path.exists() and (path.stat().st_uid, path.stat().st_gid) != owner:
                os.chown(path, *owner)


@dataclass(frozen=True, slots=True)
class _Prepared:
    """An unpacked, verified backup next to the live files, and what the live log said."""

    work: Path
    aside: Path
    manifest: dict[str, Any]
    schema: int
    live: LiveFacts | None
    matched: int | None
    owner: tuple[int, int]


def _prepare(archive: Path, state_dir: Path, key: OplogKey, log_name: str,
             owner: tuple[int, int] | None) -> _Prepared:
    st = state_dir.stat()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    work = state_dir / f".restore-{stamp}-{os.getpid()}"
    work.mkdir(mode=0o700)
    try:
        manifest = _unpack(archive, work)
        schema = _verify_staged(work, manifest, key, archive.name)
        live = _live_facts(state_dir / log_name, key)
        matched = None
        if live is not None and manifest["head_seq"] in live.backup_records:
            matched, body = live.backup_records[manifest["head_seq"]]
            if body != record_body(manifest):
                raise BackupRefused(f"{archive.name}: does not match the record made when this "
                                    f"backup was taken (operation {matched}): altered")
        aside = state_dir / f"replaced-{stamp}"
        aside.mkdir(mode=0o700)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return _Prepared(work, aside, manifest, schema, live, matched,
                     owner or (st.st_uid, st.st_gid))


def _settle(state_dir: Path, names: tuple[str, str], prep: _Prepared) -> None:
    _chown(state_dir, names, prep.owner)
    fsync_dir(state_dir)


def _clean(prep: _Prepared) -> None:
    shutil.rmtree(prep.work, ignore_errors=True)
    with contextlib.suppress(OSError):
        prep.aside.rmdir()  # only when nothing was replaced


async def restore(archive: Path, state_dir: Path, key: OplogKey, *, actor: str,
                  log_name: str = LOG_FILE, evidence_name: str = EVIDENCE_FILE,
                  owner: tuple[int, int] | None = None) -> dict[str, Any]:
    """Verify `archive`, then replace the state directory's log and evidence with it.

    The daemon must be stopped (the caller checks). Refusals raise BackupRefused before any
    live file is touched; the replaced files are kept in `<state_dir>/replaced-<time>/`, and a
    failure after the swap puts them back. The restored files get the state directory's owner.
    """
    prep = await asyncio.to_thread(_prepare, archive, state_dir, key, log_name, owner)
    manifest, live = prep.manifest, prep.live
    try:
        pairs = [(prep.work / LOG_FILE, log_name)]
        if EVIDENCE_FILE in manifest["files"]:
            pairs.append((prep.work / EVIDENCE_FILE, evidence_name))
        with _swapped(state_dir, pairs, prep.aside):
            raised = {} if live is None else live.streams
            store = await OpLog.open(state_dir / log_name, key)
            try:
                op = await store.append(
                    "oplog.restored", actor=actor,
                    body={**record_body(manifest),
                          "replaced_head_seq": None if live is None else live.head_seq,
                          "migrated_from": None if prep.schema == SCHEMA_VERSION else prep.schema},
                    mutate=lambda conn: _raise_streams(conn, raised))
            finally:
                await store.close()
            await asyncio.to_thread(_settle, state_dir, (log_name, evidence_name), prep)
    finally:
        await asyncio.to_thread(_clean, prep)
    kept = await asyncio.to_thread(prep.aside.exists)
    return {"restored_head_seq": manifest["head_seq"], "record_seq": op.seq,
            "replaced_head_seq": None if live is None else live.head_seq,
            "lost_operations": None if live is None else max(0, live.head_seq
                                                             - manifest["head_seq"]),
            "matched_backup_record": prep.matched, "schema_from": prep.schema,
            "kept_aside": str(prep.aside) if kept else None,
            "made_by": manifest.get("made_by"), "created_at": manifest.get("created_at")}


def _raise_streams(conn: Any, streams: dict[str, int]) -> None:
    """Carriers have already seen event numbers up to the replaced log's: continue after them,
    so events recorded from now on are not dropped as repeats."""
    for stream, last in streams.items():
        conn.execute("INSERT INTO outbox_streams (stream, last_seq) VALUES (?, ?) "
                     "ON CONFLICT(stream) DO UPDATE SET last_seq = max(last_seq, excluded.last_seq)",
                     (stream, last))
