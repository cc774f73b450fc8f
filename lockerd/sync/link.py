"""paho-mqtt 2.x client bridged to asyncio: paho's network thread, callbacks hopped onto the loop.

Why a thread (loop_start) and not add_reader/add_writer: paho's connect() resolves the host,
opens the socket and runs the TLS handshake synchronously, which would block the event loop on
every reconnect to a slow or unreachable broker. paho's own thread owns the socket, keepalive
and reconnect backoff; every callback is handed to the loop with call_soon_threadsafe, and
the loop only ever calls publish()/subscribe()/ack(), which queue a packet under a mutex and
wake that thread (no socket I/O on the loop).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

log = logging.getLogger(__name__)

# CONNACK "unsupported protocol version": 0x84 from an MQTT 5 broker, 1 from a 3.1.1 one.
_UNSUPPORTED_PROTOCOL = frozenset({1, 0x84})


class LinkError(Exception):
    """A publish or subscribe the client could not even queue."""


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """CA bundle (None: system store) and optional client certificate + key."""

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None


@dataclass(frozen=True, slots=True)
class Will:
    """Last-will message the broker publishes when we vanish."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


@dataclass(slots=True)
class LinkCallbacks:
    """Called on the event loop (never on paho's thread)."""

    on_connect: Callable[[bool], None] = lambda session_present: None
    on_disconnect: Callable[[str], None] = lambda reason: None
    on_message: Callable[[str, bytes, int, int], None] = lambda topic, payload, mid, qos: None
    on_puback: Callable[[int, bool], None] = lambda mid, refused: None


def _rc_value(reason_code: Any) -> int:
    return int(getattr(reason_code, "value", reason_code))


class MqttLink:
    """One broker connection: MQTT 5 (3.1.1 fallback), persistent session, LWT, manual acks.

    Inbound QoS 1 messages are acknowledged only when the owner calls ack(mid, qos), i.e.
    after the command and its reply are committed to the log.
    """

    def __init__(self, *, host: str, port: int, client_id: str, keepalive_s: int = 30,
                 tls: TlsFiles | None = None, will: Will | None = None,
                 protocol: str = "auto", session_expiry_s: int = 7 * 86400,
                 reconnect_min_s: float = 1.0, reconnect_max_s: float = 30.0,
                 max_inflight: int = 100, max_packet_bytes: int | None = None,
                 auth: tuple[str, str | None] | None = None,
                 callbacks: LinkCallbacks | None = None) -> None:
        self.host = host
        self.port = port
        self.client_id = client_id
        self.keepalive_s = keepalive_s
        self.tls = tls
        self.will = will
        self.session_expiry_s = session_expiry_s
        self.reconnect_min_s = reconnect_min_s
        self.reconnect_max_s = reconnect_max_s
        self.max_inflight = max_inflight
        self.max_packet_bytes = max_packet_bytes
        self._auth = auth
        self.callbacks = callbacks or LinkCallbacks()
        self._auto = protocol == "auto"
        self._protocol = MQTTProtocolVersion.MQTTv311 if protocol == "3.1.1" \
            else MQTTProtocolVersion.MQTTv5
        self._client: paho.Client | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ssl: ssl.SSLContext | None = None
        self._fallback_task: asyncio.Task[None] | None = None
        self.connected = False
        self.last_error: str | None = None
        self.connects = 0

    @property
    def protocol(self) -> str:
        """'5' or '3.1.1'."""
        return "5" if self._protocol == MQTTProtocolVersion.MQTTv5 else "3.1.1"

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start connecting in the background (the first attempt is retried like the rest)."""
        self._loop = asyncio.get_running_loop()
        if self.tls is not None and self._ssl is None:
            self._ssl = await asyncio.to_thread(self._make_ssl, self.tls)
        await asyncio.to_thread(self._start_client)

    @staticmethod
    def _make_ssl(tls: TlsFiles) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(tls.ca_file) if tls.ca_file else None)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if tls.cert_file is not None:
            ctx.load_cert_chain(str(tls.cert_file), str(tls.key_file) if tls.key_file else None)
        return ctx

    def _start_client(self) -> None:
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id,
                             protocol=self._protocol,
                             clean_session=None if self._v5 else False,
                             manual_ack=True, reconnect_on_failure=True)
        if log.isEnabledFor(logging.DEBUG):
            client.enable_logger(logging.getLogger("paho"))
        client.reconnect_delay_set(max(1, round(self.reconnect_min_s)),
                                   max(1, round(self.reconnect_max_s)))
        client.max_inflight_messages_set(self.max_inflight)
        client.max_queued_messages_set(0)
        if self._ssl is not None:
            client.tls_set_context(self._ssl)
        if self._auth is not None:
            client.username_pw_set(*self._auth)
        if self.will is not None:
            client.will_set(self.will.topic, self.will.payload, self.will.qos, self.will.retain)
        client.on_connect = self._t_connect
        client.on_disconnect = self._t_disconnect
        client.on_message = self._t_message
        client.on_publish = self._t_publish
        client.on_connect_fail = self._t_connect_fail
        props = None
        if self._v5:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = self.session_expiry_s
            if self.max_packet_bytes is not None:
                # The broker must not send us a larger packet (MQTT 5 §3.1.2.11.4): it drops
                # it instead, so an oversized command never enters this process whole.
                props.MaximumPacketSize = self.max_packet_bytes
        client.connect_async(self.host, self.port, self.keepalive_s,
                             clean_start=False if self._v5 else paho.MQTT_CLEAN_START_FIRST_ONLY,
                             properties=props)
        self._client = client
        client.loop_start()

    @property
    def _v5(self) -> bool:
        return self._protocol == MQTTProtocolVersion.MQTTv5

    async def stop(self, final: tuple[str, bytes, bool] | None = None, limit_s: float = 3.0) -> None:
        """Publish `final` (topic, payload, retain) if connected, disconnect cleanly, join paho.

        A clean DISCONNECT suppresses the will, hence the explicit offline message first.
        """
        if self._fallback_task is not None:
            self._fallback_task.cancel()
        client = self._client
        if client is None:
            return
        self._client = None
        if final is not None and self.connected:
            topic, payload, retain = final
            info = client.publish(topic, payload, 1, retain)
            try:
                await asyncio.wait_for(asyncio.to_thread(info.wait_for_publish, limit_s), limit_s + 1)
            except (TimeoutError, RuntimeError, ValueError) as exc:
                log.warning("offline status not acknowledged before disconnect: %s", exc)
        await asyncio.to_thread(self._stop_client, client)
        self.connected = False

    @staticmethod
    def _stop_client(client: paho.Client) -> None:
        client.disconnect()
        client.loop_stop()

    # ------------------------------------------------------------------ used from the loop

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> int:
        """Queue a message; returns paho's mid (its PUBACK arrives through on_puback)."""
        client = self._client
        if client is None:
            raise LinkError("not started")
        info = client.publish(topic, payload, qos, retain)
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            raise LinkError(f"publish refused by the client: {paho.error_string(info.rc)}")
        return int(info.mid)

    def subscribe(self, topic: str, qos: int = 1) -> None:
        """Subscribe (call from on_connect: idempotent, covers a lost session)."""
        if self._client is not None:
            self._client.subscribe(topic, qos)

    def ack(self, mid: int, qos: int) -> None:
        """Acknowledge an inbound message once it has been handled."""
        if self._client is not None and qos > 0:
            self._client.ack(mid, qos)

    # ------------------------------------------------------------------ paho thread

    def _hop(self, fn: Callable[..., None], *args: Any) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(fn, *args)

    def _t_connect(self, client: paho.Client, _ud: Any, flags: Any, reason_code: Any,
                   _props: Any) -> None:
        if client is not self._client:
            return
        rc = _rc_value(reason_code)
        if rc == 0:
            self._hop(self._connected, bool(getattr(flags, "session_present", False)))
        elif rc in _UNSUPPORTED_PROTOCOL and self._auto and self._v5:
            self._hop(self._fall_back)
        else:
            self._hop(self._failed, f"connection refused: {reason_code}")

    def _t_connect_fail(self, client: paho.Client, _ud: Any) -> None:
        if client is self._client:
            self._hop(self._failed, f"cannot connect to {self.host}:{self.port}")

    def _t_disconnect(self, client: paho.Client, _ud: Any, _flags: Any, reason_code: Any,
                      _props: Any) -> None:
        if client is self._client:
            self._hop(self._disconnected, str(reason_code))

    def _t_message(self, client: paho.Client, _ud: Any, msg: paho.MQTTMessage) -> None:
        if client is self._client:
            self._hop(self.callbacks.on_message, msg.topic, bytes(msg.payload), msg.mid, msg.qos)

    def _t_publish(self, client: paho.Client, _ud: Any, mid: int, reason_code: Any,
                   _props: Any) -> None:
        if client is self._client:
            self._hop(self.callbacks.on_puback, mid, _rc_value(reason_code) >= 0x80)

    # ------------------------------------------------------------------ back on the loop

    def _connected(self, session_present: bool) -> None:
        self.connects += 1
        if not self.connected:
            log.info("MQTT connected to %s:%d (MQTT %s, session %s)", self.host, self.port,
                     self.protocol, "resumed" if session_present else "new")
        self.connected = True
        self.last_error = None
        self.callbacks.on_connect(session_present)

    def _disconnected(self, reason: str) -> None:
        was = self.connected
        self.connected = False
        if was:
            self.last_error = f"disconnected: {reason}"
            log.warning("MQTT connection to %s:%d lost: %s", self.host, self.port, reason)
            self.callbacks.on_disconnect(reason)

    def _failed(self, error: str) -> None:
        if error != self.last_error:
            log.warning("MQTT: %s", error)
        self.last_error = error

    def _fall_back(self) -> None:
        if self._fallback_task is None or self._fallback_task.done():
            log.warning("broker %s:%d does not speak MQTT 5: falling back to 3.1.1", self.host,
                        self.port)
            self._fallback_task = asyncio.get_running_loop().create_task(self._restart_311())

    async def _restart_311(self) -> None:
        old = self._client
        self._client = None
        self._protocol = MQTTProtocolVersion.MQTTv311
        if old is not None:
            await asyncio.to_thread(self._stop_client, old)
        await asyncio.to_thread(self._start_client)
