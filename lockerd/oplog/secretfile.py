"""Reading and writing the cabinet's secret files (the log key, the device identity, anchor state).

One place for the rules every secret file obeys, so a check added for one key cannot be missing
for another: the file is read only when it is a regular file (a FIFO or device would block or
feed the daemon), reached without a symbolic link anywhere on its path (whoever can change a
link chooses the key), owned by the daemon user and closed to group and others (the keys guard
personal data). Writes are durable and atomic: a temporary 0600 file, fsync, rename, fsync of
the directory, so a power cut leaves the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from lockerd.oplog.errors import KeyRefused

#: Secret files are small; a larger read means the path names the wrong file.
MAX_SECRET_BYTES = 4096


def read_secret_file(path: Path, what: str, owner_uid: int | None = None) -> bytes:
    """The bytes of the secret file `path` (`what` names it in refusals), or KeyRefused."""
    uid = os.geteuid() if owner_uid is None else owner_uid
    refuse_symlinked_parent(path, what)
    try:
        # O_NONBLOCK: opening a FIFO with no writer would block start-up forever (a device
        # might too); with it the open returns at once and fstat below refuses the file.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        raise KeyRefused(f"{path}: {what} is missing") from None
    except OSError as exc:
        raise KeyRefused(f"{path}: cannot open {what}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise KeyRefused(f"{path}: {what} is not a regular file ({file_kind(info.st_mode)})")
        if info.st_mode & 0o077:
            raise KeyRefused(f"{path}: {what} has mode {stat.S_IMODE(info.st_mode):04o}, which "
                             "lets group or others access it; chmod 600 it")
        if info.st_uid != uid:
            raise KeyRefused(f"{path}: {what} is owned by uid {info.st_uid}, not the daemon "
                             f"user (uid {uid})")
        return os.read(fd, MAX_SECRET_BYTES)
    finally:
        os.close(fd)


def refuse_symlinked_parent(path: Path, what: str) -> None:
    """O_NOFOLLOW guards only the last component: a directory on the way that is a symlink
    lets whoever can change that link point the daemon at a file of their choosing."""
    absolute = Path(os.path.abspath(path))
    for parent in absolute.parents:
        if parent.is_symlink():
            raise KeyRefused(f"{path}: directory {parent} on the way to the {what} is a "
                             f"symbolic link (to {os.readlink(parent)}); use the real path")


def file_kind(mode: int) -> str:
    """What a non-regular file is, in words for a refusal."""
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISDIR, "a directory"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def write_private_file(path: Path, data: bytes) -> None:
    """Write a 0600 file durably: temporary file, fsync, rename, fsync the directory."""
    tmp = path.with_name(f".{path.name}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    """Make a rename or a new file in `directory` survive a power cut."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
