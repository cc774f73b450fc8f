"""Client-id takeover refused by a real mosquitto run with the shipped dynamic-security setup.

Issue 16: with the shipped broker example a carrier connected as `lockerd-CAB-0001`, kicked the
cabinet off and wiped its persistent session. deploy/mosquitto/dynsec.conf pins each client id
to its user (provisioned by deploy/mosquitto/dynsec-provision.sh); this test starts mosquitto
with exactly those plugin lines, provisions a cabinet and a carrier with the script, and tries
the takeover.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from lockerd.oplog import OpLog
from lockerd.testing.broker import LocalBroker
from lockerd.testing.carrier import CarrierClient
from lockerd.testing.sync import sync_component
from tests.fixtures.cabinet import until
from tests.fixtures.sync import CAB, make_config

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto"


def _plugin_lines(config_file: Path) -> list[str]:
    """The example's settings, with the plugin's file moved into the test's directory."""
    lines = []
    for line in (DEPLOY / "dynsec.conf").read_text().splitlines():
        if not line.strip() or line.startswith("#") or line.startswith("allow_anonymous"):
            continue
        moved = line.startswith("plugin_opt_config_file ")
        lines.append(f"plugin_opt_config_file {config_file}" if moved else line)
    return lines


def _provision(port: int, *args: str) -> None:
    env = {**os.environ, "DYNSEC": f"-h 127.0.0.1 -p {port} -u admin -P admin-pw"}
    subprocess.run([str(DEPLOY / "dynsec-provision.sh"), *args], check=True, env=env,
                   capture_output=True, timeout=30)


def _connect_rc(port: int, client_id: str, user: str, password: str) -> int:
    """CONNACK reason code of one connection attempt (0: accepted)."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=paho.MQTTv5)
    client.username_pw_set(user, password)
    codes: list[int] = []
    client.on_connect = lambda _c, _u, _f, rc, _p: codes.append(int(rc.value))
    client.connect("127.0.0.1", port, clean_start=True)
    for _ in range(50):
        client.loop(0.1)
        if codes:
            break
    client.disconnect()
    assert codes, "no CONNACK"
    return codes[0]


@pytest.fixture
async def dynsec_broker(tmp_path: Path) -> LocalBroker:
    work = tmp_path / "dynsec"
    work.mkdir()
    config_file = work / "dynamic-security.json"
    await asyncio.to_thread(
        subprocess.run, ["mosquitto_ctrl", "dynsec", "init", str(config_file), "admin",
                         "admin-pw"], check=True, capture_output=True, timeout=30)
    return LocalBroker(work, persistence=True, anonymous=False,
                       extra=_plugin_lines(config_file))


async def test_carrier_cannot_take_over_the_cabinets_client_id(
        tmp_path: Path, dynsec_broker: LocalBroker, oplog: OpLog) -> None:
    broker = dynsec_broker
    await broker.start()
    comp = None
    try:
        await asyncio.to_thread(_provision, broker.port, "cabinet", CAB, "cab-pw")
        await asyncio.to_thread(_provision, broker.port, "carrier", "sf", "sf-pw")
        password = tmp_path / "mqtt-password"
        password.write_text("cab-pw\n")
        cfg = make_config(broker.port, tmp_path, username=f"lockerd-{CAB}",
                          password_file=str(password))
        comp = sync_component(cfg, oplog)
        await comp.start()
        await until(lambda: comp.link is not None and comp.link.connected, 10.0)
        assert comp.link is not None
        # the attack: the carrier's own credentials, the cabinet's client id
        rc = await asyncio.to_thread(_connect_rc, broker.port, f"lockerd-{CAB}", "carrier-sf",
                                     "sf-pw")
        assert rc != 0, "the broker let a carrier connect with the cabinet's client id"
        # nor without credentials
        assert await asyncio.to_thread(_connect_rc, broker.port, f"lockerd-{CAB}", "x", "y") != 0
        await asyncio.sleep(0.5)
        assert comp.link.connected
        assert comp.link.connects == 1
        # the carrier with its own pinned id is served as before
        async with CarrierClient("127.0.0.1", broker.port, CAB, "sf", client_id="carrier-sf",
                                 auth=("carrier-sf", "sf-pw")) as sf:
            reply = await sf.send("state.get", {})
            assert reply["ok"] is True
        assert comp.link.connects == 1
    finally:
        if comp is not None:
            await comp.stop()
        await broker.stop()


async def test_without_the_plugin_the_same_connection_kicks_the_cabinet(
        tmp_path: Path, broker: LocalBroker, oplog: OpLog) -> None:
    """The control: what the acl_file-only example allowed (any client id for any identity)."""
    comp = sync_component(make_config(broker.port, tmp_path), oplog)
    await comp.start()
    try:
        await until(lambda: comp.link is not None and comp.link.connected, 10.0)
        assert comp.link is not None
        rc = await asyncio.to_thread(_connect_rc, broker.port, f"lockerd-{CAB}", "carrier-sf",
                                     "sf-pw")
        assert rc == 0
        for _ in range(100):
            if comp.link.connects > 1 or not comp.link.connected:
                break
            await asyncio.sleep(0.05)
        assert comp.link.connects > 1 or not comp.link.connected  # taken over
    finally:
        await comp.stop()
