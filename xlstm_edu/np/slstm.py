"""The sLSTM cell in numpy (paper eq. 8-17): exponential gating, a normalizer, the stabilizer, and heads.

For one time step, with ĩ, f̃, z̃, õ the pre-activations ``W x_t + R h_{t-1} + b``:

    c_t = f_t c_{t-1} + i_t z_t          (eq. 8)   cell state
    n_t = f_t n_{t-1} + i_t              (eq. 9)   normalizer state
    h_t = o_t c_t / n_t                  (eq. 10)  hidden state
    z_t = tanh(z̃_t)                      (eq. 11)  cell input
    i_t = exp(ĩ_t)                       (eq. 12)  input gate, exponential
    f_t = σ(f̃_t)  or  exp(f̃_t)           (eq. 13)  forget gate
    o_t = σ(õ_t)                         (eq. 14)  output gate

exp(ĩ) overflows for ĩ beyond log(max float) (88.7 in float32), so the cell is run *stabilized* (eq. 15-17,
:mod:`xlstm_edu.np.gating`): with m_t = max(log f_t + m_{t-1}, ĩ_t), it uses i'_t = exp(ĩ_t - m_t) and
f'_t = exp(log f_t + m_{t-1} - m_t), which scales c_t and n_t both by exp(-m_t) and leaves h_t unchanged.
The stored state (c, n, m) therefore means the true memory c·exp(m), n·exp(m).

Memory mixing with heads: H = NH·DH units in NH heads; every recurrent matrix is block-diagonal, so a unit
only sees h_{t-1} of its own head: ``pre_g[..., head j] += h_{t-1}[..., head j] @ R[g, j]`` with R (4, NH, DH, DH).

Conventions of the official vanilla cell (xlstm 2.0.6, ``xlstm/blocks/slstm/src/vanilla/slstm.py``,
``slstm_forward_pointwise``, lines 24-34), which this module reproduces:

* gate order (i, f, z, o); state (h, c, n, m), all zeros at the start; no eps in c/n;
* on the first step from a zero state (n_{t-1} = 0) the stabilizer is m_t = ĩ_t (official, lines 25-26:
  ``if torch.all(n == 0.0): mnew = iraw``, otherwise ``torch.max(iraw, logfplusm)``). Here an entry with
  n_{t-1} = 0 is an *empty memory*: it is given m_{t-1} = -inf, so eq. 15 yields m_t = ĩ_t, i'_t = 1 and
  f'_t = 0. The official code decides this for the whole batch at once (all n == 0); here it is decided per
  entry, so batch elements never influence each other. Both agree on every state the recurrence produces: from
  the zero state n_1 = 1, and n_t >= n_{t-1} or n_t >= 1 at every step (i'_t = 1 or f'_t = 1), so n never
  returns to 0.
* i', f' are clamped to at most 1 (official, lines 30-31: ``torch.minimum(torch.exp(...), torch.ones_like(...))``).
  With m_t >= ĩ_t and m_t >= log f_t + m_{t-1} both exponents are <= 0, so the clamp changes nothing except on
  the official first step, where exp(log f + 0 - ĩ) may exceed 1 (even overflow to inf) but multiplies
  c = n = 0. Our m_{t-1} = -inf gives f' = 0 there: the same result without the inf.

The backward pass treats m as a constant (App. A.2): since h does not depend on the choice of m, that is the
exact gradient of h.
"""

from __future__ import annotations

import numpy as np

from xlstm_edu._validate import as_float_array, check_shape
from xlstm_edu.np._checks import check_cell_grad_state, check_cell_inputs
from xlstm_edu.np.gating import log_forget_gate, sigmoid, stabilizer_step, unstabilized_gates

__all__ = ["slstm_step", "slstm_recurrent", "slstm_recurrent_unstabilized", "slstm_recurrent_backward"]

STATE_NAMES = ("h", "c", "n", "m")


def _check_slstm_args(wx, R, b, state, forget_gate, *, step: bool = False, state_names=STATE_NAMES,
                      upcast: bool = True):
    """The shared rules (``xlstm_edu._validate.cell_dims``; a state the recurrence can produce): arrays in the
    compute dtype (at least float32), and the results' dtype."""
    return check_cell_inputs(wx, R, b, state, heads=True, state_names=state_names, step=step,
                             forget_gate=forget_gate, slstm_state=True, upcast=upcast)


# ----------------------------------------------------------------------------------------------- forward
def _head_matrix(R: np.ndarray) -> np.ndarray:
    """(4, NH, DH, DH) -> (NH, DH, 4·DH): all four gates' block products of one head in one matmul."""
    _, NH, DH, _ = R.shape
    return R.transpose(1, 2, 0, 3).reshape(NH, DH, 4 * DH)


def _preactivations(wx_t, R_heads, b, h_prev):
    """ĩ, f̃, z̃, õ = W x_t + R h_{t-1} + b, with R block-diagonal over heads. Returns (..., 4, H)."""
    NH, DH = R_heads.shape[0], R_heads.shape[1]
    lead = h_prev.shape[:-1]
    hh = h_prev.reshape(lead + (NH, 1, DH))  # h_{t-1} split into heads
    rh = (hh @ R_heads).reshape(lead + (NH, 4, DH))  # head j only sees its own units
    rh = np.swapaxes(rh, -3, -2).reshape(lead + (4, NH * DH))
    return wx_t + rh + b


def _cell(wx_t, R_heads, b, h_prev, c_prev, n_prev, m_prev, forget_gate):
    """One stabilized sLSTM step on validated arrays. Returns (h, c, n, m, cache for backward)."""
    pre = _preactivations(wx_t, R_heads, b, h_prev)
    i_pre, f_pre, z_pre, o_pre = pre[..., 0, :], pre[..., 1, :], pre[..., 2, :], pre[..., 3, :]
    log_f = log_forget_gate(f_pre, forget_gate)  # eq. 13 in log space: logσ(f̃) or f̃
    m_prev = np.where(n_prev == 0, -np.inf, m_prev)  # empty memory: first step gives m_t = ĩ_t (official)
    m, i_s, f_s = stabilizer_step(log_f, i_pre, m_prev)  # eq. 15-17: m_t, i'_t (eq. 12), f'_t (eq. 13)
    z = np.tanh(z_pre)  # eq. 11
    o = sigmoid(o_pre)  # eq. 14
    c = f_s * c_prev + i_s * z  # eq. 8 (stabilized: c_t·exp(-m_t))
    n = f_s * n_prev + i_s  # eq. 9 (stabilized: n_t·exp(-m_t)), >= 1 after the first step
    h = o * (c / n)  # eq. 10, no eps (official)
    return h, c, n, m, (f_pre, i_s, f_s, z, o)


def slstm_step(wx_t, R, b, state=None, forget_gate="sigmoid"):
    """One stabilized sLSTM step (eq. 8-17).

    wx_t (..., 4, H) the input contributions of the gates (i, f, z, o) at this step; R (4, NH, DH, DH)
    block-diagonal recurrent weights; b (4, H); state (h, c, n, m), each (..., H), zeros if None;
    forget_gate "sigmoid" (official) or "exp". Returns ``(h_t, (h_t, c_t, n_t, m_t))``.
    """
    wx_t, R, b, (h, c, n, m), out = _check_slstm_args(wx_t, R, b, state, forget_gate, step=True)
    h, c, n, m, _ = _cell(wx_t, _head_matrix(R), b, h, c, n, m, forget_gate)
    return h.astype(out, copy=False), (h, c, n, m)  # the state stays in the compute dtype


def _forward(wx, R, b, states, forget_gate, keep: bool):
    R_heads = _head_matrix(R)
    h, c, n, m = states
    S = wx.shape[-3]
    hs = np.empty(wx.shape[:-3] + (S, wx.shape[-1]), wx.dtype)
    cache = []
    for t in range(S):
        h_prev, c_prev, n_prev = h, c, n
        h, c, n, m, gates = _cell(wx[..., t, :, :], R_heads, b, h, c, n, m, forget_gate)
        hs[..., t, :] = h
        if keep:
            cache.append((h_prev, c_prev, n_prev, c, n, gates))
    return hs, (h, c, n, m), cache


def slstm_recurrent(wx, R, b, state=None, forget_gate="sigmoid"):
    """Run the stabilized sLSTM over a sequence (eq. 8-17).

    wx (..., S, 4, H) input contributions W·x per gate (i, f, z, o); R (4, NH, DH, DH) block-diagonal with
    ``pre_g[..., head j] += h_{t-1}[..., head j] @ R[g, j]``; b (4, H); state (h, c, n, m), each (..., H),
    zeros if None; forget_gate "sigmoid" (the official choice) or "exp".

    Returns ``(h, (h_last, c_last, n_last, m_last))``, h (..., S, H), in the common dtype of the inputs.
    The state means what it means in the official vanilla cell (its ``state`` tensor (4, B, H) is
    ``np.stack([h, c, n, m])``), so it can be handed over in both directions.
    """
    wx, R, b, states, out = _check_slstm_args(wx, R, b, state, forget_gate)
    hs, last, _ = _forward(wx, R, b, states, forget_gate, keep=False)
    return hs.astype(out, copy=False), last  # the state stays in the compute dtype


def slstm_recurrent_unstabilized(wx, R, b, state=None, forget_gate="sigmoid"):
    """The sLSTM without the stabilizer, straight from eq. 8-14: for teaching only.

    Same arguments as :func:`slstm_recurrent`, but the state is the true (unscaled) (h, c, n) and the gates are
    i_t = exp(ĩ_t), f_t = σ(f̃_t) or exp(f̃_t). Returns ``(h, (h_last, c_last, n_last))``.

    It fails exactly where the paper says: once ĩ_t exceeds log(max float) -- 88.72 in float32, 11.09 in float16,
    709.78 in float64 -- exp(ĩ_t) is inf, c and n become inf and h = inf/inf = NaN. (It also fails the other way:
    for ĩ_t below about -103 in float32 exp underflows to 0 and the first step gives h = 0/0 = NaN.) No warning
    is raised; check the result with ``np.isfinite``. Where it stays finite it equals the stabilized cell, with
    c_unstab = c·exp(m) and n_unstab = n·exp(m).
    """
    wx, R, b, (h, c, n), out = _check_slstm_args(wx, R, b, state, forget_gate, state_names=("h", "c", "n"),
                                                 upcast=False)  # computed in the inputs' dtype, float16 too
    R_heads = _head_matrix(R)
    S = wx.shape[-3]
    hs = np.empty(wx.shape[:-3] + (S, wx.shape[-1]), wx.dtype)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        for t in range(S):
            pre = _preactivations(wx[..., t, :, :], R_heads, b, h)
            i, f = unstabilized_gates(log_forget_gate(pre[..., 1, :], forget_gate), pre[..., 0, :])  # eq. 12, 13
            z = np.tanh(pre[..., 2, :])  # eq. 11
            o = sigmoid(pre[..., 3, :])  # eq. 14
            c = f * c + i * z  # eq. 8
            n = f * n + i  # eq. 9
            h = o * (c / n)  # eq. 10
            hs[..., t, :] = h
    return hs.astype(out, copy=False), (h, c, n)


# ----------------------------------------------------------------------------------------------- backward
def slstm_recurrent_backward(dh, wx, R, b, state=None, forget_gate="sigmoid", d_last_state=None):
    """Backpropagation through time for :func:`slstm_recurrent`, written out by hand, m held constant.

    dh (..., S, H): gradient of a scalar loss with respect to h. Optional ``d_last_state`` (dh_last, dc_last,
    dn_last): extra gradients arriving at the returned final state, e.g. the ``h0``, ``c0``, ``n0`` gradients
    of the next chunk of a longer sequence (a gradient for m is not needed: with m constant it drops out).

    Returns a dict with ``wx`` (..., S, 4, H), ``R`` (4, NH, DH, DH), ``b`` (4, H), and, when ``state`` is given,
    ``h0``, ``c0``, ``n0``, ``m0`` (..., H).

    Why m may be held constant (App. A.2): c_t and n_t both carry the factor exp(-m_t), which cancels in
    h_t = o_t c_t / n_t. So h is the same function of the inputs whatever sequence m_t is used, and its derivative
    with m_1, m_2, ... frozen is the exact derivative. (m_0 of a given state is an input: it sets the scale of the
    incoming memory, and it enters through f'_1.) Going back one step, with dh_t the total gradient at h_t:
        dõ = dh_t (c_t/n_t) o(1-o);  dc_t += dh_t o_t / n_t;  dn_t += -dh_t o_t c_t / n_t²     (eq. 10, 14)
        di' = dc_t z_t + dn_t;  df' = dc_t c_{t-1} + dn_t n_{t-1};  dz = dc_t i'_t              (eq. 8, 9)
        dĩ = di' i';  df̃ = df' f' · dlog f/df̃  (σ(-f̃) for the sigmoid gate, 1 for exp);  dz̃ = dz (1-z²)
        dc_{t-1} = dc_t f'_t;  dn_{t-1} = dn_t f'_t;  dh_{t-1} = Σ_g dg̃ R[g]ᵀ (head by head)
    """
    wx, R, b, states, out = _check_slstm_args(wx, R, b, state, forget_gate)
    dtype = wx.dtype  # the compute dtype
    lead, S, H = wx.shape[:-3], wx.shape[-3], wx.shape[-1]
    NH, DH = R.shape[1], R.shape[2]
    dh = as_float_array(dh, "dh")
    check_shape(dh, "dh", lead + (S, H), "(..., S, H), the shape of h")
    dh = dh.astype(dtype, copy=False)
    if d_last_state is None:
        dh_next, dc, dn = (np.zeros(lead + (H,), dtype) for _ in range(3))
    else:
        dh_next, dc, dn = check_cell_grad_state(d_last_state, ("dh_last", "dc_last", "dn_last"), lead, H, dtype)

    _, _, cache = _forward(wx, R, b, states, forget_gate, keep=True)
    # dh_{t-1}[head j] = Σ_g dg̃[head j] @ R[g, j]ᵀ: as one matmul per head, (..., NH, 1, 4·DH) @ (NH, 4·DH, DH)
    R_back = R.transpose(1, 0, 3, 2).reshape(NH, 4 * DH, DH)
    dwx = np.empty_like(wx)
    h_prevs = np.empty(lead + (S, H), dtype)
    df_s = None
    for t in range(S - 1, -1, -1):
        h_prev, c_prev, n_prev, c, n, (f_pre, i_s, f_s, z, o) = cache[t]
        dht = dh[..., t, :] + dh_next
        ratio = c / n
        dpre = dwx[..., t, :, :]
        dpre[..., 3, :] = dht * ratio * o * (1 - o)  # eq. 10 then eq. 14
        dc = dc + dht * o / n  # eq. 10
        dn = dn - dht * o * ratio / n  # eq. 10
        di_s = dc * z + dn  # eq. 8, 9
        df_s = dc * c_prev + dn * n_prev  # eq. 8, 9
        dlogf = sigmoid(-f_pre) if forget_gate == "sigmoid" else 1.0  # d logσ(f̃)/df̃ = σ(-f̃); d f̃/df̃ = 1
        dpre[..., 0, :] = di_s * i_s  # eq. 16 with m_t constant: di'/dĩ = i'
        dpre[..., 1, :] = df_s * f_s * dlogf  # eq. 17 with m constant: df'/dlog f = f'
        dpre[..., 2, :] = dc * i_s * (1 - z * z)  # eq. 8 then eq. 11
        dc = dc * f_s  # eq. 8
        dn = dn * f_s  # eq. 9
        dp_heads = np.swapaxes(dpre.reshape(lead + (4, NH, DH)), -3, -2).reshape(lead + (NH, 1, 4 * DH))
        dh_next = (dp_heads @ R_back).reshape(lead + (H,))
        h_prevs[..., t, :] = h_prev
    # dR[g, j] = Σ over batch and time of h_{t-1}[head j]ᵀ dg̃[head j]; db[g] = Σ dg̃
    hp = h_prevs.reshape(-1, NH, DH)
    dp = dwx.reshape(-1, 4, NH, DH)
    grads = {
        "wx": dwx,
        "R": np.einsum("xjk,xgjd->gjkd", hp, dp),
        "b": dp.reshape(-1, 4, H).sum(axis=0),
    }
    if state is not None:
        f_s1 = cache[0][5][2]  # f'_1
        grads["h0"], grads["c0"], grads["n0"] = dh_next, dc, dn
        # m_0 enters only through f'_1 = exp(log f_1 + m_0 - m_1) (eq. 17): df'_1/dm_0 = f'_1
        grads["m0"] = df_s * f_s1
    return {k: g.astype(out, copy=False) for k, g in grads.items()}
