"""Checkers of chapter 1 (the LSTM from scratch), and the reference versions the chapter falls back on.

* 1.1 ``check_lstm_forward(lstm_recurrent)`` — the LSTM over a sequence (``check_implementation``);
* 1.2 ``check_cell_backward(lstm_cell_backward)`` — one cell backwards, against centred differences;
* 1.3 ``check_bptt(lstm_backward)`` — backpropagation through time, against centred differences;
* 1.4 ``check_carousel(carousel_gradient)`` — the product of the forget gates, with gates that vary over time.

The checkers build their own inputs and losses from the reference cell below, so that each exercise can be checked
on its own (1.2 does not need 1.1). The reference functions have the notebook's signatures and cache layout
``(i, f, z, o, c, c_prev, h_prev)``; the chapter uses them through ``learner_or_reference`` while an exercise is
unsolved.
"""

from __future__ import annotations

import copy

import numpy as np

from xlstm_edu.exercises.core import _emit, call_learner, check_gradient, combine, exercise, raised_verdict


def _wrong_form(name, expected, out, quiet):
    got = f"a tuple of {len(out)}" if isinstance(out, tuple) else type(out).__name__
    return _emit(raised_verdict(name, f"expected the tuple {expected}, got {got}"), quiet)


# ------------------------------------------------------------------------------------------------ references
def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # = 1/(1+e^-x), without overflow


def reference_cell(wx_t, R, b, h_prev, c_prev):
    """One LSTM step (eq. 2-7) with ``pre[g] = wx_t[g] + h_prev @ R[g] + b[g]``; returns h, c and the cache
    (i, f, z, o, c, c_prev, h_prev)."""
    pre = wx_t + np.einsum("...h,ghk->...gk", h_prev, R) + b
    i, f = _sigmoid(pre[..., 0, :]), _sigmoid(pre[..., 1, :])
    z, o = np.tanh(pre[..., 2, :]), _sigmoid(pre[..., 3, :])
    c = f * c_prev + i * z
    h = o * np.tanh(c)
    return h, c, (i, f, z, o, c, c_prev, h_prev)


def reference_forward(wx, R, b, h0=None, c0=None, cell=reference_cell):
    """The LSTM over ``wx`` (..., S, 4, H) keeping each step's cache: returns (h (..., S, H), caches)."""
    *lead, S, _, H = wx.shape
    h = np.zeros((*lead, H)) if h0 is None else h0
    c = np.zeros((*lead, H)) if c0 is None else c0
    hs, caches = [], []
    for t in range(S):
        h, c, cache = cell(wx[..., t, :, :], R, b, h, c)
        hs.append(h)
        caches.append(cache)
    return np.stack(hs, axis=-2), caches


def reference_recurrent(wx, R, b, state=None):
    """Same signature and result as ``xlstm_edu.np.lstm_recurrent``."""
    h0, c0 = (None, None) if state is None else state
    hs, caches = reference_forward(wx, R, b, h0, c0)
    return hs, (hs[..., -1, :], caches[-1][4])


def reference_cell_backward(dh, dc, cache, R):
    """One cell backwards: returns dpre (..., 4, H), dh_prev, dc_prev."""
    i, f, z, o, c, c_prev, h_prev = cache
    tc = np.tanh(c)
    do = dh * tc
    dc = dc + dh * o * (1 - tc ** 2)
    dpre = np.stack([dc * z * i * (1 - i), dc * c_prev * f * (1 - f), dc * i * (1 - z ** 2), do * o * (1 - o)],
                    axis=-2)
    return dpre, np.einsum("...gk,ghk->...h", dpre, R), dc * f


def reference_backward(dhs, caches, R):
    """BPTT: dhs (..., S, H) -> dwx (..., S, 4, H), dR (4, H, H), db (4, H)."""
    dh_next, dc_next = np.zeros_like(dhs[..., 0, :]), np.zeros_like(dhs[..., 0, :])
    dwx = np.zeros(dhs.shape[:-1] + (4, dhs.shape[-1]))
    dR = np.zeros_like(R)
    for t in reversed(range(len(caches))):
        dpre, dh_next, dc_next = reference_cell_backward(dhs[..., t, :] + dh_next, dc_next, caches[t], R)
        dwx[..., t, :, :] = dpre
        dR += np.einsum("nh,ngk->ghk", caches[t][-1].reshape(-1, R.shape[1]), dpre.reshape(-1, 4, R.shape[2]))
    return dwx, dR, dwx.reshape(-1, *dwx.shape[-2:]).sum(axis=0)


# ------------------------------------------------------------------------------------------------ checkers
@exercise("1.1")
def check_lstm_forward(lstm_recurrent, *, quiet: bool = False):
    """Exercise 1.1: ``lstm_recurrent(wx, R, b, state=None) -> (h, (h_last, c_last))`` on one sequence, against
    ``xlstm_edu.np.lstm_recurrent`` (the package's and torch's LSTM are off limits while it runs)."""
    from xlstm_edu.exercises.implementations import check_implementation

    return check_implementation("lstm_recurrent", lstm_recurrent, quiet=quiet)


def _cell_problem(rng):
    B, H = 2, 3
    wx1, hp, cp = rng.normal(size=(B, 4, H)), rng.normal(size=(B, H)), rng.normal(size=(B, H))
    wx1[:, 1] += 1.0  # forget gates mostly open, but not all alike
    R, b = rng.normal(size=(4, H, H)) / np.sqrt(H), rng.normal(size=(4, H))
    return wx1, hp, cp, R, b, rng.normal(size=(B, H)), rng.normal(size=(B, H))


@exercise("1.2")
def check_cell_backward(lstm_cell_backward, *, quiet: bool = False):
    """Exercise 1.2: ``lstm_cell_backward(dh, dc, cache, R) -> (dpre, dh_prev, dc_prev)`` against centred
    differences of L = Σ G_h·h_t + Σ G_c·c_t over one step."""
    name = "exercise 1.2: one cell backwards"
    hint = "dpre[..., g, :] = dL/d(pre-activation of gate g); dc gets dh·o·(1 - tanh² c) first; dh_prev uses R[g].T"
    wx1, hp, cp, R, b, G_h, G_c = _cell_problem(np.random.default_rng(12))

    def loss():
        h1, c1, _ = reference_cell(wx1, R, b, hp, cp)
        return float(np.sum(G_h * h1) + np.sum(G_c * c1))

    _, _, cache = reference_cell(wx1, R, b, hp, cp)
    out, bad = call_learner(name, lstm_cell_backward, G_h.copy(), G_c.copy(), copy.deepcopy(cache), R.copy(),
                            hint=hint, quiet=quiet)
    if bad is not None:
        return bad
    if not (isinstance(out, tuple) and len(out) == 3):
        return _wrong_form(name, "(dpre, dh_prev, dc_prev)", out, quiet)
    dpre, dh_prev, dc_prev = out
    return combine(name, [
        check_gradient("dL/d(Wx_t)", loss, wx1, dpre, quiet=True, hint=hint),
        check_gradient("dL/dh_prev", loss, hp, dh_prev, quiet=True, hint="sum over gates of dpre[g] @ R[g].T"),
        check_gradient("dL/dc_prev", loss, cp, dc_prev, quiet=True, hint="dc_prev = (dc + dh o (1 - tanh² c)) f"),
    ], quiet=quiet)


@exercise("1.3")
def check_bptt(lstm_backward, *, quiet: bool = False):
    """Exercise 1.3: ``lstm_backward(dhs, caches, R) -> (dwx, dR, db)`` against centred differences of
    L = Σ G·h over a batch of sequences."""
    name = "exercise 1.3: backpropagation through time"
    hint = "loop t = S-1 ... 0; pass dhs[..., t, :] + dh_next and dc_next to the cell; dR[g] += h_prevᵀ dpre[g]"
    rng = np.random.default_rng(13)
    B, S, H = 2, 6, 3
    wx, R, b = rng.normal(size=(B, S, 4, H)), rng.normal(size=(4, H, H)) / np.sqrt(H), rng.normal(size=(4, H))
    G = rng.normal(size=(B, S, H))

    def loss():
        return float(np.sum(G * reference_forward(wx, R, b)[0]))

    _, caches = reference_forward(wx, R, b)
    out, bad = call_learner(name, lstm_backward, G.copy(), copy.deepcopy(caches), R.copy(), hint=hint, quiet=quiet)
    if bad is not None:
        return bad
    if not (isinstance(out, tuple) and len(out) == 3):
        return _wrong_form(name, "(dwx, dR, db)", out, quiet)
    dwx, dR, db = out
    # h = 1e-5 balances the O(h²) truncation error against round-off in the loss
    return combine(name, [
        check_gradient("BPTT dL/dR", loss, R, dR, h=1e-5, quiet=True, hint="dR[g] += h_prev.T @ dpre[g], over t "
                                                                             "and batch"),
        check_gradient("BPTT dL/d(Wx)", loss, wx, dwx, h=1e-5, quiet=True,
                       hint="did dh_next and dc_next flow back to step t-1?"),
        check_gradient("BPTT dL/db", loss, b, db, h=1e-5, quiet=True),
    ], quiet=quiet)


@exercise("1.4")
def check_carousel(carousel_gradient, *, quiet: bool = False):
    """Exercise 1.4: ``carousel_gradient(f)`` = ∏_t f_t element-wise for forget gates f (S, H) that vary over time,
    against the numerical gradient dL/dc_0 of L = Σ c_S of the LSTM with R = 0."""
    name = "exercise 1.4: dL/dc_0 = ∏_t f_t"
    hint = "the forget gates differ from step to step: multiply all of them, per unit (over the time axis)"
    rng = np.random.default_rng(14)
    S, H = 30, 4
    wx = rng.normal(size=(S, 4, H))
    wx[:, 1, :] = np.array([1.0, 2.0, 4.0, 8.0]) + rng.normal(0, 1.0, (S, H))  # forget gates vary over time
    R0, b0, c0 = np.zeros((4, H, H)), np.zeros((4, H)), rng.normal(size=H)
    f = _sigmoid(wx[:, 1, :])
    got, bad = call_learner(name, carousel_gradient, f.copy(), hint=hint, quiet=quiet)
    if bad is not None:
        return bad

    def loss():
        return float(reference_forward(wx, R0, b0, c0=c0)[1][-1][4].sum())

    # the products are small (down to 1e-4): a relative error of 1e-5 still rejects every wrong answer by far
    return check_gradient(name, loss, c0, got, h=1e-5, tol=1e-5, hint=hint, quiet=quiet)
