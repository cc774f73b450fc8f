"""A private mosquitto on a free loopback port, for tests and `lockerd demo`."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

MOSQUITTO_PATHS = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")


def mosquitto_binary() -> str | None:
    """Path of the mosquitto binary, or None when it is not installed."""
    found = shutil.which("mosquitto")
    if found:
        return found
    return next((p for p in MOSQUITTO_PATHS if Path(p).is_file()), None)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True, slots=True)
class Bridge:
    """A bridge from this broker to another (a regional broker to the central one), as
    deploy/mosquitto/regional-bridge.conf sets it up, minus TLS: a persistent session on both
    sides (`cleansession false`), so messages published while the link is down are queued on
    this side and delivered once it is back; QoS 1 both ways for the whole `topic` tree."""

    name: str
    port: int
    topic: str = "lockers/#"
    restart_s: int = 1

    def conf_lines(self) -> list[str]:
        """The `connection` block of mosquitto.conf."""
        return [
            f"connection {self.name}",
            f"address 127.0.0.1:{self.port}",
            f"topic {self.topic} both 1",
            "cleansession false",
            f"remote_clientid bridge-{self.name}",
            f"local_clientid bridge-{self.name}-local",
            "try_private true",          # the far broker knows a bridge: no loops
            "notifications false",
            "bridge_protocol_version mqttv311",
            f"restart_timeout {self.restart_s}",
            "keepalive_interval 5",
            "start_type automatic",
        ]


class LocalBroker:
    """mosquitto bound to 127.0.0.1 only, anonymous, optional persistence; stop()/start() again
    on the same port to stage an outage; `bridges` link it to other brokers (a regional broker
    bridged to a central one)."""

    def __init__(self, workdir: Path, *, port: int | None = None, persistence: bool = True,
                 binary: str | None = None, bridges: Sequence[Bridge] = ()) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.persistence = persistence
        self.bridges = tuple(bridges)
        self.binary = binary or mosquitto_binary()
        if self.binary is None:
            raise FileNotFoundError("mosquitto is not installed")
        self._proc: asyncio.subprocess.Process | None = None
        self.conf = workdir / "mosquitto.conf"
        self.log_file = workdir / "mosquitto.log"

    @property
    def running(self) -> bool:
        """True while the broker process lives."""
        return self._proc is not None and self._proc.returncode is None

    def _write_conf(self) -> None:
        lines = [
            f"listener {self.port} 127.0.0.1",
            # Started as root, mosquitto would switch to user "mosquitto" and then silently
            # fail to write persistence into our directory: stay the user who started it.
            f"user {getpass.getuser()}",
            "allow_anonymous true",
            f"persistence {'true' if self.persistence else 'false'}",
            f"persistence_location {self.workdir}/",
            "autosave_interval 1",
            "max_queued_messages 0",     # a carrier offline for a day must lose nothing
            "max_inflight_messages 100",
            "persistent_client_expiration 1d",
            f"log_dest file {self.log_file}",
            "log_type error",
            "log_type warning",
        ]
        for bridge in self.bridges:
            lines += bridge.conf_lines()
        self.conf.write_text("\n".join(lines) + "\n")

    async def start(self, limit_s: float = 10.0) -> None:
        """Start (or restart) the broker and wait until it accepts connections."""
        if self.running:
            return
        assert self.binary is not None
        await asyncio.to_thread(self._write_conf)
        self._proc = await asyncio.create_subprocess_exec(
            self.binary, "-c", str(self.conf), stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        deadline = asyncio.get_running_loop().time() + limit_s
        while True:
            if self._proc.returncode is not None:
                raise RuntimeError(f"mosquitto exited with {self._proc.returncode}; "
                                   f"see {self.log_file}")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                if asyncio.get_running_loop().time() > deadline:
                    raise TimeoutError(f"mosquitto did not listen on {self.port}") from None
                await asyncio.sleep(0.02)
                continue
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return

    async def stop(self, limit_s: float = 5.0) -> None:
        """Stop the broker (SIGTERM: persistence is saved), kill it if it hangs. Idempotent."""
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), limit_s)
        except TimeoutError:
            proc.kill()
            await proc.wait()


@contextlib.asynccontextmanager
async def local_broker(workdir: Path | None = None, *, persistence: bool = True,
                       port: int | None = None) -> AsyncIterator[LocalBroker]:
    """`async with local_broker() as broker:` -> a running LocalBroker (`broker.port`)."""
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lockerd-mqtt-")))
        broker = LocalBroker(workdir, port=port, persistence=persistence)
        await broker.start()
        try:
            yield broker
        finally:
            await broker.stop()
