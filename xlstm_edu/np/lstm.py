"""The classic LSTM cell in numpy (paper eq. 2-7), forward and a hand-written backward through time.

The xLSTM paper starts from the LSTM of Hochreiter & Schmidhuber (1997) with a forget gate. For one time step,
with ĩ, f̃, z̃, õ the gate pre-activations ``W x_t + R h_{t-1} + b``:

    c_t = f_t c_{t-1} + i_t z_t          (eq. 2)  cell state
    h_t = o_t tanh(c_t)                  (eq. 3)  hidden state
    z_t = tanh(z̃_t)                      (eq. 4)  cell input
    i_t = σ(ĩ_t)                         (eq. 5)  input gate
    f_t = σ(f̃_t)                         (eq. 6)  forget gate
    o_t = σ(õ_t)                         (eq. 7)  output gate

Layout used throughout xlstm_edu.np: gate order (i, f, z, o);

* ``wx`` (..., S, 4, H): the input contributions ``W_g x_t`` of every gate, computed outside the recurrence
  (they do not depend on h, so they can be computed for all t at once);
* ``R`` (4, H, H): recurrent weights, ``pre_g += h_{t-1} @ R[g]``;
* ``b`` (4, H): biases;
* state ``(h, c)``, each (..., H), zeros when not given.

``torch.nn.LSTM`` computes the same function with the same gate order (it calls z the "g" gate):
``wx[..., g, :] = (x @ W_ih.T)[..., g*H:(g+1)*H]``, ``R[g] = W_hh[g*H:(g+1)*H].T``, ``b = (b_ih + b_hh).reshape(4, H)``.
"""

from __future__ import annotations

import numpy as np

from xlstm_edu._validate import as_float_array, check_shape
from xlstm_edu.np._checks import check_cell_grad_state, check_cell_inputs
from xlstm_edu.np.gating import sigmoid

__all__ = ["lstm_step", "lstm_recurrent", "lstm_recurrent_backward"]


def _check_lstm_args(wx, R, b, state, *, step: bool = False):
    """The shared rules (``xlstm_edu._validate.cell_dims``): arrays in the compute dtype, and the results' dtype."""
    return check_cell_inputs(wx, R, b, state, heads=False, state_names=("h", "c"), step=step)


# ----------------------------------------------------------------------------------------------- forward
def _recurrent_matrix(R: np.ndarray) -> np.ndarray:
    """(4, H, H) -> (H, 4H): all four recurrent products of a step in one matmul, h @ R_cat = [h@R_i, ..., h@R_o]."""
    return R.transpose(1, 0, 2).reshape(R.shape[1], 4 * R.shape[2])


def _cell(wx_t, R_cat, b, h_prev, c_prev):
    """One LSTM step on validated arrays. Returns (h, c, (i, f, z, o, tanh c)), the gates kept for backward."""
    H = h_prev.shape[-1]
    pre = wx_t + (h_prev @ R_cat).reshape(h_prev.shape[:-1] + (4, H)) + b  # W x_t + R h_{t-1} + b
    i = sigmoid(pre[..., 0, :])  # eq. 5
    f = sigmoid(pre[..., 1, :])  # eq. 6
    z = np.tanh(pre[..., 2, :])  # eq. 4
    o = sigmoid(pre[..., 3, :])  # eq. 7
    c = f * c_prev + i * z  # eq. 2
    tc = np.tanh(c)
    h = o * tc  # eq. 3
    return h, c, (i, f, z, o, tc)


def lstm_step(wx_t, R, b, state=None):
    """One LSTM step (eq. 2-7).

    wx_t (..., 4, H) the input contributions of the four gates (i, f, z, o) at this step; R (4, H, H); b (4, H);
    state (h_prev, c_prev), each (..., H), zeros if None. Returns ``(h_t, (h_t, c_t))``.
    """
    wx_t, R, b, (h_prev, c_prev), out = _check_lstm_args(wx_t, R, b, state, step=True)
    h, c, _ = _cell(wx_t, _recurrent_matrix(R), b, h_prev, c_prev)
    return h.astype(out, copy=False), (h, c)  # the state stays in the compute dtype


def _forward(wx, R, b, h, c, keep: bool):
    R_cat = _recurrent_matrix(R)
    S = wx.shape[-3]
    hs = np.empty(wx.shape[:-3] + (S, wx.shape[-1]), wx.dtype)
    cache = []
    for t in range(S):
        h_prev, c_prev = h, c
        h, c, gates = _cell(wx[..., t, :, :], R_cat, b, h_prev, c_prev)
        hs[..., t, :] = h
        if keep:
            cache.append((h_prev, c_prev, gates))
    return hs, (h, c), cache


def lstm_recurrent(wx, R, b, state=None):
    """Run the LSTM over a sequence (eq. 2-7, one step after another).

    wx (..., S, 4, H) input contributions W·x per gate (i, f, z, o); R (4, H, H) with ``pre_g += h_{t-1} @ R[g]``;
    b (4, H); state (h0, c0), each (..., H), zeros if None.

    Returns ``(h, (h_last, c_last))`` with h (..., S, H), in the common dtype of the inputs. Passing
    ``(h_last, c_last)`` as the state of the next call continues the sequence exactly.
    """
    wx, R, b, (h, c), out = _check_lstm_args(wx, R, b, state)
    hs, (h, c), _ = _forward(wx, R, b, h, c, keep=False)
    return hs.astype(out, copy=False), (h, c)  # the state stays in the compute dtype


# ----------------------------------------------------------------------------------------------- backward
def lstm_recurrent_backward(dh, wx, R, b, state=None, d_last_state=None):
    """Backpropagation through time for :func:`lstm_recurrent`, written out by hand.

    dh (..., S, H): the gradient of a scalar loss with respect to the outputs h. Optional ``d_last_state``
    (dh_last, dc_last): extra gradients arriving at the returned final state (for example from the next chunk of
    a longer sequence); dh_last adds to dh[..., -1, :].

    Returns a dict with the gradients ``wx`` (..., S, 4, H), ``R`` (4, H, H), ``b`` (4, H), and, when ``state`` is
    given, ``h0`` and ``c0`` (..., H). The forward pass is recomputed here to keep the gate values.

    Going back one step, with dh_t the total gradient at h_t (from the loss and from step t+1 through R):
        do = dh_t tanh(c_t);   dc_t += dh_t o_t (1 - tanh² c_t)                       (eq. 3)
        di = dc_t z_t;  df = dc_t c_{t-1};  dz = dc_t i_t;  dc_{t-1} = dc_t f_t      (eq. 2)
        dĩ = di i(1-i);  df̃ = df f(1-f);  dz̃ = dz (1-z²);  dõ = do o(1-o)          (eq. 4-7)
        dR[g] += h_{t-1}ᵀ dg̃;   db[g] += dg̃;   dh_{t-1} = Σ_g dg̃ R[g]ᵀ
    """
    wx, R, b, (h0, c0), out = _check_lstm_args(wx, R, b, state)
    dtype = wx.dtype  # the compute dtype
    lead, S, H = wx.shape[:-3], wx.shape[-3], wx.shape[-1]
    dh = as_float_array(dh, "dh")
    check_shape(dh, "dh", lead + (S, H), "(..., S, H), the shape of h")
    dh = dh.astype(dtype, copy=False)
    if d_last_state is None:
        dh_next, dc = np.zeros(lead + (H,), dtype), np.zeros(lead + (H,), dtype)
    else:
        dh_next, dc = check_cell_grad_state(d_last_state, ("dh_last", "dc_last"), lead, H, dtype)

    _, _, cache = _forward(wx, R, b, h0, c0, keep=True)
    R_back = R.transpose(0, 2, 1).reshape(4 * H, H)  # dpre (..., 4H) @ R_back = Σ_g dpre_g @ R[g]ᵀ
    dwx = np.empty_like(wx)
    h_prevs = np.empty(lead + (S, H), dtype)
    for t in range(S - 1, -1, -1):
        h_prev, c_prev, (i, f, z, o, tc) = cache[t]
        dht = dh[..., t, :] + dh_next
        do = dht * tc  # eq. 3
        dc = dc + dht * o * (1 - tc * tc)  # eq. 3, through tanh(c_t)
        dpre = dwx[..., t, :, :]
        dpre[..., 0, :] = dc * z * i * (1 - i)  # eq. 2 then eq. 5
        dpre[..., 1, :] = dc * c_prev * f * (1 - f)  # eq. 2 then eq. 6
        dpre[..., 2, :] = dc * i * (1 - z * z)  # eq. 2 then eq. 4
        dpre[..., 3, :] = do * o * (1 - o)  # eq. 7
        dc = dc * f  # eq. 2: c_{t-1} enters c_t with weight f_t
        dh_next = dpre.reshape(lead + (4 * H,)) @ R_back  # through R h_{t-1}
        h_prevs[..., t, :] = h_prev
    # dR[g] = Σ over batch and time of h_{t-1}ᵀ dg̃_t; db[g] = Σ dg̃_t
    hp = h_prevs.reshape(-1, H)
    dp = dwx.reshape(-1, 4, H)
    grads = {
        "wx": dwx,
        "R": np.einsum("nk,ngh->gkh", hp, dp),
        "b": dp.sum(axis=0),
    }
    if state is not None:
        grads["h0"], grads["c0"] = dh_next, dc
    return {k: g.astype(out, copy=False) for k, g in grads.items()}
