"""Median and quantile of the handful of per-tile values a frame's judgement reads (48 at 160x120).

numpy's `median` and `quantile` are general (any axis, any method, NaN handling) and cost 40 and
120 µs per call on 48 values on this machine's core, more than the arithmetic of a whole tile
statistic; the analysis reads a few of them per sample, five times a second, all day. These sort
the few values once and interpolate as numpy's default ("linear") method does, in a few µs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt


def quantile(values: npt.NDArray[Any], q: float) -> float:
    """The `q` (0..1) quantile of `values` (any shape, flattened), numpy's linear method."""
    ordered = np.sort(values, axis=None)
    n = ordered.size
    if n == 0:
        raise ValueError("quantile of no values")
    pos = min(max(q, 0.0), 1.0) * (n - 1)
    lo = int(pos)
    hi = min(lo + 1, n - 1)
    low, high = float(ordered[lo]), float(ordered[hi])
    return low + (high - low) * (pos - lo)


def median(values: npt.NDArray[Any]) -> float:
    """The median of `values` (any shape, flattened): the mean of the middle two for an even count."""
    return quantile(values, 0.5)
