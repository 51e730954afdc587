"""Input checks shared by the numpy and torch code.

Every public function checks its inputs *before* doing any work and raises ``ValueError`` with a message
that names the argument, what was expected and what came.
"""

from __future__ import annotations

import numpy as np

FLOAT_DTYPES = (np.float16, np.float32, np.float64)


def as_float_array(x, name: str, *, allow_nonfinite: bool = False) -> np.ndarray:
    """``np.asarray(x)`` that must be a finite float16/32/64 array."""
    if x is None:
        raise ValueError(f"{name}: expected a float array, got None")
    try:
        a = np.asarray(x)
    except Exception as e:  # ragged lists and the like
        raise ValueError(f"{name}: expected a float array, got {type(x).__name__} ({e})") from None
    if a.dtype.type not in FLOAT_DTYPES:
        raise ValueError(f"{name}: expected dtype float16, float32 or float64, got {a.dtype}")
    if not allow_nonfinite and not np.all(np.isfinite(a)):
        bad = np.argwhere(~np.isfinite(a))[0]
        raise ValueError(
            f"{name}: expected finite values, got NaN or inf (first at index {tuple(int(i) for i in bad)})"
        )
    return a


def check_ndim(a, name: str, min_ndim: int, layout: str) -> None:
    """``a`` must have at least ``min_ndim`` axes; ``layout`` describes them, e.g. '(..., S, DK)'."""
    if a.ndim < min_ndim:
        raise ValueError(f"{name}: expected shape {layout} (at least {min_ndim} dims), got shape {tuple(a.shape)}")


def check_shape(a, name: str, expected: tuple, layout: str) -> None:
    """``a.shape`` must equal ``expected``; ``layout`` names the axes, e.g. '(4, H, H)'."""
    if tuple(a.shape) != tuple(expected):
        raise ValueError(f"{name}: expected shape {layout} = {tuple(expected)}, got {tuple(a.shape)}")


def check_choice(value, name: str, choices) -> None:
    if value not in choices:
        raise ValueError(f"{name}: expected one of {sorted(choices)}, got {value!r}")


def check_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")
    return int(value)


def result_dtype(*arrays) -> np.dtype:
    """The common float dtype of the inputs (what the outputs are returned in)."""
    return np.result_type(*[a.dtype for a in arrays])
