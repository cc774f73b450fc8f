"""OplogComponent: opens the log, runs purge and checks, serves log.* methods; long because the
log's start (anchor gate, integrity, clock guard) and its API live together."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from lockerd import __version__
from lockerd.api.server import ApiError, ApiServer, Caller, Role
from lockerd.app.events import Alert, AlertKind, EventBus, Severity
from lockerd.app.supervisor import Component
from lockerd.app.ticks import next_tick
from lockerd.config import Cabinet, Compartment, Paths
from lockerd.config import Oplog as OplogConfig
from lockerd.oplog import audit, backup, integrity, keys, regreport, report_sign, retention
from lockerd.oplog.anchoring import AnchorKeeper
from lockerd.oplog.canonical import format_ts
from lockerd.oplog.clockguard import RELEASE_FLOOR, ClockNotSet
from lockerd.oplog.errors import OplogError, RekeyRefused, WrongKey
from lockerd.oplog.exports import ExportCursorError, OpenExports
from lockerd.oplog.identity import DeviceIdentity, identity_dir
from lockerd.oplog.keys import OplogKey
from lockerd.oplog.schema import SCHEMA_VERSION
from lockerd.oplog.store import OpLog

log = logging.getLogger(__name__)

WRITER_STALE_S = 10.0
#: After appends failed for a full disk, this much free space means it has returned (the next
#: append will go through): `disk_full` is no longer reported even before that append.
SPACE_BACK_BYTES = 4 << 20


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ViewParams(_Params):
    """log.view: masked operations, filtered."""

    since: AwareDatetime | None = Field(default=None, alias="from", description="Inclusive start.")
    until: AwareDatetime | None = Field(default=None, alias="to", description="Exclusive end.")
    kind: list[str] | None = Field(default=None, max_length=32, description="Operation kinds.")
    compartment: int | None = Field(default=None, ge=1, le=9999, description="Compartment.")
    after_seq: int = Field(default=0, ge=0, le=2**63 - 1, description="Page after this seq.")
    before_seq: int | None = Field(default=None, ge=1, le=2**63 - 1,
                                   description="Page before this seq (with newest_first).")
    newest_first: bool = Field(default=False, description="Newest operations first.")
    limit: int = Field(default=100, ge=1, le=1000, description="Most operations returned.")


class RangeParams(_Params):
    """A required [from, to) time range."""

    since: AwareDatetime = Field(alias="from", description="Inclusive start (RFC 3339).")
    until: AwareDatetime = Field(alias="to", description="Exclusive end (RFC 3339).")

    @model_validator(mode="after")
    def _ordered(self) -> RangeParams:
        if self.since.tzinfo is None or self.until.tzinfo is None:
            raise ValueError("times need a time zone (RFC 3339)")
        if self.until <= self.since:
            raise ValueError("'to' must be after 'from'")
        return self


class ReportParams(RangeParams):
    """log.report: the signed regulator report (Art. 28) in JSON or CSV."""

    format: Literal["json", "csv"] = Field(default="json", description="Document format.")


class ExportParams(_Params):
    """log.export: a range begins an export (masked by default; unmasked only for root, with a
    reason); `cursor` alone reads its next page."""

    since: AwareDatetime | None = Field(default=None, alias="from",
                                        description="Inclusive start (RFC 3339).")
    until: AwareDatetime | None = Field(default=None, alias="to",
                                        description="Exclusive end (RFC 3339).")
    unmasked: bool = Field(default=False, description="Root only; needs a reason.")
    reason: str | None = Field(default=None, min_length=3, max_length=500,
                               description="Why the export is needed (recorded).")
    cursor: str | None = Field(default=None, min_length=16, max_length=64,
                               pattern=r"^[A-Za-z0-9_-]+\.[0-9]{1,9}$",
                               description="The previous page's cursor: the next page (the "
                                           "same cursor again: the same page).")

    @model_validator(mode="after")
    def _range_or_cursor(self) -> ExportParams:
        if self.cursor is not None:
            if self.since or self.until or self.unmasked or self.reason:
                raise ValueError("a cursor goes alone: the export's range and grant are fixed "
                                 "when it begins")
            return self
        if self.since is None or self.until is None:
            raise ValueError("'from' and 'to' are required to begin an export")
        if self.until <= self.since:
            raise ValueError("'to' must be after 'from'")
        return self


class OplogComponent(Component):
    """Owns the OpLog. Other components use `.store` once it has started.

    It gets its own [oplog] section and [paths]; the cabinet's identity and compartments only
    fill the log.report figures.
    """

    name = "oplog"
    critical = True
    progress_deadline = 30.0

    def __init__(self, cfg: OplogConfig, paths: Paths, api: ApiServer | None = None, *,
                 cabinet: Cabinet, compartments: Sequence[Compartment],
                 env: Mapping[str, str] | None = None, owner_uid: int | None = None,
                 clock: Callable[[], datetime] | None = None, bus: EventBus | None = None) -> None:
        super().__init__()
        self._cfg = cfg
        self._paths = paths
        self._cabinet = cabinet
        self._compartments = compartments
        self._env = env
        self._owner_uid = owner_uid
        self._clock = clock
        self._store: OpLog | None = None
        self._key: OplogKey | None = None  # the open log's key: backups are copied with it
        self._key_fp: str | None = None
        self._last_purge: dict[str, Any] | None = None
        self._next_purge: datetime | None = None
        self._writer_ok = True
        self._start_recorded = False
        #: device identity, start gate and anchors (docs/oplog.md "Anchors")
        self.anchors = AnchorKeeper(cabinet.id, identity_dir(paths),
                                    every_ops=cfg.anchor_every_ops,
                                    every_min=cfg.anchor_every_min,
                                    owner_uid=owner_uid)
        self._bus = bus
        #: exports being read page by page (log.export cursors)
        self._exports = OpenExports(cfg.max_open_exports, cfg.export_idle_s)
        #: the last integrity check: (when, result); a failed one makes the cabinet degraded
        self.integrity: tuple[str, integrity.IntegrityResult] | None = None
        self._next_check = 0.0
        if api is not None:
            self.register(api)

    @property
    def path(self) -> Path:
        """The database file."""
        return self._paths.state_dir / self._cfg.db_name

    @property
    def store(self) -> OpLog:
        """The open log; raises OplogError before start or after stop."""
        if self._store is None:
            raise OplogError("operation log is not open")
        return self._store

    # ----------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Load the key (refusing unsafe ones), open the log, record the opening and the release.

        `daemon.started` names the release and the schema at every start, so the chain itself
        says which release wrote which records and when a migration ran (`migrated_from`: the
        schema the file had before, 0 for a new file, null when it was already current).
        """
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._store = store = await self._open()
        try:
            # A log that does not extend the last published anchor is refused here, before
            # anything is written to it; root's reset request is recorded first of all.
            reset = await self.anchors.gate(store)
            if reset is not None:
                await store.append("oplog.reset", actor=f"uid:{reset.uid}",
                                   body=reset.record_body())
        except BaseException:
            self._store = None
            await store.close()
            raise
        self._key_fp = store.key_fingerprint
        ok = await self.check_integrity()
        try:
            await self._record_start()
        except ClockNotSet as exc:
            # a board without a real-time clock before time sync: serve (everything that would
            # be recorded answers clock_not_set), record the start once the clock is set
            log.error("not recording operations until the clock is set: %s", exc)
            self._start_recorded = False
        except Exception as exc:
            if ok:
                raise
            # A damaged file may refuse the append too: the cabinet still starts, degraded,
            # so status, the alert and lockerctl restore remain reachable.
            log.error("operation log: start not recorded (the file is damaged): %s", exc)

    async def _record_start(self) -> None:
        store = self.store
        await store.append("oplog.opened", actor="lockerd",
                           body={"pid": os.getpid(), "head_seq": store.head[0],
                                 "key_fingerprint": self._key_fp})
        await store.append("daemon.started", actor="lockerd",
                           body={"version": __version__, "schema": SCHEMA_VERSION,
                                 "migrated_from": store.migrated_from})
        self._start_recorded = True
        await self.anchors.begin(store)

    async def check_integrity(self) -> bool:
        """Run the integrity checks now; a failure is logged and alerted once per finding."""
        store = self.store
        cipher = store.key_fingerprint is not None
        result = await store.read(lambda c: integrity.check(c, cipher=cipher))
        before = self.integrity[1] if self.integrity is not None else None
        self.integrity = (format_ts(store.now()), result)
        self._next_check = time.monotonic() + self._cfg.integrity_check_h * 3600
        if not result.ok and (before is None or before.ok):
            log.critical("operation log %s is DAMAGED (%s): restore a backup "
                         "(lockerctl restore)", self.path, result.summary)
            if self._bus is not None:
                self._bus.publish(Alert(AlertKind.OPLOG_CORRUPT, Severity.CRITICAL, True,
                                        f"integrity check failed: {result.summary[:200]}"))
        elif result.ok and before is not None and not before.ok:
            log.warning("operation log integrity check passes again")
            if self._bus is not None:
                self._bus.publish(Alert(AlertKind.OPLOG_CORRUPT, Severity.INFO, False,
                                        "integrity check passes"))
        return result.ok

    def degraded(self) -> list[str]:
        """`oplog_corrupt` while the last integrity check failed; `disk_full` while appends
        fail because the disk is full (until one goes through again)."""
        reasons = []
        if self.integrity is not None and not self.integrity[1].ok:
            reasons.append("oplog_corrupt")
        if self._store is not None and self._store.disk_full_s is not None \
                and not self._space_back():
            reasons.append("disk_full: the operation log cannot append (the disk is full)")
        return reasons

    def _space_back(self) -> bool:
        try:
            return shutil.disk_usage(self.path.parent).free >= SPACE_BACK_BYTES
        except OSError:
            return False

    async def _open(self) -> OpLog:
        key_file = self._paths.key_file
        key = await asyncio.to_thread(keys.load_key, key_file, self._env, self._owner_uid)
        readers = self._cfg.readers
        try:
            store = await OpLog.open(self.path, key, readers=readers, clock=self._clock,
                                     not_before=RELEASE_FLOOR)
            self._key = key
            return store
        except WrongKey:
            # A rekey that crashed after PRAGMA rekey but before the key file was replaced
            # leaves the new key staged next to the old one: finish it.
            if key_file is None or not keys.pending_path(key_file).exists():
                raise
            staged = await asyncio.to_thread(keys.load_key, keys.pending_path(key_file),
                                             self._env, self._owner_uid)
            store = await OpLog.open(self.path, staged, readers=readers, clock=self._clock,
                                     not_before=RELEASE_FLOOR)
            self._key = staged
            await asyncio.to_thread(keys.commit_new_key, key_file)
            log.warning("finished an interrupted rekey: %s now holds the new key", key_file)
            return store

    async def run(self) -> None:
        """Watch the writer thread (feeds the watchdog) and run the purge once a day."""
        store = self.store
        self._next_purge = self._next_purge_after(store.now())
        while True:
            if not store.writer_alive:
                raise OplogError("operation log writer thread died")
            fresh = time.monotonic() - store.writer_heartbeat < WRITER_STALE_S
            if fresh:
                self.progress()
                if not self._writer_ok:
                    log.info("operation log writer responsive again")
            elif self._writer_ok:
                log.error("operation log writer has not made progress for %.0f s",
                          time.monotonic() - store.writer_heartbeat)
            self._writer_ok = fresh
            if not self._start_recorded and store.guard.problem() is None:
                await self._record_start()
                log.info("the clock is set; recording operations again")
            try:
                if self._start_recorded:
                    await self.anchors.tick(store)
            except (OplogError, OSError) as exc:
                log.error("cannot anchor the log head: %s", exc)
            if time.monotonic() >= self._next_check:
                try:
                    await self.check_integrity()
                except Exception as exc:
                    log.error("integrity check could not run: %s", exc)
                    self._next_check = time.monotonic() + 60.0
            now = store.now()
            if now >= self._next_purge:
                await self.purge_now()
                self._next_purge = self._next_purge_after(now)
            await next_tick(1.0)

    def _next_purge_after(self, now: datetime) -> datetime:
        at = now.astimezone(UTC).replace(hour=self._cfg.purge_hour_utc, minute=0,
                                         second=0, microsecond=0)
        return at if at > now else at + timedelta(days=1)

    async def purge_now(self, actor: str = "lockerd:retention") -> dict[str, int]:
        """Run the retention purge now; a failure is logged and retried at the next run."""
        try:
            done = await retention.purge(self.store, self._cfg, actor=actor)
        except OplogError as exc:
            log.error("retention purge failed: %s", exc)
            raise
        self._last_purge = {"at": format_ts(self.store.now()), "destroyed": done}
        return done

    async def stop(self) -> None:
        """Close the log (queued writes finish first). Idempotent."""
        store, self._store = self._store, None
        self._exports.clear()
        if store is not None:
            try:
                await self.anchors.final(store)
            except Exception as exc:  # the last periodic anchor stands
                log.warning("no final anchor at stop: %s", exc)
            await store.close()

    def status(self) -> dict[str, Any]:
        """Head, writer health, last purge; no personal data, no key."""
        if self._store is None:
            return {"open": False}
        seq, digest = self._store.head
        return {"open": True, "path": str(self.path), "schema": SCHEMA_VERSION,
                "head_seq": seq, "head_hash": digest[:16],
                "writer_alive": self._store.writer_alive, "key": self._key_fp,
                "last_purge": self._last_purge,
                "integrity": None if self.integrity is None else {
                    "at": self.integrity[0], "ok": self.integrity[1].ok,
                    "problems": list(self.integrity[1].problems)},
                "next_purge": format_ts(self._next_purge) if self._next_purge else None}

    # ----------------------------------------------------------------- API

    def register(self, api: ApiServer) -> None:
        """Register log.view, log.verify, log.export, log.report, log.rekey, log.backup and
        identity.show."""
        api.route("log.view", {Role.AUDIT, Role.TECH}, ViewParams, self._api_view)
        api.route("log.verify", {Role.AUDIT, Role.TECH}, None, self._api_verify)
        api.route("log.export", {Role.AUDIT}, ExportParams, self._api_export)
        api.route("log.report", {Role.AUDIT}, ReportParams, self._api_report)
        api.route("log.rekey", {Role.AUDIT}, None, self._api_rekey)
        api.route("log.backup", {Role.AUDIT}, None, self._api_backup)
        api.route("identity.show", {Role.AUDIT, Role.TECH}, None, self._api_identity)

    def _api_store(self) -> OpLog:
        if self._store is None:
            raise ApiError("unavailable", "the operation log is not open")
        return self._store

    async def _api_view(self, params: ViewParams, caller: Caller) -> dict[str, Any]:
        ops = await audit.view(self._api_store(), since=params.since, until=params.until,
                               kinds=params.kind, compartment=params.compartment,
                               after_seq=params.after_seq, limit=params.limit,
                               before_seq=params.before_seq, newest_first=params.newest_first)
        full = len(ops) == params.limit
        if params.newest_first:  # the next (older) page: before_seq = the last one shown
            return {"operations": ops, "next_before_seq": ops[-1]["seq"] if full else None}
        return {"operations": ops, "next_after_seq": ops[-1]["seq"] if full else None}

    async def _api_identity(self, params: Any, caller: Caller) -> dict[str, Any]:
        self._api_store()
        return self.anchors.describe()

    async def _api_verify(self, params: Any, caller: Caller) -> dict[str, Any]:
        return (await self._api_store().verify()).to_json()

    async def _api_export(self, params: ExportParams, caller: Caller) -> dict[str, Any]:
        if params.unmasked and not caller.is_root:
            log.warning("unmasked export refused to uid %d", caller.uid)
            raise ApiError("forbidden", "unmasked export is for root only")
        if params.unmasked and not params.reason:
            raise ApiError("reason_required", "an unmasked export needs --reason")
        store = self._api_store()
        try:
            if params.cursor is not None:
                token, _, number = params.cursor.partition(".")
                entry = self._exports.get(token, caller.uid)
                want: int | None = int(number)
            else:
                assert params.since is not None
                assert params.until is not None
                self._exports.reserve()
                try:
                    plan = await audit.begin_export(
                        store, since=params.since, until=params.until, uid=caller.uid,
                        masked=not params.unmasked, reason=params.reason,
                        max_rows=self._cfg.max_export_rows)
                except BaseException:
                    self._exports.release()
                    raise
                log.info("log export by uid %d: %d rows, %s (record %d)", caller.uid, plan.rows,
                         "masked" if plan.masked else "UNMASKED", plan.record_seq)
                token = self._exports.add(plan, caller.uid)
                entry = self._exports.get(token, caller.uid)
                want = None
        except audit.ExportTooLarge as exc:
            raise ApiError("too_large", str(exc)) from None
        except ExportCursorError as exc:
            raise ApiError(exc.code, exc.message) from None
        if not entry.plan.masked and not caller.is_root:  # the grant travels with the cursor
            raise ApiError("forbidden", "unmasked export is for root only")
        async with entry.lock:  # one page at a time: the position moves under the lock
            if want is not None:
                try:
                    self._exports.seek(entry, want)
                except ExportCursorError as exc:
                    raise ApiError(exc.code, exc.message) from None
            page = await audit.next_page(store, entry.plan,
                                         max_bytes=self._cfg.export_page_kib * 1024)
        if page.done:
            self._exports.close(token)
            log.info("log export %d done: %d lines", entry.plan.record_seq, entry.plan.sent)
        else:
            self._exports.touch(token)
        plan = entry.plan
        return {"lines": page.lines, "rows": plan.rows, "masked": plan.masked,
                "record_seq": plan.record_seq,
                "cursor": None if page.done else f"{token}.{plan.page}", "sent": plan.sent}

    async def _api_report(self, params: ReportParams, caller: Caller) -> dict[str, Any]:
        try:
            return await self.produce_report(params.since, params.until, params.format,
                                             actor=f"uid:{caller.uid}")
        except regreport.ReportRangeError as exc:
            raise ApiError("bad_params", str(exc)) from None

    def device_key(self) -> DeviceIdentity:
        """The cabinet's Ed25519 identity (loaded or created by the anchor keeper at start)."""
        if self.anchors.identity is None:
            raise OplogError("the device identity is not loaded")
        return self.anchors.identity

    async def build_report(self, since: datetime, until: datetime, fmt: str
                           ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The signed report and the chain body that records it (not yet recorded)."""
        key = self.device_key()
        now = self._clock() if self._clock is not None else datetime.now(UTC)
        report = await regreport.build(
            self.store, self._cabinet, self._compartments, since=since, until=until,
            produced_at=now, device=report_sign.device_fields(key))
        if fmt == "csv":
            text = report_sign.signed_csv(report, key)
            out: dict[str, Any] = {"format": "csv", "csv": text}
            digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        else:
            document = report_sign.signed_json(report, key)
            out = {"format": "json", "document": document}
            digest = report_sign.digest(document)
        body = {"from": report["period"]["from"], "to": report["period"]["to"], "format": fmt,
                "digest": digest, "key_fingerprint": key.fingerprint,
                "operations": report["totals"]["operations"]}
        return out, body

    async def produce_report(self, since: datetime, until: datetime, fmt: str, *,
                             actor: str) -> dict[str, Any]:
        """Build, sign and record (`report.produced`) the regulator report."""
        out, body = await self.build_report(since, until, fmt)
        op = await self.store.append("report.produced", actor=actor, body=body)
        return {**out, "record_seq": op.seq, "digest": body["digest"]}

    async def _api_rekey(self, params: Any, caller: Caller) -> dict[str, Any]:
        if not caller.is_root:
            raise ApiError("forbidden", "rekey is for root only")
        try:
            return await self.rekey(actor=f"uid:{caller.uid}")
        except RekeyRefused as exc:
            raise ApiError("refused", str(exc)) from None

    async def _api_backup(self, params: Any, caller: Caller) -> dict[str, Any]:
        # Root only: the copy holds every record unmasked (encrypted with the log's key, which
        # root holds) and is what a restore, itself root-only, rolls the cabinet back to.
        if not caller.is_root:
            raise ApiError("forbidden", "backup is for root only")
        result = await self.backup(actor=f"uid:{caller.uid}")
        log.info("log backup by uid %d: head %d, staged in %s (record %d)", caller.uid,
                 result["manifest"]["head_seq"], result["stage"], result["record_seq"])
        return result

    async def backup(self, actor: str) -> dict[str, Any]:
        """Stage a consistent copy of the log and the evidence store; record it in the chain.

        The stage (a directory under the state directory) is packed and removed by
        `lockerctl backup`; see lockerd.oplog.backup.
        """
        store = self.store
        assert self._key is not None
        evidence_path = self._paths.state_dir / backup.EVIDENCE_FILE
        evidence = None
        if await asyncio.to_thread(evidence_path.exists):
            evidence = (evidence_path, await store.secret(backup.EVIDENCE_SECRET))
        stage, manifest = await asyncio.to_thread(backup.stage, self.path, self._key, evidence,
                                                  self._paths.state_dir)
        try:
            op = await store.append("oplog.backup", actor=actor,
                                    body=backup.record_body(manifest))
        except BaseException:
            await asyncio.to_thread(shutil.rmtree, stage, True)
            raise
        return {"stage": str(stage), "manifest": manifest, "record_seq": op.seq}

    async def rekey(self, actor: str) -> dict[str, Any]:
        """Rotate the key: stage the new key file, PRAGMA rekey, then swap the key file.

        A crash between the steps is finished at the next start (see _open).
        """
        store = self.store
        key_file, new_key = await asyncio.to_thread(keys.stage_new_key,
                                                    self._paths.key_file, self._env)
        try:
            op = await store.rekey(new_key, actor=actor)
        except BaseException:
            await asyncio.to_thread(keys.discard_new_key, key_file)
            raise
        await asyncio.to_thread(keys.commit_new_key, key_file)
        self._key, self._key_fp = new_key, new_key.fingerprint
        return {"record_seq": op.seq, "key": new_key.fingerprint, "key_file": str(key_file)}
