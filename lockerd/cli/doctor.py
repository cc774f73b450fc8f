"""`lockerd doctor`: checks on the box what the daemon needs, one line each: ok, or the problem and its fix.

Runs without the daemon (before the first start, after an upgrade, when a cabinet misbehaves):
serial ports and their group, camera device, gpiochip and the lgpio backend, the clock's sync,
the state directory, the key and credential files' modes, the device identity key (loads, its
fingerprint), disk space, the broker. Access is
judged for the user the daemon runs as (`--user`, default `lockerd` when it exists). Exit 0
when every check is ok, 1 when one is a problem, 2 for a config that does not load.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import grp
import json
import os
import pwd
import shutil
import socket
import stat
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from lockerd.config import Config, ConfigError, load_config

DEFAULT_KEY = Path("/etc/lockerd/credentials/oplog.key")  # LoadCredential= source (deploy/systemd)
MIN_FREE_BYTES = 1 << 30
MIN_FREE_FRACTION = 0.10
TIME_ERROR = 5  # adjtimex(2): the kernel's clock is not synchronised


@dataclass(frozen=True, slots=True)
class Check:
    """One line of the report."""

    name: str
    ok: bool
    detail: str
    fix: str | None = None

    def line(self) -> str:
        """`ok       name: detail` or `PROBLEM  name: detail; fix: ...`."""
        text = f"{'ok' if self.ok else 'PROBLEM':<8} {self.name}: {self.detail}"
        return text if self.ok or not self.fix else f"{text}; fix: {self.fix}"


@dataclass(frozen=True, slots=True)
class User:
    """Whom access is judged for."""

    name: str
    uid: int
    groups: frozenset[int]

    @classmethod
    def named(cls, name: str | None) -> User:
        """The daemon's user: `name`, else `lockerd` when it exists, else whoever runs this."""
        for candidate in ([name] if name else ["lockerd"]):
            try:
                entry = pwd.getpwnam(candidate)
            except KeyError:
                if name:
                    raise
                continue
            return cls(entry.pw_name, entry.pw_uid,
                       frozenset(os.getgrouplist(entry.pw_name, entry.pw_gid)))
        entry = pwd.getpwuid(os.geteuid())
        return cls(entry.pw_name, entry.pw_uid, frozenset(os.getgroups()) | {entry.pw_gid})

    def can_rw(self, info: os.stat_result) -> bool:
        """Read-write access by mode bits (root passes, as the kernel lets it)."""
        mode = info.st_mode
        if self.uid == 0:
            return True
        if info.st_uid == self.uid:
            return mode & 0o600 == 0o600
        if info.st_gid in self.groups:
            return mode & 0o060 == 0o060
        return mode & 0o006 == 0o006


def _group(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def _device(name: str, path: Path, user: User, want: str, fix_missing: str) -> Check:
    try:
        info = path.stat()
    except OSError:
        return Check(name, False, f"{path} does not exist", fix_missing)
    if not stat.S_ISCHR(info.st_mode):
        return Check(name, False, f"{path} is not a character device", fix_missing)
    group = _group(info.st_gid)
    where = f"{path} ({stat.filemode(info.st_mode)} {group})"
    if user.can_rw(info):
        return Check(name, True, f"{where}, {user.name} can use it")
    return Check(name, False, f"{where}, {user.name} cannot open it",
                 f"usermod -aG {group if group != 'root' else want} {user.name} (and the udev "
                 f"rule making it group {want}, mode 0660), then restart lockerd")


def check_serial(cfg: Config, user: User) -> Iterator[Check]:
    """Every configured RS-485 bus."""
    if cfg.hardware.backend == "sim":
        yield Check("serial", True, "simulated boards (backend = sim): no ports needed")
        return
    for bus in cfg.hardware.buses:
        yield _device(f"serial {bus.name}", Path(bus.port), user, "dialout",
                      "plug the RS-485 adapter in, or name it by /dev/serial/by-id/ in "
                      "[[hardware.buses]] (deploy/udev/99-lockerd-serial.rules)")


def check_camera(cfg: Config, user: User) -> Iterator[Check]:
    """The camera device (a V4L2 index or path; URLs are not checked here)."""
    if not cfg.camera.enabled or cfg.hardware.backend == "sim":
        yield Check("camera", True, "no camera device needed (disabled or simulated)")
        return
    source = cfg.camera.source
    if source.isdigit():
        source = f"/dev/video{source}"
    if not source.startswith("/dev/"):
        yield Check("camera", True, f"source {source!r} is not a local device")
        return
    yield _device("camera", Path(source), user, "video",
                  "connect the camera, or set [camera] source to its /dev/video* node")


def check_gpio(cfg: Config, user: User, chip: Path = Path("/dev/gpiochip0"),
               has_lgpio: Callable[[], bool] | None = None) -> Iterator[Check]:
    """gpiochip access and gpiozero's pin backend, when GPIO is enabled."""
    if not cfg.gpio.enabled:
        yield Check("gpio", True, "GPIO not enabled")
        return
    yield _device("gpio chip", chip, user, "gpio", "run on the Raspberry Pi; gpiochip0 comes "
                                                  "with the kernel")
    found = has_lgpio() if has_lgpio else _importable("lgpio")
    yield Check("gpio backend", found, "lgpio " + ("installed" if found else "missing"),
                None if found else "install the cabinet's lock: pip install --require-hashes "
                                   "-r requirements-pi.lock (lockerd[pi])")


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def clock_synchronised() -> bool | None:
    """The kernel's view (adjtimex, what timedatectl's NTPSynchronized reads); None if unknown."""
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return None
    libc = ctypes.CDLL(libc_name, use_errno=True)
    timex = ctypes.create_string_buffer(512)  # struct timex, modes = 0: read only
    state = int(libc.adjtimex(timex))
    return None if state < 0 else state != TIME_ERROR


def check_time(synced: Callable[[], bool | None] = clock_synchronised) -> Iterator[Check]:
    """Operation times are evidence (Art. 9): the clock must follow NTP."""
    state = synced()
    if state is None:
        yield Check("time", False, "cannot tell whether the clock is synchronised",
                    "check `timedatectl status`")
    elif state:
        yield Check("time", True, "clock synchronised (NTP)")
    else:
        yield Check("time", False, "clock not synchronised",
                    "enable NTP: timedatectl set-ntp true (systemd-timesyncd), check the network")


def _private(name: str, path: Path, user: User) -> Check:
    try:
        info = path.stat()
    except PermissionError:
        return Check(name, False, f"{path} cannot be inspected", "run lockerd doctor as root")
    except OSError:
        return Check(name, False, f"{path} is missing", "create it (deploy/systemd/README.md)")
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        return Check(name, False, f"{path} mode {mode:04o} lets group or others read it",
                     f"chmod 600 {path}")
    if info.st_uid not in (0, user.uid):
        return Check(name, False, f"{path} is owned by uid {info.st_uid}",
                     f"chown root {path} (systemd credentials) or {user.name}")
    return Check(name, True, f"{path} mode {mode:04o}, owner {pwd.getpwuid(info.st_uid).pw_name}")


def check_secrets(cfg: Config, user: User) -> Iterator[Check]:
    """The log key and every credential file: present, 0600/0400, owned by root or the daemon."""
    yield _private("log key", cfg.paths.key_file or DEFAULT_KEY, user)
    for carrier in cfg.carriers:
        if carrier.hmac_key_file is not None:
            yield _private(f"carrier {carrier.id} key", carrier.hmac_key_file, user)
    if cfg.mqtt.enabled and cfg.mqtt.key_file is not None:
        yield _private("mqtt client key", cfg.mqtt.key_file, user)


def check_state(cfg: Config, user: User) -> Iterator[Check]:
    """The state directory: the daemon's, private; room for the log to grow."""
    state = cfg.paths.state_dir
    if not state.is_dir():
        yield Check("state dir", False, f"{state} does not exist",
                    f"install -d -m 0700 -o {user.name} {state} (systemd's StateDirectory= "
                    "makes it)")
        anchor = next(p for p in [state, *state.parents] if p.exists())
    else:
        info = state.stat()
        mode = stat.S_IMODE(info.st_mode)
        good = info.st_uid == user.uid and not mode & 0o077
        yield Check("state dir", good, f"{state} mode {mode:04o}, owner uid {info.st_uid}",
                    None if good else f"chown {user.name} {state} && chmod 700 {state}")
        anchor = state
    usage = shutil.disk_usage(anchor)
    ok = usage.free >= MIN_FREE_BYTES and usage.free >= MIN_FREE_FRACTION * usage.total
    yield Check("disk", ok, f"{usage.free / 2**30:.1f} GiB free of {usage.total / 2**30:.1f} GiB "
                            f"at {anchor}",
                None if ok else "free space (old backups in /var/backups/lockerd, journal "
                                "vacuum); the log refuses operations when it cannot write")


def check_broker(cfg: Config, timeout_s: float = 3.0) -> Iterator[Check]:
    """A TCP connection to the broker (TLS and credentials are the daemon's to try)."""
    mqtt = cfg.mqtt
    if not mqtt.enabled:
        yield Check("broker", True, "MQTT disabled: the outbox keeps every event")
        return
    try:
        with socket.create_connection((mqtt.host, mqtt.port), timeout=timeout_s):
            pass
    except OSError as exc:
        yield Check("broker", False, f"{mqtt.host}:{mqtt.port} not reachable ({exc})",
                    "check the network, [mqtt] host/port, and the broker")
        return
    yield Check("broker", True, f"{mqtt.host}:{mqtt.port} accepts connections")


def check_device_identity(cfg: Config, user: User) -> Iterator[Check]:
    """The device identity key (issue 17): exists, 0600, owned by the daemon's user, loads; its
    fingerprint printed for enrolment. Before the first start (no log yet) a missing key is
    fine, the daemon creates it; once a log exists a missing key is a problem: anchors the
    carriers hold could no longer be matched."""
    from lockerd.cli.config_files import check_identity
    from lockerd.oplog.backup import LOG_FILE

    first_start = not (cfg.paths.state_dir / LOG_FILE).exists()
    yield from check_identity(cfg, user, missing_ok=first_start)


def run_checks(cfg: Config, user: User) -> list[Check]:
    """Every check, in the order a technician fixes things."""
    return [*check_serial(cfg, user), *check_camera(cfg, user), *check_gpio(cfg, user),
            *check_time(), *check_state(cfg, user), *check_secrets(cfg, user),
            *check_device_identity(cfg, user), *check_broker(cfg)]


def main(argv: Sequence[str]) -> int:
    """`lockerd doctor -c CONFIG [--user NAME] [--json]`."""
    parser = argparse.ArgumentParser(prog="lockerd doctor", description=__doc__.split("\n")[0])
    parser.add_argument("-c", "--config", default="/etc/lockerd/lockerd.toml")
    parser.add_argument("--user", help="the daemon's user (default: lockerd if it exists)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(Path(args.config))
    except ConfigError as exc:
        for line in exc.problems:
            print(line, file=sys.stderr)
        return 2
    try:
        user = User.named(args.user)
    except KeyError:
        print(f"lockerd doctor: no user {args.user!r}", file=sys.stderr)
        return 2
    checks = run_checks(cfg, user)
    if args.json:
        print(json.dumps({"user": user.name, "checks": [asdict(c) for c in checks]}, indent=2))
    else:
        print("\n".join(c.line() for c in checks))
    return 0 if all(c.ok for c in checks) else 1
