"""A hostile carrier on MQTT (issue 16): oversized payloads, future timestamps, refusal floods.

Against the real mosquitto: the cabinet announces its Maximum Packet Size, so a 64 MB
"command" never enters the daemon's memory; the deployment examples' `max_packet_size` refuses
it at the publisher; a `ts` ahead of the clock is refused; a flood of bad signatures adds O(1)
chain rows.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from lockerd.domain.timefmt import format_ts
from lockerd.oplog import OpLog
from lockerd.sync.signing import sign
from lockerd.testing.broker import LocalBroker
from lockerd.testing.carrier import CarrierClient
from lockerd.testing.sync import sync_component
from tests.fixtures.sync import CAB, SF_KEY, SyncFactory, make_config

REPO = Path(__file__).resolve().parents[2]
OVERSIZED = 64 * 1024 * 1024

# A carrier's backend in another process (its memory is not ours): publish `size` bytes of JSON-ish
# payload at QoS 1 and print "sent" once PUBACK came, or "refused" when the broker hung up.
_PUBLISHER = """
import sys, paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
port, topic, size = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="carrier-big", protocol=mqtt.MQTTv5)
c.connect("127.0.0.1", port)
c.loop_start()
info = c.publish(topic, b'{"id":"big","pad":"' + b"x" * size + b'"}', qos=1)
try:
    info.wait_for_publish(8)
    print("sent" if info.is_published() else "refused")
except (RuntimeError, ValueError):
    print("refused")
c.loop_stop()
"""


def _peak_rss_kb() -> int:
    text = Path("/proc/self/status").read_text()
    found = re.search(r"VmHWM:\s+(\d+) kB", text)
    assert found is not None
    return int(found.group(1))


def _reset_peak_rss() -> None:
    # Linux: writing 5 resets the peak resident set size (VmHWM) to the current one.
    Path("/proc/self/clear_refs").write_text("5")


async def _connected(comp: Any) -> None:
    for _ in range(200):
        if comp.link is not None and comp.link.connected:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("component never connected")


async def _publish_from_elsewhere(port: int, topic: str, size: int) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _PUBLISHER, str(port), topic, str(size),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return out.decode().strip()


async def test_oversized_command_never_enters_the_daemon(make_sync: SyncFactory,
                                                         broker: LocalBroker) -> None:
    """The shipped limit reaches the broker in CONNECT: 64 MB is dropped for the cabinet.

    Before: paho read the whole packet, the payload was copied twice on its way to the
    command queue (peak +130 MB in this process) and the command was refused too_large only
    then. Now the broker never sends it; the next command is served as usual."""
    comp = await make_sync()
    await _connected(comp)
    assert comp.processor is not None
    async with CarrierClient("127.0.0.1", broker.port, CAB, "sf") as sf:
        assert (await sf.send("state.get", {}))["ok"] is True
        handled = comp.processor.handled
        _reset_peak_rss()
        before = _peak_rss_kb()
        assert await _publish_from_elsewhere(broker.port, sf.topics.cmd("sf"), OVERSIZED) == "sent"
        assert (await sf.send("state.get", {}))["ok"] is True  # after the big one, in order
        await asyncio.sleep(0.5)
        grown_mb = (_peak_rss_kb() - before) / 1024
    print(f"daemon peak RSS growth with a {OVERSIZED >> 20} MB command: {grown_mb:.1f} MB")
    assert grown_mb < 16, f"the oversized command entered memory: peak +{grown_mb:.0f} MB"
    assert comp.processor.handled == handled + 1  # only the second state.get arrived


def _example_max_packet_size() -> int:
    text = (REPO / "deploy/mosquitto/central.conf").read_text()
    found = re.search(r"^max_packet_size (\d+)$", text, re.MULTILINE)
    assert found is not None, "central.conf sets no max_packet_size"
    return int(found.group(1))


async def test_broker_example_refuses_an_oversized_publish(tmp_path: Path, oplog: OpLog) -> None:
    """The deployment example's max_packet_size makes mosquitto hang up on the publisher, so
    a cabinet speaking MQTT 3.1.1 (which cannot announce a limit) is protected too."""
    limit = _example_max_packet_size()
    assert 16384 + 1024 <= limit <= 1 << 20
    strict = LocalBroker(tmp_path / "strict", persistence=False,
                         extra=[f"max_packet_size {limit}"])
    strict.workdir.mkdir()
    await strict.start()
    comp = sync_component(make_config(strict.port, tmp_path, protocol="3.1.1"), oplog)
    await comp.start()
    try:
        await _connected(comp)
        assert comp.processor is not None
        topic = f"lockers/{CAB}/carriers/sf/cmd"
        assert await _publish_from_elsewhere(strict.port, topic, 8 * 1024 * 1024) == "refused"
        async with CarrierClient("127.0.0.1", strict.port, CAB, "sf") as sf:
            assert (await sf.send("state.get", {}))["ok"] is True
        assert comp.processor.handled == 1
    finally:
        await comp.stop()
        await strict.stop()


async def test_command_from_the_future_is_refused(make_sync: SyncFactory, broker: LocalBroker,
                                                  oplog: OpLog) -> None:
    """A signed command dated 10 minutes ahead would outlive the 7-day id memory: refused
    with ts_in_future and not remembered (the same id with a correct ts goes through)."""
    comp = await make_sync(signed=True, max_clock_skew_s=300)
    await _connected(comp)
    async with CarrierClient("127.0.0.1", broker.port, CAB, "sf", key=SF_KEY) as sf:
        topic, cmd = sf.command("state.get", {}, cmd_id="f1")
        cmd["ts"] = format_ts(datetime.now(UTC) + timedelta(minutes=10))
        cmd["sig"] = sign(SF_KEY, topic, {k: v for k, v in cmd.items() if k != "sig"})
        reply = await sf.send_raw(topic, json.dumps(cmd).encode(), "f1")
        assert reply["ok"] is False
        assert reply["error"]["code"] == "ts_in_future"
        topic, cmd = sf.command("state.get", {}, cmd_id="f1")
        cmd["ts"] = format_ts(datetime.now(UTC) + timedelta(minutes=2))  # within the skew
        cmd["sig"] = sign(SF_KEY, topic, {k: v for k, v in cmd.items() if k != "sig"})
        reply = await sf.send_raw(topic, json.dumps(cmd).encode(), "f1")
        assert reply["ok"] is True


async def test_a_flood_of_bad_signatures_adds_one_chain_row(make_sync: SyncFactory,
                                                            broker: LocalBroker,
                                                            oplog: OpLog) -> None:
    """Before: one sync.command_refused row each (3,000 bad signatures, 3,001 rows). Now one
    row of counts per carrier and window; every sender still got its reply."""
    comp = await make_sync(signed=True, refusal_window_s=3600)
    await _connected(comp)
    assert comp.processor is not None
    await oplog.append("daemon.started", actor="lockerd", body={})
    flood = 300
    async with CarrierClient("127.0.0.1", broker.port, CAB, "sf", key=SF_KEY) as sf:
        head_before = oplog.head[0]
        for i in range(flood):
            topic, cmd = sf.command("state.get", {}, cmd_id=f"x{i}", key=b"z" * 32)
            sf.publish_raw(topic, json.dumps(cmd).encode())
        for _ in range(400):
            if len(sf.replies) >= flood:
                break
            await asyncio.sleep(0.05)
        assert len(sf.replies) == flood
        assert all(r[0]["error"]["code"] == "bad_signature" for r in sf.replies.values())
    assert oplog.head[0] == head_before  # nothing chained yet: counted in the open window
    await comp.processor.tally.flush(everything=True)
    rows = await oplog.operations(after_seq=head_before)
    print(f"{flood} bad signatures -> {len(rows)} chain row(s)")
    assert len(rows) <= 2  # the window may close mid-flood
    assert sum(op.body["count"] for op in rows) == flood
    assert {op.kind for op in rows} == {"sync.commands_refused"}
    assert rows[0].body["refused"][0]["error"] == "bad_signature"
    assert (await oplog.verify()).ok
