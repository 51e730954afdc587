"""Answers for the checkers of chapter 3 (stabilization): the solution of each exercise and mistakes learners make."""

import numpy as np

import xlstm_edu.np as xnp
from checker_cases import Case
from xlstm_edu.np.gating import log_sigmoid, sigmoid


# ------------------------------------------------------------------------------------------------------ 3.1
def stabilizer_step(log_f, i_pre, m_prev):
    m = np.maximum(log_f + m_prev, i_pre)  # eq. 15
    return m, np.exp(i_pre - m), np.exp(log_f + m_prev - m)  # eq. 16, 17


def exp_before_max(log_f, i_pre, m_prev):
    with np.errstate(over="ignore", invalid="ignore"):
        i = np.exp(i_pre)
        m = np.maximum(log_f + m_prev, np.log(i))
        return m, i * np.exp(-m), np.exp(log_f + m_prev - m)


def f_not_rescaled(log_f, i_pre, m_prev):
    m = np.maximum(log_f + m_prev, i_pre)
    return m, np.exp(i_pre - m), np.exp(log_f)


def max_without_log_f(log_f, i_pre, m_prev):
    m = np.maximum(m_prev, i_pre)
    with np.errstate(over="ignore"):
        return m, np.exp(i_pre - m), np.exp(log_f + m_prev - m)


# ------------------------------------------------------------------------------------------------------ 3.2
def _slstm(wx, R, b, state=None, *, rescale_f=True, empty_rule=True, exp_first=False):
    S, _, H = wx.shape
    if state is None:
        h, c, n = np.zeros(H), np.zeros(H), np.zeros(H)
        m = np.full(H, -np.inf) if empty_rule else np.zeros(H)
    else:
        h, c, n, m = (np.array(s, dtype=np.float64) for s in state)
    hs = np.zeros((S, H), dtype=wx.dtype)
    for t in range(S):
        pre = wx[t] + np.stack([h @ R[g] for g in range(4)]) + b
        log_f = log_sigmoid(pre[1])
        if exp_first:
            i_raw = np.exp(pre[0])
            m_new = np.maximum(log_f + m, np.log(i_raw))
            i_s = i_raw * np.exp(-m_new)
        else:
            m_new = np.maximum(log_f + m, pre[0])
            i_s = np.exp(pre[0] - m_new)
        f_s = np.exp(log_f + m - m_new) if rescale_f else np.exp(log_f)
        c = f_s * c + i_s * np.tanh(pre[2])
        n = f_s * n + i_s
        m = m_new
        h = sigmoid(pre[3]) * c / n
        hs[t] = h
    return hs, (h, c, n, m)


def my_slstm(wx, R, b, state=None):
    return _slstm(wx, R, b, state)


def f_not_rescaled_slstm(wx, R, b, state=None):
    return _slstm(wx, R, b, state, rescale_f=False)


def fresh_state_at_m_zero(wx, R, b, state=None):
    return _slstm(wx, R, b, state, empty_rule=False)


def exp_before_max_slstm(wx, R, b, state=None):
    with np.errstate(over="ignore", invalid="ignore"):
        return _slstm(wx, R, b, state, exp_first=True)


def returns_the_first_state(wx, R, b, state=None):
    hs, _ = _slstm(wx[:1], R, b, state)
    return _slstm(wx, R, b, state)[0], _slstm(wx[:1], R, b, state)[1]


def calls_the_package(wx, R, b, state=None):
    return xnp.slstm_recurrent(wx, R[:, None], b, state)


# ------------------------------------------------------------------------------------------------------ 3.3
def step_gradients(i_pre, f_pre, z, c_prev, n_prev, m_prev):
    log_f = log_sigmoid(f_pre)
    m, i_s, f_s = stabilizer_step(log_f, i_pre, m_prev)
    c, n = f_s * c_prev + i_s * z, f_s * n_prev + i_s
    h = c / n
    return i_s * (z - h) / n, f_s * (1 - np.exp(log_f)) * (c_prev - h * n_prev) / n


def without_the_quotient_rule(i_pre, f_pre, z, c_prev, n_prev, m_prev):
    log_f = log_sigmoid(f_pre)
    m, i_s, f_s = stabilizer_step(log_f, i_pre, m_prev)
    n = f_s * n_prev + i_s
    return i_s * z / n, f_s * (1 - np.exp(log_f)) * c_prev / n


def sigma_instead_of_one_minus_sigma(i_pre, f_pre, z, c_prev, n_prev, m_prev):
    d_i, d_f = step_gradients(i_pre, f_pre, z, c_prev, n_prev, m_prev)
    s = sigmoid(f_pre)
    return d_i, d_f / (1 - s) * s


def m_through_i_only(i_pre, f_pre, z, c_prev, n_prev, m_prev):
    d_i, d_f = step_gradients(i_pre, f_pre, z, c_prev, n_prev, m_prev)
    return np.where(i_pre > log_sigmoid(f_pre) + m_prev, 0.0, d_i), d_f


CASES = {
    "3.1": Case(good=stabilizer_step, wrong={
        "the exponential before the max": exp_before_max,
        "f not rescaled": f_not_rescaled,
        "the max without log f": max_without_log_f,
        "calls the package": lambda lf, ip, mp: xnp.gating.stabilizer_step(lf, ip, mp),
    }),
    "3.2": Case(good=my_slstm, wrong={
        "f not rescaled (exhibit XIV)": f_not_rescaled_slstm,
        "a fresh state at m = 0": fresh_state_at_m_zero,
        "the exponential before the max": exp_before_max_slstm,
        "the state of the first step handed on": returns_the_first_state,
        "calls the package": calls_the_package,
    }),
    "3.3": Case(good=step_gradients, wrong={
        "the quotient rule's second term missing": without_the_quotient_rule,
        "sigma instead of 1 - sigma": sigma_instead_of_one_minus_sigma,
        "m differentiated in i' only": m_through_i_only,
        "d_i and d_f swapped": lambda *a: step_gradients(*a)[::-1],
    }),
}
