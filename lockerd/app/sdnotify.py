"""systemd notification (READY, STATUS, WATCHDOG, STOPPING) over $NOTIFY_SOCKET; a no-op without it."""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)


class Notifier:
    """Sends sd_notify datagrams; silent when the daemon is not run by systemd."""

    def __init__(self, address: str | None = None) -> None:
        addr = address if address is not None else os.environ.get("NOTIFY_SOCKET")
        self._addr: str | None = None
        if addr:
            # Abstract-namespace sockets are written with a leading '@'.
            self._addr = "\0" + addr[1:] if addr.startswith("@") else addr
        self._failed = False

    @property
    def enabled(self) -> bool:
        """True when $NOTIFY_SOCKET is set."""
        return self._addr is not None

    def notify(self, **fields: str) -> bool:
        """Send KEY=VALUE lines; returns False (logged once) when the send failed."""
        if self._addr is None:
            return False
        msg = "\n".join(f"{k.upper()}={v}" for k, v in fields.items()).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
                s.sendto(msg, self._addr)
        except OSError as exc:
            if not self._failed:
                log.warning("sd_notify failed: %s", exc)
            self._failed = True
            return False
        if self._failed:
            log.info("sd_notify works again")
        self._failed = False
        return True

    def ready(self, status: str) -> bool:
        """READY=1 with a status line."""
        return self.notify(ready="1", status=status)

    def status(self, status: str) -> bool:
        """STATUS= line shown by systemctl status."""
        return self.notify(status=status)

    def watchdog(self) -> bool:
        """WATCHDOG=1: proof of life."""
        return self.notify(watchdog="1")

    def stopping(self) -> bool:
        """STOPPING=1 at the start of a clean shutdown."""
        return self.notify(stopping="1")


def watchdog_interval() -> float | None:
    """Half of $WATCHDOG_USEC in seconds, when the watchdog is armed for this process."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec:
        return None
    if pid and pid.isdigit() and int(pid) != os.getpid():
        return None
    try:
        value = int(usec)
    except ValueError:
        return None
    return value / 2_000_000 if value > 0 else None
