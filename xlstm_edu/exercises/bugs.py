"""The bug bank: the mistakes real re-implementations of the LSTM, sLSTM and mLSTM make, as runnable variants.

``check_implementation`` runs a learner's function against the package; when it fails, it runs these variants on
the same inputs and names the one whose outputs the learner's match ("matches exhibit V: the bound 1 on
stabilized states"). Each variant is a small from-scratch implementation with *one* deviation from the right one,
switched on by a keyword of the base functions below (``lstm``, ``slstm``, ``mlstm_recurrent``,
``mlstm_parallel``, ``mlstm_chunkwise``; with no keyword they are correct, which ``tests/test_checkers.py``
asserts against the package).

Labels: the mistakes shown in the bug museum (chapter 8) carry the museum's exhibit number (I to XIV); the others
have a name of their own. Exhibits VIII (a gate per unit) and X (one state for the whole batch) need inputs of
another shape or a batch and are caught by the probes of ``xlstm_edu.probes`` instead; they are not in this bank.

Every call signature is the one ``check_implementation`` uses (one sequence, no batch or head dims):
``fn(wx, R, b, state=None)``; ``fn(q, k, v, i_pre, f_pre, state=None, eps=1e-6)``;
``fn(q, k, v, i_pre, f_pre, eps=1e-6)``; ``fn(q, k, v, i_pre, f_pre, chunk_size=L, state=None, eps=1e-6)``.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np


# --------------------------------------------------------------------------------------------------- helpers
def _sigmoid(x):
    # stable for any x: exp of a non-positive number only
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(np.result_type(x, np.float32))


def _log_sigmoid(x):
    return (np.minimum(x, 0) - np.log1p(np.exp(-np.abs(x)))).astype(np.result_type(x, np.float32))


def _dt(*arrays):
    return np.result_type(*arrays, np.float32)


# ------------------------------------------------------------------------------------------------------ LSTM
def lstm(wx, R, b, state=None, *, gate_order=(0, 1, 2, 3), transpose_R=False, tanh_c=True, forget=True,
         reset=False):
    """LSTM over one sequence, eq. 2-7: wx (S, 4, H), R (4, H, H) with pre_g += h_{t-1} @ R[g], b (4, H)."""
    dt = _dt(wx, R, b)
    S, _, H = wx.shape
    h0, c0 = (np.zeros(H, dt), np.zeros(H, dt)) if state is None else (np.asarray(state[0], dt),
                                                                      np.asarray(state[1], dt))
    h, c, hs = h0, c0, []
    for t in range(S):
        if reset:  # time treated as a batch: every step from the initial state
            h, c = h0, c0
        rec = np.stack([R[g] @ h if transpose_R else h @ R[g] for g in range(4)])
        pre = wx[t] + rec + b
        i, f, z, o = (pre[gate_order[j]] for j in range(4))
        i, f, z, o = _sigmoid(i), _sigmoid(f), np.tanh(z), _sigmoid(o)
        c = (f * c if forget else c) + i * z
        h = o * (np.tanh(c) if tanh_c else c)
        hs.append(h)
    return np.stack(hs).astype(dt), (h.astype(dt), c.astype(dt))


# ----------------------------------------------------------------------------------------------------- sLSTM
def slstm(wx, R, b, state=None, *, stabilize=True, exp_first=False, rescale_f=True, normalize=True,
          transpose_R=False, mix_heads=False, first_step_rule=True, exp_forget=False, reset=False):
    """Stabilized sLSTM over one sequence, eq. 8-17: wx (S, 4, H), R (4, NH, DH, DH) block-diagonal, b (4, H);
    state (h, c, n, m). Official first step: an empty memory (n = 0) gets m_t = ĩ_t."""
    dt = _dt(wx, R, b)
    S, _, H = wx.shape
    NH, DH = R.shape[1], R.shape[2]
    init = tuple(np.zeros(H, dt) for _ in range(4)) if state is None else tuple(np.asarray(s, dt) for s in state)
    h, c, n, m = init
    hs = []
    for t in range(S):
        if reset:
            h, c, n, m = init
        hh = h.reshape(NH, DH)
        rec = np.empty((4, NH, DH), dt)
        for g in range(4):
            for j in range(NH):
                if mix_heads:  # every head reads all heads' units
                    rec[g, j] = sum(hh[i] @ R[g, j] for i in range(NH))
                else:
                    rec[g, j] = R[g, j] @ hh[j] if transpose_R else hh[j] @ R[g, j]
        pre = wx[t] + rec.reshape(4, H) + b
        i_pre, f_pre, z, o = pre[0], pre[1], np.tanh(pre[2]), _sigmoid(pre[3])
        log_f = f_pre if exp_forget else _log_sigmoid(f_pre)
        if not stabilize:  # eq. 12-13 raw
            i_g, f_g = np.exp(i_pre), np.exp(log_f)
            c, n = f_g * c + i_g * z, f_g * n + i_g
        else:
            m_prev = np.where(n == 0, -np.inf, m) if first_step_rule else m
            if exp_first:  # the exponential first, its log for the max
                i_raw = np.exp(i_pre)
                m_new = np.maximum(log_f + m_prev, np.log(i_raw))
                i_s = i_raw * np.exp(-m_new)
            else:
                m_new = np.maximum(log_f + m_prev, i_pre)  # eq. 15
                i_s = np.exp(i_pre - m_new)  # eq. 16
            f_s = np.exp(log_f + m_prev - m_new) if rescale_f else np.exp(log_f)  # eq. 17
            c, n, m = f_s * c + i_s * z, f_s * n + i_s, m_new
        h = o * (c / n) if normalize else o * c
        hs.append(h)
    return np.stack(hs).astype(dt), tuple(np.asarray(s).astype(dt) for s in (h, c, n, m))


# ----------------------------------------------------------------------------------------------------- mLSTM
def _mlstm_state(state, DK, DV, dt):
    if state is None:
        return np.zeros((DK, DV), dt), np.zeros(DK, dt), 0.0
    return np.asarray(state[0], dt), np.asarray(state[1], dt), float(np.asarray(state[2]))


def mlstm_recurrent(q, k, v, i_pre, f_pre, state=None, eps=1e-6, *, stabilize=True, exp_first=False,
                    rescale_f=True, normalize=True, bound_one=False, use_abs=True, outer=True, use_eps=True,
                    m0_minus_inf=False, scale=True, forget_own_write=False, reset=False, time_norm=False):
    """Stabilized mLSTM recurrence, eq. 15-21 (official convention: C (DK, DV) = Σ w k vᵀ, q scaled by 1/√DK,
    m_0 = 0, eps added after the max in stabilized space)."""
    dt = _dt(q, k, v)
    S, DK = q.shape
    DV = v.shape[-1]
    if time_norm:  # exhibit IX: keys standardized over the time axis
        k = (k - k.mean(axis=0, keepdims=True)) / k.std(axis=0, keepdims=True)
    C0, n0, m0 = _mlstm_state(state, DK, DV, dt)
    if m0_minus_inf and state is None:
        m0 = -np.inf
    C, n, m = C0, n0, m0
    qs = q / math.sqrt(DK) if scale else q
    hs = []
    for t in range(S):
        if reset:
            C, n, m = C0, n0, m0
        log_f = float(_log_sigmoid(np.float64(f_pre[t])))
        ip = float(i_pre[t])
        kv = np.outer(k[t], v[t]) if outer else k[t] * v[t]
        if not stabilize:  # exhibit I: raw gates, bound 1
            i_g, f_g = math.exp(min(ip, 700.0)) if dt == np.float64 else np.exp(np.float32(ip)), math.exp(log_f)
            i_g, f_g = dt.type(i_g), dt.type(f_g)
            C, n = (f_g * (C + i_g * kv), f_g * (n + i_g * k[t])) if forget_own_write else \
                (f_g * C + i_g * kv, f_g * n + i_g * k[t])
            num, qn, bound = qs[t] @ C, qs[t] @ n, dt.type(1.0)
        else:
            if exp_first:  # exhibit II
                i_raw = np.exp(dt.type(ip))
                m_new = max(log_f + m, float(np.log(i_raw)))
                i_s = i_raw * dt.type(math.exp(-m_new)) if np.isfinite(m_new) else dt.type(np.nan)
            else:
                m_new = max(log_f + m, ip)  # eq. 15
                i_s = dt.type(math.exp(ip - m_new))  # eq. 16
            f_s = dt.type(math.exp(log_f + m - m_new)) if rescale_f else dt.type(math.exp(log_f))  # eq. 17
            if forget_own_write:
                C, n = f_s * (C + i_s * kv), f_s * (n + i_s * k[t])
            else:
                C, n = f_s * C + i_s * kv, f_s * n + i_s * k[t]  # eq. 19, 20
            m = m_new
            num, qn = qs[t] @ C, qs[t] @ n
            bound = dt.type(1.0) if bound_one else (dt.type(math.exp(-m)) if -m < 700 else dt.type(np.inf))
        den = np.maximum(np.abs(qn) if use_abs else qn, bound)
        if use_eps:
            den = den + dt.type(eps)
        hs.append(num / den if normalize else num)
    out_m = np.asarray(m if stabilize else 0.0, dt)
    return np.stack(hs).astype(dt), (C.astype(dt), n.astype(dt), out_m)


def mlstm_parallel(q, k, v, i_pre, f_pre, eps=1e-6, *, stabilize=True, exp_first=False, normalize=True,
                   bound_one=False, use_abs=True, use_eps=True, zero_mask=False, off_by_one=False, m0_zero=False,
                   scale=True, time_norm=False, readout_off_by_one=False):
    """Stabilized parallel mLSTM, App. A.3: log D_ts = b_t - b_s + ĩ_s (s ≤ t), m_t = max_s log D_ts."""
    dt = _dt(q, k, v)
    S, DK = q.shape
    if time_norm:
        k = (k - k.mean(axis=0, keepdims=True)) / k.std(axis=0, keepdims=True)
    log_f = _log_sigmoid(np.asarray(f_pre, np.float64))
    bcum = np.cumsum(log_f)
    b_s = bcum - log_f if off_by_one else bcum  # off by one: b_{s-1}, so f_s weighs step s's own write
    causal = np.tri(S, dtype=bool)
    b_t = bcum - log_f if readout_off_by_one else bcum  # exhibit XIII: b_{t-1}, the read-out step's f_t missing
    raw = b_t[:, None] - b_s[None, :] + np.asarray(i_pre, np.float64)[None, :]
    if readout_off_by_one:
        raw[np.diag_indices(S)] = np.asarray(i_pre, np.float64)  # (the step's own write is not decayed)
    logD = np.tril(raw) if zero_mask else np.where(causal, raw, -np.inf)  # exhibit XI: 0 above the diagonal
    qk = (q @ k.T) / (math.sqrt(DK) if scale else 1.0)
    if not stabilize:  # exhibit I
        D = np.exp(logD.astype(dt))
        St = qk * D
        den = np.maximum(np.abs(St.sum(axis=1)), dt.type(1.0))
    else:
        if exp_first:  # exhibit II
            D = np.exp(logD.astype(dt))
            m = np.log(D.max(axis=1)).astype(np.float64)
            Dp = D * np.exp(-m)[:, None].astype(dt)
        else:
            m = logD.max(axis=1)
            if m0_zero:  # the recurrent form's m_0 = 0
                m = np.maximum(m, bcum)
            Dp = np.exp(logD - m[:, None]).astype(dt)
        St = qk * Dp
        sums = St.sum(axis=1)
        bound = np.ones(S, dt) if bound_one else np.exp(-m).astype(dt)
        den = np.maximum(np.abs(sums) if use_abs else sums, bound)
    if use_eps:
        den = den + dt.type(eps)
    h = (St / den[:, None]) @ v if normalize else St @ v
    return h.astype(dt)


def mlstm_chunkwise(q, k, v, i_pre, f_pre, chunk_size=64, state=None, eps=1e-6, *, ignore_carried_m=False,
                    reset_each_chunk=False, off_by_one=False, zero_mask=False, drop_last_chunk=False):
    """Chunkwise mLSTM: recurrent between chunks of ``chunk_size`` steps, parallel inside them; equals
    ``mlstm_recurrent`` (m_0 = 0)."""
    dt = _dt(q, k, v)
    S, DK = q.shape
    DV = v.shape[-1]
    L = int(chunk_size)
    C0, n0, m0 = _mlstm_state(state, DK, DV, dt)
    C, n, m = C0, n0, m0
    qs = q / math.sqrt(DK)
    hs = []
    stop = (S // L) * L if drop_last_chunk and S % L else S
    for a in range(0, stop, L):
        if reset_each_chunk:
            C, n, m = C0, n0, m0
        sl = slice(a, min(a + L, S))
        Q, K, V = qs[sl], k[sl], v[sl]
        log_f = _log_sigmoid(np.asarray(f_pre[sl], np.float64))
        ig = np.asarray(i_pre[sl], np.float64)
        bc = np.cumsum(log_f)
        x = ig - (bc - log_f if off_by_one else bc)  # x_s = ĩ_s - b_s
        Lc = len(bc)
        causal = np.tri(Lc, dtype=bool)
        inner = x[None, :] * np.ones((Lc, 1))
        logw = np.tril(inner) if zero_mask else np.where(causal, inner, -np.inf)
        run_max = logw.max(axis=1)
        nu = run_max if ignore_carried_m else np.maximum(m, run_max)  # m_t - b_t
        W = np.exp(logw - nu[:, None]).astype(dt)
        Sc = (Q @ K.T) * W
        a_old = np.exp(m - nu).astype(dt)  # weight of the carried state
        num = a_old[:, None] * (Q @ C) + Sc @ V
        qn = a_old * (Q @ n) + Sc.sum(axis=1)
        with np.errstate(over="ignore"):
            bound = np.exp(-(bc + nu)).astype(dt)
        hs.append(num / (np.maximum(np.abs(qn), bound) + dt.type(eps))[:, None])
        # the state at the chunk's end (eq. 15, 19, 20 over the chunk)
        g = bc[-1]
        mu = x.max() if ignore_carried_m else max(m, x.max())
        wk = np.exp(x - mu).astype(dt)
        C = dt.type(math.exp(min(m - mu, 700.0))) * C + (K * wk[:, None]).T @ V
        n = dt.type(math.exp(min(m - mu, 700.0))) * n + (K * wk[:, None]).sum(axis=0)
        m = g + mu
    h = np.concatenate(hs) if hs else np.zeros((0, DV), dt)
    return h.astype(dt), (C.astype(dt), n.astype(dt), np.asarray(m, dt))


# ------------------------------------------------------------------------------------------------- the bank
@dataclass(frozen=True)
class Bug:
    key: str  # short identifier
    label: str  # what the learner reads: "exhibit V: the bound 1 on stabilized states"
    names: tuple  # the check_implementation names it applies to
    fn: object  # callable with the check_implementation signature of each name


def _p(base, **knobs):
    f = functools.partial(base, **knobs)
    return f


def _chunkwise_from_recurrent(**knobs):
    """A recurrent mistake made in a chunkwise implementation: the same outputs whatever the chunk size."""
    def fn(q, k, v, i_pre, f_pre, chunk_size=64, state=None, eps=1e-6):
        return mlstm_recurrent(q, k, v, i_pre, f_pre, state=state, eps=eps, **knobs)
    return fn


def _parallel_from_recurrent(**knobs):
    def fn(q, k, v, i_pre, f_pre, eps=1e-6):
        return mlstm_recurrent(q, k, v, i_pre, f_pre, eps=eps, **knobs)[0]
    return fn


_REC_MISTAKES = [  # (key, label, knobs of mlstm_recurrent); used for the recurrent and the chunkwise forms
    ("no_stabilizer", "exhibit I: the missing stabilizer (raw exponential gates)", dict(stabilize=False)),
    ("exp_before_max", "exhibit II: the exponential taken before the max", dict(exp_first=True)),
    ("f_not_rescaled", "exhibit III: the forget gate not rescaled by exp(m_{t-1} - m_t)", dict(rescale_f=False)),
    ("no_normalizer", "exhibit IV: the missing normalizer", dict(normalize=False)),
    ("bound_one", "exhibit V: the bound 1 on stabilized states (should be exp(-m_t))", dict(bound_one=True)),
    ("no_abs", "exhibit VI: the missing absolute value in max(|q·n|, exp(-m))", dict(use_abs=False)),
    ("elementwise", "exhibit VII: element-wise k * v instead of the outer product k vᵀ", dict(outer=False)),
    ("time_norm", "exhibit IX: statistics over time (keys standardized over the time axis)", dict(time_norm=True)),
    ("no_eps", "eps dropped from the denominator", dict(use_eps=False)),
    ("m0_minus_inf", "m₀ = −∞ instead of 0 for a fresh state (the recurrent form starts at m₀ = 0)",
     dict(m0_minus_inf=True)),
    ("no_scale", "q not scaled by 1/√DK", dict(scale=False)),
    ("forget_own_write", "off by one in the forget sum, the mirror image of exhibit XIII: f_t also multiplies step t's "
     "own write",
     dict(forget_own_write=True)),
    ("time_as_batch", "exhibit XII: recurrence over the batch axis instead of time (every step starts from the "
     "initial state)",
     dict(reset=True)),
]

BANK: list = []
for _key, _label, _knobs in _REC_MISTAKES:
    BANK.append(Bug(f"mlstm_recurrent.{_key}", _label, ("mlstm_recurrent",), _p(mlstm_recurrent, **_knobs)))
for _key, _label, _knobs in _REC_MISTAKES:
    BANK.append(Bug(f"mlstm_chunkwise.{_key}", _label, ("mlstm_chunkwise",), _chunkwise_from_recurrent(**_knobs)))
BANK += [
    Bug("mlstm_chunkwise.ignore_carried_m", "the chunk's stabilizer m ignores the carried state's m",
        ("mlstm_chunkwise",), _p(mlstm_chunkwise, ignore_carried_m=True)),
    Bug("mlstm_chunkwise.reset", "the state is not carried from one chunk to the next (every chunk starts afresh)",
        ("mlstm_chunkwise",), _p(mlstm_chunkwise, reset_each_chunk=True)),
    Bug("mlstm_chunkwise.off_by_one", "off by one in the cumulative forget sum inside a chunk (b_{s-1} for b_s)",
        ("mlstm_chunkwise",), _p(mlstm_chunkwise, off_by_one=True)),
    Bug("mlstm_chunkwise.zero_mask", "exhibit XI: a causal mask of zeros in log space, inside the chunk",
        ("mlstm_chunkwise",), _p(mlstm_chunkwise, zero_mask=True)),
    Bug("mlstm_chunkwise.drop_last", "the last, shorter chunk is dropped when S is not a multiple of the chunk size",
        ("mlstm_chunkwise",), _p(mlstm_chunkwise, drop_last_chunk=True)),
]
BANK += [
    Bug("mlstm_parallel.no_stabilizer", "exhibit I: the missing stabilizer (raw exponential gates)",
        ("mlstm_parallel",), _p(mlstm_parallel, stabilize=False)),
    Bug("mlstm_parallel.exp_before_max", "exhibit II: the exponential taken before the max",
        ("mlstm_parallel",), _p(mlstm_parallel, exp_first=True)),
    Bug("mlstm_parallel.no_normalizer", "exhibit IV: the missing normalizer", ("mlstm_parallel",),
        _p(mlstm_parallel, normalize=False)),
    Bug("mlstm_parallel.bound_one", "exhibit V: the bound 1 on stabilized states (should be exp(-m_t))",
        ("mlstm_parallel",), _p(mlstm_parallel, bound_one=True)),
    Bug("mlstm_parallel.no_abs", "exhibit VI: the missing absolute value in max(|Σ_s S̃_ts|, exp(-m))",
        ("mlstm_parallel",), _p(mlstm_parallel, use_abs=False)),
    Bug("mlstm_parallel.time_norm", "exhibit IX: statistics over time (keys standardized over the time axis)",
        ("mlstm_parallel",), _p(mlstm_parallel, time_norm=True)),
    Bug("mlstm_parallel.zero_mask", "exhibit XI: a causal mask of zeros in log space", ("mlstm_parallel",),
        _p(mlstm_parallel, zero_mask=True)),
    Bug("mlstm_parallel.no_eps", "eps dropped from the denominator", ("mlstm_parallel",),
        _p(mlstm_parallel, use_eps=False)),
    Bug("mlstm_parallel.readout_off_by_one", "exhibit XIII: off by one in the cumulative forget sum (b_{t-1} - b_s for b_t - b_s: the read-out step's own forget gate is missing)", ("mlstm_parallel",),
        _p(mlstm_parallel, readout_off_by_one=True)),
    Bug("mlstm_parallel.off_by_one", "off by one in the cumulative forget sum, the mirror image of exhibit XIII (b_t - b_{s-1} for b_t - b_s)",
        ("mlstm_parallel",), _p(mlstm_parallel, off_by_one=True)),
    Bug("mlstm_parallel.m0_zero", "the recurrent form's m₀ = 0 (m_t = max(b_t, row max)); the parallel form has "
        "no initial state (m₀ = −∞)", ("mlstm_parallel",), _p(mlstm_parallel, m0_zero=True)),
    Bug("mlstm_parallel.no_scale", "q not scaled by 1/√DK", ("mlstm_parallel",), _p(mlstm_parallel, scale=False)),
    Bug("mlstm_parallel.elementwise", "exhibit VII: element-wise k * v instead of the outer product k vᵀ",
        ("mlstm_parallel",), _parallel_from_recurrent(outer=False, m0_minus_inf=True)),
]
BANK += [
    Bug("slstm.no_stabilizer", "the missing stabilizer (raw exponential gates, as in exhibit I)",
        ("slstm_recurrent",), _p(slstm, stabilize=False)),
    Bug("slstm.exp_before_max", "the exponential taken before the max (as in exhibit II)", ("slstm_recurrent",),
        _p(slstm, exp_first=True)),
    Bug("slstm.f_not_rescaled", "exhibit XIV: the sLSTM forget gate not rescaled by exp(m_{t-1} - m_t)", ("slstm_recurrent",), _p(slstm, rescale_f=False)),
    Bug("slstm.no_normalizer", "the missing normalizer: h = o·c instead of o·c/n", ("slstm_recurrent",),
        _p(slstm, normalize=False)),
    Bug("slstm.R_untransposed", "R used untransposed: R[g] @ h instead of h @ R[g]", ("slstm_recurrent",),
        _p(slstm, transpose_R=True)),
    Bug("slstm.mix_heads", "heads mixed: each head reads every head's units instead of only its own",
        ("slstm_recurrent",), _p(slstm, mix_heads=True)),
    Bug("slstm.no_first_step_rule", "the first-step rule missing: an empty memory (n = 0) must start with "
        "m_t = ĩ_t, not m_0 = 0", ("slstm_recurrent",), _p(slstm, first_step_rule=False)),
    Bug("slstm.exp_forget", "an exponential forget gate where the sigmoid belongs", ("slstm_recurrent",),
        _p(slstm, exp_forget=True)),
    Bug("slstm.time_as_batch", "exhibit XII: recurrence over the batch axis instead of time (every step starts "
        "from the initial state)", ("slstm_recurrent",), _p(slstm, reset=True)),
]
BANK += [
    Bug("lstm.gate_order_ifoz", "gate order (i, f, o, z) instead of (i, f, z, o)", ("lstm_recurrent",),
        _p(lstm, gate_order=(0, 1, 3, 2))),
    Bug("lstm.gate_order_fizo", "input and forget gates swapped (f, i, z, o)", ("lstm_recurrent",),
        _p(lstm, gate_order=(1, 0, 2, 3))),
    Bug("lstm.R_untransposed", "R used untransposed: R[g] @ h instead of h @ R[g]", ("lstm_recurrent",),
        _p(lstm, transpose_R=True)),
    Bug("lstm.no_tanh_c", "h = o·c instead of o·tanh(c)", ("lstm_recurrent",), _p(lstm, tanh_c=False)),
    Bug("lstm.no_forget", "the forget gate left out of c_t = f_t c_{t-1} + i_t z_t", ("lstm_recurrent",),
        _p(lstm, forget=False)),
    Bug("lstm.time_as_batch", "exhibit XII: recurrence over the batch axis instead of time (every step starts "
        "from the initial state)", ("lstm_recurrent",), _p(lstm, reset=True)),
]

CORRECT = {"lstm_recurrent": lstm, "slstm_recurrent": slstm, "mlstm_recurrent": mlstm_recurrent,
           "mlstm_parallel": mlstm_parallel, "mlstm_chunkwise": mlstm_chunkwise}


def bugs_for(name: str) -> list:
    """The bank's variants that apply to ``check_implementation(name, ...)``, in the order they are tried."""
    return [b for b in BANK if name in b.names]
