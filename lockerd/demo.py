"""`lockerd demo`: the daemon on simulated hardware through a scripted day, printed as a timeline.

Runs as any user with no broker: state, socket and a fresh random log key live in a
temporary directory. Every step goes through the real local API socket, as a kiosk would.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import sys
import tempfile
import time
import tomllib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lockerd.client import ApiReplyError, AsyncApiClient
from lockerd.config import Config, parse_config
from lockerd.daemon import Daemon

EXAMPLE_CONFIG = Path(__file__).resolve().parent.parent / "config.example.toml"


class Timeline:
    """Prints numbered, time-stamped lines; the demo's output is its timeline."""

    def __init__(self, out: Any = None) -> None:
        self._t0 = time.monotonic()
        self._out = out or sys.stdout
        self.lines: list[str] = []

    def say(self, area: str, text: str) -> None:
        """One timeline entry."""
        line = f"[{time.monotonic() - self._t0:7.2f}s] {area:<9} {text}"
        self.lines.append(line)
        print(line, file=self._out, flush=True)


@dataclass
class DemoContext:
    """What each scene gets: the running daemon, an API client, the timeline, the temp dir."""

    daemon: Daemon
    api: AsyncApiClient
    timeline: Timeline
    workdir: Path
    extras: dict[str, Any] = field(default_factory=dict)

    async def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        """API call that returns the result, or the error reply as a dict."""
        try:
            return await self.api.call(method, params)
        except ApiReplyError as exc:
            return {"refused": exc.code, "message": exc.message}


Scene = Callable[[DemoContext], Awaitable[None]]


def demo_config(workdir: Path, *, mqtt_host: str | None = None, mqtt_port: int = 1883) -> Config:
    """The example config with state, socket and key moved into `workdir`."""
    data = tomllib.loads(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    key_file = workdir / "oplog.key"
    key_file.write_text(secrets.token_hex(32) + "\n")
    os.chmod(key_file, 0o600)
    data["paths"] = {"state_dir": str(workdir / "state"), "socket": str(workdir / "api.sock"),
                     "key_file": str(key_file)}
    # A person closes a door within seconds in the demo, not minutes.
    data.setdefault("doors", {}).update({"close_timeout_s": 20.0})
    if mqtt_host:
        data["mqtt"] = {**data.get("mqtt", {}), "enabled": True, "host": mqtt_host,
                        "port": mqtt_port, "tls": False}
    return parse_config(data, EXAMPLE_CONFIG)


async def scene_start(ctx: DemoContext) -> None:
    """The cabinet comes up and reports its components."""
    st = await ctx.call("status")
    ctx.timeline.say("daemon", f"cabinet {st['cabinet']['id']} is {st['state']} "
                               f"(version {st['version']}, {st['backend']} hardware)")
    for name, comp in st["components"].items():
        ctx.timeline.say("daemon", f"  component {name}: {comp['state']}")


SCENES: list[Scene] = [scene_start]


async def _wait_for_socket(path: Path, task: asyncio.Task[int], limit_s: float = 15.0) -> None:
    deadline = time.monotonic() + limit_s
    while not await asyncio.to_thread(path.exists):
        if task.done():
            task.result()
            raise RuntimeError("daemon exited before it was ready")
        if time.monotonic() > deadline:
            raise TimeoutError(f"daemon socket {path} did not appear")
        await asyncio.sleep(0.05)


async def demo_day(workdir: Path, *, mqtt_host: str | None = None, mqtt_port: int = 1883,
                   timeline: Timeline | None = None, scenes: list[Scene] | None = None) -> Timeline:
    """Run the daemon and every scene in order; always stop the daemon cleanly."""
    tl = timeline or Timeline()
    cfg = demo_config(workdir, mqtt_host=mqtt_host, mqtt_port=mqtt_port)
    daemon = Daemon(cfg)
    tl.say("daemon", f"starting on simulated hardware in {workdir}")
    task = asyncio.create_task(daemon.run(), name="daemon")
    try:
        await _wait_for_socket(cfg.paths.socket, task)
        async with AsyncApiClient(cfg.paths.socket) as api:
            ctx = DemoContext(daemon, api, tl, workdir)
            for scene in scenes or SCENES:
                await scene(ctx)
    finally:
        daemon.request_stop()
        code = await task
        tl.say("daemon", f"clean shutdown, exit code {code}")
    return tl


def run_demo(*, mqtt_host: str | None = None, mqtt_port: int = 1883, keep: bool = False) -> int:
    """Entry point of `lockerd demo`."""
    workdir = Path(tempfile.mkdtemp(prefix="lockerd-demo-"))
    try:
        tl = asyncio.run(demo_day(workdir, mqtt_host=mqtt_host, mqtt_port=mqtt_port))
    finally:
        if keep:
            print(f"state kept in {workdir}")
        else:
            with contextlib.suppress(OSError):
                shutil.rmtree(workdir)
    print(f"demo finished: {len(tl.lines)} timeline entries")
    return 0
