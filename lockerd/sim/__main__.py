"""`python -m lockerd.sim`: run the lock-board simulator standalone and print the pty path of each bus."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from lockerd import sim
from lockerd.config import Board, Hardware, SerialPort, load_config
from lockerd.drivers.profiles import PROFILES


def main(argv: list[str] | None = None) -> int:
    """Start the simulator from a config file, or a default two-board bus, until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m lockerd.sim", description=__doc__)
    parser.add_argument("-c", "--config", type=Path, help="lockerd config whose [hardware] to simulate")
    parser.add_argument("-p", "--profile", choices=sorted(PROFILES), default="modbus-waveshare",
                        help="board profile of the two default boards (no config)")
    parser.add_argument("-b", "--baudrate", type=int,
                        help="baud rate (no config; default: the profile's native baud rate)")
    parser.add_argument("--close-after", type=float, default=3.0,
                        help="seconds until the simulated person closes an opened door")
    args = parser.parse_args(argv)
    if args.config:
        hw = load_config(args.config).hardware
    else:
        spec = PROFILES[args.profile]
        hw = Hardware(buses=[SerialPort(baudrate=args.baudrate or spec.native_baud)],
                      boards=[Board(address=a, profile=spec.name) for a in (1, 2)])
    handle = sim.start_for_config(hw, close_after_s=args.close_after)
    try:
        for bus in hw.buses:
            print(f"{bus.name} {handle.port(bus.name)} {bus.baudrate} 8N1", flush=True)
        done = threading.Event()
        signal.signal(signal.SIGINT, lambda *_: done.set())
        signal.signal(signal.SIGTERM, lambda *_: done.set())
        done.wait()
    finally:
        handle.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
