"""The camera's quick median and quantile agree with numpy's on any handful of tile values."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lockerd.camera.order import median, quantile

VALUES = hnp.arrays(np.float32, st.tuples(st.integers(1, 8), st.integers(1, 8)),
                    elements=st.floats(-1e4, 1e4, width=32))


@given(VALUES, st.floats(0.0, 1.0))
def test_quantile_is_numpys_linear_quantile(values: np.ndarray, q: float) -> None:
    expected = float(np.quantile(values.astype(np.float64), q))
    assert quantile(values, q) == pytest.approx(expected, rel=1e-6, abs=1e-3)


@given(VALUES)
def test_median_is_numpys_median(values: np.ndarray) -> None:
    assert median(values) == pytest.approx(float(np.median(values.astype(np.float64))), rel=1e-6, abs=1e-3)


def test_no_values_is_an_error_not_a_number() -> None:
    with pytest.raises(ValueError, match="no values"):
        quantile(np.zeros(0, np.float32), 0.5)
