"""Answers for the checkers of chapter 4 (the sLSTM): the solution of each exercise and mistakes learners make."""

import numpy as np

import xlstm_edu.np as xnp
from checker_cases import Case
from xlstm_edu.np.gating import log_forget_gate, sigmoid


# ------------------------------------------------------------------------------------------------------ 4.1
def head_recurrence(h_prev, R):
    G, NH, DH, _ = R.shape
    h_heads = h_prev.reshape(*h_prev.shape[:-1], NH, DH)
    out = np.einsum("...jd,gjde->...gje", h_heads, R)
    return out.reshape(*h_prev.shape[:-1], G, NH * DH)


def head_recurrence_loop_over_heads(h_prev, R):  # also fine: no H x H matrix
    G, NH, DH, _ = R.shape
    out = np.zeros(h_prev.shape[:-1] + (G, NH * DH))
    for j in range(NH):
        for g in range(G):
            out[..., g, j * DH:(j + 1) * DH] = h_prev[..., j * DH:(j + 1) * DH] @ R[g, j]
    return out


def block_diagonal(R):
    G, NH, DH, _ = R.shape
    full = np.zeros((G, NH * DH, NH * DH))
    for j in range(NH):
        full[:, j * DH:(j + 1) * DH, j * DH:(j + 1) * DH] = R[:, j]
    return full


def with_the_big_matrix(h_prev, R):  # right numbers, breaks the rule
    return np.einsum("...h,ghk->...gk", h_prev, block_diagonal(R))


def with_eye_expansion(h_prev, R):  # right numbers, breaks the rule (the full matrix, built without a loop)
    G, NH, DH, _ = R.shape
    full = np.einsum("jk,gjde->gjdke", np.eye(NH), R).reshape(G, NH * DH, NH * DH)
    return np.einsum("...h,ghk->...gk", h_prev, full)


def transposed_blocks(h_prev, R):  # R h as in the equations, against the code's h @ R convention
    G, NH, DH, _ = R.shape
    out = np.einsum("...jd,gjed->...gje", h_prev.reshape(*h_prev.shape[:-1], NH, DH), R)
    return out.reshape(*h_prev.shape[:-1], G, NH * DH)


def heads_and_gates_interleaved(h_prev, R):  # (..., head, gate, unit) reshaped as if it were (..., gate, head, unit)
    G, NH, DH, _ = R.shape
    out = np.einsum("...jd,gjde->...jge", h_prev.reshape(*h_prev.shape[:-1], NH, DH), R)
    return out.reshape(*h_prev.shape[:-1], G, NH * DH)


def first_head_blocks_everywhere(h_prev, R):
    G, NH, DH, _ = R.shape
    out = np.einsum("...jd,gde->...gje", h_prev.reshape(*h_prev.shape[:-1], NH, DH), R[:, 0])
    return out.reshape(*h_prev.shape[:-1], G, NH * DH)


# ------------------------------------------------------------------------------------------------------ 4.2
def _slstm(wx, R, b, state=None, forget_gate="sigmoid", *, rescale_f=True, empty_memory=True, stabilize=True,
           recurrence=head_recurrence):
    S, _, H = wx.shape
    if state is None:
        state = tuple(np.zeros(H, dtype=wx.dtype) for _ in range(4))
    h, c, n, m = state
    hs = np.zeros((S, H), dtype=wx.dtype)
    for t in range(S):
        i_pre, f_pre, z_pre, o_pre = wx[t] + recurrence(h, R) + b
        log_f = log_forget_gate(f_pre, forget_gate)
        z, o = np.tanh(z_pre), sigmoid(o_pre)
        if stabilize:
            m_prev = np.where(n == 0, -np.inf, m) if empty_memory else m
            m = np.maximum(log_f + m_prev, i_pre)
            i_s = np.exp(i_pre - m)
            f_s = np.exp(log_f + m_prev - m) if rescale_f else np.exp(log_f)
        else:
            i_s, f_s = np.exp(i_pre), np.exp(log_f)
        c = f_s * c + i_s * z
        n = f_s * n + i_s
        h = o * c / n
        hs[t] = h
    return hs, (h, c, n, m)


def my_slstm(wx, R, b, state=None, forget_gate="sigmoid"):
    return _slstm(wx, R, b, state, forget_gate)


def f_not_rescaled(wx, R, b, state=None):
    return _slstm(wx, R, b, state, rescale_f=False)


def no_stabilizer(wx, R, b, state=None):
    with np.errstate(over="ignore", invalid="ignore"):
        return _slstm(wx, R, b, state, stabilize=False)


def heads_transposed(wx, R, b, state=None):
    return _slstm(wx, R, b, state, recurrence=transposed_blocks)


def calls_the_package(wx, R, b, state=None):
    return xnp.slstm_recurrent(wx, R, b, state=state)


def m0_zero_instead_of_empty_memory(wx, R, b, state=None):  # h right, the state stored at another scale
    return _slstm(wx, R, b, state, empty_memory=False)


# ------------------------------------------------------------------------------------------------------ 4.3
def my_parity_weights():
    W = np.zeros((2, 4, 1))
    R = np.zeros((4, 1, 1, 1))
    b = np.zeros((4, 1))
    W[0, :, 0] = [-10.0, 20.0, 30.0, 0.0]
    W[1, :, 0] = [10.0, -20.0, -10.0, 0.0]
    R[2, 0, 0, 0] = -20.0
    b[3, 0] = 10.0
    return W, R, b


def imports_the_package_weights():
    from xlstm_edu.handcrafted import parity_weights

    return parity_weights()


def no_memory_mixing():
    W, R, b = my_parity_weights()
    return W, np.zeros_like(R), b


def forget_gate_open_on_a_one():  # keeps the old content instead of overwriting it
    W, R, b = my_parity_weights()
    W[1, 1, 0] = 20.0
    return W, R, b


def weak_gates():  # the idea right, the gates not decisive: drifts on long strings
    W, R, b = my_parity_weights()
    return W / 10, R / 10, b / 10


def mixing_with_the_wrong_sign():
    W, R, b = my_parity_weights()
    R[2, 0, 0, 0] = 20.0
    return W, R, b


CASES = {
    "4.1": Case(good=head_recurrence, wrong={
        "the full block-diagonal matrix": with_the_big_matrix,
        "the full matrix through np.eye and einsum": with_eye_expansion,
        "blocks transposed (R h instead of h @ R)": transposed_blocks,
        "heads and gates interleaved in the reshape": heads_and_gates_interleaved,
        "head 0's blocks used for every head": first_head_blocks_everywhere,
    }),
    "4.2": Case(good=my_slstm, wrong={
        "f not rescaled by exp(m_{t-1} - m_t)": f_not_rescaled,
        "no stabilizer (exp of the raw pre-activations)": no_stabilizer,
        "blocks transposed": heads_transposed,
        "m_0 = 0 instead of the empty-memory rule (state stored at another scale)": m0_zero_instead_of_empty_memory,
        "calls the package": calls_the_package,
    }),
    "4.3": Case(good=my_parity_weights, wrong={
        "imports xlstm_edu.handcrafted.parity_weights": imports_the_package_weights,
        "no memory mixing (R = 0)": no_memory_mixing,
        "forget gate open on a 1": forget_gate_open_on_a_one,
        "gates ten times too weak": weak_gates,
        "memory mixing with the wrong sign": mixing_with_the_wrong_sign,
    }),
}
