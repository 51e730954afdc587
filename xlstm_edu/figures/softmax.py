"""The sLSTM's normalized memory as a softmax over time (chapter 2), computed and drawn from code.

Unrolled from an empty memory, the sLSTM's cell state and normalizer (paper eq. 8-9) are sums over the past with
the same weights, ``c_t = Σ_{s≤t} w_ts z_s`` and ``n_t = Σ_{s≤t} w_ts``, where

    log w_ts = ĩ_s + Σ_{r=s+1}^{t} log f_r                 (input gate of step s, forget gates after it)

so the read-out ``c_t / n_t`` is a weighted average of the cell inputs with the weights
``a_ts = w_ts / Σ_{s'≤t} w_ts' = softmax_s(log w_ts)`` -- a softmax over time, one row per read-out step t::

    from xlstm_edu.figures.softmax import normalizer_weights, plot_normalizer_weights
    A = normalizer_weights(i_pre, f_pre)      # (S, S): rows sum to 1, zero above the diagonal
    fig = plot_normalizer_weights(i_pre, f_pre)

The weights are computed in log space with the row maximum subtracted before the exponential (the log-sum-exp
trick), so they stay finite for any gate pre-activations -- the same idea as the stabilizer of chapter 3.
"""

from __future__ import annotations

import numpy as np

from xlstm_edu._validate import as_float_array, check_choice
from xlstm_edu.np.gating import FORGET_GATES, log_forget_gate


def _gates(i_pre, f_pre):
    i_pre = as_float_array(i_pre, "i_pre")
    f_pre = as_float_array(f_pre, "f_pre")
    if i_pre.ndim != 1 or i_pre.shape != f_pre.shape or i_pre.size == 0:
        raise ValueError(f"i_pre, f_pre: expected two 1-d arrays of the same length S >= 1 (one gate per time step), "
                         f"got shapes {i_pre.shape} and {f_pre.shape}")
    return i_pre.astype(np.float64), f_pre.astype(np.float64)


def log_weights(i_pre, f_pre, forget_gate: str = "sigmoid") -> np.ndarray:
    """(S, S) matrix of log w_ts = ĩ_s + Σ_{r=s+1}^{t} log f_r for s <= t, and -inf above the diagonal (eq. 8-9
    unrolled). ``forget_gate``: "sigmoid" (log f = logσ(f̃), the official choice) or "exp" (log f = f̃)."""
    check_choice(forget_gate, "forget_gate", FORGET_GATES)
    i_pre, f_pre = _gates(i_pre, f_pre)
    b = np.cumsum(log_forget_gate(f_pre, forget_gate))  # b_t = Σ_{r≤t} log f_r
    S = len(b)
    causal = np.tri(S, dtype=bool)
    with np.errstate(invalid="ignore"):  # b_t - b_s is inf - inf only where a forget gate is exactly 0
        logw = b[:, None] - b[None, :] + i_pre[None, :]  # b_t - b_s = Σ_{r=s+1}^{t} log f_r
    return np.where(causal, logw, -np.inf)


def normalizer_weights(i_pre, f_pre, forget_gate: str = "sigmoid") -> np.ndarray:
    """(S, S) matrix A with ``A[t, s] = softmax_s(log w_ts)``: the weight of the cell input z_s in the read-out
    c_t / n_t (eq. 10 with o = 1). Rows sum to 1, entries above the diagonal are 0. Stable for any ĩ, f̃."""
    logw = log_weights(i_pre, f_pre, forget_gate)
    m = logw.max(axis=1, keepdims=True)  # the row maximum (finite: the diagonal is ĩ_t)
    w = np.exp(logw - m)  # every exponent <= 0
    return w / w.sum(axis=1, keepdims=True)


def plot_normalizer_weights(i_pre, f_pre, *, weights=None, forget_gate: str = "sigmoid", title=None):
    """Heat map of the softmax weights A[t, s] (rows: read-out step t, columns: stored step s) with the gates
    drawn along the edges: ĩ_s above the columns, the forget gate f_t beside the rows. ``weights`` may be given
    (e.g. computed by a learner's function); otherwise ``normalizer_weights``. Returns the Figure."""
    import matplotlib.pyplot as plt

    from xlstm_edu import style

    i_pre, f_pre = _gates(i_pre, f_pre)
    A = normalizer_weights(i_pre, f_pre, forget_gate) if weights is None else np.asarray(weights, np.float64)
    S = len(i_pre)
    if A.shape != (S, S):
        raise ValueError(f"weights: expected shape ({S}, {S}) (read-out step t, stored step s), got {A.shape}")
    f = np.exp(log_forget_gate(f_pre, forget_gate))
    fig = plt.figure(figsize=(7.6, 6.4), constrained_layout=True)
    grid = fig.add_gridspec(2, 3, width_ratios=[1.0, 7.0, 0.3], height_ratios=[1.3, 7.0])
    ax = fig.add_subplot(grid[1, 1])
    ax_i = fig.add_subplot(grid[0, 1], sharex=ax)
    ax_f = fig.add_subplot(grid[1, 0], sharey=ax)
    cax = fig.add_subplot(grid[1, 2])
    shown = np.ma.masked_where(~np.tri(S, dtype=bool), A)  # the future stays blank
    im = ax.imshow(shown, cmap=style.SEQUENTIAL, vmin=0.0, vmax=1.0, origin="upper", aspect="auto",
                   interpolation="nearest")
    ax.set_xlabel("stored step s (its cell input z_s)")
    ax.tick_params(labelleft=False)
    ax.grid(False)
    fig.colorbar(im, cax=cax, label=r"weight $a_{ts}$ of $z_s$ in $c_t / n_t$")
    ax_i.bar(np.arange(S), i_pre, color=style.GATE_COLORS["i"], width=0.8)
    ax_i.set_ylabel(r"$\tilde\imath_s$")
    ax_i.tick_params(labelbottom=False)
    ax_f.barh(np.arange(S), f, color=style.GATE_COLORS["f"], height=0.8)
    ax_f.set_xlim(1.05, 0)  # bars grow to the left, towards the rows they belong to
    ax_f.set_xlabel(r"$f_t$")
    ax_f.set_ylabel("read-out step t")
    fig.suptitle(title or r"$c_t/n_t = \sum_{s\leq t} a_{ts} z_s$: each row is a softmax over the past")
    return fig
