"""Is the system clock synchronised? For the health telemetry; degrades to "unknown" cleanly.

Why it matters: every time in the operation log and on MQTT comes from this clock; a Pi without
a real-time clock starts in 1970 (or at its last shutdown) until NTP answers. Two ways to ask,
in order: systemd's `timedatectl show -p NTPSynchronized --value` (what an operator would run),
then the kernel's adjtimex(2) with no modes (read-only, no privilege), whose return value is
TIME_ERROR while the kernel considers the clock unsynchronised. Where neither works (a
container, another OS) the answer is "unknown", never an exception.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import shutil
import subprocess
from typing import Literal

Sync = Literal["synced", "unsynced", "unknown"]

#: adjtimex(2) return value: the clock is not synchronised.
TIME_ERROR = 5
#: Larger than any architecture's `struct timex` (208 bytes on 64-bit Linux); modes (the first
#: field) stays 0, so the kernel only reads the clock state into it.
_TIMEX_BYTES = 512


def from_timedatectl(timeout_s: float = 2.0) -> Sync | None:
    """systemd's answer, None when timedatectl is missing or cannot reach timedated."""
    exe = shutil.which("timedatectl")
    if exe is None:
        return None
    try:
        done = subprocess.run([exe, "show", "-p", "NTPSynchronized", "--value"],  # noqa: S603
                              capture_output=True, text=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    value = done.stdout.strip()
    if done.returncode != 0 or value not in ("yes", "no"):
        return None
    return "synced" if value == "yes" else "unsynced"


def from_adjtimex() -> Sync | None:
    """The kernel's answer, None where adjtimex is not available."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        adjtimex = libc.adjtimex
    except (OSError, AttributeError):
        return None
    buf = ctypes.create_string_buffer(_TIMEX_BYTES)
    state = int(adjtimex(buf))
    if state < 0:
        return None
    return "unsynced" if state == TIME_ERROR else "synced"


def clock_sync() -> tuple[Sync, str | None]:
    """(state, which source answered); ("unknown", None) when none could. Blocking: call in a
    thread."""
    answer = from_timedatectl()
    if answer is not None:
        return answer, "timedatectl"
    answer = from_adjtimex()
    if answer is not None:
        return answer, "adjtimex"
    return "unknown", None
