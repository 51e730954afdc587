"""mLSTM, chunkwise form: recurrent between chunks, parallel inside them (the official ``mlstm_kernels``
chunkwise/native kernel; "Tiled Flash Linear Attention", Beck et al. 2025).

Split time into chunks of L steps. Inside chunk k, with the state (C, n, m) from the end of chunk k-1 and the
within-chunk cumulative log forget gates b_t = Σ_{r in chunk, r≤t} log f_r, step t sees

    the old state with log weight   b_t + m_{k-1}                 (its forget gates since the chunk start)
    step s ≤ t of the chunk with    b_t - b_s + ĩ_s = b_t + x_s   (log D_ts of the parallel form, eq. 74)

Both are rescaled to one stabilizer, m_t = b_t + max(m_{k-1}, max_{s≤t} x_s): exactly the recurrent m_t of
eq. 15 unrolled, so this form equals the recurrent one to round-off, eps included. Then, as in eq. 21,

    h_t = (q̂_tᵀ C_t) / (max(|q̂_tᵀ n_t|, exp(-m_t)) + eps)   with  q̂_tᵀ C_t = e^{m_{k-1}-ν_t} q̂_tᵀ C_{k-1}
                                                                     + Σ_{s≤t} e^{x_s-ν_t} (q̂_t·k_s) v_s,
    ν_t = m_t - b_t.

Between chunks (eq. 15, 19, 20 applied to a whole chunk at once), with g = b_L the chunk's total log forget:

    m_k = g + max(m_{k-1}, max_s x_s),   C_k = e^{g + m_{k-1} - m_k} C_{k-1} + Σ_s e^{g + x_s - m_k} k_s v_sᵀ,
    n_k likewise with k_s instead of k_s v_sᵀ.

Cost O(S·L·d + S·d²), memory linear in S. Any S and any L work: a last, shorter chunk is padded with
"identity" steps (log f = 0, ĩ = -∞) that leave the state unchanged and are cut from the output.
"""

from __future__ import annotations

import math

import numpy as np

from xlstm_edu._validate import check_positive_int
from xlstm_edu.np._checks import check_mlstm_inputs
from xlstm_edu.np.gating import log_forget_gate, normalizer_bound


def mlstm_chunkwise(q, k, v, i_pre, f_pre, chunk_size=64, state=None, eps=1e-6, forget_gate="sigmoid"):
    """The mLSTM in chunkwise form. q, k (..., S, DK); v (..., S, DV); i_pre, f_pre (..., S);
    state (C (..., DK, DV), n (..., DK), m (...)) as in ``mlstm_kernels``, or None (zeros, m_0 = 0).
    Returns h (..., S, DV) and the last state (C, n, m), equal to ``mlstm_recurrent`` to round-off.

    chunk_size: any integer >= 1 (a chunk size above S means one chunk). The default 64 (= the usual head
    dimension) balances the O(S·L) work inside chunks against the per-chunk overhead; see the benchmark
    ``python -m xlstm_edu.bench numpy``.
    """
    chunk_size = check_positive_int(chunk_size, "chunk_size")
    x = check_mlstm_inputs(q, k, v, i_pre, f_pre, state=state, eps=eps, forget_gate=forget_gate)
    lead, S, DK, DV, dt = x.lead, x.S, x.q.shape[-1], x.v.shape[-1], x.dtype
    BH = math.prod(lead)
    L = min(chunk_size, S)
    NC = -(-S // L)
    pad = NC * L - S

    # ---- flatten the leading dims, pad the last chunk with identity steps, cut time into chunks
    Q = (x.q * dt.type(1.0 / math.sqrt(DK))).reshape(BH, S, DK)  # q̂ = q/√DK
    K = x.k.reshape(BH, S, DK)
    V = x.v.reshape(BH, S, DV)
    log_f = log_forget_gate(x.f_pre, forget_gate).reshape(BH, S)  # eq. 26, float64
    ig = x.i_pre.reshape(BH, S)
    if pad:
        Q = np.concatenate([Q, np.zeros((BH, pad, DK), dt)], axis=1)
        K = np.concatenate([K, np.zeros((BH, pad, DK), dt)], axis=1)
        V = np.concatenate([V, np.zeros((BH, pad, DV), dt)], axis=1)
        log_f = np.concatenate([log_f, np.zeros((BH, pad))], axis=1)  # f = 1
        ig = np.concatenate([ig, np.full((BH, pad), -np.inf)], axis=1)  # i = 0
    Q = Q.reshape(BH, NC, L, DK)
    K = K.reshape(BH, NC, L, DK)
    V = V.reshape(BH, NC, L, DV)
    b = np.cumsum(log_f.reshape(BH, NC, L), axis=-1)  # b_t within each chunk
    g = b[..., -1]  # (BH, NC) log forget over the whole chunk
    xs = ig.reshape(BH, NC, L) - b  # x_s = ĩ_s - b_s
    xmax = xs.max(axis=-1)  # (BH, NC)

    # ---- each chunk's own contribution to the state, stabilized by its own max (eq. 19, 20 over a chunk)
    Kw = K * np.exp(xs - xmax[..., None]).astype(dt)[..., None]  # k_s e^{x_s - max x}
    C_loc = np.matmul(np.swapaxes(Kw, -1, -2), V)  # (BH, NC, DK, DV)
    n_loc = Kw.sum(axis=-2)  # (BH, NC, DK)
    del Kw

    # ---- recurrence over chunk borders; C_loc/n_loc are overwritten with the state at each chunk's start
    if x.state is None:
        C, n, m = np.zeros((BH, DK, DV), dt), np.zeros((BH, DK), dt), np.zeros(BH)
    else:
        C, n, m = (x.state[0].reshape(BH, DK, DV), x.state[1].reshape(BH, DK), x.state[2].reshape(BH))
    m_start = np.empty((BH, NC))
    for c in range(NC):
        mu = np.maximum(m, xmax[:, c])  # m_k - g_k  (eq. 15 over a chunk)
        a = np.exp(m - mu).astype(dt)  # e^{g + m_{k-1} - m_k}
        w = np.exp(xmax[:, c] - mu).astype(dt)
        C_next = a[:, None, None] * C + w[:, None, None] * C_loc[:, c]  # eq. 19
        n_next = a[:, None] * n + w[:, None] * n_loc[:, c]  # eq. 20
        C_loc[:, c], n_loc[:, c], m_start[:, c] = C, n, m
        C, n, m = C_next, n_next, g[:, c] + mu
    C_start, n_start = C_loc, n_loc

    # ---- outputs inside every chunk at once
    nu = np.maximum(m_start[..., None], np.maximum.accumulate(xs, axis=-1))  # ν_t = m_t - b_t  (BH, NC, L)
    W = np.empty((BH, NC, L, L), dt)
    np.subtract(xs[..., None, :], nu[..., :, None], out=W, casting="same_kind")  # log D_ts - m_t, float64 math
    np.copyto(W, -np.inf, where=~np.tri(L, dtype=bool))  # causal mask: s > t is the future
    np.exp(W, out=W)  # D'_ts (eq. 75, within the chunk)
    Sc = np.matmul(Q, np.ascontiguousarray(np.swapaxes(K, -1, -2)))  # q̂_t·k_s (a contiguous Kᵀ is faster)
    Sc *= W
    del W
    Qi = Q * np.exp(m_start[..., None] - nu).astype(dt)[..., None]  # q̂_t e^{m_{k-1} - ν_t}
    num = np.matmul(Qi, C_start)  # old state's part of q̂ᵀC_t
    num += np.matmul(Sc, V)  # the chunk's own part
    qn = np.matmul(Qi, n_start[..., None])[..., 0] + Sc.sum(axis=-1)  # q̂ᵀn_t
    bound = normalizer_bound(b + nu, dt)  # exp(-m_t), clamped before it overflows
    den = np.maximum(np.abs(qn), bound) + dt.type(x.eps)  # eq. 21
    num /= den[..., None]
    h = num.reshape(BH, NC * L, DV)[:, :S].reshape(lead + (S, DV))

    o = x.out_dtype
    # the state in the compute dtype (float32 for float16 inputs: a memory carried on is not rounded to half)
    return h.astype(o, copy=False), (C.reshape(lead + (DK, DV)), n.reshape(lead + (DK,)), m.reshape(lead).astype(dt))
