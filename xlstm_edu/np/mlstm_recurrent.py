"""mLSTM, recurrent form: one time step after the other (paper eq. 19-27, stabilized with eq. 15-17).

The cell keeps a matrix memory C and a normalizer n per head. In the official convention (``mlstm_kernels``)
C is stored as Σ_s w_s k_s v_sᵀ with shape (DK, DV) and *unscaled* keys; the scale 1/√DK goes on
the query, q̂ = q/√DK (the paper scales k, eq. 23; C q and nᵀq come out the same). One step, stabilized:

    i_t = exp(ĩ_t),  log f_t = logσ(f̃_t)   (log f_t = f̃_t for the exponential forget gate)  eq. 25, 26
    m_t  = max(log f_t + m_{t-1}, ĩ_t)                                                  eq. 15
    i'_t = exp(ĩ_t - m_t),   f'_t = exp(log f_t + m_{t-1} - m_t)                          eq. 16, 17
    C_t  = f'_t C_{t-1} + i'_t k_t v_tᵀ      (the paper's v_t k_tᵀ, stored transposed)       eq. 19
    n_t  = f'_t n_{t-1} + i'_t k_t                                                      eq. 20
    h̃_t = (q̂_tᵀ C_t) / (max(|q̂_tᵀ n_t|, exp(-m_t)) + eps)                              eq. 21

The stabilized states are the unstabilized ones times exp(-m_t), so the bound 1 of the paper's
max(|nᵀq|, 1) becomes exp(-m_t) here. m_0 = 0 for a fresh (all-zero) state, as in the official code.

Because eps is added *after* the max in stabilized space, the output depends on m only through eps·exp(m_t):
with eps = 0 the choice of m is invisible, with eps > 0 it is visible when m is large (the effective eps is
eps·exp(m_t): dropping eps changes h by up to 1e-4 .. 0.5 when large input gates have made m large).

``mlstm_recurrent_unstabilized`` is the same recurrence with the raw gates exp(ĩ), f: it overflows to inf/NaN
as soon as exp(ĩ) exceeds the largest float (ĩ > 88.7 in float32, > 709.8 in float64) — the reason for eq. 15-17.
"""

from __future__ import annotations

import math

import numpy as np

from xlstm_edu._validate import check_positive_int
from xlstm_edu.np._checks import check_dh, check_mlstm_inputs, check_state
from xlstm_edu.np.gating import log_forget_gate, max_exponent, normalizer_bound, sigmoid, unstabilized_gates


def _zero_state(lead, DK, DV, dtype):
    return (np.zeros(lead + (DK, DV), dtype), np.zeros(lead + (DK,), dtype), np.zeros(lead, np.float64))


def _step(q_hat, k, v, log_f, i_pre, C, n, m, eps):
    """One stabilized step on arrays with any leading dims; no checks. Returns h, C, n, m (new arrays).
    q_hat = q/√DK (..., DK), k (..., DK), v (..., DV), log_f, i_pre, m (...) float64, C (..., DK, DV), n (..., DK)."""
    dtype = C.dtype
    m_new = np.maximum(log_f + m, i_pre)  # eq. 15
    f_s = np.exp(log_f + m - m_new).astype(dtype)  # eq. 17, f'_t
    i_s = np.exp(i_pre - m_new).astype(dtype)  # eq. 16, i'_t
    C = f_s[..., None, None] * C + i_s[..., None, None] * (k[..., :, None] * v[..., None, :])  # eq. 19
    n = f_s[..., None] * n + i_s[..., None] * k  # eq. 20
    num = np.matmul(q_hat[..., None, :], C)[..., 0, :]  # q̂ᵀC, eq. 21 numerator
    qn = np.sum(q_hat * n, axis=-1)  # q̂ᵀn
    bound = normalizer_bound(m_new, dtype)  # exp(-m_t), clamped before it overflows
    den = np.maximum(np.abs(qn), bound) + dtype.type(eps)  # eq. 21 denominator
    return num / den[..., None], C, n, m_new


def mlstm_step(q, k, v, i_pre, f_pre, state=None, eps=1e-6, forget_gate="sigmoid"):
    """One mLSTM step (eq. 15-21). q, k (..., DK); v (..., DV); i_pre, f_pre (...);
    state (C (..., DK, DV), n (..., DK), m (...)) or None for the zero state with m = 0.

    Returns h (..., DV) and the new state (C, n, m), all in the inputs' dtype."""
    x = check_mlstm_inputs(q, k, v, i_pre, f_pre, state=state, eps=eps, forget_gate=forget_gate, step=True)
    DK, DV = x.q.shape[-1], x.v.shape[-1]
    C, n, m = x.state if x.state is not None else _zero_state(x.q.shape[:-1], DK, DV, x.dtype)
    log_f = log_forget_gate(x.f_pre, forget_gate)
    q_hat = x.q * x.dtype.type(1.0 / math.sqrt(DK))
    h, C, n, m = _step(q_hat, x.k, x.v, log_f, x.i_pre, C, n, m, x.eps)
    return h.astype(x.out_dtype, copy=False), (C, n, m.astype(x.dtype))  # the state in the compute dtype


def mlstm_recurrent(q, k, v, i_pre, f_pre, state=None, eps=1e-6, forget_gate="sigmoid"):
    """The mLSTM over a sequence, one step at a time (eq. 15-21).

    q, k (..., S, DK); v (..., S, DV); i_pre, f_pre (..., S) gate pre-activations ĩ, f̃;
    state (C (..., DK, DV), n (..., DK), m (...)) as in ``mlstm_kernels``, or None (zeros, m_0 = 0).
    Returns h (..., S, DV) (h̃ of eq. 21: no output gate) and the last state (C, n, m).
    """
    x = check_mlstm_inputs(q, k, v, i_pre, f_pre, state=state, eps=eps, forget_gate=forget_gate)
    S, DK, DV = x.S, x.q.shape[-1], x.v.shape[-1]
    C, n, m = x.state if x.state is not None else _zero_state(x.lead, DK, DV, x.dtype)
    log_f = log_forget_gate(x.f_pre, forget_gate)  # eq. 26, float64
    q_hat = x.q * x.dtype.type(1.0 / math.sqrt(DK))  # q̂ = q/√DK
    h = np.empty(x.lead + (S, DV), x.dtype)
    for t in range(S):
        h[..., t, :], C, n, m = _step(q_hat[..., t, :], x.k[..., t, :], x.v[..., t, :], log_f[..., t],
                                      x.i_pre[..., t], C, n, m, x.eps)
    return h.astype(x.out_dtype, copy=False), (C, n, m.astype(x.dtype))  # the state in the compute dtype


def mlstm_recurrent_unstabilized(q, k, v, i_pre, f_pre, state=None, eps=1e-6, forget_gate="sigmoid"):
    """The recurrence with the raw gates i = exp(ĩ), f = σ(f̃) (eq. 19-21, 25, 26 without eq. 15-17), for teaching.

    h̃_t = (q̂ᵀC_t) / (max(|q̂ᵀn_t|, 1) + eps). Its states are unstabilized: (C, n) here equal
    exp(m)·(C, n) of the stabilized form. ``state`` is (C, n) in these units (or None for zeros).
    With eps = 0 it equals ``mlstm_recurrent`` wherever it stays finite; with eps > 0 the two differ by the
    effective eps (eps here, eps·exp(m_t) there). Overflows (inf, then NaN) once exp(ĩ) or the states exceed
    the largest float: float32 already at ĩ > 88.7.
    Returns h (..., S, DV) and the last (C, n)."""
    x = check_mlstm_inputs(q, k, v, i_pre, f_pre, eps=eps, forget_gate=forget_gate)
    S, DK, DV = x.S, x.q.shape[-1], x.v.shape[-1]
    if state is None:
        C, n = np.zeros(x.lead + (DK, DV), x.dtype), np.zeros(x.lead + (DK,), x.dtype)
    else:
        if not isinstance(state, (tuple, list)) or len(state) != 2:
            raise ValueError(f"state: expected a tuple (C, n) of 2 arrays (unstabilized), got {type(state).__name__}")
        C, n, _ = check_state((state[0], state[1], np.zeros(x.lead)), x.lead, DK, DV, x.dtype)
    # the raw gates in the compute dtype, so that float32 overflows where float32 overflows
    i_gate, f_gate = unstabilized_gates(log_forget_gate(x.f_pre, forget_gate).astype(x.dtype),
                                        x.i_pre.astype(x.dtype))  # eq. 25, 26
    q_hat = x.q * x.dtype.type(1.0 / math.sqrt(DK))
    h = np.empty(x.lead + (S, DV), x.dtype)
    one, e = x.dtype.type(1.0), x.dtype.type(x.eps)
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(S):
            f_t, i_t = f_gate[..., t, None], i_gate[..., t, None]
            C = f_t[..., None] * C + i_t[..., None] * (x.k[..., t, :, None] * x.v[..., t, None, :])  # eq. 19
            n = f_t * n + i_t * x.k[..., t, :]  # eq. 20
            num = np.matmul(q_hat[..., t, None, :], C)[..., 0, :]
            den = np.maximum(np.abs(np.sum(q_hat[..., t, :] * n, axis=-1)), one) + e  # eq. 21
            h[..., t, :] = num / den[..., None]
    return h.astype(x.out_dtype, copy=False), (C, n)


# ---------------------------------------------------------------------------------------------------------------
# Backward pass through time, written by hand.
#
# It is the exact derivative of the function computed above, every operation included: the max/abs in the
# denominator and the stabilizer m. In exact arithmetic the m terms cancel except through eps (the output
# depends on m only via eps·exp(m), see the module docstring), so ``grad_through_m=False`` -- m treated as a
# constant, App. A.2 -- gives the same gradient when eps = 0 and a gradient that is off by O(eps·exp(m)) when
# eps > 0. The official ``*_autograd`` kernels differentiate through m as well; the exact one is the reference.
# ---------------------------------------------------------------------------------------------------------------


def _split(cond_a_gt_b, cond_a_eq_b, dtype):
    """Weights (w_a, w_b) that route the gradient of max(a, b) to its larger argument, half each on a tie
    (the average of the one-sided derivatives, which is what centred differences and torch.maximum give)."""
    w_a = np.where(cond_a_gt_b, 1.0, np.where(cond_a_eq_b, 0.5, 0.0)).astype(dtype)
    return w_a, 1.0 - w_a


def mlstm_recurrent_backward(dh, q, k, v, i_pre, f_pre, state=None, eps=1e-6, forget_gate="sigmoid",
                             dstate=None, grad_through_m=True, checkpoint_every=None):
    """Gradients of L with respect to the inputs of ``mlstm_recurrent``, given dh = dL/dh (..., S, DV).

    ``dstate`` (dC, dn, dm): optional gradient of L with respect to the *returned* last state, so that a long
    sequence can be differentiated in pieces. Returns dict(q, k, v, i_pre, f_pre, state) with state the gradient
    (dC_0, dn_0, dm_0) for the given initial state, or None when ``state`` was None.

    Memory: the states C_t are recomputed segment by segment from checkpoints every ``checkpoint_every`` steps
    (default ≈ √S), so memory is O(√S · DK · DV) instead of O(S · DK · DV).
    """
    x = check_mlstm_inputs(q, k, v, i_pre, f_pre, state=state, eps=eps, forget_gate=forget_gate)
    dh = check_dh(dh, np.broadcast_to(0.0, x.v.shape))
    S, DK, DV, lead, dt = x.S, x.q.shape[-1], x.v.shape[-1], x.lead, x.dtype
    dstate = check_state(dstate, lead, DK, DV, dt, name="dstate")
    L = math.isqrt(S - 1) + 1 if checkpoint_every is None else check_positive_int(checkpoint_every, "checkpoint_every")
    dh = dh.astype(dt, copy=False)

    scale = 1.0 / math.sqrt(DK)
    log_f = log_forget_gate(x.f_pre, forget_gate)  # float64
    q_hat = x.q * dt.type(scale)
    k_, v_, i_ = x.k, x.v, x.i_pre
    eps_ = x.eps

    # forward once, keeping the state at the start of every segment
    C, n, m = x.state if x.state is not None else _zero_state(lead, DK, DV, dt)
    starts = list(range(0, S, L))
    checkpoints = []
    for s0 in starts:
        checkpoints.append((C, n, m))
        for t in range(s0, min(s0 + L, S)):
            _, C, n, m = _step(q_hat[..., t, :], k_[..., t, :], v_[..., t, :], log_f[..., t], i_[..., t],
                               C, n, m, eps_)

    dq = np.zeros_like(q_hat)
    dk = np.zeros_like(k_)
    dv = np.zeros_like(v_)
    di = np.zeros(lead + (S,), np.float64)
    dlf = np.zeros(lead + (S,), np.float64)
    if dstate is None:
        dC, dn, dm = np.zeros(lead + (DK, DV), dt), np.zeros(lead + (DK,), dt), np.zeros(lead, np.float64)
    else:
        dC, dn, dm = dstate[0].copy(), dstate[1].copy(), dstate[2].copy()
    if not grad_through_m:
        dm = np.zeros_like(dm)

    for seg in reversed(range(len(starts))):
        s0, s1 = starts[seg], min(starts[seg] + L, S)
        # recompute the states of this segment: states[j] is the state before step s0 + j
        states = [checkpoints[seg]]
        for t in range(s0, s1):
            _, C, n, m = _step(q_hat[..., t, :], k_[..., t, :], v_[..., t, :], log_f[..., t], i_[..., t],
                               *states[-1], eps_)
            states.append((C, n, m))
        for t in reversed(range(s0, s1)):
            C_prev, n_prev, m_prev = states[t - s0]
            C_t, n_t, m_t = states[t - s0 + 1]
            qh, kt, vt, lf, it = q_hat[..., t, :], k_[..., t, :], v_[..., t, :], log_f[..., t], i_[..., t]
            # ---- forward quantities of step t
            a = np.exp(lf + m_prev - m_t)  # f'_t (eq. 17), float64
            g = np.exp(it - m_t)  # i'_t (eq. 16)
            num = np.matmul(qh[..., None, :], C_t)[..., 0, :]
            qn = np.sum(qh * n_t, axis=-1)
            clamped = -m_t > max_exponent(dt)  # exp(-m_t) clamped as in the forward pass: no gradient to m there
            bound = np.exp(np.where(clamped, max_exponent(dt), -m_t))
            den = np.maximum(np.abs(qn), bound) + eps_
            h = num / den[..., None]
            # ---- h = num / den
            dht = dh[..., t, :]
            dnum = dht / den[..., None].astype(dt)
            dden = -np.sum(dht * h, axis=-1) / den  # float64 (...)
            # den = max(|qn|, exp(-m_t)) + eps
            w_qn, w_bound = _split(np.abs(qn) > bound, np.abs(qn) == bound, np.float64)
            dqn = dden * w_qn * np.sign(qn)
            if grad_through_m:
                dm = dm - np.where(clamped, 0.0, dden * w_bound * bound)  # d exp(-m)/dm = -exp(-m)
            # num = q̂ᵀC_t, qn = q̂ᵀn_t
            dq[..., t, :] = (np.matmul(C_t, dnum[..., :, None])[..., 0] + dqn[..., None].astype(dt) * n_t) * dt.type(scale)
            dC = dC + qh[..., :, None] * dnum[..., None, :]
            dn = dn + dqn[..., None].astype(dt) * qh
            # C_t = a C_{t-1} + g k vᵀ,  n_t = a n_{t-1} + g k   (eq. 19, 20)
            dCv = np.matmul(dC, vt[..., :, None])[..., 0]  # dC_t v  (..., DK)
            da = np.sum(dC * C_prev, axis=(-2, -1)) + np.sum(dn * n_prev, axis=-1)
            dg = np.sum(kt * dCv, axis=-1) + np.sum(dn * kt, axis=-1)
            g_ = g[..., None].astype(dt)
            dk[..., t, :] = g_ * (dCv + dn)
            dv[..., t, :] = g_ * np.matmul(kt[..., None, :], dC)[..., 0, :]
            a_ = a.astype(dt)
            dC = a_[..., None, None] * dC
            dn = a_[..., None] * dn
            # a = exp(lf + m_{t-1} - m_t), g = exp(ĩ - m_t)   (eq. 16, 17)
            dlf[..., t] += da * a
            di[..., t] += dg * g
            if grad_through_m:
                dm = dm - da * a - dg * g  # gradient w.r.t. m_t, complete now
                dm_prev = da * a
                # m_t = max(lf + m_{t-1}, ĩ)   (eq. 15)
                w_f, w_i = _split(lf + m_prev > it, lf + m_prev == it, np.float64)
                dlf[..., t] += dm * w_f
                di[..., t] += dm * w_i
                dm = dm_prev + dm * w_f
    if forget_gate == "sigmoid":
        df = dlf * sigmoid(-x.f_pre)  # d logσ(f̃)/df̃ = σ(-f̃)
    else:
        df = dlf
    o = x.out_dtype
    grads = dict(q=dq.astype(o), k=dk.astype(o), v=dv.astype(o), i_pre=di.astype(o), f_pre=df.astype(o))
    grads["state"] = None if x.state is None else (dC.astype(dt), dn.astype(dt), dm.astype(dt))
    return grads
