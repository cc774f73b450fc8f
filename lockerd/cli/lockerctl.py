"""lockerctl: the technician's and kiosk's command line; talks to the daemon over the local socket.

Exit codes: 0 ok, 1 refused or failed, 2 usage (docs/local-api.md).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from lockerd.api.client import ApiClient, ApiReplyError, ApiUnavailable
from lockerd.cli.anchors import add_anchor_commands, add_verify_anchor_options, cmd_verify_anchors
from lockerd.cli.backup import add_backup_commands
from lockerd.cli.docgen import add_doc_commands
from lockerd.cli.logview import add_log_command
from lockerd.cli.maintenance import add_maintenance_command
from lockerd.cli.output import clip, display_width, emit_json, key_values, table
from lockerd.cli.panel import add_panel_commands
from lockerd.cli.report import add_report_command
from lockerd.cli.tech import add_tech_commands, human_age
from lockerd.config import ConfigError, load_config
from lockerd.domain.timefmt import format_ts

DEFAULT_SOCKET = Path("/run/lockerd/api.sock")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class Ctx:
    """What every subcommand gets: parsed args and a lazily opened client."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.json: bool = args.json
        self._client: ApiClient | None = None

    def socket_path(self) -> Path:
        """--socket, then $LOCKERD_SOCKET, then the config's paths.socket, then the default."""
        if self.args.socket:
            return Path(self.args.socket)
        env = os.environ.get("LOCKERD_SOCKET")
        if env:
            return Path(env)
        if self.args.config:
            return load_config(Path(self.args.config)).paths.socket
        return DEFAULT_SOCKET

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        """Call the daemon; errors become exceptions handled in main()."""
        if self._client is None:
            self._client = ApiClient(self.socket_path())
        return self._client.call(method, params)

    def close(self) -> None:
        """Close the connection."""
        if self._client is not None:
            self._client.close()


Command = Callable[[Ctx], int]


class CliError(Exception):
    """A failure on this side of the socket (a file, the terminal), with a stable code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def cmd_status(ctx: Ctx) -> int:
    """Cabinet state and component health."""
    st = ctx.call("status")
    if ctx.json:
        emit_json(st)
        return EXIT_OK
    cab = st["cabinet"]
    print(key_values([("cabinet", f"{cab['id']}  {cab['name']}"),
                      ("registration", cab["registration_number"]),
                      ("state", st["state"]), ("version", st["version"]),
                      ("backend", st["backend"]), ("uptime", f"{st['uptime_s']} s")]))
    reasons = st.get("reasons") or []
    if reasons:
        print()
        print(table(["degraded because", "for", "since"],
                    [[r["detail"], human_age(r["age_s"]), r["since"]] for r in reasons]))
    print()
    rows = []
    for name, comp in st["components"].items():
        extra = {k: v for k, v in comp.items() if k not in ("state", "last_error", "restarts")}
        detail = ", ".join(f"{k}={v}" for k, v in extra.items()
                           if not isinstance(v, (dict, list)))
        rows.append([name, comp["state"], comp["restarts"], comp["last_error"] or detail or "-"])
    # 80 columns: the detail gets what the other columns leave (--json has everything)
    used = max(display_width(line) for line in
               table(["component", "state", "restarts"], [r[:3] for r in rows]).splitlines())
    rows = [[*r[:3], clip(str(r[3]), max(10, 80 - used - 2))] for r in rows]
    print(table(["component", "state", "restarts", "detail"], rows))
    return EXIT_OK


def cmd_doors(ctx: Ctx) -> int:
    """Every compartment's door, lock wiring and state."""
    result = ctx.call("doors.list")
    if ctx.json:
        emit_json(result)
        return EXIT_OK
    rows = [[d["compartment"], d["size"], d["board"], d["channel"], d["state"],
             d.get("occupied"), d["blocked"], d.get("blocked_reason"), d.get("open_for_s")]
            for d in result["doors"]]
    print(table(["compartment", "size", "board", "channel", "door", "occupied", "blocked",
                 "reason", "open for s"], rows))
    print()
    print(table(["board", "profile", "bus", "port", "baud", "online", "pulses"],
                [[b["address"], b["profile"], b["bus"], b["port"], b["baudrate"], b["online"],
                  b["pulses_sent"]] for b in result["boards"]]))
    return EXIT_OK


def cmd_camera(ctx: Ctx) -> int:
    """Camera guard verdict, intake gate and scores."""
    st = ctx.call("camera.status")
    if ctx.json:
        emit_json(st)
        return EXIT_OK
    intake = st["intake"]
    print(key_values([("verdict", st["verdict"]),
                      ("intake", "open" if intake["open"] else f"closed ({intake['reason']})"),
                      ("reference", st["reference"]), ("frame age", f"{st['frame_age_s']} s"),
                      ("samples", st["samples"]), ("source", st["source"])]))
    if st["scores"]:
        print()
        print(table(["score", "value"], [[k, round(v, 3) if isinstance(v, float) else v]
                                        for k, v in st["scores"].items()]))
    return EXIT_OK


def cmd_open(ctx: Ctx) -> int:
    """Technician maintenance open of one compartment (audited)."""
    try:
        result = ctx.call("doors.open", {"compartment": ctx.args.compartment,
                                         "reason": ctx.args.reason})
    except ApiReplyError as exc:
        # door_jammed / door_failed carry the outcome too: show it, exit 1.
        result = exc.reply.get("result")
        if not isinstance(result, dict):
            raise
    if ctx.json:
        emit_json(result)
    else:
        print(f"compartment {ctx.args.compartment}: {result['outcome']}"
              + (f" ({result['detail']})" if result.get("detail") else ""))
    return EXIT_OK if result["outcome"] in ("opened", "already_open", "acknowledged") \
        else EXIT_FAILED


def _range(ctx: Ctx, default_days: int) -> dict[str, str]:
    """--from/--to as RFC 3339; --to defaults to now, --from to `default_days` before it."""
    until = ctx.args.to or datetime.now(UTC)
    since = ctx.args.since or until - timedelta(days=default_days)
    return {"from": format_ts(since), "to": format_ts(until)}


def cmd_verify_log(ctx: Ctx) -> int:
    """Walk the hash chain; exit 1 at the first broken link. With --anchors, also prove the log
    extends every collected anchor (lockerd/cli/anchors.py; reads the log file itself)."""
    if ctx.args.anchors:
        return cmd_verify_anchors(ctx)
    result = ctx.call("log.verify")
    if ctx.json:
        emit_json(result)
    elif result["ok"]:
        print(f"chain OK: {result['checked']} operations, head {result['head_seq']} "
              f"{str(result['head_hash'])[:16]}")
    else:
        print(f"chain BROKEN at operation {result['broken_seq']}: {result['reason']} "
              f"({result['checked']} checked)")
    return EXIT_OK if result["ok"] else EXIT_FAILED


def cmd_export(ctx: Ctx) -> int:
    """Export a range as JSON lines (masked unless --unmasked, root with --reason); recorded."""
    params: dict[str, Any] = _range(ctx, 30)
    if ctx.args.unmasked:
        params["unmasked"] = True
        params["reason"] = ctx.args.reason
    out = Path(ctx.args.out)
    # The file is made before the daemon records the export, so an export that cannot be written
    # is never recorded. O_EXCL|O_NOFOLLOW: personal data never lands in an existing file (with
    # its old mode) or behind a symlink planted by someone else; 0600 whatever the umask.
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600)
    except OSError as exc:
        raise CliError("cannot_write", f"cannot create {out}: {exc.strerror}") from None
    written = 0
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            os.fchmod(fh.fileno(), 0o600)
            # The first call records the export and returns its first page; each page is
            # written before the next is asked for, so neither side holds the whole range.
            result = ctx.call("log.export", params)
            while True:
                fh.writelines(line + "\n" for line in result["lines"])
                written += len(result["lines"])
                if not result.get("cursor"):
                    break
                result = _next_export_page(ctx, result["cursor"])
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    summary = {"file": str(out), "rows": written, "masked": result["masked"],
               "recorded_as": result["record_seq"]}
    if ctx.json:
        emit_json(summary)
    else:
        print(f"{written} rows ({'masked' if result['masked'] else 'UNMASKED'}) written "
              f"to {out}; the export is recorded as operation {result['record_seq']}")
    return EXIT_OK


def _next_export_page(ctx: Ctx, cursor: str) -> Any:
    """The next page of an open export; an auditor's connection is rate-limited (docs/local-api.md
    "Limits"), so a `rate_limited` reply (the request never ran) waits a moment and asks again."""
    for _ in range(600):
        try:
            return ctx.call("log.export", {"cursor": cursor})
        except ApiReplyError as exc:
            if exc.code != "rate_limited":
                raise
            time.sleep(0.05)
    raise CliError("rate_limited", "the daemon kept refusing the export's next page")


def cmd_rekey(ctx: Ctx) -> int:
    """Rotate the operation-log key (root only); recorded in the chain."""
    result = ctx.call("log.rekey")
    if ctx.json:
        emit_json(result)
    else:
        print(f"log rekeyed (key {result['key']}), recorded as operation {result['record_seq']}")
    return EXIT_OK


def cmd_commission(ctx: Ctx) -> int:
    """Walk every channel with a technician and write the compartment map (TOML)."""
    from lockerd.cli import commission

    return commission.commission(ctx.call, input, print, Path(ctx.args.out))


def cmd_test_all(ctx: Ctx) -> int:
    """Open each free compartment once, confirm it opened and closed, print a report."""
    from lockerd.cli import commission

    return commission.check_all_doors(ctx.call, print)


def cmd_config_check(ctx: Ctx) -> int:
    """Validate a config file without a daemon, then every file it names (lockerd/cli/
    config_files.py): one line per problem; exit 2 when the config is invalid, 1 when a file,
    directory or device it names is missing, wrongly owned or moded, or unreadable."""
    from lockerd.cli import config_files
    from lockerd.cli.doctor import User

    path = Path(ctx.args.file)
    try:
        cfg = load_config(path)
    except ConfigError as exc:
        if ctx.json:
            emit_json({"file": str(path), "ok": False, "problems": exc.problems})
        else:
            for line in exc.problems:
                print(line, file=sys.stderr)
        return EXIT_USAGE
    try:
        user = User.named(ctx.args.user)
    except KeyError:
        return _fail(ctx, "bad_request", f"no user {ctx.args.user!r}", EXIT_USAGE)
    checks = config_files.check_config_files(cfg, user)
    good = all(c.ok for c in checks)
    summary = {"file": str(path), "ok": good, "cabinet": cfg.cabinet.id,
               "compartments": len(cfg.compartments), "boards": len(cfg.hardware.boards),
               "backend": cfg.hardware.backend, "user": user.name,
               "files": [{"name": c.name, "ok": c.ok, "detail": c.detail, "fix": c.fix}
                         for c in checks]}
    if ctx.json:
        emit_json(summary)
    else:
        for check in checks:
            print(check.line())
        print(f"{path}: {'OK' if good else 'PROBLEMS'} (cabinet {cfg.cabinet.id}, "
              f"{len(cfg.compartments)} compartments, {len(cfg.hardware.boards)} boards, "
              f"{cfg.hardware.backend} backend; files judged for {user.name})")
    return EXIT_OK if good else EXIT_FAILED


def _when(text: str) -> datetime:
    """An RFC 3339 / ISO 8601 time; a date or a naive time is taken as UTC."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an RFC 3339 time: {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _common_options(*, suppress: bool) -> argparse.ArgumentParser:
    """--json, --socket, -c: accepted before and after the subcommand.

    The subcommands' copies default to SUPPRESS so that an option given before the subcommand
    (`lockerctl --json status`) is not overwritten by the subparser's default.
    """
    common = argparse.ArgumentParser(add_help=False)
    default: Any = argparse.SUPPRESS if suppress else None
    common.add_argument("--json", action="store_true",
                        default=argparse.SUPPRESS if suppress else False,
                        help="machine-readable output")
    common.add_argument("--socket", default=default,
                        help=f"API socket path (default: $LOCKERD_SOCKET or {DEFAULT_SOCKET})")
    common.add_argument("-c", "--config", default=default,
                        help="take the socket path from this config file")
    return common


def build_parser() -> argparse.ArgumentParser:
    """All subcommands; every one accepts --json, before or after the subcommand."""
    common = _common_options(suppress=True)
    parser = argparse.ArgumentParser(prog="lockerctl", parents=[_common_options(suppress=False)],
                                     description="Talk to the lockerd daemon.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("status", parents=[common], help="cabinet state and component health")
    p.set_defaults(func=cmd_status)
    p = sub.add_parser("doors", parents=[common], help="doors and their states")
    p.set_defaults(func=cmd_doors)
    p = sub.add_parser("camera", parents=[common], help="camera guard and intake gate")
    p.set_defaults(func=cmd_camera)
    p = sub.add_parser("open", parents=[common], help="maintenance open of one compartment")
    p.add_argument("compartment", type=int, help="compartment number")
    p.add_argument("--reason", required=True, help="why (recorded in the operation log)")
    p.set_defaults(func=cmd_open)
    add_tech_commands(sub, common)

    add_log_command(sub, common, _when)
    add_doc_commands(sub, common, build_parser)
    p = sub.add_parser("verify-log", parents=[common], help="verify the log's hash chain")
    add_verify_anchor_options(p)
    p.set_defaults(func=cmd_verify_log)
    p = sub.add_parser("export", parents=[common], help="export a range (recorded)")
    p.add_argument("--from", dest="since", type=_when, help="start (default: 30 days ago)")
    p.add_argument("--to", type=_when, help="end (default: now)")
    p.add_argument("--out", required=True, help="output file (JSON lines, mode 0600)")
    p.add_argument("--unmasked", action="store_true", help="root only, needs --reason")
    p.add_argument("--reason", help="why an unmasked export is needed (recorded)")
    p.set_defaults(func=cmd_export)
    add_report_command(sub, common, _when)
    p = sub.add_parser("rekey", parents=[common], help="rotate the log key (root)")
    p.set_defaults(func=cmd_rekey)

    add_panel_commands(sub, common)
    add_backup_commands(sub, common)
    add_anchor_commands(sub, common)
    add_maintenance_command(sub, common)

    p = sub.add_parser("commission", parents=[common],
                       help="map lock channels to doors interactively, write a TOML snippet")
    p.add_argument("--out", required=True, help="where to write the compartment map")
    p.set_defaults(func=cmd_commission)
    p = sub.add_parser("test-all", parents=[common],
                       help="open every free compartment once and report")
    p.set_defaults(func=cmd_test_all)

    p = sub.add_parser("config", parents=[common], help="configuration tools")
    csub = p.add_subparsers(dest="config_command", required=True, metavar="SUBCOMMAND")
    c = csub.add_parser("check", parents=[common],
                        help="validate a config file and the files, directories and devices "
                             "it names")
    c.add_argument("file")
    c.add_argument("--user", help="the daemon's user whose access is judged (default: lockerd "
                                  "if it exists, else you)")
    c.set_defaults(func=cmd_config_check)
    return parser


def _fail(ctx: Ctx, code: str, message: str, exit_code: int,
          problems: list[str] | None = None) -> int:
    """One failure report: a JSON error object with --json, a line on stderr otherwise."""
    if ctx.json:
        error: dict[str, Any] = {"code": code, "message": message}
        if problems:
            error["problems"] = problems
        emit_json({"ok": False, "error": error})
    else:
        for line in problems or [f"lockerctl: {code}: {message}"]:
            print(line, file=sys.stderr)
    return exit_code


def _run(ctx: Ctx) -> int:
    func: Command = ctx.args.func
    try:
        return func(ctx)
    except ApiReplyError as exc:
        usage = exc.code in ("bad_params", "bad_request", "unknown_method")
        return _fail(ctx, exc.code, exc.message if ctx.json else f"refused: {exc.message}",
                     EXIT_USAGE if usage else EXIT_FAILED)
    except ApiUnavailable as exc:
        return _fail(ctx, "unavailable", str(exc), EXIT_FAILED)
    except ConfigError as exc:
        return _fail(ctx, "bad_config", "the config file is not valid", EXIT_USAGE,
                     exc.problems)
    except CliError as exc:
        return _fail(ctx, exc.code, exc.message, EXIT_FAILED)
    except (KeyboardInterrupt, EOFError):
        return _fail(ctx, "interrupted", "stopped before the command finished", EXIT_FAILED)
    finally:
        ctx.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, run, map failures to exit codes; never a traceback for a person's mistake."""
    args = build_parser().parse_args(argv)
    try:
        code = _run(Ctx(args))
        sys.stdout.flush()
    except BrokenPipeError:
        # `lockerctl status | head -1`: the reader left. Point stdout at /dev/null so the
        # interpreter's final flush does not raise again (Python's documented recipe).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILED
    return code


if __name__ == "__main__":
    sys.exit(main())
