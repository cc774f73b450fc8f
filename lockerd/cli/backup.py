"""`lockerctl backup` and `lockerctl restore`: an encrypted copy of the log and evidence, put back.

Both are root's: a backup holds every record unmasked (encrypted with the log key root holds),
and a restore replaces the daemon's files. `backup` asks the running daemon for a consistent
copy (`log.backup`, recorded in the chain) and packs it into the --out file; `restore` works
with the daemon stopped (it refuses when the socket answers) and verifies the backup before it
replaces anything (lockerd.oplog.backup). Exit codes as every lockerctl command: 0 ok,
1 refused or failed, 2 usage.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lockerd.cli.output import emit_json, key_values
from lockerd.oplog import backup
from lockerd.oplog.errors import OplogError
from lockerd.oplog.keys import OplogKey

if TYPE_CHECKING:
    from lockerd.cli.lockerctl import Ctx

EXIT_OK = 0
DEFAULT_CONFIG = Path("/etc/lockerd/lockerd.toml")
# Where deploy/systemd/README.md puts the key the unit loads with LoadCredential=.
DEFAULT_KEY = Path("/etc/lockerd/credentials/oplog.key")


def _fail(code: str, message: str) -> Exception:
    from lockerd.cli.lockerctl import CliError

    return CliError(code, message)


def _show(ctx: Ctx, summary: dict[str, Any], line: str) -> int:
    if ctx.json:
        emit_json(summary)
    else:
        print(line)
    return EXIT_OK


def cmd_backup(ctx: Ctx) -> int:
    """Ask the daemon for a consistent copy and pack it into --out (created 0600, never reused)."""
    out = Path(ctx.args.out)
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600)
    except OSError as exc:
        raise _fail("cannot_write", f"cannot create {out}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), 0o600)
            result = ctx.call("log.backup")
            stage = Path(result["stage"])
            # Only ever remove what looks like the daemon's stage (it names the path).
            if stage.parent.name != backup.STAGING_DIR or not (stage / backup.MANIFEST).is_file():
                raise _fail("bad_reply", f"the daemon named {stage} as its backup stage")
            try:
                digest = backup.pack(stage, fh)
            finally:
                shutil.rmtree(stage, ignore_errors=True)
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    manifest = result["manifest"]
    summary = {"file": str(out), "sha256": digest, "size": out.stat().st_size,
               "head_seq": manifest["head_seq"], "verified": manifest["verified"],
               "files": sorted(manifest["files"]), "recorded_as": result["record_seq"]}
    return _show(ctx, summary, key_values([
        ("backup", str(out)), ("size", f"{summary['size']} bytes"), ("sha256", digest),
        ("log", f"operations 1..{manifest['head_seq']}, chain "
                f"{'verified' if manifest['verified'] else 'BROKEN (copied as it is)'}"),
        ("files", ", ".join(summary["files"])),
        ("recorded", f"operation {result['record_seq']}")]))


def _daemon_answers(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(2.0)
        try:
            sock.connect(str(path))
        except OSError:
            return False
    return True


def _key(args: argparse.Namespace, key_file: Path | None, state_owner: int) -> OplogKey:
    """--key, else the config's key file, else the systemd credential's source file; owned by
    root or the daemon user, mode 0600/0400 (the daemon's own checks)."""
    from lockerd.oplog.keys import load_key

    path = Path(args.key) if args.key else key_file or DEFAULT_KEY
    try:
        owner = path.stat().st_uid
    except OSError as exc:
        raise _fail("bad_key", f"{path}: {exc.strerror}") from None
    if owner not in (0, state_owner):
        raise _fail("bad_key", f"{path}: owned by uid {owner}, neither root nor the daemon user")
    try:
        return load_key(path, {}, owner)
    except OplogError as exc:
        raise _fail("bad_key", str(exc)) from None


def cmd_restore(ctx: Ctx) -> int:
    """Replace the log and evidence with a verified backup (root, daemon stopped)."""
    from lockerd.config import load_config

    if os.geteuid() != 0:
        raise _fail("forbidden", "restore is for root only (it replaces the daemon's files)")
    archive = Path(ctx.args.file)
    if not archive.is_file():
        raise _fail("not_found", f"{archive}: no such file")
    cfg = load_config(Path(ctx.args.config) if ctx.args.config else DEFAULT_CONFIG)
    sock = Path(ctx.args.socket) if ctx.args.socket else cfg.paths.socket
    if _daemon_answers(sock):
        raise _fail("daemon_running", f"the daemon answers on {sock}; stop it first "
                                      "(systemctl stop lockerd)")
    state_dir = cfg.paths.state_dir
    if not state_dir.is_dir():
        raise _fail("not_found", f"{state_dir}: the state directory does not exist")
    key = _key(ctx.args, cfg.paths.key_file, state_dir.stat().st_uid)
    try:
        report = asyncio.run(backup.restore(archive, state_dir, key, actor=f"uid:{os.getuid()}",
                                            log_name=cfg.oplog.db_name))
    except backup.BackupRefused as exc:
        raise _fail("refused", f"{exc}; nothing was replaced") from None
    except OplogError as exc:
        raise _fail("failed", f"{exc}; the previous files are back in place") from None
    lost = report["lost_operations"]
    # The restored log no longer extends what the cabinet anchored after the backup: the
    # restore itself is root's explicit reset, recorded and anchored at the next start.
    from lockerd.cli.anchors import request_reset

    report["reset_request"] = str(request_reset(
        cfg, f"restored from backup {archive.name} (operations 1..{report['restored_head_seq']})"))
    return _show(ctx, report, key_values([
        ("restored", f"{archive} (made by {report['made_by']} at {report['created_at']})"),
        ("log", f"operations 1..{report['restored_head_seq']}, chain verified; restore "
                f"recorded as operation {report['record_seq']}"),
        ("replaced", "nothing (no log was there)" if report["kept_aside"] is None else
         f"kept in {report['kept_aside']}"),
        ("not in the backup", "unknown (the replaced log did not open)" if lost is None
         else f"{lost} operation(s) recorded after it; check the compartments")]))


def add_backup_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    """`backup` and `restore` subcommands of lockerctl."""
    p = sub.add_parser("backup", parents=[common],
                       help="consistent encrypted copy of the log and evidence (root)")
    p.add_argument("--out", required=True, help="archive to create (tar, mode 0600, never "
                                                "overwritten)")
    p.set_defaults(func=cmd_backup)
    p = sub.add_parser("restore", parents=[common],
                       help="replace the log and evidence with a verified backup (root, daemon "
                            "stopped)")
    p.add_argument("file", help="archive written by lockerctl backup")
    p.add_argument("--key", help=f"key file the backup was made with (default: the config's "
                                 f"paths.key_file, else {DEFAULT_KEY})")
    p.set_defaults(func=cmd_restore)
