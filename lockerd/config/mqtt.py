"""[mqtt]: carrier sync over MQTT."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from lockerd.config.base import Strict


class Mqtt(Strict):
    """Carrier sync over MQTT (docs/mqtt.md)."""

    enabled: bool = Field(default=False, description="Connect to the broker at all.")
    host: str = Field(default="127.0.0.1", description="Broker host name.")
    port: int = Field(default=8883, ge=1, le=65535, description="Broker port.")
    prefix: str = Field(default="lockers", pattern=r"^[A-Za-z0-9_/-]{1,64}$",
                        description="Topic prefix.")
    client_id: str | None = Field(default=None,
                                  description="MQTT client id; defaults to lockerd-<cabinet id>.")
    tls: bool = Field(default=True, description="Use TLS (required outside loopback).")
    ca_file: Path | None = Field(default=None, description="CA bundle for the broker.")
    cert_file: Path | None = Field(default=None, description="Client certificate.")
    key_file: Path | None = Field(default=None, description="Client private key.")
    username: str | None = Field(
        default=None, description="MQTT user name (the broker's dynamic-security client, which "
                                  "pins this cabinet's client id: deploy/mosquitto/dynsec.conf).")
    password_file: Path | None = Field(default=None,
                                       description="File holding the MQTT password (mode 0600).")
    keepalive_s: int = Field(default=30, ge=5, le=600, description="MQTT keepalive.")
    protocol: Literal["auto", "5", "3.1.1"] = Field(
        default="auto", description="MQTT version: 'auto' tries 5 and falls back to 3.1.1.")
    session_expiry_s: int = Field(
        default=7 * 86400, ge=60, le=30 * 86400,
        description="MQTT 5 session expiry: QoS 1 subscriptions survive reconnects this long.")
    reconnect_min_s: float = Field(default=1.0, gt=0, le=60,
                                   description="First reconnect delay (doubles up to the max).")
    reconnect_max_s: float = Field(default=30.0, gt=0, le=600, description="Longest reconnect delay.")
    inflight_window: int = Field(default=100, ge=1, le=1000,
                                 description="Outbox messages published but not yet acknowledged.")
    idle_poll_ms: int = Field(default=500, ge=10, le=10000,
                              description="Outbox poll period when nobody signals new rows.")
    max_command_bytes: int = Field(default=16384, ge=256, le=262144,
                                   description="Larger command payloads are refused (too_large).")
    max_clock_skew_s: float = Field(default=300.0, ge=1, le=86400,
                                    description="Commands whose ts is further ahead of the cabinet's "
                                                "clock are refused (ts_in_future).")
    refusal_window_s: int = Field(default=60, ge=1, le=86400,
                                  description="Refused commands are chained as one row of counts "
                                              "per carrier and window of this length.")
    max_report_bytes: int = Field(default=262144, ge=4096, le=1048576,
                                  description="A report.request whose signed report is larger is "
                                              "refused too_large (the broker's message limit "
                                              "must allow this much).")
    backlog_alert_s: float = Field(default=300.0, ge=1, le=86400,
                                   description="Raise sync_backlog when the oldest unsent message "
                                               "is older than this.")
    sent_retention_h: float = Field(default=24.0, ge=0, le=24 * 90,
                                    description="Sent outbox rows are pruned after this long.")
    state_min_interval_s: float = Field(default=2.0, ge=0, le=600,
                                        description="Least time between two retained state messages.")
    health_interval_s: float = Field(default=300.0, ge=5, le=86400,
                                     description="Retained health telemetry is republished this often "
                                                 "(and on change).")
    health_min_interval_s: float = Field(default=10.0, ge=0, le=3600,
                                         description="Least time between two health messages (a "
                                                     "flapping board is reported once per gap).")
    link_down_degraded_s: float = Field(
        default=900.0, ge=0, le=86400,
        description="The cabinet reports degraded once the broker link has been down this long "
                    "(short outages are normal on a cellular uplink).")

    @model_validator(mode="after")
    def _tls_off_only_on_loopback(self) -> Mqtt:
        if self.enabled and not self.tls and self.host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("tls = false is only allowed for a broker on loopback")
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together (client certificate)")
        if self.password_file is not None and self.username is None:
            raise ValueError("password_file needs a username")
        if self.reconnect_min_s > self.reconnect_max_s:
            raise ValueError("reconnect_min_s must not exceed reconnect_max_s")
        return self
