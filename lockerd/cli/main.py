"""`lockerd`: run the daemon, run the simulated demo day, technician tools that need no daemon."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from lockerd import __version__
from lockerd.app.logsetup import setup_logging
from lockerd.config import ConfigError, load_config


def _cmd_run(args: argparse.Namespace) -> int:
    from lockerd.app.daemon import run_daemon
    from lockerd.app.process import forbid_core_dumps

    forbid_core_dumps()
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
    from lockerd.demo.day import run_demo

    setup_logging(args.log_level or "WARNING")
    if args.kiosk:
        from lockerd.kiosk.demo import run_kiosk_demo

        return run_kiosk_demo(args.kiosk_port, keep=args.keep)
    return run_demo(mqtt_host=args.mqtt_host, mqtt_port=args.mqtt_port, keep=args.keep)


def _cmd_kiosk(args: argparse.Namespace) -> int:
    import asyncio

    from lockerd.kiosk.app import KioskSettings
    from lockerd.kiosk.serve import run

    setup_logging(args.log_level or "INFO")
    socket_path = Path(args.socket) if args.socket else None
    if socket_path is None:
        try:
            socket_path = load_config(Path(args.config)).paths.socket
        except ConfigError as exc:
            for line in exc.problems:
                print(line, file=sys.stderr)
            return 2
    settings = KioskSettings(socket=socket_path, panel=args.panel, port=args.port,
                             idle_timeout_s=args.idle_timeout)
    return asyncio.run(run(settings))


def _cmd_config_example(_args: argparse.Namespace) -> int:
    from lockerd.config import example_config_text

    sys.stdout.write(example_config_text())
    return 0


def _cmd_fleet_watch(args: argparse.Namespace) -> int:
    from lockerd.sync import fleet

    host, port = fleet.parse_broker(args.broker, tls=args.tls)
    broker = fleet.Broker(host, port, tls=args.tls, ca_file=args.ca_file,
                          cert_file=args.cert_file, key_file=args.key_file)
    return fleet.run(broker, prefix=args.prefix, once_after_s=args.once, refresh_s=args.refresh,
                     out=sys.stdout)


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
    p.add_argument("--kiosk", action="store_true",
                   help="instead of the scripted day: the demo cabinet with its touchscreen app, "
                        "to click through in a browser (prints the URL and demo credentials)")
    p.add_argument("--kiosk-port", type=int, default=8080,
                   help="port on 127.0.0.1 for --kiosk (0: any free one)")
    p.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("kiosk", help="serve the touchscreen on 127.0.0.1 (a panel-role client)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("-c", "--config", default="/etc/lockerd/lockerd.toml",
                       help="the daemon's config, for its socket path")
    where.add_argument("--socket", help="the daemon's API socket (instead of --config)")
    p.add_argument("--panel", default="kiosk-1", help="this screen's panel id")
    p.add_argument("--port", type=int, default=8080, help="port on 127.0.0.1 (0: any free one)")
    p.add_argument("--idle-timeout", type=float, default=60.0,
                   help="seconds without a touch before the screen returns home")
    p.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    p.set_defaults(func=_cmd_kiosk)

    p = sub.add_parser("config", help="configuration helpers")
    config_sub = p.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    p = config_sub.add_parser("example", help="print the example config (runs as-is on the simulator)")
    p.set_defaults(func=_cmd_config_example)

    p = sub.add_parser("fleet-watch", help="one line per cabinet from the retained health "
                                           "telemetry (an operator's view; no daemon)")
    p.add_argument("--broker", required=True, help="HOST[:PORT] of a regional or central broker")
    p.add_argument("--prefix", default="lockers", help="topic prefix of the cabinets")
    p.add_argument("--tls", action="store_true", help="connect with TLS (port 8883 by default)")
    p.add_argument("--ca-file", help="CA bundle for --tls")
    p.add_argument("--cert-file", help="client certificate for --tls")
    p.add_argument("--key-file", help="client key for --tls")
    p.add_argument("--once", type=float, metavar="SECONDS",
                   help="collect this long, print the table once and exit")
    p.add_argument("--refresh", type=float, default=2.0, help="seconds between redraws")
    p.set_defaults(func=_cmd_fleet_watch)

    # Parsed by lockerd.camera.check itself (main() hands it the rest of the arguments).
    sub.add_parser("camera-check", add_help=False,
                   help="judge saved frames against a reference image (no daemon)")
    sub.add_parser("doctor", add_help=False,
                   help="check what the daemon needs on this box (no daemon)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `lockerd` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["camera-check"]:
        from lockerd.camera import check as camera_check

        return camera_check.main(argv[1:])
    if argv[:1] == ["doctor"]:
        from lockerd.cli import doctor

        return doctor.main(argv[1:])
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
