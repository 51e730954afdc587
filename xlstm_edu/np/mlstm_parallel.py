"""mLSTM, parallel form: all time steps at once, like attention with a gate matrix (paper App. A.3).

With the log forget gates summed up, b_t = Σ_{s≤t} log f_s, the forget gate matrix of App. A.3 is
log F_ts = b_t - b_s for s ≤ t (-∞ above the diagonal), and the weight of step s in the state at step t is

    D        = F ⊙ exp(Ĩ):  log D_ts = b_t - b_s + ĩ_s    for s ≤ t, -∞ above     (eq. 73, 74)
    m_t      = max_s log D_ts                                                     (the row maximum of eq. 75)
    D'_ts    = exp(log D_ts - m_t)                                                (stabilized gate matrix, eq. 75)
    S̃        = (Q Kᵀ / √DK) ⊙ D'                                                  (App. A.3)
    n_t      = max(|Σ_s S̃_ts|, exp(-m_t))                                         (normalizer, App. A.3)
    H        = (S̃ / (n + eps)) V                                                  (App. A.3)

Row t of this is step t of the recurrent form written out: q̂_tᵀ C_t = Σ_s D_ts (q̂_t·k_s) v_s. It costs
O(S²) time and memory. Its m_t is the row maximum, which is what the recurrent m_t would be with m_0 = -∞
(the recurrent form starts at m_0 = 0: m_t^rec = max(m_t, b_t)). Because eps is added in stabilized space,
its effective size is eps·exp(m_t), so that difference shows up as a relative change of order eps·exp(m) in h
(about 1e-7 in float64 for ordinary gates); with eps = 0 the two forms agree to round-off.

Numerics: the gate vectors (log f, b, m: O(S) numbers) are kept in float64, and log D_ts - m_t is formed as
(ĩ_s - b_s) - max_{r≤t}(ĩ_r - b_r), one float64 subtraction per entry. In float32, b_t - b_s of two large
cumulative sums would lose digits (b reaches -10⁶ over long sequences with strongly closed forget gates).
The bound exp(-m_t) is clamped before it overflows (``gating.normalizer_bound``), so that gates closed for a
long time give finite gradients, not 0·inf = NaN.
"""

from __future__ import annotations

import math

import numpy as np

from xlstm_edu.np._checks import check_dh, check_mlstm_inputs
from xlstm_edu.np.gating import log_forget_gate, max_exponent, normalizer_bound, sigmoid


def _gate_vectors(i_pre, f_pre, forget_gate):
    """float64 gate vectors (..., S): log f, b = cumsum(log f), x_s = ĩ_s - b_s, c_t = max_{s≤t} x_s, m = b + c."""
    log_f = log_forget_gate(f_pre, forget_gate)  # eq. 26
    b = np.cumsum(log_f, axis=-1)  # b_t = Σ_{s≤t} log f_s  (log F_ts = b_t - b_s, App. A.3)
    x = i_pre - b  # log D_ts = b_t + x_s  (eq. 74)
    c = np.maximum.accumulate(x, axis=-1)  # max_{s≤t} x_s
    m = b + c  # m_t = max_s log D_ts  (eq. 75)
    return log_f, b, x, c, m


def mlstm_parallel_parts(q, k, v, i_pre, f_pre, eps=1e-6, forget_gate="sigmoid"):
    """Every intermediate of the parallel form, for teaching and plots (small S: it keeps several S×S arrays).

    Returns a dict of arrays in the inputs' dtype:
      log_f (..., S), b (..., S) cumulative log forget gates, log_D (..., S, S) with -inf above the diagonal,
      m (..., S) row maxima, D_prime (..., S, S) = exp(log_D - m), qk (..., S, S) = Q Kᵀ/√DK,
      S_tilde (..., S, S) = qk ⊙ D', n (..., S) = max(|Σ_s S̃_ts|, exp(-m_t)),
      C_norm (..., S, S) = S̃/(n + eps) (the "attention" matrix), h (..., S, DV) = C_norm V.
    """
    x = check_mlstm_inputs(q, k, v, i_pre, f_pre, eps=eps, forget_gate=forget_gate)
    S, DK = x.S, x.q.shape[-1]
    log_f, b, xs, c, m = _gate_vectors(x.i_pre, x.f_pre, forget_gate)
    causal = np.tri(S, dtype=bool)  # s ≤ t
    with np.errstate(invalid="ignore"):  # -inf - (-inf) above the diagonal is masked right away
        log_D = np.where(causal, b[..., :, None] - b[..., None, :] + x.i_pre[..., None, :], -np.inf)  # eq. 74
        D_prime = np.where(causal, np.exp(np.minimum(xs[..., None, :] - c[..., :, None], 0.0)), 0.0)  # eq. 75
    qk = np.matmul(x.q, np.swapaxes(x.k, -1, -2)) / math.sqrt(DK)  # Q Kᵀ/√DK
    S_tilde = qk * D_prime.astype(x.dtype)  # S̃ = (Q Kᵀ/√DK) ⊙ D'
    n = np.maximum(np.abs(S_tilde.sum(axis=-1)), normalizer_bound(m, x.dtype))  # normalizer
    C_norm = S_tilde / (n[..., None] + x.dtype.type(x.eps))
    h = np.matmul(C_norm, x.v)
    o = x.out_dtype
    parts = dict(log_f=log_f, b=b, log_D=log_D, m=m, D_prime=D_prime, qk=qk, S_tilde=S_tilde, n=n,
                 C_norm=C_norm, h=h)
    return {key: val.astype(o, copy=False) for key, val in parts.items()}


def mlstm_parallel(q, k, v, i_pre, f_pre, eps=1e-6, forget_gate="sigmoid"):
    """The mLSTM in parallel form (App. A.3): h (..., S, DV) from q, k (..., S, DK), v (..., S, DV),
    i_pre, f_pre (..., S). No state in or out (it starts from zero, like m_0 = -∞).

    Same math as ``mlstm_parallel_parts``, written to keep few S×S arrays alive at once: peak memory is about
    two S×S arrays of the compute dtype plus one S×S boolean mask.
    """
    x = check_mlstm_inputs(q, k, v, i_pre, f_pre, eps=eps, forget_gate=forget_gate)
    S, DK, dt = x.S, x.q.shape[-1], x.dtype
    _, _, xs, c, m = _gate_vectors(x.i_pre, x.f_pre, forget_gate)
    upper = ~np.tri(S, dtype=bool)  # s > t: the future, masked

    # D'_ts = exp(log D_ts - m_t) = exp(x_s - c_t), computed in float64 and stored in the compute dtype (eq. 75)
    D = np.empty(x.lead + (S, S), dt)
    np.subtract(xs[..., None, :], c[..., :, None], out=D, casting="same_kind")
    np.copyto(D, -np.inf, where=upper)
    np.exp(D, out=D)
    # S̃ = (Q Kᵀ/√DK) ⊙ D'
    St = np.matmul(x.q, np.swapaxes(x.k, -1, -2))
    St *= dt.type(1.0 / math.sqrt(DK))
    St *= D
    del D
    # n_t = max(|Σ_s S̃_ts|, exp(-m_t)), then H = (S̃/(n + eps)) V
    n = np.maximum(np.abs(St.sum(axis=-1)), normalizer_bound(m, dt))  # exp(-m_t), clamped before it overflows
    St /= (n + dt.type(x.eps))[..., None]
    h = np.matmul(St, x.v)
    return h.astype(x.out_dtype, copy=False)


def mlstm_parallel_backward(dh, q, k, v, i_pre, f_pre, eps=1e-6, forget_gate="sigmoid", grad_through_m=True):
    """Gradients of L with respect to the inputs of ``mlstm_parallel``, given dh = dL/dh (..., S, DV).

    The exact derivative of the parallel form as computed, the max/abs of the normalizer included, and the row
    maxima m too (``grad_through_m=True``, what torch autograd through the official
    ``parallel--native_autograd`` kernel gives). In exact arithmetic m reaches the output only through eps
    (h_t = q̂ᵀĈ_t / (max(|q̂ᵀn̂_t|, 1) + eps·exp(m_t)) with unstabilized Ĉ, n̂), so ``grad_through_m=False``
    (App. A.2: m a constant) is exact for eps = 0 and off by O(eps·exp(m)) otherwise.
    Returns dict(q, k, v, i_pre, f_pre). O(S²) memory, like the forward pass.
    """
    x = check_mlstm_inputs(q, k, v, i_pre, f_pre, eps=eps, forget_gate=forget_gate)
    dh = check_dh(dh, np.broadcast_to(0.0, x.v.shape)).astype(x.dtype, copy=False)
    S, DK, dt = x.S, x.q.shape[-1], x.dtype
    scale = 1.0 / math.sqrt(DK)
    _, b, xs, c, m = _gate_vectors(x.i_pre, x.f_pre, forget_gate)
    causal = np.tri(S, dtype=bool)
    with np.errstate(invalid="ignore"):
        Dp = np.where(causal, np.exp(np.minimum(xs[..., None, :] - c[..., :, None], 0.0)), 0.0).astype(dt)
    qk = np.matmul(x.q, np.swapaxes(x.k, -1, -2)) * dt.type(scale)
    St = qk * Dp
    r = St.sum(axis=-1)  # (..., S)
    # exp(-m), clamped as in the forward pass (float64 here); where clamped, it no longer depends on m
    clamped = -m > max_exponent(dt)
    bound = np.exp(np.where(clamped, max_exponent(dt), -m))
    den = np.maximum(np.abs(r), bound) + x.eps  # float64 (..., S)
    P = St / den[..., None].astype(dt)  # the normalized matrix
    # ---- H = P V
    dv = np.matmul(np.swapaxes(P, -1, -2), dh)
    dP = np.matmul(dh, np.swapaxes(x.v, -1, -2))
    # ---- P = S̃ / den
    dSt = dP / den[..., None].astype(dt)
    dden = -np.sum(dP * P, axis=-1) / den  # (..., S)
    # den = max(|r|, exp(-m)) + eps: the gradient goes to the larger argument (half each on a tie)
    w_r = np.where(np.abs(r) > bound, 1.0, np.where(np.abs(r) == bound, 0.5, 0.0))
    dr = dden * w_r * np.sign(r)
    dm = np.where(clamped, 0.0, -dden * (1.0 - w_r) * bound)  # d exp(-m)/dm = -exp(-m)
    dSt += dr[..., None].astype(dt)  # r_t = Σ_s S̃_ts
    # ---- S̃ = qk ⊙ D'
    dqk = dSt * Dp
    dDp = dSt * qk
    dq = np.matmul(dqk, x.k) * dt.type(scale)
    dk = np.matmul(np.swapaxes(dqk, -1, -2), x.q) * dt.type(scale)
    # ---- D' = exp(log D - m): d log D = dD' ⊙ D', dm -= Σ_s dD'_ts D'_ts
    dlogD = (dDp * Dp).astype(np.float64)
    if grad_through_m:
        dm = dm - dlogD.sum(axis=-1)
        # m_t = max_s log D_ts: the gradient goes to the arg max, s*(t) = the last s ≤ t where x_s reaches c_t
        idx = np.where(xs >= c, np.arange(S), 0)
        s_star = np.maximum.accumulate(idx, axis=-1)
        np.put_along_axis(dlogD, s_star[..., None],
                          np.take_along_axis(dlogD, s_star[..., None], axis=-1) + dm[..., None], axis=-1)
    # ---- log D_ts = b_t - b_s + ĩ_s (s ≤ t), b = cumsum(log f)
    di = dlogD.sum(axis=-2)  # Σ_t
    db = dlogD.sum(axis=-1) - di  # row sums (as b_t) minus column sums (as -b_s)
    dlf = np.flip(np.cumsum(np.flip(db, -1), axis=-1), -1)  # b_t = Σ_{s≤t} log f_s
    df = dlf * sigmoid(-x.f_pre) if forget_gate == "sigmoid" else dlf
    o = x.out_dtype
    return dict(q=dq.astype(o), k=dk.astype(o), v=dv.astype(o), i_pre=di.astype(o), f_pre=df.astype(o))
