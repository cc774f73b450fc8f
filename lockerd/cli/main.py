"""`lockerd`: run the daemon, run the simulated demo day, technician tools that need no daemon."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from lockerd import __version__
from lockerd.config import ConfigError, load_config
from lockerd.logsetup import setup_logging


def _cmd_run(args: argparse.Namespace) -> int:
    from lockerd.daemon import run_daemon

    path = Path(args.config)
    try:
        cfg = load_config(path)
    except ConfigError as exc:
        for line in exc.problems:
            print(line, file=sys.stderr)
        return 2
    setup_logging(args.log_level or cfg.logging.level)
    return run_daemon(cfg, path)


def _cmd_demo(args: argparse.Namespace) -> int:
    from lockerd.demo import run_demo

    setup_logging(args.log_level or "WARNING")
    return run_demo(mqtt_host=args.mqtt_host, mqtt_port=args.mqtt_port, keep=args.keep)


def build_parser() -> argparse.ArgumentParser:
    """Subcommands of `lockerd`."""
    parser = argparse.ArgumentParser(prog="lockerd", description="Parcel-locker cabinet daemon.")
    parser.add_argument("--version", action="version", version=f"lockerd {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("run", help="run the daemon")
    p.add_argument("-c", "--config", required=True, help="TOML config file")
    p.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("demo", help="daemon + simulated hardware through a scripted day")
    p.add_argument("--mqtt-host", help="connect the demo cabinet to this broker")
    p.add_argument("--mqtt-port", type=int, default=1883, help="broker port (with --mqtt-host)")
    p.add_argument("--keep", action="store_true", help="keep the demo's state directory")
    p.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `lockerd` console script."""
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
