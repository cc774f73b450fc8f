"""The files and devices a config names, checked for the daemon's user: `lockerctl config check`
and `lockerd doctor` share these checks.

A config that parses can still stop the daemon at its first start, or worse weeks later when
the MQTT link reconnects: a key file that is missing, readable by others, a FIFO (start-up
would block on it), a CA bundle the service user cannot read, a serial port that is not a
character device. Each problem is one line naming the file and the fix (issue 12); nothing here
reads a secret's content beyond what it takes to tell that it loads, and no line prints it.

Secret files (the log key, carrier HMAC and ID-hash keys, the MQTT client key and password) must
be regular files (not a symlink: the daemon opens them O_NOFOLLOW), not empty, with no group or
other access, owned by root (a systemd credential) or the service user, and readable by it.
Public files (CA bundle, client certificate, camera reference) must be regular and readable.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

from lockerd.cli.doctor import DEFAULT_KEY, Check, User, _device
from lockerd.config import Config
from lockerd.oplog.errors import KeyRefused
from lockerd.oplog.identity import IDENTITY_FILE, identity_dir, load_identity

SERVICE_README = "deploy/systemd/README.md"


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISDIR, "a directory"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symbolic link")):
        if test(mode):
            return name
    return "not a regular file"


def can_read(user: User, info: os.stat_result) -> bool:
    """Read access by mode bits (root passes, as the kernel lets it)."""
    if user.uid == 0:
        return True
    if info.st_uid == user.uid:
        return bool(info.st_mode & 0o400)
    if info.st_gid in user.groups:
        return bool(info.st_mode & 0o040)
    return bool(info.st_mode & 0o004)


def can_write_dir(user: User, info: os.stat_result) -> bool:
    """Create files in a directory (write and search), by mode bits."""
    if user.uid == 0:
        return True
    if info.st_uid == user.uid:
        return info.st_mode & 0o300 == 0o300
    if info.st_gid in user.groups:
        return info.st_mode & 0o030 == 0o030
    return info.st_mode & 0o003 == 0o003


def _regular(name: str, path: Path, fix_missing: str) -> os.stat_result | Check:
    """lstat the file: its status, or the problem (missing, not a regular file, no access)."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return Check(name, False, f"{path} is missing", fix_missing)
    except OSError as exc:
        return Check(name, False, f"{path} cannot be inspected ({exc.strerror})",
                     "run the check as root or as the service user")
    if not stat.S_ISREG(info.st_mode):
        return Check(name, False, f"{path} is {_kind(info.st_mode)}, not a regular file",
                     f"replace it with a regular file holding the {name}")
    return info


def _readable(name: str, path: Path, info: os.stat_result, user: User) -> Check | None:
    """A problem when the service user cannot read the file, or it cannot be read at all."""
    if not can_read(user, info):
        return Check(name, False, f"{path} (owner uid {info.st_uid}, mode "
                                  f"{stat.S_IMODE(info.st_mode):04o}) cannot be read by "
                                  f"{user.name}",
                     f"chown {user.name} {path}, or pass it with LoadCredential= "
                     f"({SERVICE_README})")
    try:  # as whoever runs the check: an I/O error or a mandatory lock shows here
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            os.read(fd, 1)
        finally:
            os.close(fd)
    except PermissionError:
        return None  # judged for the service user above; this user may simply not be it
    except OSError as exc:
        return Check(name, False, f"{path} cannot be read ({exc.strerror})",
                     "check the disk and the file")
    return None


def secret_file(name: str, path: Path, user: User, *, credential: bool = False) -> Check:
    """A key or password file: regular, not empty, private, owned by root or the user, readable.
    `credential`: systemd reads it as root (LoadCredential=) and hands the daemon a copy, so it
    is judged readable for root, not for the service user."""
    got = _regular(name, path, f"create it readable by {user.name} only, e.g. (umask 077; "
                               f"openssl rand -hex 32 > {path}) for a key ({SERVICE_README})")
    if isinstance(got, Check):
        return got
    mode = stat.S_IMODE(got.st_mode)
    if mode & 0o077:
        return Check(name, False, f"{path} mode {mode:04o} lets group or others access it "
                                  "(a secret)", f"chmod 600 {path}")
    if got.st_uid not in (0, user.uid):
        return Check(name, False, f"{path} is owned by uid {got.st_uid}, neither root nor "
                                  f"{user.name}", f"chown {user.name} {path}")
    if got.st_size == 0:
        return Check(name, False, f"{path} is empty", f"write the {name} into it")
    reader = User("root (LoadCredential=)", 0, frozenset()) if credential else user
    problem = _readable(name, path, got, reader)
    return problem or Check(name, True, f"{path} mode {mode:04o}, {reader.name} can read it")


def public_file(name: str, path: Path, user: User) -> Check:
    """A certificate, CA bundle or image: regular and readable by the service user."""
    got = _regular(name, path, f"put the {name} at {path}, or correct the path in the config")
    if isinstance(got, Check):
        return got
    problem = _readable(name, path, got, user)
    return problem or Check(name, True, f"{path}, {user.name} can read it")


def creatable(path: Path, user: User) -> str | None:
    """Who creates a missing directory at the first start, None when nobody can: lockerd makes
    it (mkdir -p) where it may write the nearest existing parent; systemd's StateDirectory=
    makes a directory right under /var/lib."""
    if path.parent == Path("/var/lib"):
        return "systemd's StateDirectory= creates it when the unit starts"
    anchor = next((p for p in path.parents if p.exists()), None)
    if anchor is not None and anchor.is_dir() and can_write_dir(user, anchor.stat()):
        return f"lockerd creates it at its first start (in {anchor})"
    return None


def private_dir(name: str, path: Path, user: User, *, may_be_missing: bool = False) -> Check:
    """A directory the daemon writes (log, evidence, identity): the user's, private, writable.
    `may_be_missing`: fine when it does not exist yet but will be made at the first start."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        maker = creatable(path, user) if may_be_missing else None
        if maker is not None:
            return Check(name, True, f"{path} does not exist yet: {maker}")
        return Check(name, False, f"{path} does not exist and {user.name} cannot create it",
                     f"install -d -m 0700 -o {user.name} {path}")
    if not stat.S_ISDIR(info.st_mode):
        return Check(name, False, f"{path} is {_kind(info.st_mode)}, not a directory",
                     f"remove it and create the directory: install -d -m 0700 {path}")
    mode = stat.S_IMODE(info.st_mode)
    if not can_write_dir(user, info):
        return Check(name, False, f"{path} (owner uid {info.st_uid}, mode {mode:04o}) is not "
                                  f"writable by {user.name}",
                     f"chown {user.name} {path} && chmod 700 {path}")
    if mode & 0o077:
        return Check(name, False, f"{path} mode {mode:04o} lets group or others in",
                     f"chmod 700 {path}")
    return Check(name, True, f"{path} mode {mode:04o}, {user.name} can write it")


def check_identity(cfg: Config, user: User, *, missing_ok: bool) -> Iterator[Check]:
    """The device identity (issue 17): its directory, and its key when there is one: 0600, owned
    by the service user, loads; the line names its fingerprint (for enrolment)."""
    directory = identity_dir(cfg.paths)
    state = cfg.paths.state_dir
    if missing_ok and directory.is_relative_to(state) and not state.exists() \
            and creatable(state, user) is not None:
        # made with the state directory, inside it, by the daemon that owns it
        yield Check("identity dir", True, f"{directory} does not exist yet: lockerd creates it "
                                          "in the state directory at its first start")
    else:
        yield private_dir("identity dir", directory, user, may_be_missing=missing_ok)
    path = directory / IDENTITY_FILE
    if missing_ok and not path.exists() and not path.is_symlink():
        yield Check("device identity", True, f"{path} does not exist yet: lockerd creates it "
                                             "at its first start")
        return
    try:
        identity = load_identity(path, user.uid)
    except KeyRefused as exc:
        fix = "start lockerd once (it creates the key), then check again" \
            if not path.exists() else f"chown {user.name} {path} && chmod 600 {path}; a key " \
                                      "that does not load must be restored from the backup"
        yield Check("device identity", False, str(exc), fix)
        return
    yield Check("device identity", True, f"{path} mode 0600, loads; fingerprint "
                                         f"{identity.fingerprint}")


def check_config_files(cfg: Config, user: User) -> list[Check]:
    """Every file, directory and device the config names, in config order."""
    out = [private_dir("state dir (log, evidence)", cfg.paths.state_dir, user,
                       may_be_missing=True),
           *check_identity(cfg, user, missing_ok=True),
           secret_file("log key", cfg.paths.key_file or _credential(), user,
                       credential=cfg.paths.key_file is None)]
    for carrier in cfg.carriers:
        if carrier.hmac_key_file is not None:
            out.append(secret_file(f"carrier {carrier.id} hmac key", carrier.hmac_key_file, user))
        if carrier.id_hash_key_file is not None:
            out.append(secret_file(f"carrier {carrier.id} id_hash key", carrier.id_hash_key_file,
                                   user))
    mqtt = cfg.mqtt
    if mqtt.enabled:
        for label, file in (("mqtt CA file", mqtt.ca_file), ("mqtt client certificate",
                                                               mqtt.cert_file)):
            if file is not None:
                out.append(public_file(label, file, user))
        for label, file in (("mqtt client key", mqtt.key_file),
                            ("mqtt password file", mqtt.password_file)):
            if file is not None:
                out.append(secret_file(label, file, user))
    if cfg.camera.reference_file is not None:
        out.append(public_file("camera reference", cfg.camera.reference_file, user))
    if cfg.hardware.backend != "sim":
        for bus in cfg.hardware.buses:
            out.append(_device(f"serial {bus.name}", Path(bus.port), user, "dialout",
                               "plug the adapter in, or name it by /dev/serial/by-id/"))
        if cfg.hardware.idcard.enabled:
            out.append(_device("id-card reader", Path(cfg.hardware.idcard.port), user, "dialout",
                               "plug the reader in, or set [hardware.idcard] port"))
    return out


def _credential() -> Path:
    """The log key when paths.key_file is unset: systemd's credential, else the install path."""
    creds = os.environ.get("CREDENTIALS_DIRECTORY")
    return Path(creds) / "oplog.key" if creds else DEFAULT_KEY
