"""`lockerctl identity`, `verify-log --anchors FILE` and `reset-log`: the cabinet's anchored log.

`identity` asks the daemon for the device's public key and fingerprint (for enrolment at the
operator). `verify-log --anchors` proves the local log extends every anchor a carrier or the
regulator collected; it reads the log file itself (with the log key, so root), because the
cases it exists for (a replaced or cut log) are the ones where the daemon refuses to start.
`reset-log` (root, daemon stopped) leaves the one request that lets the daemon begin a new log
where it had published one; the next start records and anchors it (docs/oplog.md).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lockerd.cli.backup import DEFAULT_CONFIG, DEFAULT_KEY, _daemon_answers, _key
from lockerd.cli.output import emit_json, key_values
from lockerd.domain.timefmt import format_ts
from lockerd.oplog import anchor_state, anchors, chain, sqlcipher
from lockerd.oplog.errors import OplogError
from lockerd.oplog.identity import IDENTITY_FILE, fingerprint, identity_dir, load_identity

if TYPE_CHECKING:
    from lockerd.cli.lockerctl import Ctx
    from lockerd.config import Config

EXIT_OK = 0
EXIT_FAILED = 1
MAX_ANCHOR_LINE = 4096


def _fail(code: str, message: str) -> Exception:
    from lockerd.cli.lockerctl import CliError

    return CliError(code, message)


def cmd_identity(ctx: Ctx) -> int:
    """The device's Ed25519 public key (base64 and hex of the 32 raw bytes) and fingerprint."""
    info = ctx.call("identity.show")
    if ctx.json:
        emit_json(info)
        return EXIT_OK
    latest = info.get("latest_anchor") or {}
    print(key_values([
        ("cabinet", info["cabinet"]), ("algorithm", info["algorithm"]),
        ("public key (base64)", info["public_key_b64"]),
        ("public key (hex)", info["public_key_hex"]),
        ("fingerprint", f"SHA-256 of the raw public key: {info['fingerprint_sha256']}"),
        ("key id", info["key_id"]),
        ("last anchor", f"epoch {latest['epoch']} seq {latest['seq']} at {latest['ts']}"
                        if latest else "none yet")]))
    return EXIT_OK


def _config(ctx: Ctx) -> Config:
    from lockerd.config import load_config

    return load_config(Path(ctx.args.config) if ctx.args.config else DEFAULT_CONFIG)


def parse_public_key(text: str) -> bytes:
    """A raw Ed25519 public key given as 64 hex digits or base64 of its 32 bytes."""
    cleaned = text.strip()
    try:
        raw = bytes.fromhex(cleaned) if len(cleaned) == 64 else \
            base64.b64decode(cleaned, validate=True)
    except (ValueError, binascii.Error):
        raw = b""
    if len(raw) != 32:
        raise _fail("bad_public_key", "the public key must be 64 hex digits or base64 of 32 "
                                      "bytes (as `lockerctl identity` prints it)")
    return raw


def read_anchor_file(path: Path) -> list[anchors.Anchor]:
    """Anchors from JSON lines: bare anchors, or collected messages carrying an `anchor`."""
    found: list[anchors.Anchor] = []
    try:
        lines = path.read_text("utf-8").splitlines()
    except OSError as exc:
        raise _fail("not_found", f"{path}: {exc.strerror}") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            if len(line) > MAX_ANCHOR_LINE * 16:
                raise ValueError("line too long")
            value: Any = json.loads(line)
            if isinstance(value, dict) and "sig" not in value and "anchor" in value:
                value = value["anchor"]
                if value is None:
                    continue
            found.append(anchors.from_json(value))
        except (ValueError, anchors.AnchorError) as exc:
            raise _fail("bad_anchor", f"{path}:{number}: {exc}") from None
    if not found:
        raise _fail("bad_anchor", f"{path}: no anchors in the file")
    return found


def cmd_verify_anchors(ctx: Ctx) -> int:
    """Walk the chain and check it extends every anchor in --anchors; exit 1 on any problem."""
    cfg = _config(ctx)
    collected = read_anchor_file(Path(ctx.args.anchors))
    state_dir = cfg.paths.state_dir
    if ctx.args.public_key:
        public = parse_public_key(ctx.args.public_key)
        source = "given with --public-key"
    else:
        ident = identity_dir(cfg.paths) / IDENTITY_FILE
        try:
            public = load_identity(ident, ident.stat().st_uid).public_raw
        except (OSError, OplogError) as exc:
            raise _fail("no_identity", f"{ident}: {exc}; give the enrolled key with "
                                       "--public-key") from None
        source = f"the local identity {ident}"
    key = _key(ctx.args, cfg.paths.key_file, state_dir.stat().st_uid)
    db = state_dir / cfg.oplog.db_name
    if not db.exists():
        raise _fail("not_found", f"{db}: no operation log")
    try:
        conn = sqlcipher.connect(db, key.raw, readonly=True)
    except OplogError as exc:
        raise _fail("failed", str(exc)) from None
    try:
        walked = chain.verify_chain(conn)
        report = anchors.verify_all(conn, collected, public, cfg.cabinet.id)
    finally:
        conn.close()
    ok = walked.ok and report.ok
    summary = {"ok": ok, "chain": walked.to_json(), "public_key": fingerprint(public),
               **{k: v for k, v in report.to_json().items() if k != "ok"}}
    if ctx.json:
        emit_json(summary)
        return EXIT_OK if ok else EXIT_FAILED
    print(f"public key {fingerprint(public)[:16]}… ({source})")
    print(f"chain {'OK' if walked.ok else 'BROKEN'}: {walked.checked} operations, head "
          f"{walked.head_seq}" + ("" if walked.ok else f" ({walked.reason})"))
    for line in report.problems:
        print(f"ANCHOR NOT EXTENDED: {line}")
    if report.ok:
        print(f"anchors OK: the log extends all {report.checked} anchors (highest seq "
              f"{report.highest}" + (f"; {report.by_reset} predate a recorded reset"
                                     if report.by_reset else "") + ")")
    else:
        print(f"{len(report.problems)} of {report.checked} anchors are not extended by this log")
    return EXIT_OK if ok else EXIT_FAILED


def _state(cfg: Config) -> anchors.Anchor | None:
    try:
        return anchor_state.load_state(identity_dir(cfg.paths))
    except OplogError:
        return None  # a damaged state is one more reason to reset


def request_reset(cfg: Config, reason: str) -> Path:
    """Leave the reset request the next start honours (also after `lockerctl restore`)."""
    directory = identity_dir(cfg.paths)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    state = _state(cfg)
    request = anchor_state.ResetRequest(reason[:anchor_state.REASON_MAX], os.getuid(),
                                        format_ts(datetime.now(UTC)),
                                        None if state is None else state.to_json())
    return anchor_state.save_reset(directory, request)


def cmd_reset_log(ctx: Ctx) -> int:
    """Let the next start begin a new log where one was anchored (root, daemon stopped)."""
    if os.geteuid() != 0:
        raise _fail("forbidden", "reset-log is for root only")
    reason = ctx.args.reason.strip()
    if not 3 <= len(reason) <= anchor_state.REASON_MAX:
        raise _fail("bad_reason", f"--reason must be 3-{anchor_state.REASON_MAX} characters")
    cfg = _config(ctx)
    sock = Path(ctx.args.socket) if ctx.args.socket else cfg.paths.socket
    if _daemon_answers(sock):
        raise _fail("daemon_running", f"the daemon answers on {sock}; stop it first")
    path = request_reset(cfg, reason)
    state = _state(cfg)
    previous = None if state is None else state.to_json()
    summary = {"request": str(path), "previous": previous, "reason": reason}
    if ctx.json:
        emit_json(summary)
        return EXIT_OK
    print(key_values([
        ("reset requested", str(path)),
        ("replaces", "no anchored log" if state is None else
         f"epoch {state.epoch} up to operation {state.seq} ({state.hash[:16]}…, {state.ts})"),
        ("next start", "records oplog.reset with this reason and the old head, then anchors it "
                       "and publishes the anchor")]))
    return EXIT_OK


def add_verify_anchor_options(p: argparse.ArgumentParser) -> None:
    """`verify-log --anchors FILE [--public-key KEY] [--key LOGKEY]`."""
    p.add_argument("--anchors", metavar="FILE",
                   help="JSON lines of anchors (or events carrying one) collected by a carrier "
                        "or the regulator: prove the log extends each (root; reads the log)")
    p.add_argument("--public-key", help="the enrolled public key (hex or base64); default: the "
                                        "local identity's")
    p.add_argument("--key", help=f"log key file (default: the config's paths.key_file, else "
                                 f"{DEFAULT_KEY})")


def add_anchor_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    """`identity` and `reset-log` subcommands (verify-log's --anchors is added by lockerctl)."""
    p = sub.add_parser("identity", parents=[common],
                       help="the cabinet's public key and fingerprint (for enrolment)")
    p.set_defaults(func=cmd_identity)
    p = sub.add_parser("reset-log", parents=[common],
                       help="allow a new log where one was anchored (root, daemon stopped)")
    p.add_argument("--reason", required=True, help="why (recorded as the new log's first "
                                                   "record and anchored)")
    p.set_defaults(func=cmd_reset_log)
