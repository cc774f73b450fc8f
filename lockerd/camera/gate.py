"""Intake-gate state machine: hysteresis over camera verdicts, failing closed (Art. 19). No I/O."""

from __future__ import annotations

from dataclasses import dataclass

from lockerd.camera.analysis import Verdict


@dataclass(frozen=True, slots=True)
class GateChange:
    """The gate opened, closed, or stayed closed for another reason."""

    open: bool
    reason: str | None        # camera_down / camera_obstructed / camera_starting, None when open
    verdict: Verdict          # the verdict that caused the change
    previous_reason: str | None


class GateLogic:
    """Decides intake from a stream of (time, verdict) samples.

    Closed at start. Closes once bad verdicts have lasted `bad_hold_s` (a passing shadow or a
    single odd frame does not close it; DOWN and FROZEN close at once, being judged over time
    already); a good frame in between only clears the bad streak when good frames last
    `bad_hold_s` too, so alternating bad/good still closes. Reopens after good
    verdicts for `good_hold_s`. Independently, `is_open(now)` is False whenever the last good
    verdict is older than `fresh_s`, so a stalled analysis loop cannot leave intake open.
    """

    def __init__(self, *, bad_hold_s: float, good_hold_s: float, fresh_s: float) -> None:
        self.bad_hold_s = bad_hold_s
        self.good_hold_s = good_hold_s
        self.fresh_s = fresh_s
        self.open = False
        self.reason: str | None = "camera_starting"
        self.verdict = Verdict.LEARNING
        self.last_good: float | None = None
        self._bad_since: float | None = None
        self._good_since: float | None = None

    def is_open(self, now: float) -> bool:
        """Intake may be used now: open and the last good verdict is fresh."""
        return (self.open and self.last_good is not None
                and 0.0 <= now - self.last_good <= self.fresh_s)

    def update(self, now: float, verdict: Verdict, since: float | None = None) -> GateChange | None:
        """Feed one sample; returns the change it caused, if any.

        `since`: when a bad verdict's run began, if at an earlier sample than this one (the
        analyser held that sample's verdict for one sample: see `Analyser._hold`)."""
        self.verdict = verdict
        if verdict is Verdict.OK:
            self.last_good = now
            if self._good_since is None:
                self._good_since = now
            if self._bad_since is not None and now - self._good_since >= self.bad_hold_s:
                self._bad_since = None
            if not self.open and now - self._good_since >= self.good_hold_s:
                prev = self.reason
                self.open, self.reason, self._bad_since = True, None, None
                return GateChange(True, None, verdict, prev)
            return None
        self._good_since = None
        if self._bad_since is None:
            self._bad_since = now if since is None else min(since, now)
        reason = verdict.alert_reason
        # no frame / frozen are already judged over time (down_after_s, frozen_after_s): no extra hold
        hold = 0.0 if verdict in (Verdict.DOWN, Verdict.FROZEN) else self.bad_hold_s
        if now - self._bad_since < hold:
            return None
        if self.open or reason != self.reason:
            prev = self.reason
            self.open, self.reason = False, reason
            return GateChange(False, reason, verdict, prev)
        return None
