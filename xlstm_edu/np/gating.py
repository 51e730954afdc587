"""Gates and the stabilizer, shared by sLSTM and mLSTM (paper eq. 12-17 and 25-26).

Pre-activations carry a tilde in the paper (ĩ, f̃); here they are ``i_pre`` and ``f_pre``. The official code keeps
the forget gate in log space, and so do we.

* input gate, exponential:       i_t = exp(ĩ_t)                        (sLSTM eq. 12, mLSTM eq. 25)
* forget gate, sigmoid (default): f_t = σ(f̃_t),  log f_t = logσ(f̃_t)   (eq. 13 / 26, the official code's choice)
* forget gate, exponential:      f_t = exp(f̃_t), log f_t = f̃_t          (eq. 13 / 26, the paper's other option)
* stabilizer:                    m_t  = max(log f_t + m_{t-1}, ĩ_t)     (eq. 15)
                                 i'_t = exp(ĩ_t - m_t)                  (eq. 16)
                                 f'_t = exp(log f_t + m_{t-1} - m_t)    (eq. 17)

The torch twin of these functions is ``xlstm_edu.nn.gating``.
"""

from __future__ import annotations

import math

import numpy as np

from xlstm_edu._validate import FORGET_GATES, check_forget_gate

__all__ = ["FORGET_GATES", "sigmoid", "log_sigmoid", "log_forget_gate", "stabilizer_step", "unstabilized_gates",
           "max_exponent", "normalizer_bound"]


def sigmoid(x):
    """σ(x) = 1 / (1 + e^{-x}), computed without overflow for large |x|."""
    x = np.asarray(x)
    return np.exp(-np.logaddexp(0, -x)).astype(x.dtype, copy=False)


def log_sigmoid(x):
    """logσ(x) = -log(1 + e^{-x}) = -softplus(-x), stable for any x (never overflows, never log(0))."""
    x = np.asarray(x)
    return (-np.logaddexp(0, -x)).astype(x.dtype, copy=False)


def log_forget_gate(f_pre, forget_gate: str = "sigmoid"):
    """log f_t from the pre-activation f̃_t (eq. 13 / 26): logσ(f̃) for the sigmoid gate, f̃ for the exponential one."""
    check_forget_gate(forget_gate)
    return log_sigmoid(f_pre) if forget_gate == "sigmoid" else np.asarray(f_pre)


def stabilizer_step(log_f, i_pre, m_prev):
    """One step of the stabilizer (eq. 15-17). Returns (m_t, i'_t, f'_t).

    Replacing i, f by i', f' multiplies the states c and n (or C and n) by exp(-m_t): the ratio c/n, and so the
    output, does not change (App. A.2). m_t is treated as a constant by the gradient.
    """
    m = np.maximum(log_f + m_prev, i_pre)  # eq. 15
    i_stab = np.exp(i_pre - m)  # eq. 16
    f_stab = np.exp(log_f + m_prev - m)  # eq. 17
    return m, i_stab, f_stab


def unstabilized_gates(log_f, i_pre):
    """The raw gates i_t = exp(ĩ_t) (eq. 12 / 25) and f_t = exp(log f_t) (eq. 13 / 26), for teaching: exp overflows
    to inf once ĩ exceeds log(max float) (88.7 in float32, 11.1 in float16, 709.8 in float64)."""
    with np.errstate(over="ignore"):
        return np.exp(i_pre), np.exp(log_f)


def max_exponent(dtype) -> float:
    """The largest x for which the mLSTM uses exp(x) as is in ``dtype``: log(largest float) - 1, that is
    87.72 in float32 and 708.78 in float64. exp of it (1.3e38, 6.6e307) leaves room for adding eps."""
    return math.log(float(np.finfo(dtype).max)) - 1.0


def normalizer_bound(m, dtype):
    """exp(-m_t), the mLSTM's lower bound on the denominator in stabilized space (eq. 21: the bound 1 on |nᵀq| of
    the unstabilized form, times the stabilizer's factor exp(-m_t)). ``m`` is float64; the result is in ``dtype``.

    The exponent is clamped at ``max_exponent(dtype)``. Without the clamp, m_t < -88.7 (float32; -709.8 in float64:
    input and forget gates that have been very closed for a while) gives exp(-m_t) = inf: h_t = 0, and the
    backward pass multiplies that 0 by the infinite bound, a NaN gradient from a finite output. With the clamp the
    result is unchanged wherever exp(-m_t) stays below exp(max_exponent); beyond, h_t = q̂ᵀC_t / 1.3e38 instead of 0
    in float32 (q̂ᵀC_t / 6.6e307 in float64), where the exact h_t ≈ q̂ᵀC_t·exp(m_t) is smaller still: both are
    down at the bottom of the float range, and the gradients stay finite.
    """
    return np.exp(np.minimum(-np.asarray(m, np.float64), max_exponent(dtype))).astype(dtype)
