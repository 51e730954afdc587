"""Numerical gradients by centred differences, the check every hand-written backward pass must pass.

    ∂L/∂x_j ≈ (L(x + h e_j) - L(x - h e_j)) / (2h)

with error O(h²). In float64 with h = 1e-6 a correct backward matches to a relative error of about 1e-8;
a wrong one is off by O(1). Use it on small inputs: it evaluates L twice per entry.
"""

from __future__ import annotations

import numpy as np


def numerical_gradient(f, x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Centred-difference gradient of the scalar function ``f`` at ``x`` (a float64 array, changed in place
    and restored). ``f`` takes no arguments and reads ``x``: ``numerical_gradient(lambda: loss(x), x)``."""
    if not isinstance(x, np.ndarray) or x.dtype != np.float64:
        raise ValueError(f"x: expected a float64 numpy array (perturbed in place), got "
                         f"{type(x).__name__} {getattr(x, 'dtype', '')}")
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        j = it.multi_index
        old = x[j]
        x[j] = old + h
        f_plus = float(f())
        x[j] = old - h
        f_minus = float(f())
        x[j] = old
        grad[j] = (f_plus - f_minus) / (2 * h)
    return grad


def relative_error(a, b) -> float:
    """max |a - b| / max(|a| + |b|, 1e-8): CS231n's relative error, 0 for identical arrays."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"relative_error: shapes differ, {a.shape} vs {b.shape}")
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), 1e-8)))
