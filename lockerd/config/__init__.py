"""Cabinet configuration: pydantic models loaded from TOML, strict so a typo is an error, not a default."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from lockerd.domain.ids import CABINET_ID_PATTERN, CARRIER_PATTERN
from lockerd.domain.ids import Size as Size  # re-exported: `from lockerd.config import Size` keeps working

ConfigErrorList = list[str]


class Strict(BaseModel):
    """Base for every section: unknown keys are rejected (a misspelt key must not be ignored)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Cabinet(Strict):
    """Identity of the cabinet (Smart Parcel Locker Measures Art. 8: name, address, number)."""

    id: str = Field(
        description="Cabinet id used in MQTT topics; letters, digits, '-' and '_' only.",
        pattern=CABINET_ID_PATTERN,
    )
    name: str = Field(description="Locker name shown to recipients (Art. 24).", min_length=1,
                      max_length=100)
    address: str = Field(description="Street address shown to recipients (Art. 24).", min_length=1,
                         max_length=200)
    registration_number: str = Field(
        description="Registration number with the postal administration (Art. 8).", min_length=1,
        max_length=64)
    timezone: str = Field(default="Asia/Shanghai", description="Local time zone for reports.")


class SerialPort(Strict):
    """One RS-485 bus: a serial port with its line settings."""

    name: str = Field(default="bus0", description="Bus name referenced by boards.",
                      pattern=r"^[A-Za-z0-9_-]{1,32}$")
    port: str = Field(default="/dev/ttyUSB0",
                      description="Device path (prefer /dev/serial/by-id/...); ignored by the sim "
                                  "backend, which creates a pseudo-terminal.")
    baudrate: int = Field(default=9600, description="Line speed in baud.", ge=1200, le=921600)
    parity: Literal["N", "E", "O"] = Field(default="N", description="Parity bit.")
    stopbits: Literal[1, 2] = Field(default=1, description="Stop bits.")
    read_timeout_ms: int = Field(default=200, ge=20, le=2000,
                                 description="Reply timeout for door-state reads (a read is "
                                             "retried at most once; 150-300 ms suits 9600 baud).")
    write_timeout_ms: int = Field(default=300, ge=20, le=3000,
                                  description="Reply timeout for unlock pulses (never retried).")


BoardProfile = Literal["modbus-waveshare", "modbus-coil", "kerong-cu16", "rs485-8a"]


class Board(Strict):
    """One lock-control board on a bus."""

    address: int = Field(description="Unit id / board address on the bus.", ge=0, le=247)
    bus: str = Field(default="bus0", description="Name of the serial bus the board hangs on.")
    profile: BoardProfile = Field(default="modbus-waveshare",
                                  description="Wire protocol of the board (DESIGN section 2).")
    channels: int = Field(default=8, description="Number of lock channels.", ge=1, le=64)
    inputs_active_low: bool = Field(
        default=False,
        description="True when the door-input bit reads 0 for an open door (locks differ).")


class Compartment(Strict):
    """A compartment: its size and where its lock and sensor are wired."""

    id: int = Field(description="Compartment number as printed on the door.", ge=1, le=9999)
    size: Size = Field(description="Size class S, M or L.")
    board: int = Field(description="Address of the board that drives the lock.", ge=0, le=247)
    channel: int = Field(description="Lock channel on that board, 0-based.", ge=0, le=63)


class Hardware(Strict):
    """Which implementation runs the hardware, and the bus layout."""

    backend: Literal["sim", "real"] = Field(
        default="sim", description="'sim' runs the built-in simulator on pseudo-terminals.")
    buses: list[SerialPort] = Field(default_factory=lambda: [SerialPort()],
                                    description="RS-485 buses.")
    boards: list[Board] = Field(default_factory=list, description="Lock-control boards.")

    @model_validator(mode="after")
    def _boards_on_known_buses(self) -> Hardware:
        names = [b.name for b in self.buses]
        if len(set(names)) != len(names):
            raise ValueError("bus names must be unique")
        seen: set[int] = set()
        for board in self.boards:
            if board.bus not in names:
                raise ValueError(f"board {board.address} is on unknown bus {board.bus!r}")
            # Compartments name their board by address alone, so addresses are cabinet-wide.
            if board.address in seen:
                raise ValueError(f"two boards share address {board.address} (board addresses "
                                 "must be unique across buses)")
            seen.add(board.address)
        _check_board_profiles(self.boards)  # issue 8: kerong-cu16 / rs485-8a limits
        return self


_PROFILE_LIMITS = {"kerong-cu16": (15, 16), "rs485-8a": (255, 56)}
"""Highest address and channel count the raw-frame profiles can carry on the wire."""


def _check_board_profiles(boards: list[Board]) -> None:
    """One wire protocol per bus; Kerong/0x8A addresses and channel counts within their frames."""
    family: dict[str, set[str]] = {}
    for board in boards:
        family.setdefault(board.bus, set()).add(
            "modbus" if board.profile.startswith("modbus") else board.profile)
        max_address, max_channels = _PROFILE_LIMITS.get(board.profile, (247, 64))
        if board.address > max_address or board.channels > max_channels:
            raise ValueError(f"board {board.address}: {board.profile} boards have addresses "
                             f"0-{max_address} and at most {max_channels} channels")
    for bus, kinds in family.items():
        if len(kinds) > 1:
            raise ValueError(f"bus {bus!r} mixes wire protocols {sorted(kinds)}: one per bus")


class Doors(Strict):
    """Door-control timing (DESIGN section 3, door faults)."""

    open_confirm_s: float = Field(default=2.0, gt=0, le=10,
                                  description="A pulsed door must read open within this time.")
    poll_moving_ms: int = Field(default=50, ge=10, le=1000,
                                description="Sensor poll period while a door is in motion.")
    poll_idle_ms: int = Field(default=500, ge=50, le=10000,
                              description="Sensor poll period when all doors are at rest.")
    pulse_ms: int = Field(default=700, ge=100, le=3000, description="Lock relay pulse length.")
    close_timeout_s: float = Field(default=120.0, gt=0, le=3600,
                                   description="How long a flow waits for the door to close.")
    left_open_prompt_s: float = Field(default=10.0, gt=0,
                                      description="Door open this long: panel prompt.")
    left_open_alert_s: float = Field(default=30.0, gt=0,
                                     description="Door open this long: door_left_open alert.")
    left_open_incident_s: float = Field(default=60.0, gt=0,
                                        description="Door open this long: incident.")

    @model_validator(mode="after")
    def _escalation_order(self) -> Doors:
        if not self.left_open_prompt_s < self.left_open_alert_s < self.left_open_incident_s:
            raise ValueError("left_open_prompt_s < left_open_alert_s < left_open_incident_s "
                             "must hold")
        if self.poll_moving_ms > self.poll_idle_ms:
            raise ValueError("poll_moving_ms must not exceed poll_idle_ms")
        return self


class Storage(Strict):
    """Storage period and fees (Art. 24, 25)."""

    period_hours: int = Field(default=72, ge=1, le=24 * 30,
                              description="Free storage period announced to the recipient.")
    overdue_fee_cents_per_day: int = Field(
        default=0, ge=0, le=100_00,
        description="Fee after the storage period; never charged inside it (Art. 25).")


class Rules(Strict):
    """Parcel-flow rules: pickup codes, wrong-code limiter, courier PINs, weight check (Art. 23-25)."""

    code_digits: int = Field(default=6, ge=6, le=8,
                             description="Length of pickup codes (CSPRNG, unique among live parcels).")
    wrong_code_limit: int = Field(default=5, ge=1, le=50,
                                  description="Wrong codes/PINs per panel within the window before a "
                                              "lockout.")
    wrong_code_window_s: int = Field(default=600, ge=10, le=86400,
                                     description="Sliding window for counting wrong codes.")
    lockout_base_s: int = Field(default=60, ge=1, le=3600,
                                description="First lockout; each further lockout doubles it.")
    lockout_max_s: int = Field(default=3600, ge=1, le=7 * 86400,
                               description="Longest lockout (cap of the exponential growth).")
    weight_tolerance_g: int = Field(default=100, ge=0, le=10_000,
                                    description="Allowed absolute gap between declared and measured "
                                                "weight (Art. 23).")
    weight_tolerance_pct: float = Field(default=10.0, ge=0, le=100,
                                        description="Allowed relative gap (percent of the declared "
                                                    "weight); the larger allowance applies.")
    pin_hash_iterations: int = Field(default=100_000, ge=10_000, le=10_000_000,
                                     description="PBKDF2-SHA256 iterations for courier PINs.")

    @model_validator(mode="after")
    def _lockout_order(self) -> Rules:
        if self.lockout_base_s > self.lockout_max_s:
            raise ValueError("lockout_base_s must not exceed lockout_max_s")
        return self


class Carrier(Strict):
    """A carrier (express company) authorised to use the cabinet (Art. 16)."""

    id: str = Field(description="Carrier id as used in MQTT topics.", pattern=CARRIER_PATTERN)
    name: str = Field(description="Display name.", min_length=1, max_length=64)
    hmac_key_file: Path | None = Field(
        default=None,
        description="File holding the HMAC-SHA256 key for command signatures; when set, "
                    "unsigned commands are refused.")


class Mqtt(Strict):
    """Carrier sync over MQTT (DESIGN section 4)."""

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
    backlog_alert_s: float = Field(default=300.0, ge=1, le=86400,
                                   description="Raise sync_backlog when the oldest unsent message "
                                               "is older than this.")
    sent_retention_h: float = Field(default=24.0, ge=0, le=24 * 90,
                                    description="Sent outbox rows are pruned after this long.")
    state_min_interval_s: float = Field(default=2.0, ge=0, le=600,
                                        description="Least time between two retained state messages.")

    @model_validator(mode="after")
    def _tls_off_only_on_loopback(self) -> Mqtt:
        if self.enabled and not self.tls and self.host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("tls = false is only allowed for a broker on loopback")
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together (client certificate)")
        if self.reconnect_min_s > self.reconnect_max_s:
            raise ValueError("reconnect_min_s must not exceed reconnect_max_s")
        return self


class Paths(Strict):
    """Where state, socket and secrets live."""

    state_dir: Path = Field(default=Path("/var/lib/lockerd"),
                            description="Operation log and evidence (StateDirectory=).")
    socket: Path = Field(default=Path("/run/lockerd/api.sock"),
                         description="Local API Unix socket (RuntimeDirectory=).")
    key_file: Path | None = Field(
        default=None,
        description="Operation-log key file (0600). Unset: $CREDENTIALS_DIRECTORY/oplog.key.")


class Api(Strict):
    """Local API: Unix groups that carry each role (DESIGN section 5)."""

    panel_group: str = Field(default="lockerd-panel", description="Kiosk: customer flows.")
    tech_group: str = Field(default="lockerd-tech", description="Technicians: diagnostics.")
    audit_group: str = Field(default="lockerd-audit", description="Auditors: log and export.")
    socket_mode: Annotated[int, Field(ge=0o600, le=0o777)] = Field(
        default=0o660, description="Permissions of the socket file (octal).")
    max_request_bytes: int = Field(default=65536, ge=1024, le=1 << 20,
                                   description="Longest accepted request line.")


class GpioInput(Strict):
    """A discrete input wired to a GPIO pin."""

    pin: int | str = Field(description="BCM number (17) or a gpiozero pin name ('GPIO17', "
                                       "'BOARD11').")
    active_low: bool = Field(default=True,
                             description="True when the contact pulls the pin low when active "
                                         "(switch to ground, internal pull-up).")


class GpioDoorSwitch(GpioInput):
    """A door switch wired to GPIO (faster than polling the lock board)."""

    compartment: int = Field(description="Compartment whose door the switch watches.", ge=1)


class Gpio(Strict):
    """GPIO: door switches, tamper switch, mains-fail signal, status LED, buzzer."""

    enabled: bool = Field(default=False, description="Use GPIO at all.")
    debounce_ms: int = Field(default=30, ge=1, le=1000,
                             description="An input must hold a new level this long to count.")
    door_switches: list[GpioDoorSwitch] = Field(default_factory=list,
                                                description="Door switches on GPIO.")
    tamper: GpioInput | None = Field(default=None,
                                     description="Cabinet tamper switch (active = opened).")
    mains_fail: GpioInput | None = Field(default=None,
                                         description="Mains-fail signal from the UPS "
                                                     "(active = on battery).")
    status_led: int | str | None = Field(default=None, description="Status LED output pin.")
    buzzer: int | str | None = Field(default=None, description="Buzzer output pin.")

    @model_validator(mode="after")
    def _pins_unique(self) -> Gpio:
        pins = [str(d.pin) for d in self.door_switches]
        pins += [str(i.pin) for i in (self.tamper, self.mains_fail) if i is not None]
        pins += [str(o) for o in (self.status_led, self.buzzer) if o is not None]
        dupes = sorted({p for p in pins if pins.count(p) > 1})
        if dupes:
            raise ValueError(f"GPIO pins used twice: {dupes}")
        return self


class Oplog(Strict):
    """Operation log: file name and retention per record class (Art. 26; DESIGN section 6)."""

    db_name: str = Field(default="oplog.db", pattern=r"^[A-Za-z0-9_.-]{1,64}$",
                         description="Database file name inside paths.state_dir.")
    readers: int = Field(default=2, ge=1, le=8,
                         description="Read-only connections for views, exports and the outbox.")
    purge_hour_utc: int = Field(default=19, ge=0, le=23,
                                description="UTC hour of the daily retention purge (19 = 03:00 "
                                            "Beijing time).")
    parcel_personal_days: int = Field(
        default=30, ge=1, le=3650,
        description="Days after a parcel is closed until its personal fields (waybill, phone, "
                    "verification ref, contents) are destroyed.")
    parcel_days: int = Field(default=365, ge=1, le=3650,
                             description="Days after a parcel is closed until its row is deleted "
                                         "(the chain keeps the non-personal operations).")
    courier_days: int = Field(default=90, ge=1, le=3650,
                              description="Days after a courier grant expired or was revoked "
                                          "until it is deleted.")
    outbox_sent_days: int = Field(default=7, ge=1, le=365,
                                  description="Days published outbox messages are kept.")
    command_days: int = Field(default=7, ge=7, le=365,
                              description="Days carrier command ids are remembered (>= 7: "
                                          "DESIGN section 4).")
    max_export_rows: int = Field(default=50000, ge=100, le=1000000,
                                 description="Most lines one export may return (narrow the "
                                             "range for more).")

    @model_validator(mode="after")
    def _personal_first(self) -> Oplog:
        if self.parcel_personal_days > self.parcel_days:
            raise ValueError("parcel_personal_days must not exceed parcel_days")
        return self


class Camera(Strict):
    """Camera guard: intake opens only while the camera can see (Art. 19); evidence per operation."""

    enabled: bool = Field(default=True, description="Run the camera guard (False: intake stays closed).")
    source: str = Field(default="0", min_length=1, max_length=500,
                        description="V4L2 device index ('0'), device or video file path, or RTSP URL; "
                                    "ignored by the sim backend.")
    width: int = Field(default=640, ge=160, le=3840, description="Requested capture width.")
    height: int = Field(default=480, ge=120, le=2160, description="Requested capture height.")
    sample_hz: float = Field(default=5.0, ge=1.0, le=30.0, description="Frames analysed per second.")
    analysis_width: int = Field(default=160, ge=64, le=640,
                                description="Width of the grayscale frame analysed (speed vs detail).")
    analysis_height: int = Field(default=120, ge=48, le=480, description="Height of the analysed frame.")
    down_after_s: float = Field(default=1.0, gt=0, le=30,
                                description="No new frame for this long: camera_down.")
    fresh_s: float = Field(default=2.0, gt=0, le=2.0,
                           description="Intake is open only while the last good verdict is this fresh.")
    bad_hold_s: float = Field(default=0.5, ge=0, le=1.0,
                              description="A bad verdict must last this long before intake closes "
                                          "(a passing shadow does not flap the gate).")
    good_hold_s: float = Field(default=3.0, ge=0, le=60,
                               description="Good verdicts for this long before intake reopens.")
    frozen_after_s: float = Field(default=1.5, gt=0, le=60,
                                  description="Frames without any sensor noise this long: frozen.")
    frozen_diff: float = Field(default=0.05, ge=0, le=5,
                               description="Mean gray-level change between samples below which a "
                                           "sample counts as still.")
    dark_brightness: float = Field(default=28.0, ge=0, le=128, description="Mean gray at or below: dark.")
    covered_std: float = Field(default=7.0, ge=0, le=64,
                               description="Gray-level standard deviation at or below: covered.")
    covered_entropy: float = Field(default=3.0, ge=0, le=8,
                                   description="Histogram entropy (bits) at or below: covered.")
    covered_lost: float = Field(default=0.50, gt=0, le=1,
                                description="Share of the scene's texture flattened (a hand or tape over "
                                            "part of the lens) at or above: covered.")
    saturated_fraction: float = Field(default=0.45, gt=0, le=1,
                                      description="Fraction of saturated pixels at or above: blinded.")
    blinded_brightness: float = Field(default=235.0, ge=128, le=255,
                                      description="Mean gray at or above: blinded.")
    sharpness_ratio_min: float = Field(default=0.25, ge=0, le=1,
                                       description="Laplacian energy vs reference at or below: defocused.")
    edge_ratio_min: float = Field(default=0.25, ge=0, le=1,
                                  description="Edge density vs reference at or below: defocused.")
    contrast_ratio_min: float = Field(default=0.45, ge=0, le=1,
                                      description="Contrast vs reference at or below: sprayed.")
    similarity_min: float = Field(default=0.50, ge=-1, le=1,
                                  description="Structural similarity to the reference at or below: "
                                              "redirected.")
    learn_frames: int = Field(default=5, ge=1, le=100,
                              description="Frames averaged into the first reference of the empty scene.")
    relearn_tau_s: float = Field(default=900.0, ge=10, le=86400,
                                 description="Time constant of the slow reference update (daylight); "
                                             "never updated while tampered.")
    relearn_similarity: float = Field(default=0.8, ge=0, le=1,
                                      description="Only frames at least this similar update the "
                                                  "reference (a person standing there is not learnt).")
    reference_file: Path | None = Field(
        default=None, description="PNG of the empty scene taken by a technician; unset: learnt at start.")
    evidence_retention_days: int = Field(default=30, ge=1, le=3650,
                                         description="Evidence snapshots older than this are deleted.")
    evidence_jpeg_quality: int = Field(default=85, ge=30, le=100, description="JPEG quality of snapshots.")

    @model_validator(mode="after")
    def _closes_within_a_second(self) -> Camera:
        if self.bad_hold_s + 1.0 / self.sample_hz > 1.0:
            raise ValueError("bad_hold_s + 1/sample_hz must not exceed 1 s (a bad verdict closes "
                             "intake within 1 s)")
        if self.analysis_width * 3 != self.analysis_height * 4 and \
                self.analysis_width * 9 != self.analysis_height * 16:
            raise ValueError("analysis_width x analysis_height must be 4:3 or 16:9")
        return self


class Logging(Strict):
    """Text log to stderr (journald); the operation log is the audit trail, not this."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(default="INFO",
                                                                description="Minimum level.")


class Config(Strict):
    """The whole cabinet configuration."""

    cabinet: Cabinet
    hardware: Hardware = Field(default_factory=Hardware)
    compartments: list[Compartment] = Field(description="Compartments of the cabinet.",
                                            min_length=1)
    doors: Doors = Field(default_factory=Doors)
    storage: Storage = Field(default_factory=Storage)
    rules: Rules = Field(default_factory=Rules)
    carriers: list[Carrier] = Field(default_factory=list,
                                    description="Carriers authorised to use the cabinet.")
    mqtt: Mqtt = Field(default_factory=Mqtt)
    paths: Paths = Field(default_factory=Paths)
    api: Api = Field(default_factory=Api)
    gpio: Gpio = Field(default_factory=Gpio)
    oplog: Oplog = Field(default_factory=Oplog)
    logging: Logging = Field(default_factory=Logging)
    camera: Camera = Field(default_factory=Camera, description="Camera guard and evidence.")

    @field_validator("compartments")
    @classmethod
    def _unique_ids(cls, value: list[Compartment]) -> list[Compartment]:
        ids = [c.id for c in value]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate compartment ids: {dupes}")
        return value

    @model_validator(mode="after")
    def _wiring(self) -> Config:
        boards = {b.address: b for b in self.hardware.boards}
        used: dict[tuple[int, int], int] = {}
        for comp in self.compartments:
            board = boards.get(comp.board)
            if board is None:
                raise ValueError(f"compartment {comp.id}: board {comp.board} is not configured")
            if comp.channel >= board.channels:
                raise ValueError(f"compartment {comp.id}: channel {comp.channel} is beyond "
                                 f"board {comp.board}'s {board.channels} channels")
            other = used.setdefault((comp.board, comp.channel), comp.id)
            if other != comp.id:
                raise ValueError(f"compartments {other} and {comp.id} share board {comp.board} "
                                 f"channel {comp.channel}")
        for switch in self.gpio.door_switches:
            if self.compartment(switch.compartment) is None:
                raise ValueError(f"gpio door switch on unknown compartment {switch.compartment}")
        carriers = [c.id for c in self.carriers]
        if len(set(carriers)) != len(carriers):
            raise ValueError("carrier ids must be unique")
        return self

    def compartment(self, compartment_id: int) -> Compartment | None:
        """The compartment with that number, or None."""
        return next((c for c in self.compartments if c.id == compartment_id), None)


class ConfigError(Exception):
    """A configuration file that cannot be used; `problems` holds one line per problem."""

    def __init__(self, path: Path, problems: ConfigErrorList) -> None:
        self.path = path
        self.problems = problems
        super().__init__("\n".join(problems))


def _location(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out or "(top level)"


def _problems(path: Path, exc: ValidationError) -> ConfigErrorList:
    lines = []
    for err in exc.errors():
        loc = _location(tuple(p for p in err["loc"] if p not in ("function-after",)))
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        lines.append(f"{path}: {loc}: {msg}")
    return lines


def parse_config(data: dict[str, Any], path: Path) -> Config:
    """Validate an already-parsed TOML document."""
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(path, _problems(path, exc)) from None


def load_config(path: Path) -> Config:
    """Read and validate a TOML config file; raises ConfigError with one line per problem."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(path, [f"{path}: cannot read: {exc.strerror}"]) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(path, [f"{path}: not UTF-8 text"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, [f"{path}: TOML syntax error: {exc}"]) from None
    return parse_config(data, path)


EXAMPLE_CONFIG_RESOURCE = "example.toml"


def example_config_path() -> Path:
    """Where the example config shipped inside the package lies (a real file in a wheel or checkout)."""
    return Path(str(resources.files(__package__ or "lockerd.config") / EXAMPLE_CONFIG_RESOURCE))


def example_config_text() -> str:
    """The example config: documents every key and runs as-is on the simulator (`lockerd demo`)."""
    return example_config_path().read_text(encoding="utf-8")
