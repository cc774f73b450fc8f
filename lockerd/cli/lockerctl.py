"""lockerctl: the technician's and kiosk's command line; talks to the daemon over the local socket.

Exit codes: 0 ok, 1 refused or failed, 2 usage (DESIGN section 5).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from lockerd.cli.output import emit_json, key_values, table
from lockerd.client import ApiClient, ApiReplyError, ApiUnavailable
from lockerd.config import ConfigError, load_config

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
    print()
    rows = []
    for name, comp in st["components"].items():
        extra = {k: v for k, v in comp.items() if k not in ("state", "last_error", "restarts")}
        detail = ", ".join(f"{k}={v}" for k, v in extra.items()
                           if not isinstance(v, (dict, list)))
        rows.append([name, comp["state"], comp["restarts"], comp["last_error"] or detail or "-"])
    print(table(["component", "state", "restarts", "detail"], rows))
    return EXIT_OK


def cmd_doors(ctx: Ctx) -> int:
    """Every compartment's door, lock wiring and state."""
    doors = ctx.call("doors.list")
    if ctx.json:
        emit_json(doors)
        return EXIT_OK
    rows = [[d["compartment"], d["size"], d["board"], d["channel"], d["door"],
             d.get("occupied"), d["blocked"], d.get("block_reason")] for d in doors]
    print(table(["compartment", "size", "board", "channel", "door", "occupied", "blocked",
                 "reason"], rows))
    return EXIT_OK


def cmd_open(ctx: Ctx) -> int:
    """Technician maintenance open of one compartment (audited)."""
    result = ctx.call("doors.open", {"compartment": ctx.args.compartment,
                                     "reason": ctx.args.reason})
    if ctx.json:
        emit_json(result)
    else:
        print(f"compartment {ctx.args.compartment}: {result['outcome']}"
              + (f" ({result['detail']})" if result.get("detail") else ""))
    return EXIT_OK if result["outcome"] in ("opened", "already_open", "acknowledged") \
        else EXIT_FAILED


def cmd_config_check(ctx: Ctx) -> int:
    """Validate a config file without a daemon: one line per problem, exit 2 when invalid."""
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
    summary = {"file": str(path), "ok": True, "cabinet": cfg.cabinet.id,
               "compartments": len(cfg.compartments), "boards": len(cfg.hardware.boards),
               "backend": cfg.hardware.backend}
    if ctx.json:
        emit_json(summary)
    else:
        print(f"{path}: OK (cabinet {cfg.cabinet.id}, {len(cfg.compartments)} compartments, "
              f"{len(cfg.hardware.boards)} boards, {cfg.hardware.backend} backend)")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """All subcommands; every one accepts --json."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="machine-readable output")
    common.add_argument("--socket", help="API socket path (default: $LOCKERD_SOCKET or "
                                         f"{DEFAULT_SOCKET})")
    common.add_argument("-c", "--config", help="take the socket path from this config file")

    parser = argparse.ArgumentParser(prog="lockerctl", parents=[common],
                                     description="Talk to the lockerd daemon.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("status", parents=[common], help="cabinet state and component health")
    p.set_defaults(func=cmd_status)
    p = sub.add_parser("doors", parents=[common], help="doors and their states")
    p.set_defaults(func=cmd_doors)
    p = sub.add_parser("open", parents=[common], help="maintenance open of one compartment")
    p.add_argument("compartment", type=int, help="compartment number")
    p.add_argument("--reason", required=True, help="why (recorded in the operation log)")
    p.set_defaults(func=cmd_open)

    p = sub.add_parser("config", parents=[common], help="configuration tools")
    csub = p.add_subparsers(dest="config_command", required=True, metavar="SUBCOMMAND")
    c = csub.add_parser("check", parents=[common], help="validate a config file")
    c.add_argument("file")
    c.set_defaults(func=cmd_config_check)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, run, map failures to exit codes."""
    parser = build_parser()
    args = parser.parse_args(argv)
    ctx = Ctx(args)
    func: Command = args.func
    try:
        return func(ctx)
    except ApiReplyError as exc:
        if ctx.json:
            emit_json({"ok": False, "error": {"code": exc.code, "message": exc.message}})
        else:
            print(f"lockerctl: refused: {exc.code}: {exc.message}", file=sys.stderr)
        return EXIT_USAGE if exc.code in ("bad_params", "bad_request", "unknown_method") \
            else EXIT_FAILED
    except ApiUnavailable as exc:
        print(f"lockerctl: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except ConfigError as exc:
        for line in exc.problems:
            print(line, file=sys.stderr)
        return EXIT_USAGE
    finally:
        ctx.close()


if __name__ == "__main__":
    sys.exit(main())
