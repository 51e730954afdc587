"""Gates and the stabilizer, shared by sLSTM and mLSTM (paper eq. 8-17; SPEC.md §1).

Pre-activations carry a tilde in the paper (ĩ, f̃); here they are ``i_pre`` and ``f_pre``.

* input gate, exponential:       i_t = exp(ĩ_t)                      (eq. 12)
* forget gate, sigmoid (default): f_t = σ(f̃_t),  log f_t = logσ(f̃_t)   (eq. 13, the official code's choice)
* forget gate, exponential:      f_t = exp(f̃_t), log f_t = f̃_t        (eq. 13, the other option)
* stabilizer (eq. 15-17):        m_t  = max(log f_t + m_{t-1}, ĩ_t)
                                 i'_t = exp(ĩ_t - m_t)
                                 f'_t = exp(log f_t + m_{t-1} - m_t)
"""

from __future__ import annotations

import numpy as np

FORGET_GATES = ("sigmoid", "exp")


def sigmoid(x):
    """σ(x) = 1 / (1 + e^{-x}), computed without overflow for large |x|."""
    x = np.asarray(x)
    return np.exp(-np.logaddexp(0, -x)).astype(x.dtype, copy=False)


def log_sigmoid(x):
    """logσ(x) = -log(1 + e^{-x}) = -softplus(-x), stable for any x (never overflows, never log(0))."""
    x = np.asarray(x)
    return (-np.logaddexp(0, -x)).astype(x.dtype, copy=False)


def log_forget_gate(f_pre, forget_gate: str = "sigmoid"):
    """log f_t from the pre-activation f̃_t (eq. 13): logσ(f̃) for the sigmoid gate, f̃ for the exponential one."""
    if forget_gate == "sigmoid":
        return log_sigmoid(f_pre)
    if forget_gate == "exp":
        return np.asarray(f_pre)
    raise ValueError(f"forget_gate: expected one of {list(FORGET_GATES)}, got {forget_gate!r}")


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
    """The raw gates i_t = exp(ĩ_t) (eq. 12) and f_t = exp(log f_t) (eq. 13), for teaching: exp overflows
    to inf once ĩ exceeds log(max float) (88.7 in float32, 11.1 in float16, 709.8 in float64)."""
    with np.errstate(over="ignore"):
        return np.exp(i_pre), np.exp(log_f)
