"""The mLSTM among linear RNNs: one recurrence, five members (chapter 14).

Linear attention, RetNet, GLA / Mamba 2, the mLSTM and DeltaNet all keep a matrix state S (DK × DV), update it
by one rule and read it out with a query:

    S_t = A_t(S_{t-1}) + write_t          write_t = i_t k_t v_tᵀ   (or β_t k_t v_tᵀ for DeltaNet)
    h_t = q_tᵀ S_t                         (..., DV)

A_t is a *linear* map of the state whose coefficients depend on the input x_t only, never on S: that is what
"linear RNN" means. The state is stored as in the mLSTM of this course (``xlstm_edu.np.mlstm_recurrent``,
the official ``mlstm_kernels`` layout): S is (..., DK, DV), written with k vᵀ, read with qᵀS. Papers that write
S v-by-k (S_t = S_{t-1}(I - β k kᵀ) + β v kᵀ, h = S q) hold the transpose of ours.

Nothing is scaled or normalized inside these functions (no 1/√DK, no L2-normalized keys, no normalizer): the
caller does that, so that every formula below is exactly the one printed next to it. The members differ only
in A_t and in what scales the write:

================  ======================  ============  ==========  ===============  ==========  ======================
member            A_t(S)                  decay         input gate  normalizer       stabilizer  eigenvalues of A_t
================  ======================  ============  ==========  ===============  ==========  ======================
linear attention  S                       none (1)      none (1)    none             none        {1}
RetNet-style      γ S                     fixed γ       none        none (*)         none        {γ}, γ ∈ (0, 1)
GLA/Mamba 2 (**)  a_t S                   a_t = a(x_t)  i_t (Δ_t)   none             none        {a_t} ⊂ (0, 1)
mLSTM             f_t S; write i_t k vᵀ   f_t = σ(f̃_t)   exp(ĩ_t)    max(|qᵀn_t|, 1)  m_t         {f_t} ⊂ (0, 1)
DeltaNet          (I - β_t k_t k_tᵀ) S    none          β_t         none             none        {1, 1 - β_t‖k_t‖²}
gated DeltaNet    α_t(I - β_t k_t k_tᵀ)S  α_t           β_t         none             none        {α_t, α_t(1-β_t‖k_t‖²)}
================  ======================  ============  ==========  ===============  ==========  ======================

(*) RetNet normalizes outside the recurrence (a GroupNorm of h and a rescaled decay matrix); the recurrence is
the one above. (**) with one scalar decay per head, as in Mamba 2's SSD (a_t = exp(Δ_t A), A < 0, write scaled
by Δ_t); GLA proper has one decay per key dimension, a diagonal A_t.

With the keys normalized (‖k‖ = 1), DeltaNet's eigenvalue 1 - β_t lies in [0, 1] for β ∈ [0, 1] (the original
DeltaNet, β = σ(·)) and in [-1, 1] for β ∈ [0, 2]. Every member except the last row of that choice has
eigenvalues in [0, 1]: such a model cannot track parity at arbitrary length (Grazzi et al., "Unlocking
State-Tracking in Linear RNNs Through Negative Eigenvalues", ICLR 2025; chapter 14 derives why). An eigenvalue of
-1 flips the sign of a state component, which is exactly what parity needs.

The mLSTM is not re-implemented here: ``xlstm_edu.np.mlstm_recurrent`` / ``mlstm_parallel`` are the family's
mLSTM. What makes it a member is :func:`mlstm_decay_and_input_gate`: its numerator q̂ᵀC_t is
``gated_recurrent(q/√DK, k, v, a=f, i=exp(ĩ))``; the normalizer n_t (the same recurrence with v = 1) and the
stabilizer m_t (a common scale exp(-m_t) of C and n, which cancels in the ratio) are what it adds.

Forms:

* recurrent (one step after the other, O(S) time, O(1) memory in S): every member;
* parallel (all steps at once, O(S²)): ``h = (Q Kᵀ ⊙ D) V`` with a causal decay matrix D
  (linear attention, RetNet, GLA, the mLSTM), and for DeltaNet the UT transform (:func:`deltanet_parallel`).
  A chunkwise form (chapter 7) mixes both; it is not repeated here.

"Linear" refers to the recurrence (linear in S), not to the cost of the parallel form: the parallel form is
O(S²) like attention, but the same model can always be run recurrently in O(S).
"""

from __future__ import annotations

import numpy as np

from xlstm_edu._validate import as_float_array, check_ndim, check_shape, result_dtype
from xlstm_edu.np.gating import log_forget_gate
from xlstm_edu.np.mlstm_parallel import mlstm_parallel
from xlstm_edu.np.mlstm_recurrent import mlstm_recurrent

__all__ = [
    "linear_attention_recurrent", "linear_attention_parallel",
    "retnet_recurrent", "retnet_parallel",
    "gated_recurrent", "gated_parallel", "decay_matrix",
    "mlstm_decay_and_input_gate",
    "deltanet_recurrent", "deltanet_parallel", "deltanet_step", "deltanet_transition",
    "gated_deltanet_recurrent",
    "FAMILY",
]


# ----------------------------------------------------------------------------------------------- input checks
def _check_qkv(q, k, v, *, step: bool = False):
    """q, k (..., S, DK), v (..., S, DV) (``step``: without S). Returns the arrays in the compute dtype
    (float64 if any is float64, else float32) and the dtype to return results in."""
    t = "" if step else "S, "
    q = as_float_array(q, "q")
    k = as_float_array(k, "k")
    v = as_float_array(v, "v")
    check_ndim(q, "q", 1 if step else 2, f"(..., {t}DK)")
    check_shape(k, "k", q.shape, f"(..., {t}DK), the same as q")
    check_ndim(v, "v", 1 if step else 2, f"(..., {t}DV)")
    if v.shape[:-1] != q.shape[:-1]:
        raise ValueError(f"v: expected shape (..., {t}DV) with (..., {t.rstrip(', ')}) = {q.shape[:-1]} as in q, "
                         f"got {tuple(v.shape)}")
    if q.shape[-1] < 1 or v.shape[-1] < 1:
        raise ValueError(f"q, v: expected head dimensions DK, DV >= 1, got DK={q.shape[-1]}, DV={v.shape[-1]}")
    if not step and q.shape[-2] < 1:
        raise ValueError(f"q: expected at least one time step (S >= 1), got shape {tuple(q.shape)}")
    out = result_dtype(q, k, v)
    dt = np.dtype(np.float64) if out == np.float64 else np.dtype(np.float32)
    return q.astype(dt, copy=False), k.astype(dt, copy=False), v.astype(dt, copy=False), out


def _check_gate(g, name: str, q_shape: tuple, what: str, *, lo=None, hi=None):
    """A per-step coefficient (..., S): one number per time step (and per head), q's shape without DK."""
    g = as_float_array(g, name)
    check_shape(g, name, q_shape[:-1], f"(..., S) (q's shape without DK; {what})")
    if lo is not None and np.any(g < lo) or hi is not None and np.any(g > hi):
        raise ValueError(f"{name}: expected values in [{lo}, {hi}] ({what}), got values in "
                         f"[{float(g.min()):.4g}, {float(g.max()):.4g}]")
    return g


def _check_S0(state, lead: tuple, DK: int, DV: int, dtype):
    """The incoming state S_0 (..., DK, DV), or None for zeros."""
    if state is None:
        return np.zeros(lead + (DK, DV), dtype)
    S0 = as_float_array(state, "state")
    check_shape(S0, "state", lead + (DK, DV), "(..., DK, DV) (one DK x DV matrix per sequence and head)")
    return S0.astype(dtype, copy=True)


def _out(h, S, out_dtype):
    return h.astype(out_dtype, copy=False), S.astype(out_dtype, copy=False)


# ----------------------------------------------------------------------------------------------- decay family
def gated_recurrent(q, k, v, a, i=None, state=None):
    """The decay family, recurrent: ``S_t = a_t S_{t-1} + i_t k_t v_tᵀ``, ``h_t = q_tᵀ S_t``.

    q, k (..., S, DK); v (..., S, DV); a (..., S) the decay (one scalar per step and head, in [-1, 1]; a = 1 is
    linear attention, a constant is RetNet, a data-dependent a_t in (0, 1) is GLA / Mamba 2, a_t in [-1, 1]
    the negative-eigenvalue variant of chapter 14); i (..., S) an optional input gate (default 1);
    state S_0 (..., DK, DV) or None (zeros). Returns h (..., S, DV) and S_last (..., DK, DV).
    """
    q, k, v, out = _check_qkv(q, k, v)
    a = _check_gate(a, "a", q.shape, "a decay, not its logarithm", lo=-1.0, hi=1.0).astype(q.dtype)
    i = (np.ones(q.shape[:-1], q.dtype) if i is None
         else _check_gate(i, "i", q.shape, "the input gate").astype(q.dtype))
    S = _check_S0(state, q.shape[:-2], q.shape[-1], v.shape[-1], q.dtype)
    h = np.empty(v.shape, q.dtype)
    for t in range(q.shape[-2]):
        write = i[..., t, None, None] * (k[..., t, :, None] * v[..., t, None, :])  # i_t k_t v_tᵀ
        S = a[..., t, None, None] * S + write  # S_t = a_t S_{t-1} + i_t k_t v_tᵀ
        h[..., t, :] = np.matmul(q[..., t, None, :], S)[..., 0, :]  # h_t = q_tᵀ S_t
    return _out(h, S, out)


def decay_matrix(a):
    """The causal decay matrix D (..., S, S) of a decay sequence a (..., S):
    ``D_ts = a_{s+1} a_{s+2} ⋯ a_t`` for s ≤ t (1 on the diagonal), 0 above it.

    Built as a running product down each column (no logarithms), so zero and negative decays are fine.
    The mLSTM's parallel form computes the same matrix in log space, log D_ts = b_t - b_s (+ ĩ_s), chapter 6.
    """
    a = as_float_array(a, "a")
    check_ndim(a, "a", 1, "(..., S)")
    S = a.shape[-1]
    later = np.tri(S, k=-1, dtype=bool)  # t > s
    M = np.where(later, a[..., :, None], 1.0)  # M_ts = a_t below the diagonal, 1 elsewhere
    D = np.cumprod(M, axis=-2)  # D_ts = Π_{r ≤ t} M_rs = a_{s+1} ⋯ a_t for t ≥ s
    return np.where(np.tri(S, dtype=bool), D, 0.0).astype(a.dtype, copy=False)


def gated_parallel(q, k, v, a, i=None):
    """The decay family, parallel: ``H = ((Q Kᵀ) ⊙ D ⊙ 1 iᵀ) V`` with D = :func:`decay_matrix` (a), from a zero
    state. Row t is step t of :func:`gated_recurrent` written out: h_t = Σ_{s≤t} (a_{s+1}⋯a_t) i_s (q_t·k_s) v_s."""
    q, k, v, out = _check_qkv(q, k, v)
    a = _check_gate(a, "a", q.shape, "a decay, not its logarithm", lo=-1.0, hi=1.0).astype(q.dtype)
    W = decay_matrix(a)
    if i is not None:
        W = W * _check_gate(i, "i", q.shape, "the input gate").astype(q.dtype)[..., None, :]  # column s × i_s
    P = np.matmul(q, np.swapaxes(k, -1, -2)) * W  # (..., S, S): (q_t·k_s) D_ts i_s, zero for s > t
    return np.matmul(P, v).astype(out, copy=False)


def linear_attention_recurrent(q, k, v, state=None):
    """Linear attention without normalizer (A_t = identity): ``S_t = S_{t-1} + k_t v_tᵀ``, ``h_t = q_tᵀ S_t``.
    Returns h (..., S, DV) and S_last (..., DK, DV). Katharopoulos et al. (2020) also divide by q_tᵀ Σ_s k_s;
    the mLSTM's normalizer (chapter 5) is that denominator, kept away from zero."""
    q_ = as_float_array(q, "q")
    return gated_recurrent(q, k, v, np.ones(q_.shape[:-1], q_.dtype), state=state)


def linear_attention_parallel(q, k, v):
    """Linear attention, parallel: ``H = (Q Kᵀ ⊙ M) V`` with the causal mask M (attention without softmax)."""
    q, k, v, out = _check_qkv(q, k, v)
    P = np.matmul(q, np.swapaxes(k, -1, -2)) * np.tri(q.shape[-2], dtype=q.dtype)
    return np.matmul(P, v).astype(out, copy=False)


def _check_gamma(gamma, lead: tuple):
    g = as_float_array(gamma, "gamma")
    try:
        g = np.broadcast_to(g, lead)
    except ValueError:
        raise ValueError(f"gamma: expected a number or an array broadcastable to q's leading dims {lead} "
                         f"(one decay per head), got shape {tuple(g.shape)}") from None
    if np.any(g < 0) or np.any(g > 1):
        raise ValueError(f"gamma: expected a fixed decay in [0, 1], got values in [{g.min():.4g}, {g.max():.4g}]")
    return g


def retnet_recurrent(q, k, v, gamma, state=None):
    """RetNet-style fixed decay: ``S_t = γ S_{t-1} + k_t v_tᵀ``, ``h_t = q_tᵀ S_t``; gamma a number or one per
    head (broadcastable to q's leading dims ...). Returns h (..., S, DV), S_last (..., DK, DV)."""
    q_ = as_float_array(q, "q")
    check_ndim(q_, "q", 2, "(..., S, DK)")
    g = _check_gamma(gamma, q_.shape[:-2])
    a = np.broadcast_to(g[..., None], q_.shape[:-1])
    return gated_recurrent(q, k, v, a, state=state)


def retnet_parallel(q, k, v, gamma):
    """RetNet-style, parallel: ``H = (Q Kᵀ ⊙ D) V`` with ``D_ts = γ^(t-s)`` for s ≤ t, 0 above."""
    q_ = as_float_array(q, "q")
    check_ndim(q_, "q", 2, "(..., S, DK)")
    g = _check_gamma(gamma, q_.shape[:-2])
    return gated_parallel(q, k, v, np.broadcast_to(g[..., None], q_.shape[:-1]))


def mlstm_decay_and_input_gate(i_pre, f_pre, forget_gate="sigmoid"):
    """The mLSTM's gates as the decay family's (a, i): ``a_t = f_t`` (eq. 26: σ(f̃_t), or exp(f̃_t)),
    ``i_t = exp(ĩ_t)`` (eq. 25), both (..., S) float64.

    With them, ``gated_recurrent(q/√DK, k, v, a, i)`` is the mLSTM's unnormalized, unstabilized numerator
    q̂ᵀC_t (eq. 19), and ``gated_recurrent(q/√DK, k, ones, a, i)`` is q̂ᵀn_t (eq. 20); the mLSTM's
    h_t = q̂ᵀC_t / max(|q̂ᵀn_t|, 1) (eq. 21, eps = 0). ``exp(ĩ)`` overflows for large ĩ: that is the
    stabilizer's job (eq. 15-17), which ``xlstm_edu.np.mlstm_recurrent`` does and this view does not.
    """
    i_pre = as_float_array(i_pre, "i_pre").astype(np.float64)
    f_pre = as_float_array(f_pre, "f_pre").astype(np.float64)
    check_shape(f_pre, "f_pre", i_pre.shape, "(..., S), the same as i_pre")
    with np.errstate(over="ignore"):
        return np.exp(log_forget_gate(f_pre, forget_gate)), np.exp(i_pre)


# ----------------------------------------------------------------------------------------------- DeltaNet
def deltanet_transition(k, beta):
    """DeltaNet's transition matrix ``A = I - β k kᵀ`` (..., DK, DK) for k (..., DK), beta (...).

    Its eigenvalues: 1 - β‖k‖² (eigenvector k) and 1 (every direction orthogonal to k, DK - 1 times)."""
    k = as_float_array(k, "k")
    check_ndim(k, "k", 1, "(..., DK)")
    beta = as_float_array(beta, "beta")
    check_shape(beta, "beta", k.shape[:-1], "(...), k's shape without DK")
    eye = np.eye(k.shape[-1], dtype=result_dtype(k, beta))
    return eye - beta[..., None, None] * (k[..., :, None] * k[..., None, :])


def _delta_update(S, k, v, beta):
    """One delta-rule step on arrays: S (..., DK, DV), k (..., DK), v (..., DV), beta (...)."""
    v_old = np.matmul(k[..., None, :], S)[..., 0, :]  # Sᵀk: what the memory returns for key k now
    # (I - β k kᵀ) S + β k vᵀ  =  S + β k (v - Sᵀk)ᵀ : replace the old value at k by (a β-blend with) the new one
    return S + beta[..., None, None] * (k[..., :, None] * (v - v_old)[..., None, :])


def deltanet_step(q, k, v, beta, state=None):
    """One DeltaNet step: q, k (..., DK), v (..., DV), beta (...), state S (..., DK, DV) or None (zeros).
    Returns h (..., DV) = q_tᵀ S_t and the new state S_t."""
    q, k, v, out = _check_qkv(q, k, v, step=True)
    beta = as_float_array(beta, "beta")
    check_shape(beta, "beta", q.shape[:-1], "(...) (q's shape without DK; the write strength)")
    S = _check_S0(state, q.shape[:-1], q.shape[-1], v.shape[-1], q.dtype)
    S = _delta_update(S, k, v, beta.astype(q.dtype))
    return _out(np.matmul(q[..., None, :], S)[..., 0, :], S, out)


def deltanet_recurrent(q, k, v, beta, state=None):
    """DeltaNet (the delta rule; Schlag et al. 2021, Yang et al. 2024), recurrent, in the mLSTM's orientation:

        S_t = (I - β_t k_t k_tᵀ) S_{t-1} + β_t k_t v_tᵀ,     h_t = q_tᵀ S_t

    q, k (..., S, DK); v (..., S, DV); beta (..., S); state S (..., DK, DV) or None (zeros). Nothing is scaled
    or normalized inside: the caller normalizes k (‖k‖ = 1 makes the eigenvalue 1 - β, in [0, 1] for
    β ∈ [0, 1] and in [-1, 1] for β ∈ [0, 2]). Returns h (..., S, DV) and S_last (..., DK, DV).
    """
    q, k, v, out = _check_qkv(q, k, v)
    beta = _check_gate(beta, "beta", q.shape, "the write strength").astype(q.dtype)
    S = _check_S0(state, q.shape[:-2], q.shape[-1], v.shape[-1], q.dtype)
    h = np.empty(v.shape, q.dtype)
    for t in range(q.shape[-2]):
        S = _delta_update(S, k[..., t, :], v[..., t, :], beta[..., t])
        h[..., t, :] = np.matmul(q[..., t, None, :], S)[..., 0, :]  # h_t = q_tᵀ S_t
    return _out(h, S, out)


def deltanet_parallel(q, k, v, beta, state=None):
    """DeltaNet, all steps at once, through the UT transform (Yang et al. 2024, "Parallelizing Linear
    Transformers with the Delta Rule over Sequence Length").

    Write the update as S_t = S_{t-1} + k_t u_tᵀ with the "pseudo-value" u_t = β_t (v_t - S_{t-1}ᵀ k_t). Then
    S_t = S_0 + Σ_{s≤t} k_s u_sᵀ, so h_t = q_tᵀS_0 + Σ_{s≤t} (q_t·k_s) u_s: linear attention with values u.
    The u_t solve a *linear* system: u_t + β_t Σ_{s<t} (k_t·k_s) u_s = β_t (v_t - S_0ᵀk_t), i.e.

        (I + diag(β) tril(K Kᵀ, -1)) U = diag(β) (V - K S_0)

    a unit lower-triangular system, always solvable by forward substitution. Everything else is matrix
    products. The substitution is a loop over rows here (each row one matrix-vector product with the rows
    already solved; the chunkwise kernels run it only within a short chunk). A general solver such as
    ``np.linalg.solve`` would pivot, mixing later rows into earlier ones by round-off: not causal.
    Returns (h, S_last) like :func:`deltanet_recurrent`. O(S²) memory.
    """
    q, k, v, out = _check_qkv(q, k, v)
    beta = _check_gate(beta, "beta", q.shape, "the write strength").astype(q.dtype)
    S0 = _check_S0(state, q.shape[:-2], q.shape[-1], v.shape[-1], q.dtype)
    N = beta[..., :, None] * np.tril(np.matmul(k, np.swapaxes(k, -1, -2)), -1)  # diag(β) tril(KKᵀ, -1)
    U = beta[..., :, None] * (v - np.matmul(k, S0))  # right-hand side diag(β)(V - K S_0), solved in place:
    for t in range(1, q.shape[-2]):  # forward substitution: u_t -= Σ_{s<t} N_ts u_s
        U[..., t, :] -= np.matmul(N[..., t, None, :t], U[..., :t, :])[..., 0, :]
    h = np.matmul(q, S0) + np.matmul(np.tril(np.matmul(q, np.swapaxes(k, -1, -2))), U)
    S_last = S0 + np.matmul(np.swapaxes(k, -1, -2), U)  # S_0 + Σ_s k_s u_sᵀ
    return _out(h, S_last, out)


def gated_deltanet_recurrent(q, k, v, alpha, beta, state=None):
    """Gated DeltaNet (Yang, Kautz, Hatamizadeh 2025): the delta rule with a decay in front,

        S_t = α_t (I - β_t k_t k_tᵀ) S_{t-1} + β_t k_t v_tᵀ,     h_t = q_tᵀ S_t

    alpha (..., S) in [-1, 1] (Mamba 2's decay; α = 1 is DeltaNet), beta (..., S). Eigenvalues of the
    transition: α_t (DK - 1 times) and α_t(1 - β_t‖k_t‖²). Returns h (..., S, DV), S_last (..., DK, DV)."""
    q, k, v, out = _check_qkv(q, k, v)
    alpha = _check_gate(alpha, "alpha", q.shape, "a decay, not its logarithm", lo=-1.0, hi=1.0).astype(q.dtype)
    beta = _check_gate(beta, "beta", q.shape, "the write strength").astype(q.dtype)
    S = _check_S0(state, q.shape[:-2], q.shape[-1], v.shape[-1], q.dtype)
    h = np.empty(v.shape, q.dtype)
    for t in range(q.shape[-2]):
        kt, bt = k[..., t, :], beta[..., t]
        v_old = np.matmul(kt[..., None, :], S)[..., 0, :]  # Sᵀk
        erased = S - bt[..., None, None] * (kt[..., :, None] * v_old[..., None, :])  # (I - β k kᵀ) S
        S = alpha[..., t, None, None] * erased + bt[..., None, None] * (kt[..., :, None] * v[..., t, None, :])
        h[..., t, :] = np.matmul(q[..., t, None, :], S)[..., 0, :]
    return _out(h, S, out)


# ----------------------------------------------------------------------------------------------- the table
FAMILY = {
    # name: (recurrent, parallel or None, what A_t is, eigenvalue range of A_t)
    "linear attention": (linear_attention_recurrent, linear_attention_parallel, "S", "{1}"),
    "RetNet": (retnet_recurrent, retnet_parallel, "γ S", "{γ}, γ in (0, 1)"),
    "GLA / Mamba 2": (gated_recurrent, gated_parallel, "a_t S", "a_t in (0, 1)"),
    "mLSTM": (mlstm_recurrent, mlstm_parallel, "f_t S", "f_t in (0, 1)"),  # the course's own, chapters 5-6
    "DeltaNet": (deltanet_recurrent, deltanet_parallel, "(I - β k kᵀ) S", "{1, 1 - β‖k‖²}"),
    "gated DeltaNet": (gated_deltanet_recurrent, None, "α (I - β k kᵀ) S", "{α, α(1 - β‖k‖²)}"),
}
