"""TLS with client certificates against a real mosquitto: the production transport (docs/mqtt.md)."""

from __future__ import annotations

import asyncio
import getpass
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from lockerd.oplog import OpLog
from lockerd.sync import SyncComponent, event_message
from lockerd.testing.broker import free_port, mosquitto_binary
from lockerd.testing.sync import sync_component
from tests.fixtures.sync import make_config

pytestmark = pytest.mark.skipif(mosquitto_binary() is None, reason="mosquitto not installed")


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def issue(cwd: Path, name: str, *, ca: bool, san: str | None = None) -> None:
    """A key and a certificate signed by ca.pem (or self-signed when `ca` is False)."""
    openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
            "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=cwd)
    ext = cwd / f"{name}.ext"
    ext.write_text(f"subjectAltName={san}\n" if san else "basicConstraints=CA:FALSE\n")
    if ca:
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "2", "-out", f"{name}.pem", "-extfile", ext.name,
                cwd=cwd)
    else:
        openssl("x509", "-req", "-in", f"{name}.csr", "-signkey", f"{name}.key", "-days", "2",
                "-out", f"{name}.pem", "-extfile", ext.name, cwd=cwd)


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    d = tmp_path / "pki"
    d.mkdir()
    openssl("req", "-x509", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
            "-out", "ca.pem", "-days", "2", "-subj", "/CN=lockerd test CA", cwd=d)
    issue(d, "broker", ca=True, san="IP:127.0.0.1,DNS:localhost")
    issue(d, "cabinet", ca=True)
    issue(d, "rogue", ca=False)
    return d


@pytest.fixture
async def tls_broker(tmp_path: Path, pki: Path) -> AsyncIterator[int]:
    port = free_port()
    conf = tmp_path / "mosquitto-tls.conf"
    conf.write_text("\n".join([
        f"listener {port} 127.0.0.1", "allow_anonymous true", "persistence false",
        f"cafile {pki / 'ca.pem'}", f"certfile {pki / 'broker.pem'}",
        f"keyfile {pki / 'broker.key'}", "require_certificate true", "tls_version tlsv1.2",
        # as root, mosquitto would switch to its own user and fail to read our key files
        f"user {getpass.getuser()}", ""]))
    binary = mosquitto_binary()
    assert binary is not None
    proc = await asyncio.create_subprocess_exec(binary, "-c", str(conf),
                                                stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.DEVNULL)
    for _ in range(200):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.02)
            continue
        writer.close()
        break
    try:
        yield port
    finally:
        proc.terminate()
        await proc.wait()


async def start_sync(tmp_path: Path, port: int, oplog: OpLog, pki: Path,
                     client: str) -> SyncComponent:
    cfg = make_config(port, tmp_path, tls=True, ca_file=str(pki / "ca.pem"),
                      cert_file=str(pki / f"{client}.pem"), key_file=str(pki / f"{client}.key"))
    comp = sync_component(cfg, oplog)
    await comp.start()
    return comp


async def wait_for(pred: object, limit_s: float) -> bool:
    for _ in range(int(limit_s / 0.05)):
        if pred():  # type: ignore[operator]
            return True
        await asyncio.sleep(0.05)
    return False


async def test_client_certificate_connects_and_publishes(tmp_path: Path, tls_broker: int,
                                                         oplog: OpLog, pki: Path) -> None:
    comp = await start_sync(tmp_path, tls_broker, oplog, pki, "cabinet")
    try:
        assert await wait_for(lambda: comp.status()["connected"], 15)
        await oplog.append("test.event", actor="test", body={"n": 1},
                           outbox=[event_message(comp.topics, "sf", "courier.granted",
                                                 {"courier_id": "c-1"})])
        comp.wake()

        async def drained() -> bool:
            return (await oplog.outbox_stats())[0] == 0

        for _ in range(200):
            if await drained():
                break
            await asyncio.sleep(0.05)
        assert await drained()  # the broker acknowledged it over TLS
    finally:
        await comp.stop()


async def test_certificate_from_another_ca_is_refused(tmp_path: Path, tls_broker: int,
                                                      oplog: OpLog, pki: Path) -> None:
    comp = await start_sync(tmp_path, tls_broker, oplog, pki, "rogue")
    try:
        assert not await wait_for(lambda: comp.status()["connected"], 3)
    finally:
        await comp.stop()
