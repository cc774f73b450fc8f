"""`lockerd demo`: the daemon on simulated hardware through a scripted day, printed as a timeline.

Runs as any user: state, socket and a fresh random log key live in a temporary directory.
Every step goes through the real local API socket, as a kiosk would. With mosquitto installed
the demo starts its own broker on a free loopback port, subscribes as the carriers and stages
a broker outage; without it the cabinet works offline and the outbox grows. With
--mqtt-host/--mqtt-port it connects to an existing broker instead.
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

from lockerd.api.client import ApiReplyError, AsyncApiClient
from lockerd.app.daemon import Daemon
from lockerd.config import Config, example_config_path, example_config_text, parse_config
from lockerd.demo import evidence as demo_evidence
from lockerd.demo import flows as demo_flows
from lockerd.demo.identity import scene_id_handover
from lockerd.demo.realname import DEMO_REALNAME_PUBLIC
from lockerd.privacy import mask_waybill
from lockerd.testing.broker import LocalBroker, local_broker, mosquitto_binary
from lockerd.testing.carrier import CarrierClient, Received
from lockerd.testing.passes import demo_key, public_b64


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
    """What each scene gets: the running daemon, an API client, the timeline, the temp dir,
    the demo's own broker (None when it uses another one or none) and the carriers' clients."""

    daemon: Daemon
    api: AsyncApiClient
    timeline: Timeline
    workdir: Path
    broker: LocalBroker | None = None
    carriers: dict[str, CarrierClient] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)

    async def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        """API call that returns the result, or the error reply as a dict."""
        try:
            return await self.api.call(method, params)
        except ApiReplyError as exc:
            return {"refused": exc.code, "message": exc.message}


Scene = Callable[[DemoContext], Awaitable[None]]


def local_settings(workdir: Path) -> dict[str, Any]:
    """The example config as a dict, with state, socket and a fresh random key (0600) moved
    into `workdir`: runs as any user, touches nothing outside it (demo and tests). The carriers
    trust the demo's real-name key, so a cabinet without a reader takes signed drop-offs."""
    data = tomllib.loads(example_config_text())
    data["carriers"] = []
    for carrier in tomllib.loads(example_config_text()).get("carriers", []):
        # the ID-number hash key this carrier shares with the cabinet (ID-checked handovers)
        id_key = workdir / f"{carrier['id']}.idkey"
        id_key.write_text(secrets.token_hex(32) + "\n")
        os.chmod(id_key, 0o600)
        data["carriers"].append({**carrier, "realname_public_key": DEMO_REALNAME_PUBLIC,
                                 "id_hash_key_file": str(id_key)})
    key_file = workdir / "oplog.key"
    key_file.write_text(secrets.token_hex(32) + "\n")
    os.chmod(key_file, 0o600)
    data["paths"] = {"state_dir": str(workdir / "state"), "socket": str(workdir / "api.sock"),
                     "key_file": str(key_file)}
    return data


def demo_config(workdir: Path, *, mqtt_host: str | None = None, mqtt_port: int = 1883) -> Config:
    """`local_settings` for the demo day, connected to a broker when one is given."""
    data = local_settings(workdir)
    # A person closes a door within seconds in the demo, not minutes.
    data.setdefault("doors", {}).update({"close_timeout_s": 20.0})
    # the demo cabinet has an ID-card reader (simulated): drop-offs show a card (Art. 18)
    data.setdefault("hardware", {}).setdefault("idcard", {})["enabled"] = True
    # sf issues offline courier passes with the demo's public test key, and stands in for the
    # operator's platform that may ask for the regulator report
    for carrier in data.get("carriers", []):
        if carrier.get("id") == "sf":
            carrier.update({"pass_public_key": public_b64(demo_key("sf")), "platform": True})
    if mqtt_host:
        data["mqtt"] = {**data.get("mqtt", {}), "enabled": True, "host": mqtt_host,
                        "port": mqtt_port, "tls": False, "reconnect_min_s": 1,
                        "reconnect_max_s": 2}
    return parse_config(data, example_config_path())


async def scene_start(ctx: DemoContext) -> None:
    """The cabinet comes up and reports its components."""
    st = await ctx.call("status")
    ctx.timeline.say("daemon", f"cabinet {st['cabinet']['id']} is {st['state']} "
                               f"(version {st['version']}, {st['backend']} hardware)")
    for name, comp in st["components"].items():
        ctx.timeline.say("daemon", f"  component {name}: {comp['state']}")


async def scene_maintenance(ctx: DemoContext) -> None:
    """A technician opens a compartment; then a jammed latch blocks another one."""
    res = await ctx.call("doors.open", {"compartment": 2, "reason": "weekly latch check"})
    ctx.timeline.say("doors", f"technician opens compartment 2: {res.get('outcome')} "
                              f"after {res.get('pulses')} pulse(s), recorded in the log")
    sim = ctx.daemon.doors.board_set.sim if ctx.daemon.doors.board_set else None
    if sim is None:
        return
    comp = ctx.daemon.cfg.compartment(8)
    assert comp is not None
    bus = next(b.bus for b in ctx.daemon.cfg.hardware.boards if b.address == comp.board)
    sim.faults.jam(bus, comp.board, comp.channel)
    ctx.timeline.say("sim", "the latch of compartment 8 jams")
    res = await ctx.call("doors.open", {"compartment": 8, "reason": "demo: open a jammed door"})
    ctx.timeline.say("doors", f"open compartment 8: {res.get('refused') or res.get('outcome')} "
                              "(one new pulse after reading the state, then blocked)")
    # the domain records the block a moment after the controller reported the jam (write-ahead)
    deadline = time.monotonic() + 10.0
    while True:
        doors = await ctx.call("doors.list")
        blocked = [d["compartment"] for d in doors["doors"] if d["blocked"]]
        if 8 in blocked or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    ctx.timeline.say("doors", f"blocked compartments: {blocked}")
    sim.faults.jam(bus, comp.board, comp.channel, jammed=False)


async def _sync_status(ctx: DemoContext) -> dict[str, Any]:
    st = await ctx.call("status")
    sync: dict[str, Any] = st["components"].get("sync", {})
    # The component refreshes its backlog figure periodically; ask the outbox itself.
    sync["backlog"], _oldest = await ctx.daemon.oplog.store.outbox_stats()
    return sync


async def scene_broker_down(ctx: DemoContext) -> None:
    """The broker goes away: the cabinet keeps working, messages wait in the outbox."""
    if ctx.broker is None:
        sync = await _sync_status(ctx)
        where = "offline (no broker)" if not sync.get("enabled") else f"on {sync.get('broker')}"
        ctx.timeline.say("mqtt", f"carrier link {where}; outbox holds {sync.get('backlog')} "
                                 "message(s)")
        return
    await ctx.broker.stop()
    ctx.timeline.say("mqtt", "broker outage begins (the demo stops its mosquitto)")


async def scene_broker_back(ctx: DemoContext) -> None:
    """The broker returns: the outbox drains in order and the carriers get everything once."""
    # Alerts reach the outbox through the event bus: give the ones raised just now a moment.
    await asyncio.sleep(0.5)
    sync = await _sync_status(ctx)
    if ctx.broker is None:
        ctx.timeline.say("mqtt", f"outbox holds {sync.get('backlog')} message(s) "
                                 f"({'connected' if sync.get('connected') else 'not connected'})")
        return
    ctx.timeline.say("mqtt", f"during the outage {sync.get('backlog')} message(s) waited "
                             "in the outbox")
    await ctx.broker.start()
    ctx.timeline.say("mqtt", "broker back")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        sync = await _sync_status(ctx)
        if sync.get("connected") and sync.get("backlog") == 0:
            break
        await asyncio.sleep(0.1)
    ctx.timeline.say("mqtt", f"outbox drained: backlog {sync.get('backlog')}, "
                             f"{sync.get('acked')} message(s) acknowledged by the broker")
    await asyncio.sleep(0.5)


SCENES: list[Scene] = [
    scene_start, scene_maintenance, demo_flows.scene_couriers,
    # The broker goes down for part of the day: deliveries and a lockout happen offline,
    # their events wait in the outbox and reach the carriers once it is back.
    scene_broker_down, demo_flows.scene_deliveries, demo_flows.scene_wrong_codes,
    scene_broker_back,
    demo_flows.scene_refusal, demo_flows.scene_revoked, demo_flows.scene_dropoff,
    scene_id_handover, demo_flows.scene_overdue, demo_flows.scene_door_never_closes,
    demo_flows.scene_technician,
    demo_evidence.scene_offline_pass, demo_evidence.scene_report,
]


async def _wait_for_socket(path: Path, task: asyncio.Task[int], limit_s: float = 15.0) -> None:
    deadline = time.monotonic() + limit_s
    while not await asyncio.to_thread(path.exists):
        if task.done():
            task.result()
            raise RuntimeError("daemon exited before it was ready")
        if time.monotonic() > deadline:
            raise TimeoutError(f"daemon socket {path} did not appear")
        await asyncio.sleep(0.05)


def _describe(msg: Received, topics_events: dict[str, str]) -> str | None:
    """One masked timeline line for what a carrier received (None: not worth a line)."""
    data = msg.payload
    carrier = topics_events.get(msg.topic)
    if carrier is not None:
        body = data.get("body") or {}
        parts = [f"{data.get('type')} seq {data.get('seq')}"]
        if body.get("compartment") is not None:
            parts.append(f"compartment {body['compartment']}")
        if body.get("waybill"):
            parts.append(f"waybill {mask_waybill(str(body['waybill']))}")
        return f"carrier {carrier} <- " + ", ".join(parts)
    if msg.topic.endswith("/alerts"):
        state = "raised" if data.get("active") else "cleared"
        where = f" (compartment {data['compartment']})" if data.get("compartment") else ""
        return f"carriers <- alert {data.get('kind')} {state}{where}"
    if msg.topic.endswith("/reply"):
        return f"carrier <- reply to {data.get('id')}: {'ok' if data.get('ok') else data.get('error')}"
    return None


async def _watch(tl: Timeline, client: CarrierClient, events_topics: dict[str, str]) -> None:
    while True:
        msg = await client.messages.get()
        line = _describe(msg, events_topics)
        if line:
            tl.say("mqtt", line)


async def demo_day(workdir: Path, *, mqtt_host: str | None = None, mqtt_port: int = 1883,
                   timeline: Timeline | None = None, scenes: list[Scene] | None = None,
                   own_broker: bool = True) -> Timeline:
    """Run the daemon and every scene in order; always stop the daemon cleanly."""
    tl = timeline or Timeline()
    async with contextlib.AsyncExitStack() as stack:
        broker: LocalBroker | None = None
        if mqtt_host is None and own_broker and mosquitto_binary() is not None:
            (workdir / "broker").mkdir()
            broker = await stack.enter_async_context(local_broker(workdir / "broker"))
            mqtt_host, mqtt_port = "127.0.0.1", broker.port
            tl.say("mqtt", f"demo broker (mosquitto) on 127.0.0.1:{broker.port}")
        elif mqtt_host is None:
            tl.say("mqtt", "no broker (mosquitto not installed): the cabinet runs offline, "
                           "the outbox grows")
        cfg = demo_config(workdir, mqtt_host=mqtt_host, mqtt_port=mqtt_port)
        carriers: dict[str, CarrierClient] = {}
        watchers: list[asyncio.Task[None]] = []
        if mqtt_host is not None:
            events_topics: dict[str, str] = {}
            for i, carrier in enumerate(cfg.carriers):
                client = CarrierClient(mqtt_host, mqtt_port, cfg.cabinet.id, carrier.id,
                                       prefix=cfg.mqtt.prefix, watch_cabinet=i == 0)
                await client.start()
                stack.push_async_callback(client.stop)
                carriers[carrier.id] = client
                events_topics[client.topics.events(carrier.id)] = carrier.id
            for client in carriers.values():
                watchers.append(asyncio.create_task(_watch(tl, client, events_topics)))
            tl.say("mqtt", f"carriers {', '.join(carriers)} subscribed to their own topics")
        daemon = Daemon(cfg)
        tl.say("daemon", f"starting on simulated hardware in {workdir}")
        task = asyncio.create_task(daemon.run(), name="daemon")
        try:
            await _wait_for_socket(cfg.paths.socket, task)
            async with AsyncApiClient(cfg.paths.socket) as api:
                ctx = DemoContext(daemon, api, tl, workdir, broker, carriers)
                for scene in scenes or SCENES:
                    await scene(ctx)
        finally:
            daemon.request_stop()
            code = await task
            tl.say("daemon", f"clean shutdown, exit code {code}")
            for watcher in watchers:
                watcher.cancel()
            for watcher in watchers:
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
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
