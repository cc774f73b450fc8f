"""Bench: drain a 10,000-event backlog after reconnect, and event -> subscriber latency on loopback."""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lockerd.oplog import OpLog, OplogKey
from lockerd.sync import event_message
from lockerd.testing.broker import LocalBroker
from lockerd.testing.carrier import CarrierClient
from lockerd.testing.sync import sync_component
from tests.fixtures.sync import CAB, make_config

BACKLOG = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
LATENCY_SAMPLES = 500


async def main() -> None:
    with tempfile.TemporaryDirectory(prefix="mqtt-bench-") as tmp_s:
        tmp = Path(tmp_s)
        (tmp / "broker").mkdir()
        broker = LocalBroker(tmp / "broker", persistence=True)
        await broker.start()
        log = await OpLog.open(tmp / "oplog.db", OplogKey.generate())
        comp = sync_component(make_config(broker.port, tmp, idle_poll_ms=500), log)
        await comp.start()
        sf = CarrierClient("127.0.0.1", broker.port, CAB, "sf", client_id="bench-sf",
                           watch_cabinet=False)
        await sf.start()
        try:
            await broker.stop()
            t = time.perf_counter()
            for chunk in range(0, BACKLOG, 500):
                await asyncio.gather(*(
                    log.append("parcel.deposited", actor="bench", body={"n": n},
                               outbox=[event_message(comp.topics, "sf", "parcel.deposited",
                                                     {"n": n})])
                    for n in range(chunk, min(chunk + 500, BACKLOG))))
            print(f"backlog of {BACKLOG} events written in {time.perf_counter() - t:.2f} s")
            await broker.start()
            while not (comp.link and comp.link.connected):  # noqa: ASYNC110 - polling the broker link and the store is what is measured
                await asyncio.sleep(0.005)
            t0 = time.perf_counter()
            while (await log.outbox_stats())[0] > 0:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
            drained = time.perf_counter() - t0
            await sf.wait_events(BACKLOG, 120)
            received = time.perf_counter() - t0
            print(f"drain: {BACKLOG} events acknowledged and marked sent in {drained:.2f} s "
                  f"= {BACKLOG / drained:,.0f} events/s; all received by the carrier after "
                  f"{received:.2f} s; duplicates {sf.ledger.duplicates}, gaps {len(sf.ledger.gaps)}")
            while not sf.messages.empty():
                sf.messages.get_nowait()
            lat: list[float] = []
            wire: list[float] = []
            for n in range(LATENCY_SAMPLES):
                t1 = time.perf_counter()
                await log.append("parcel.deposited", actor="bench", body={"n": n},
                                 outbox=[event_message(comp.topics, "sf", "parcel.deposited",
                                                       {"n": n})])
                t2 = time.perf_counter()
                comp.wake()
                await sf.messages.get()
                t3 = time.perf_counter()
                lat.append((t3 - t1) * 1000)
                wire.append((t3 - t2) * 1000)
                await asyncio.sleep(0.002)
            for label, xs in (("event (append incl. fsync) -> carrier subscriber", lat),
                              ("committed -> carrier subscriber", wire)):
                xs.sort()
                print(f"latency {label} ({LATENCY_SAMPLES} events): p50 "
                      f"{statistics.median(xs):.2f} ms, p99 {xs[int(len(xs) * 0.99) - 1]:.2f} ms, "
                      f"max {xs[-1]:.2f} ms")
            print("targets: drain >= 2,000 events/s, p99 <= 20 ms")
        finally:
            await sf.stop()
            await comp.stop()
            await log.close()
            await broker.stop()


if __name__ == "__main__":
    asyncio.run(main())
