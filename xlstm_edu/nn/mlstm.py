"""The mLSTM cell in PyTorch: parallel, chunkwise and recurrent forms, plus one O(1) step for generation.

The same functions, arguments, defaults, input rules and conventions as the numpy core (``xlstm_edu.np``), written
with torch ops so that autograd differentiates them and they run on whatever device the tensors are on. The numpy
version is where the math is explained line by line; here we keep the same names and equation numbers.

Shapes (leading batch/head dims ``...``): q, k (..., S, DK); v (..., S, DV); i_pre, f_pre (..., S);
state = (C (..., DK, DV), n (..., DK), m (...)), stored as in the official ``mlstm_kernels``: C = Σ w k vᵀ with
unscaled k, the scale 1/√DK applied to q, all zero at the start (m_0 = 0).

Which form to use:

* ``mlstm_parallel``   O(S²) time and memory, no state: the clearest, and the reference for short sequences.
* ``mlstm_chunkwise``  O(S·L) inside chunks of L plus a recurrence between chunks: the training path.
* ``mlstm_recurrent``  a loop over ``mlstm_step``: O(1) memory per token, the generation path.

Precision: the cells compute in at least float32 (float64 for float64 inputs) and return h in the inputs' dtype,
so float16/bfloat16 inputs get float32 gate arithmetic (exp, log, cumulative sums and the stabilizer lose too much
in half precision). The state is carried and returned in that compute dtype, as the official kernels keep their
states in float32: a memory rounded to half precision at every step drifts (1% after 16 steps in bfloat16). The bound exp(-m_t) is clamped before it overflows (``xlstm_edu.nn.gating``).

Gradients are the exact ones (like the official ``*_autograd`` kernels): the stabilizer m is not detached, so the
small dependence of h on m through eps (the effective eps is eps·exp(m_t)) is differentiated too.
"""

from __future__ import annotations

import math

import torch

from xlstm_edu._validate import check_mlstm_state, mlstm_dims
from xlstm_edu.nn._checks import (check_eps, check_forget_gate, check_positive_int, check_state_tuple,
                                  check_tensors, check_values, dtypes)
from xlstm_edu.nn.gating import log_forget_gate, normalizer_bound

__all__ = ["mlstm_parallel", "mlstm_chunkwise", "mlstm_recurrent", "mlstm_step", "mlstm_zero_state"]


# ----------------------------------------------------------------------------------------------------------------
# input checks (before any work): the rules of xlstm_edu._validate, as in the numpy engine
def _prepare(q, k, v, i_pre, f_pre, state, eps, forget_gate, *, step=False):
    """Check everything, then cast to the compute dtype. Returns (inputs, state or None, eps, lead, out_dtype):
    h is returned in out_dtype (the inputs' common dtype), the state in the compute dtype."""
    named = dict(q=q, k=k, v=v, i_pre=i_pre, f_pre=f_pre)
    check_tensors(named)
    check_forget_gate(forget_gate)
    eps = check_eps(eps)
    lead, _, DK, DV = mlstm_dims(q, k, v, i_pre, f_pre, step=step)
    if state is not None:
        state = check_state_tuple(state, ("C", "n", "m"))
        named.update({"state C": state[0], "state n": state[1], "state m": state[2]})
        check_tensors(named)  # the state's entries too, all on q's device
        check_mlstm_state(state, lead, DK, DV)
    check_values(named)
    out, cd = dtypes((q, k, v, i_pre, f_pre))  # the state is carried in the compute dtype, whatever it came in
    inputs = tuple(t.to(cd) for t in (q, k, v, i_pre, f_pre))
    if state is not None:
        state = tuple(t.to(cd) for t in state)
    return inputs, state, eps, lead, out


def mlstm_zero_state(batch_shape, dk: int, dv: int, *, dtype=torch.float32, device=None):
    """The initial state (C, n, m) = (0, 0, 0) of the recurrent and chunkwise forms (the official convention)."""
    batch_shape = tuple(batch_shape)
    return (
        torch.zeros(*batch_shape, dk, dv, dtype=dtype, device=device),
        torch.zeros(*batch_shape, dk, dtype=dtype, device=device),
        torch.zeros(batch_shape, dtype=dtype, device=device),
    )


# ----------------------------------------------------------------------------------------------------------------
def mlstm_parallel(q, k, v, i_pre, f_pre, eps: float = 1e-6, forget_gate: str = "sigmoid"):
    """Parallel (attention-like) mLSTM, App. A.3 (eq. 73-75 for the gate matrix). Returns h (..., S, DV).

    Behaves like m_0 = -inf (row-wise max over the decay matrix), so it differs from the recurrent form only at
    the eps level (eps is added in stabilized space, where the two forms' m differ).
    """
    (q, k, v, i_pre, f_pre), _, eps, _, out = _prepare(q, k, v, i_pre, f_pre, None, eps, forget_gate)
    S, DK = q.shape[-2], q.shape[-1]
    log_f = log_forget_gate(f_pre, forget_gate)  # eq. 26 in log space
    b = torch.cumsum(log_f, dim=-1)  # b_t = Σ_{s<=t} log f_s (log F_ts = b_t - b_s)
    causal = torch.ones(S, S, dtype=torch.bool, device=q.device).tril()
    # log D_ts = b_t - b_s + ĩ_s for s <= t, -inf above the diagonal (eq. 73, 74)
    log_D = torch.where(causal, b[..., :, None] - b[..., None, :] + i_pre[..., None, :], -math.inf)
    m = log_D.amax(dim=-1, keepdim=True)  # row-wise stabilizer (eq. 75)
    D = torch.exp(log_D - m)  # D' (eq. 75)
    C = (q @ k.transpose(-2, -1)) * (DK**-0.5) * D  # S̃ = (Q Kᵀ/√DK) ⊙ D' (App. A.3)
    n = torch.maximum(C.sum(dim=-1, keepdim=True).abs(), normalizer_bound(m))  # max(|Σ_s S̃_ts|, exp(-m_t))
    return ((C / (n + eps)) @ v).to(out)  # H = (S̃ / (n + eps)) V (App. A.3)


# ----------------------------------------------------------------------------------------------------------------
def mlstm_step(q, k, v, i_pre, f_pre, state=None, eps: float = 1e-6, forget_gate: str = "sigmoid"):
    """One recurrent step (eq. 19-21 and 25-26 with the stabilizer eq. 15-17): O(1) time and memory per token.

    q, k (..., DK); v (..., DV); i_pre, f_pre (...); state (C, n, m) or None (zeros). Returns (h (..., DV), state).
    """
    (q, k, v, i_pre, f_pre), state, eps, lead, out = _prepare(q, k, v, i_pre, f_pre, state, eps, forget_gate,
                                                              step=True)
    if state is None:
        state = mlstm_zero_state(lead, q.shape[-1], v.shape[-1], dtype=q.dtype, device=q.device)
    h, state = _step(q, k, v, i_pre, f_pre, state, eps, forget_gate)
    return h.to(out), state


def _step(q, k, v, i_pre, f_pre, state, eps, forget_gate):
    C, n, m = state
    log_f = log_forget_gate(f_pre, forget_gate)  # eq. 26
    m_new = torch.maximum(log_f + m, i_pre)  # eq. 15
    i_s = torch.exp(i_pre - m_new)[..., None]  # i' (eq. 16)
    f_s = torch.exp(log_f + m - m_new)[..., None]  # f' (eq. 17)
    C = f_s[..., None] * C + i_s[..., None] * (k[..., :, None] * v[..., None, :])  # eq. 19 (stored as k vᵀ)
    n = f_s * n + i_s * k  # eq. 20
    q_s = q * (q.shape[-1] ** -0.5)  # q̂ = q/√DK (the official scale; the paper scales k, eq. 23)
    num = (q_s[..., None, :] @ C).squeeze(-2)  # q̂ᵀ C
    den = torch.maximum((q_s * n).sum(-1).abs(), normalizer_bound(m_new))  # max(|q̂ᵀn|, exp(-m)) (eq. 21)
    h = num / (den[..., None] + eps)  # eq. 21
    return h, (C, n, m_new)


def mlstm_recurrent(q, k, v, i_pre, f_pre, state=None, eps: float = 1e-6, forget_gate: str = "sigmoid"):
    """Recurrent mLSTM: a loop of ``mlstm_step`` over time. Returns (h (..., S, DV), (C, n, m))."""
    (q, k, v, i_pre, f_pre), state, eps, lead, out = _prepare(q, k, v, i_pre, f_pre, state, eps, forget_gate)
    if state is None:
        state = mlstm_zero_state(lead, q.shape[-1], v.shape[-1], dtype=q.dtype, device=q.device)
    hs = []
    for t in range(q.shape[-2]):
        h, state = _step(q[..., t, :], k[..., t, :], v[..., t, :], i_pre[..., t], f_pre[..., t], state, eps,
                         forget_gate)
        hs.append(h)
    return torch.stack(hs, dim=-2).to(out), state


# ----------------------------------------------------------------------------------------------------------------
def mlstm_chunkwise(q, k, v, i_pre, f_pre, chunk_size: int = 64, state=None, eps: float = 1e-6,
                    forget_gate: str = "sigmoid"):
    """Chunkwise mLSTM (the official ``chunkwise/native`` kernel; Tiled Flash Linear Attention): parallel inside
    chunks of ``chunk_size``, a recurrence over (C, n, m) between chunks. Any S (the last chunk may be shorter).
    Returns (h, (C, n, m)).

    Its stabilizer per step equals the recurrent one, so it agrees with ``mlstm_recurrent`` to round-off.
    """
    L = check_positive_int(chunk_size, "chunk_size")
    (q, k, v, i_pre, f_pre), state, eps, lead, out = _prepare(q, k, v, i_pre, f_pre, state, eps, forget_gate)
    S, DK, DV = q.shape[-2], q.shape[-1], v.shape[-1]
    if state is None:
        state = mlstm_zero_state(lead, DK, DV, dtype=q.dtype, device=q.device)
    log_f = log_forget_gate(f_pre, forget_gate)  # eq. 26
    L = min(L, S)
    S_full = (S // L) * L
    outs = []
    if S_full:
        h, state = _chunks(q[..., :S_full, :], k[..., :S_full, :], v[..., :S_full, :], i_pre[..., :S_full],
                           log_f[..., :S_full], L, state, eps)
        outs.append(h)
    if S_full < S:  # the last, shorter chunk
        h, state = _chunks(q[..., S_full:, :], k[..., S_full:, :], v[..., S_full:, :], i_pre[..., S_full:],
                           log_f[..., S_full:], S - S_full, state, eps)
        outs.append(h)
    h = outs[0] if len(outs) == 1 else torch.cat(outs, dim=-2)
    return h.to(out), state


def _chunks(q, k, v, i_pre, log_f, L, state, eps):
    """Chunkwise form for S = NC·L. The scale 1/√DK of q is folded into the decay weights (saves a pass over q).

    Tricks that keep the number of passes over big arrays small (they dominate the cost on a CPU):
    the normalizer n rides along as an extra column of C (n = Σ w k = kᵀ·1, so [C | n] = Σ w k [v | 1]ᵀ);
    the row maximum of log D needs no (L, L) pass: max_{s<=t} (b_t - b_s + ĩ_s) = b_t + cummax_s(ĩ_s - b_s);
    every chunk's own contribution to the state is one batched matmul for all chunks, stabilized by the chunk's
    own maximum, so the loop over chunk borders only rescales (..., DK, DV+1) states; and that loop walks the
    chunks with ``unbind`` (whose backward is one stack) rather than indexing (whose backward zero-fills a
    full-size gradient per chunk).
    """
    C0, n0, m0 = state
    *batch, S, DK = q.shape
    DV = v.shape[-1]
    NC = S // L
    # contiguous once here: q and k feed several batched matmuls (and their backward), each of which would
    # otherwise copy a transposed view such as the blocks' (B, S, NH, DH) -> (B, NH, S, DH) again
    q = q.contiguous().reshape(*batch, NC, L, DK)
    k = k.contiguous().reshape(*batch, NC, L, DK)
    v = torch.cat([v, v.new_ones(*batch, S, 1)], dim=-1).reshape(*batch, NC, L, DV + 1)  # [v | 1]
    i_pre = i_pre.reshape(*batch, NC, L)
    b = torch.cumsum(log_f.reshape(*batch, NC, L), dim=-1)  # log-forget cumsum inside each chunk
    g = b[..., -1]  # (..., NC) total log-forget over a chunk
    a = g[..., None] - b + i_pre  # (..., NC, L): log weight of step s in the chunk-end state
    a_max = a.amax(dim=-1)  # (..., NC)

    # 1) each chunk's own part of the state at its end, Σ_s e^{a_s - a_max} k_s [v_s | 1]ᵀ (eq. 19, 20 over a chunk)
    C_loc = (k * torch.exp(a - a_max[..., None])[..., None]).transpose(-2, -1) @ v  # (..., NC, DK, DV+1)
    # 2) recurrence over chunk borders: the state [C | n] entering each chunk (eq. 15-20 for L steps at once)
    Ca, m = torch.cat([C0, n0[..., None]], dim=-1), m0  # (..., DK, DV+1)
    Cs, ms = [], []
    for C_c, g_c, a_c in zip(C_loc.unbind(-3), g.unbind(-1), a_max.unbind(-1)):
        Cs.append(Ca)
        ms.append(m)
        m_next = torch.maximum(g_c + m, a_c)  # stabilizer at the chunk end (eq. 15)
        Ca = (torch.exp(g_c + m - m_next)[..., None, None] * Ca  # eq. 19, 20: f' [C | n] + i' k [v | 1]ᵀ
              + torch.exp(a_c - m_next)[..., None, None] * C_c)
        m = m_next
    C_in = torch.stack(Cs, dim=-3)  # (..., NC, DK, DV+1)
    m_in = torch.stack(ms, dim=-1)  # (..., NC)

    # 3) inside each chunk, in parallel over all chunks: the parallel form plus the incoming state
    w = i_pre - b  # log D_ts = b_t + w_s for s <= t
    m_t = torch.maximum(b + m_in[..., None], b + torch.cummax(w, dim=-1).values)  # = the recurrent m_t (eq. 15)
    u = b - m_t - 0.5 * math.log(DK)  # (- log √DK: the scale of q̂ = q/√DK, applied through the weights)
    future = torch.full((L, L), -math.inf, dtype=q.dtype, device=q.device).triu(1)  # -inf above the diagonal
    D = (u[..., :, None] + w[..., None, :]).add_(future).exp_()  # D'/√DK (eq. 75), causal
    Sm = (q @ k.transpose(-2, -1)) * D  # (..., NC, L, L) = (q̂ kᵀ) ⊙ D'
    q_in = q * torch.exp(u + m_in[..., None])[..., None]  # q̂ times the incoming state's weight at step t
    num = q_in @ C_in + Sm @ v  # (..., NC, L, DV+1): [q̂ᵀC_t | q̂ᵀn_t]
    num, den = num.split([DV, 1], dim=-1)  # (split, not slicing: its backward is one concat, no zero-filling)
    # eq. 21; times a reciprocal rather than a division: two passes over num in the backward instead of four
    h = num * torch.reciprocal(torch.maximum(den.abs(), normalizer_bound(m_t)[..., None]) + eps)
    return h.reshape(*batch, S, DV), (Ca[..., :DV], Ca[..., DV], m)
