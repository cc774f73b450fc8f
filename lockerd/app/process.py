"""Process hardening at start: no core dumps, because the daemon's memory holds secrets."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import resource

log = logging.getLogger(__name__)

# <linux/prctl.h>
PR_GET_DUMPABLE = 3
PR_SET_DUMPABLE = 4


def _prctl(option: int, arg: int = 0) -> int:
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    result: int = libc.prctl(option, arg, 0, 0, 0)
    if result < 0:
        raise OSError(ctypes.get_errno(), f"prctl({option}) failed")
    return result


def forbid_core_dumps() -> None:
    """Make this process non-dumpable and its core size zero.

    The log key, courier PINs being checked, pickup codes and recipients' names all pass through
    the daemon's memory; a core file written after a crash would keep them in clear on disk.
    Non-dumpable also stops same-uid processes from ptrace-attaching or reading /proc/PID/mem.
    The unit sets LimitCORE=0 as well; this covers a daemon started by hand.
    """
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    try:
        _prctl(PR_SET_DUMPABLE, 0)
    except OSError as exc:  # pragma: no cover - only on kernels without prctl
        log.warning("could not make the process non-dumpable: %s", exc)


def is_dumpable() -> bool:
    """Whether a core dump could be written (for tests and `status`)."""
    return _prctl(PR_GET_DUMPABLE) != 0
