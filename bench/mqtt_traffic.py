"""Bench: MQTT traffic per operation of one cabinet (daemon on the simulator, real mosquitto), and
what it means for a fleet (docs/fleet.md takes its figures from this script's output).

A sniffer subscribed to `lockers/#` counts every message and its bytes by topic kind while the
cabinet connects, runs N parcel lifecycles (carrier announces over MQTT -> courier delivers ->
recipient picks up) and idles. Wire bytes are the MQTT 5 PUBLISH packet (fixed header, topic,
packet id, empty properties, payload) plus its PUBACK, for one hop (cabinet -> broker or broker
-> one subscriber); every further subscriber of a topic is one more hop.

    python bench/mqtt_traffic.py [--lifecycles 20] [--cabinets 10000] [--parcels-per-day 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from lockerd.testing.broker import LocalBroker
from lockerd.testing.carrier import CarrierClient
from tests.fixtures.cabinet import PIN, Cabinet, courier


def _varint_len(n: int) -> int:
    return 1 if n < 128 else 2 if n < 16384 else 3 if n < 2_097_152 else 4


def wire_bytes(topic: str, payload: int) -> int:
    """One QoS 1 PUBLISH (MQTT 5, no properties) and its 4-byte PUBACK."""
    remaining = 2 + len(topic.encode()) + 2 + 1 + payload
    return 1 + _varint_len(remaining) + remaining + 4


class Sniffer:
    """Counts messages and bytes per topic kind (status, state, health, alerts, cmd, reply, events)."""

    def __init__(self, port: int) -> None:
        self.lock = threading.Lock()
        self.count: dict[str, int] = defaultdict(int)
        self.payload: dict[str, int] = defaultdict(int)
        self.wire: dict[str, int] = defaultdict(int)
        self.last: dict[str, dict[str, Any]] = {}
        self.ready = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-sniffer",
                                  protocol=paho.MQTTv5)
        self.client.on_connect = self._connected
        self.client.on_message = self._message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _connected(self, client: paho.Client, *_: Any) -> None:
        client.subscribe("lockers/#", 1)
        self.ready.set()

    def _message(self, _c: paho.Client, _ud: Any, msg: paho.MQTTMessage) -> None:
        kind = msg.topic.rsplit("/", 1)[-1]
        with self.lock:
            self.count[kind] += 1
            self.payload[kind] += len(msg.payload)
            self.wire[kind] += wire_bytes(msg.topic, len(msg.payload))
            self.last[kind] = json.loads(msg.payload)

    def snapshot(self) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
        with self.lock:
            return dict(self.count), dict(self.payload), dict(self.wire)

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _diff(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


def _print_phase(name: str, per: float, snap0: Any, snap1: Any) -> dict[str, float]:
    counts, payloads, wires = (_diff(a, b) for a, b in zip(snap1, snap0, strict=True))
    print(f"\n{name} (per {'operation' if per == 1 else f'1 of {per:g}'}):")
    print(f"  {'topic':<8} {'msgs':>6} {'payload B':>10} {'wire B':>8}")
    for kind in sorted(counts):
        print(f"  {kind:<8} {counts[kind] / per:>6.2f} {payloads[kind] / per:>10.0f} "
              f"{wires[kind] / per:>8.0f}")
    total = {"msgs": sum(counts.values()) / per, "wire": sum(wires.values()) / per}
    print(f"  {'total':<8} {total['msgs']:>6.2f} {'':>10} {total['wire']:>8.0f}")
    return total


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="traffic-bench-") as tmp_s:
        tmp = Path(tmp_s)
        (tmp / "broker").mkdir()
        (tmp / "cab").mkdir()
        broker = LocalBroker(tmp / "broker")
        await broker.start()
        sniffer = Sniffer(broker.port)
        sniffer.ready.wait(10)
        cab = Cabinet(tmp / "cab", mqtt={"enabled": True, "host": "127.0.0.1",
                                         "port": broker.port, "tls": False})
        sf = CarrierClient("127.0.0.1", broker.port, cab.cfg.cabinet.id, "sf",
                           client_id="bench-sf", watch_cabinet=False)
        try:
            s0 = sniffer.snapshot()
            await cab.start()
            await asyncio.sleep(3.0)
            connect = _print_phase("connect (birth, state, health)", 1, s0, sniffer.snapshot())
            await sf.start()
            await cab.grant("sf", "c-101", PIN)
            await asyncio.sleep(1.0)
            s1 = sniffer.snapshot()
            for i in range(args.lifecycles):
                waybill = f"SF8{i:09d}"
                reply = await sf.send("parcel.expect", {"waybill": waybill, "size": "S",
                                                        "consent": True})
                assert reply["ok"], reply
                await cab.call("panel.deliver", {**courier(), "parcel": {"waybill": waybill,
                                                                         "size": "S"}})
                # courier.granted, then a deposited and a picked_up per lifecycle
                event = (await sf.wait_events(2 + 2 * i))[-1]
                assert event["type"] == "parcel.deposited", event
                res = await cab.call("panel.pickup", {"panel": "kiosk-1",
                                                      "code": event["body"]["pickup_code"]})
                assert res.get("status") == "pickup.confirm", res
            await asyncio.sleep(3.0)  # the last state and events land
            life = _print_phase("parcel lifecycle: expect + reply, deliver, pick up",
                                args.lifecycles, s1, sniffer.snapshot())
            health = sniffer.last["health"]
            health_wire = wire_bytes(f"lockers/{cab.cfg.cabinet.id}/health",
                                     len(json.dumps(health, separators=(",", ":"))))
            s2 = sniffer.snapshot()
            await asyncio.sleep(args.idle)
            idle = sum(_diff(sniffer.snapshot()[0], s2[0]).values())
            print(f"\nidle {args.idle:g} s: {idle} message(s) (health every "
                  f"{cab.cfg.mqtt.health_interval_s:g} s, keepalive PINGREQ every "
                  f"{cab.cfg.mqtt.keepalive_s} s = 4 B)")
        finally:
            await sf.stop()
            await cab.stop()
            sniffer.stop()
            await broker.stop()

    n, p = args.cabinets, args.parcels_per_day
    interval = cab.cfg.mqtt.health_interval_s
    day_msgs = life["msgs"] * p + 86400 / interval
    avg = n * day_msgs / 86400
    peak = n * (life["msgs"] * p * args.peak_share + 3600 / interval) / 3600
    print(f"\nfleet of {n:,} cabinets, {p} parcels/cabinet/day, {args.peak_share:.0%} of a day's "
          f"parcels in the peak hour, health every {interval:g} s:")
    print(f"  connections            {n:,} cabinets (+ carriers, operator)")
    print(f"  health                 {n / interval:,.1f} msg/s, "
          f"{n * health_wire / interval / 1e3:,.1f} kB/s")
    print(f"  through the broker     {avg:,.0f} msg/s average, {peak:,.0f} msg/s peak hour")
    day_bytes = life["wire"] * p + health_wire * 86400 / interval
    peak_bytes = life["wire"] * p * args.peak_share + health_wire * 3600 / interval
    print(f"  bytes (one hop)        {n * day_bytes / 86400 / 1e3:,.0f} kB/s average, "
          f"{n * peak_bytes / 3600 / 1e3:,.0f} kB/s peak hour")
    print(f"  per cabinet per day    {day_msgs:,.0f} messages, "
          f"{(life['wire'] * p + health_wire * 86400 / interval) / 1e3:,.0f} kB")
    print(f"  reconnect storm        {n:,} x {connect['msgs']:.0f} retained messages "
          f"({n * connect['wire'] / 1e6:,.1f} MB) when every cabinet reconnects")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lifecycles", type=int, default=20)
    parser.add_argument("--idle", type=float, default=10.0)
    parser.add_argument("--cabinets", type=int, default=10_000)
    parser.add_argument("--parcels-per-day", type=int, default=100)
    parser.add_argument("--peak-share", type=float, default=0.15)
    asyncio.run(main(parser.parse_args()))
