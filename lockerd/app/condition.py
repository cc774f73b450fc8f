"""The cabinet's condition: `ready` or `degraded`, and why, each reason with the time it began.

Why a module of its own: the supervisor only knows whether its components run, so a daemon with
no boards and no camera attached used to say `ready`. The condition adds what the owners report
(boards answering, the camera's verdict, the carrier link, the log writer's commit times) and is
the one source of the reasons that `lockerctl status`, systemd's STATUS= line and the retained
`health` message show, so the three never disagree.

A reason's `since` is when this process first saw it (a board that went offline before the
daemon started is reported from the start). The carrier link counts only after it has been down
`link_down_degraded_s`: a cellular uplink drops for seconds all the time. Reasons carry codes,
board addresses and component names, never personal data.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from lockerd.app.supervisor import CabinetState
from lockerd.domain.timefmt import format_ts

#: After a slow commit the writer counts as slow this long (quick commits since then clear it).
SLOW_MEMORY_S = 60.0

#: Camera verdicts that mean no picture at all; the other non-ok verdicts mean a blocked view.
_CAMERA_DOWN = frozenset({"down", "frozen"})
_CAMERA_FINE = frozenset({"ok", "learning"})


@dataclass(frozen=True, slots=True)
class Reason:
    """One reason the cabinet is not fully well."""

    code: str
    """component_down, board_offline, camera_down, camera_covered, carrier_link_down,
    log_writer_slow, clock_not_set, and components' own (oplog_corrupt, disk_full)."""
    subject: str
    """What it concerns: a component name, a board address, `camera`, `mqtt`, `oplog`."""
    detail: str
    """One short line for people (no personal data)."""
    since: datetime
    """When this process first saw it."""

    def age_s(self, now: datetime) -> float:
        """Seconds since the reason began (never negative)."""
        return max(0.0, round((now - self.since).total_seconds(), 1))

    def as_dict(self, now: datetime) -> dict[str, Any]:
        """For the local API (`status`): the reason with its age."""
        return {"code": self.code, "subject": self.subject, "detail": self.detail,
                "since": format_ts(self.since), "age_s": self.age_s(now)}


class Supervised(Protocol):
    """The supervisor's view of the subsystems."""

    def cabinet_state(self) -> CabinetState:
        """ready when every component runs, degraded, starting or shutdown."""
        ...

    def status(self) -> dict[str, Any]:
        """Per component: state and its own status."""
        ...

    def degraded_reasons(self) -> list[str]:
        """Running components' own reasons (e.g. `oplog_corrupt`: the log failed its check)."""
        ...


@dataclass(frozen=True, slots=True)
class Sources:
    """Where the facts come from, each a small callable on its owner's public face."""

    supervisor: Supervised
    boards: Callable[[], Mapping[str, Any]]
    """Board address -> {"online": bool | None, ...} (the door controller's status)."""
    camera_verdict: Callable[[], str | None]
    """The camera's last verdict; None without a camera (intake closed by configuration)."""
    link_up: Callable[[], bool | None]
    """Broker link connected; None when MQTT is disabled."""
    writer_timing: Callable[[], tuple[float, float, float] | None]
    """(running commit s, last commit s, s since it ended); None while the log is not open."""
    clock_problem: Callable[[], str | None] = lambda: None
    """Why nothing can be recorded (the clock reads before the newest record); None when sane."""


class CabinetCondition:
    """Evaluates the reasons on demand and remembers since when each one holds."""

    def __init__(self, sources: Sources, *, link_down_degraded_s: float, slow_commit_s: float,
                 clock: Callable[[], datetime]) -> None:
        self._src = sources
        self._link_grace_s = link_down_degraded_s
        self._slow_s = slow_commit_s
        self._clock = clock
        self._first_seen: dict[tuple[str, str], datetime] = {}

    def reasons(self) -> list[Reason]:
        """Every reason holding now, oldest first; forgets the ones that cleared."""
        now = self._clock()
        facts = self._facts()
        seen = {key: self._first_seen.get(key, now) for key in facts}
        self._first_seen = seen
        out: list[Reason] = []
        for (code, subject), detail in facts.items():
            since = seen[(code, subject)]
            if code == "carrier_link_down" and (now - since).total_seconds() < self._link_grace_s:
                continue
            out.append(Reason(code, subject, detail, since))
        return sorted(out, key=lambda r: (r.since, r.code, r.subject))

    def state(self, reasons: list[Reason] | None = None) -> CabinetState:
        """The supervisor's state, made `degraded` while any reason holds."""
        state = self._src.supervisor.cabinet_state()
        if reasons is None:
            reasons = self.reasons()
        if state == CabinetState.READY and reasons:
            return CabinetState.DEGRADED
        return state

    def summary(self) -> str:
        """`ready` or `degraded: board 1 offline; camera covered (dark)` for systemd's STATUS=."""
        reasons = self.reasons()
        state = self.state(reasons)
        if not reasons:
            return state.value
        return f"{state.value}: " + "; ".join(r.detail for r in reasons)

    def _facts(self) -> dict[tuple[str, str], str]:
        facts: dict[tuple[str, str], str] = {}
        for name, st in self._src.supervisor.status().items():
            if st.get("state") != "running":
                facts[("component_down", name)] = f"{name} {st.get('state')}"
        for own in self._src.supervisor.degraded_reasons():
            facts[(own.split(":", 1)[0], "component")] = own
        for addr, board in sorted(self._src.boards().items(), key=lambda kv: int(kv[0])):
            if board.get("online") is False:  # None: not polled yet (the first second)
                facts[("board_offline", str(addr))] = f"board {addr} offline"
        verdict = self._src.camera_verdict()
        if verdict is not None and verdict not in _CAMERA_FINE:
            code = "camera_down" if verdict in _CAMERA_DOWN else "camera_covered"
            facts[(code, "camera")] = f"camera {code.removeprefix('camera_')} ({verdict})"
        if self._src.link_up() is False:
            facts[("carrier_link_down", "mqtt")] = "carrier link down"
        clock = self._src.clock_problem()
        if clock is not None:
            facts[("clock_not_set", "clock")] = clock
        timing = self._src.writer_timing()
        if timing is not None:
            running, last, ago = timing
            if running > self._slow_s or (last > self._slow_s and ago < SLOW_MEMORY_S):
                facts[("log_writer_slow", "oplog")] = (
                    f"log writer slow ({max(running, last):.1f} s per commit)")
        return facts
