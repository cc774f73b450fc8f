"""Whether a sampled frame needs the full judgement: a steady scene reuses the last good one.

At rest the camera sees the same empty cabinet front five times a second, and judging each
frame in full (registration, structure per tile, regime statistics: 2-3 ms here, 10-20 ms on a
Pi core) was most of the daemon's idle CPU (issue 19). Like a surveillance recorder that runs
its detector only where its cheap motion check fires, the guard first compares the frame with
the last one it judged in full, at the analysis size: mean absolute difference over the whole
picture and over each cell of a coarse grid. A frame that shows what a good-judged frame
showed less than `recheck_s` ago is good too, and the expensive judgement is skipped.

It is never skipped when:
- the last full judgement was not OK (a tamper stays judged in full, frame by frame);
- the picture changed by more than `max_mean_diff` overall or `max_cell_diff` in any cell (a
  hand, cloth, spray or a turned camera changes far more; so does a person walking in);
- its fine detail (mean absolute Laplacian) differs from the judged frame's by more than
  `DETAIL_RATIO` either way: a defocused or smeared lens on a smooth scene changes each pixel
  by less than the limits above, but takes the detail away (bench/camera_steady.py found blur
  spared without this check);
- the picture changed by no more than `live_diff` (a frozen feed has no sensor noise: only the
  full judgement can tell frozen from steady, and it must see those frames one after another);
- `recheck_s` passed since the last full judgement (a change too slow for the thresholds is
  compared with a frame at most that old, and every learnt statistic stays current).
A cover therefore meets the full judgement in the frame it arrives in, as before.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from lockerd.camera.frames import Gray

GRID = (8, 6)
"""Cells (columns, rows) the per-cell difference is taken over: 20x20 pixels at 160x120."""

DETAIL_RATIO = 1.1
"""Largest change of fine detail (either way) a steady frame may show: sensor noise moves the
mean absolute Laplacian of a 160x120 picture by about 1-3 % from frame to frame."""


def detail(gray: Gray) -> float:
    """Mean absolute Laplacian: the fine detail of the picture (edges, texture, noise)."""
    return float(np.mean(np.abs(cv2.Laplacian(gray, cv2.CV_32F))))


@dataclass
class SteadyScene:
    """Remembers the last frame judged OK in full and says whether a new one may reuse it."""

    max_mean_diff: float
    max_cell_diff: float
    live_diff: float
    recheck_s: float
    skipped: int = 0
    judged: int = 0
    _last: Gray | None = field(default=None, repr=False)
    _last_at: float = 0.0
    _last_detail: float = 0.0

    def unchanged(self, gray: Gray, now: float) -> bool:
        """True when `gray` (the analysis-size picture) may take the last good verdict."""
        last = self._last
        if last is None or last.shape != gray.shape or now - self._last_at >= self.recheck_s:
            return False
        diff = cv2.absdiff(gray, last)
        mean = float(diff.mean())
        if mean <= self.live_diff or mean > self.max_mean_diff:
            return False
        cells = cv2.resize(diff, GRID, interpolation=cv2.INTER_AREA)
        if float(np.max(cells)) > self.max_cell_diff:
            return False
        now_detail, was = detail(gray), self._last_detail
        if not was / DETAIL_RATIO <= now_detail <= was * DETAIL_RATIO:
            return False
        self.skipped += 1
        return True

    def remember(self, gray: Gray, now: float, good: bool) -> None:
        """The full judgement of `gray` at `now`: a good one becomes the frame to compare with."""
        self.judged += 1
        if good:
            self._last, self._last_at, self._last_detail = gray, now, detail(gray)
        else:
            self._last = None
