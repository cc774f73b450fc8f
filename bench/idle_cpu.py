"""Benchmark: idle CPU of the whole daemon, 12 and 96 doors, with and without the camera.

Each round starts the simulated boards in one child process (Modbus, 9600 baud, pty) and
`lockerd run` in another, on the example config with `backend = "real"` pointed at the
simulator's pty: the figure is the daemon's process alone (all its threads), read from
/proc/<pid>/stat (utime + stime) over `--seconds` of rest after start-up and camera learning.
With the camera, the daemon's OpenCV driver replays a recorded 640x480 MJPEG file at 15 fps
(what a USB camera sends), so decoding costs what it costs on a camera. MQTT is off.
12 doors: the example cabinet (2 eight-channel boards); 96 doors: 12 boards on one bus.
Targets (issue 19): <= 1 % of a core with the camera and 12 doors; <= 1 % for 96 doors
without the camera. Also printed: RSS (target <= 80 MB with the camera).

`--repo PATH` runs the daemon and simulator from another checkout (e.g. an export of an
older commit, for a before/after figure); the bench itself and the config come from here.

Usage: python bench/idle_cpu.py [--seconds 30] [--rounds 3] [--repo PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.fixtures.daemon_proc import dump_toml, make_config  # noqa: E402

TARGET_PCT = 1.0
TARGET_RSS_MB = 80.0
TICK = os.sysconf("SC_CLK_TCK")
SETTLE_S = 12.0


def _boards(doors: int) -> tuple[int, int]:
    """(boards, channels per board) of a cabinet of `doors` doors."""
    return (2, 8) if doors == 12 else (doors // 8, 8)


def _hardware(doors: int, backend: str, port: str) -> dict[str, Any]:
    boards, channels = _boards(doors)
    return {"backend": backend,
            "buses": [{"name": "bus0", "port": port, "baudrate": 9600}],
            "boards": [{"address": a, "bus": "bus0", "profile": "modbus-waveshare",
                        "channels": channels} for a in range(1, boards + 1)]}


def sim_child(doors: int) -> None:
    """The simulated boards until stdin closes; prints the bus's pty path."""
    from lockerd import sim
    from lockerd.config import Hardware

    hw = Hardware.model_validate(_hardware(doors, "sim", "/dev/null"))
    handle = sim.start_for_config(hw, close_after_s=3.0)
    try:
        print(json.dumps({"port": handle.port("bus0")}), flush=True)
        sys.stdin.read()
    finally:
        handle.close()


def write_video(path: Path, seconds: float = 8.0) -> None:
    """A 640x480 MJPEG recording of the simulated cabinet front at 15 fps."""
    import cv2

    from lockerd.sim.camera import SimCamera

    cam = SimCamera(640, 480)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 15.0, (640, 480))
    for i in range(int(seconds * 15)):
        writer.write(cam.render("normal", i / 15))
    writer.release()


def _compartments(doors: int) -> list[dict[str, Any]]:
    boards, channels = _boards(doors)
    slots = [(b, c) for b in range(1, boards + 1) for c in range(channels)][:doors]
    return [{"id": i + 1, "size": "SML"[i % 3], "board": b, "channel": c}
            for i, (b, c) in enumerate(slots)]


def _fit(config: Path, repo: Path) -> None:
    """Drop the settings this checkout's example config has and the other's lacks, in any plain
    section (a before/after run: settings added since would fail its strict config)."""
    theirs = tomllib.loads((repo / "lockerd" / "config" / "example.toml").read_text())
    ours = tomllib.loads((REPO / "lockerd" / "config" / "example.toml").read_text())
    data = tomllib.loads(config.read_text())
    dropped = False
    for section, values in data.items():
        new = set(ours.get(section, {})) - set(theirs.get(section, {})) \
            if isinstance(ours.get(section), dict) else set()
        for key in [k for k in values if k in new] if isinstance(values, dict) else []:
            del values[key]
            dropped = True
    if dropped:
        config.write_text(dump_toml(data), encoding="utf-8")


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def one_round(doors: int, camera: bool, seconds: float, repo: Path, video: Path
              ) -> tuple[float, float]:
    """(CPU % of a core, RSS MB) of the daemon at rest."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONASYNCIODEBUG"}
    env["PYTHONPATH"] = str(repo)
    work = Path(tempfile.mkdtemp(prefix="idle-cpu-"))
    sim = subprocess.Popen([sys.executable, __file__, "--sim", str(doors)], env=env,
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    daemon: subprocess.Popen[bytes] | None = None
    try:
        assert sim.stdout is not None
        port = json.loads(sim.stdout.readline())["port"]
        cam: dict[str, Any] = {"enabled": camera, "source": str(video)}
        config = make_config(work, hardware=_hardware(doors, "real", port),
                             compartments=_compartments(doors), camera=cam,
                             mqtt={"enabled": False}, gpio={"enabled": False})
        _fit(config, repo)
        daemon = subprocess.Popen([sys.executable, "-m", "lockerd", "run", "-c", str(config)],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  cwd=str(repo))
        pid = daemon.pid
        time.sleep(SETTLE_S)
        if daemon.poll() is not None:
            raise SystemExit(f"daemon exited {daemon.returncode}")
        cpu0, t0 = _cpu_s(pid), time.monotonic()
        time.sleep(seconds)
        cpu, wall = _cpu_s(pid) - cpu0, time.monotonic() - t0
        return 100 * cpu / wall, _rss_mb(pid)
    finally:
        if daemon is not None:
            daemon.terminate()
            daemon.wait(30)
        if sim.stdin is not None:
            sim.stdin.close()
        sim.wait(10)
        shutil.rmtree(work, ignore_errors=True)


def _fmt(values: list[float]) -> str:
    return f"{statistics.median(values):5.2f} ({min(values):.2f}-{max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30.0, help="measured window per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repo", type=Path, default=REPO, help="checkout the daemon runs from")
    parser.add_argument("--only", choices=["12-cam", "12", "96-cam", "96"], action="append")
    parser.add_argument("--sim", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sim:
        sim_child(args.sim)
        return
    video = Path(tempfile.mkdtemp(prefix="idle-cpu-video-")) / "front.avi"
    write_video(video)
    print(f"== idle CPU of the daemon (simulator in its own process), {args.rounds} rounds x "
          f"{args.seconds:g} s after {SETTLE_S:g} s settling; median (min-max); daemon from "
          f"{args.repo}")
    cases = [(12, True), (12, False), (96, True), (96, False)]
    try:
        for doors, camera in cases:
            label = f"{doors}{'-cam' if camera else ''}"
            if args.only and label not in args.only:
                continue
            runs = [one_round(doors, camera, args.seconds, args.repo, video)
                    for _ in range(args.rounds)]
            pct, rss = [r[0] for r in runs], [r[1] for r in runs]
            line = (f"{doors:>3} doors, camera {'on ' if camera else 'off'}: CPU {_fmt(pct)} % "
                    f"of a core, RSS {_fmt(rss)} MB")
            med = statistics.median(pct)
            if (doors, camera) in ((12, True), (96, False)):
                line += (f"  target <= {TARGET_PCT:g} %: {med / TARGET_PCT:.2f}x of target "
                         f"({'met' if med <= TARGET_PCT else 'NOT met'})")
            if camera:
                rmed = statistics.median(rss)
                line += (f"; RSS target <= {TARGET_RSS_MB:g} MB: "
                         f"{'met' if rmed <= TARGET_RSS_MB else 'NOT met'}")
            print(line, flush=True)
    finally:
        shutil.rmtree(video.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
