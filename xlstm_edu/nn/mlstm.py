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
states in float32: a memory rounded to half precision at every step drifts (1% after 16 steps in bfloat16).
The bound exp(-m_t) is clamped before it overflows (``xlstm_edu.nn.gating``).

Gradients are the exact ones (like the official ``*_autograd`` kernels): the stabilizer m is not detached, so the
small dependence of h on m through eps (the effective eps is eps·exp(m_t)) is differentiated too. Autograd derives
them for every form but the chunkwise one, which has a hand-written backward pass for speed (``_Chunkwise``; the
tests check it against autograd through the same formula).
"""

from __future__ import annotations

import contextlib
import math

import torch

from xlstm_edu._validate import check_mlstm_state, mlstm_dims
from xlstm_edu.nn._checks import (check_eps, check_forget_gate, check_positive_int, check_state_tuple,
                                  check_tensors, check_values, dtypes)
from xlstm_edu.nn.gating import _MAX_EXPONENT, _MIN_EXPONENT, log_forget_gate, normalizer_bound

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
    if state is None:
        state = mlstm_zero_state(lead, q.shape[-1], v.shape[-1], dtype=q.dtype, device=q.device)
    h, state = _chunkwise(q, k, v, i_pre, f_pre, L, state, eps, forget_gate)
    return h.to(out), state


def _chunkwise(q, k, v, i_pre, f_pre, L, state, eps, forget_gate):
    """``mlstm_chunkwise`` after its checks: inputs and state in the compute dtype. Returns (h, (C, n, m))."""
    log_f = log_forget_gate(f_pre, forget_gate)  # eq. 26
    args = (q, k, v, i_pre, log_f, *state)
    L = min(L, q.shape[-2])
    if q.dim() == 2:  # no leading dims: the kernel wants one (it works in tiles along the first)
        h, C, n, m = (t[0] for t in _Chunkwise.apply(*(t[None] for t in args), L, eps))
    else:
        h, C, n, m = _Chunkwise.apply(*args, L, eps)
    return h, (C, n, m)


# ----------------------------------------------------------------------------------------------------------------
# The blocks' entry points. An mLSTM block builds q, k, v and the gates itself (their shapes and dtypes are right
# by construction), so these skip the public functions' checks of the inputs, which would cost a pass over every
# activation per call (and most of a generation step); a state that comes from outside is still checked, with the
# same messages. Both compute in at least float32 and return h and the state in that dtype.
def block_chunkwise(q, k, v, i_pre, f_pre, chunk_size: int, state, forget_gate: str, eps: float = 1e-6):
    """``mlstm_chunkwise`` for ``MLSTMBlock.forward``: the state, when given, is checked (tensors, shapes and
    finite values), the inputs are not."""
    (q, k, v, i_pre, f_pre), state = _block_inputs(q, k, v, i_pre, f_pre, state, values=True)
    return _chunkwise(q, k, v, i_pre, f_pre, chunk_size, state, eps, forget_gate)


def block_step(q, k, v, i_pre, f_pre, state, forget_gate: str, eps: float = 1e-6):
    """``mlstm_step`` for ``MLSTMBlock.step``: the state's tensors and shapes are checked, not its values."""
    (q, k, v, i_pre, f_pre), state = _block_inputs(q, k, v, i_pre, f_pre, state, values=False, step=True)
    return _step(q, k, v, i_pre, f_pre, state, eps, forget_gate)


def _block_inputs(q, k, v, i_pre, f_pre, state, *, values: bool, step: bool = False):
    cd = torch.promote_types(q.dtype, torch.float32)
    lead = q.shape[:-1] if step else q.shape[:-2]
    DK, DV = q.shape[-1], v.shape[-1]
    if state is None:
        state = mlstm_zero_state(lead, DK, DV, dtype=cd, device=q.device)
    else:
        state = check_state_tuple(state, ("C", "n", "m"))
        named = {"state C": state[0], "state n": state[1], "state m": state[2]}
        check_tensors({"q": q, **named})
        check_mlstm_state(state, tuple(lead), DK, DV)
        if values:
            check_values(named)
        state = tuple(t.to(cd) for t in state)
    return tuple(t.to(cd) for t in (q, k, v, i_pre, f_pre)), state


class _Chunkwise(torch.autograd.Function):
    """The chunkwise form with a hand-written backward pass (``_span_forward`` / ``_span_backward``).

    Autograd through the same forward ops gives the same gradient (to round-off; the tests compare them in
    float64), but costs much more time on a CPU: it keeps the (L, L) intermediates of every elementwise step,
    makes one pass over memory per op, and adds zero-filled and copied gradients at every slice and concatenation.
    The backward here makes the same batched matrix products with few, fused elementwise passes, and writes the
    gradients straight into the inputs' memory layout. It is the exact gradient of the forward: through the
    stabilizers m too (the dependence of h on m through eps and the bound exp(-m_t)), with torch's rules at ties
    (``maximum`` splits the gradient in halves, ``amax`` evenly, ``cummax`` gives it to the index it returns).
    One departure from the plain formula, in forward and backward alike: a decay weight D_ts below the smallest
    normal float (exp(-87) ≈ 1.6e-38 in float32, exp(-708) in float64) is computed as that number, not as a
    subnormal or 0 (see ``_span_forward``): a change below the float's resolution of the row's sum.

    The sequence is cut into spans: all full chunks of length L, then (if S is not a multiple of L) one shorter
    chunk, each span continuing from the state the previous one left. h is written into a tensor laid out in
    memory like v (the blocks pass head-major views of token-major tensors: no transposed copies of h)."""

    @staticmethod
    def forward(ctx, q, k, v, i_pre, log_f, C0, n0, m0, L, eps):
        S, DV = q.shape[-2], v.shape[-1]
        S_full = (S // L) * L
        spans = [(0, S_full, L)] if S_full else []
        if S_full < S:
            spans.append((S_full, S, S - S_full))
        h = torch.empty_like(v)
        Ca, m = torch.cat([C0, n0[..., None]], dim=-1), m0  # [C | n]: the normalizer rides along as a column
        saved = []
        with _no_autocast(q):  # in the inputs' dtype (at least float32), also under autocast
            for s0, s1, Lp in spans:
                Ca, m, keep = _span_forward(q[..., s0:s1, :], k[..., s0:s1, :], v[..., s0:s1, :],
                                            i_pre[..., s0:s1], log_f[..., s0:s1], Lp, Ca, m, eps, h[..., s0:s1, :])
                saved += keep
        ctx.save_for_backward(*saved)
        ctx.spans, ctx.eps = spans, eps
        # the gradients of q, k, v, ĩ and log f will be laid out in memory like them (sizes and strides only)
        ctx.layouts = [torch.empty_like(x, device="meta") for x in (q, k, v, i_pre, log_f)]
        return h, Ca[..., :DV], Ca[..., DV], m

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dh, dC, dn, dm):
        saved = ctx.saved_tensors
        grads = [torch.empty_strided(x.shape, x.stride(), dtype=dh.dtype, device=dh.device) for x in ctx.layouts]
        DV = grads[2].shape[-1]
        dCa = torch.cat([dC, dn[..., None]], dim=-1)
        per = len(saved) // len(ctx.spans)  # tensors kept per span
        with _no_autocast(dh):
            for j, (s0, s1, Lp) in reversed(list(enumerate(ctx.spans))):
                dCa, dm = _span_backward(saved[j * per:(j + 1) * per], Lp, ctx.eps, dh[..., s0:s1, :], dCa, dm,
                                         *(g[..., s0:s1, :] if g.dim() == dh.dim() else g[..., s0:s1] for g in grads))
        return (*grads, dCa[..., :DV], dCa[..., DV], dm, None, None)


_TILE_ENTRIES = 1 << 18  # entries of an (..., NC, L, L) intermediate per tile: 1 MiB in float32


def _tiles(batch, S, L):
    """Slices of the first batch dimension, each with about ``_TILE_ENTRIES`` entries per (..., NC, L, L)
    intermediate: the big tensors are worked through tile by tile, each tile's intermediates still in cache when
    they are used again (about a fifth faster than the whole batch at once on a CPU)."""
    per = math.prod(batch[1:]) * S * L
    step = max(1, _TILE_ENTRIES // per)
    return [slice(t, min(t + step, batch[0])) for t in range(0, batch[0], step)]


def _no_autocast(x):
    if torch.is_autocast_enabled(x.device.type):
        return torch.autocast(device_type=x.device.type, enabled=False)
    return contextlib.nullcontext()


def _ties(x, y, grad):
    """The gradient that ``torch.maximum(x, y)`` passes to x: all of it where x > y, half where x == y."""
    return torch.where(x == y, grad / 2, grad).masked_fill_(x < y, 0)


def _span_forward(q, k, v, i_pre, log_f, L, Ca, m, eps, h_out):
    """Chunkwise form for S = NC·L, from the state (Ca = [C | n], m); writes h into ``h_out`` (any layout).
    Returns (Ca, m) after the last chunk and the tensors the backward pass needs.

    The gates and stabilizers, (..., NC, L) numbers, are computed first for everything at once; the big tensors
    then tile by tile (``_tiles``). Tricks that keep the number of passes over big arrays small (they dominate
    the cost on a CPU): the normalizer n rides along as an extra column of C (n = Σ w k = kᵀ·1, so
    [C | n] = Σ w k [v | 1]ᵀ); the scale 1/√DK of q is folded into the decay weights; the row maximum of log D
    needs no (L, L) pass: max_{s<=t} (b_t - b_s + ĩ_s) = b_t + cummax_s(ĩ_s - b_s); the stabilizers at the chunk
    borders come first, so that every chunk's own contribution to the state is one batched matmul, already in
    the scale of the next border, and the loop over the borders is one multiply-add of (..., DK, DV+1) states per
    chunk; and the readout [q̂ᵀC_t | q̂ᵀn_t] of the incoming state and of the chunk itself is one matmul
    [q_in | S̃] @ [C_in ; v | 1], both operands written in place into shared buffers.
    """
    *batch, S, DK = q.shape
    DV = v.shape[-1]
    NC, W = S // L, DV + 1
    # --- the gates and stabilizers (eq. 15-17 per step and per chunk), (..., NC, L) numbers
    i_pre = i_pre.reshape(*batch, NC, L)
    b = torch.cumsum(log_f.reshape(*batch, NC, L), dim=-1)  # log-forget cumsum inside each chunk
    g = b[..., -1]  # (..., NC) total log-forget over a chunk
    a = g[..., None] - b + i_pre  # (..., NC, L): log weight of step s in the chunk-end state
    a_max = a.amax(dim=-1)  # (..., NC)
    m_in = q.new_empty(*batch, NC + 1)  # the stabilizer entering each chunk, and after the last
    m_in[..., 0] = m
    for c in range(NC):
        m_in[..., c + 1] = torch.maximum(g[..., c] + m_in[..., c], a_max[..., c])  # at the chunk end (eq. 15)
    m_c, m_n = m_in[..., :NC], m_in[..., 1:]
    alpha = torch.exp(a - m_n[..., None])  # = i' e^{a_s - a_max}: the chunk's input gate times the step's weight
    f_s = torch.exp(g + m_c - m_n)  # f' of each whole chunk (eq. 17)
    w = i_pre - b  # log D_ts = b_t + w_s for s <= t
    cm, cm_idx = torch.cummax(w, dim=-1)
    A, B = b + m_c[..., None], b + cm
    m_t = torch.maximum(A, B)  # = the recurrent m_t (eq. 15)
    u = b - m_t - 0.5 * math.log(DK)  # (- log √DK: the scale of q̂ = q/√DK, applied through the weights)
    e = torch.exp(u + m_c[..., None])  # the incoming state's weight at step t
    bound = normalizer_bound(m_t)  # exp(-m_t), the lower bound of the denominator (eq. 21)
    den_abs, r = torch.empty_like(a), torch.empty_like(a)

    # --- the big tensors, tile by tile
    qc = q.new_empty(*batch, NC, L, DK)  # q and k: one contiguous copy each (they feed several batched matmuls,
    kc = q.new_empty(*batch, NC, L, DK)  # which would copy a transposed view such as the blocks' every time)
    CV = q.new_empty(*batch, NC, DK + L, W)  # per chunk: the incoming state [C | n] above [v | 1]
    QS = q.new_empty(*batch, NC, L, DK + L)  # [q_in | S̃]
    D = q.new_empty(*batch, NC, L, L)
    num = q.new_empty(*batch, NC, L, W)
    Ca_out = torch.empty_like(Ca)
    for T in _tiles(batch, S, L):
        qc[T] = q[T].unflatten(-2, (NC, L))
        kc[T] = k[T].unflatten(-2, (NC, L))
        C_in, V = CV[T][..., :DK, :], CV[T][..., DK:, :]
        V[..., :DV] = v[T].unflatten(-2, (NC, L))
        V[..., DV] = 1.0
        # 1) each chunk's own part of the state at its end, Σ_s e^{a_s - m_end} k_s [v_s | 1]ᵀ (eq. 19, 20)
        C_loc = (kc[T] * alpha[T][..., None]).transpose(-2, -1) @ V  # (..., NC, DK, DV+1)
        # 2) recurrence over chunk borders: the state [C | n] entering each chunk, f' [C | n] + i' Σ k [v | 1]ᵀ
        C_in.select(-3, 0).copy_(Ca[T])
        for c in range(NC):
            out = C_in.select(-3, c + 1) if c + 1 < NC else Ca_out[T]
            torch.addcmul(C_loc.select(-3, c), C_in.select(-3, c), f_s[T][..., c, None, None], out=out)
        # 3) inside each chunk: the parallel form plus the incoming state
        # D'/√DK (eq. 75): exp(u_t + w_s) for s <= t, 0 above the diagonal. The exponents below the diagonal are
        # <= -log √DK < 0; those above are set to 0 before the exp and their results to 0 after it (exp of -inf
        # and of large numbers is slow); those below the smallest normal float's log are raised to it (the slow
        # subnormal results, up to 45 times slower, of weights far below the float's precision: exp(-87) is 1e-38)
        torch.add(u[T][..., :, None], w[T][..., None, :], out=D[T]).clamp_(_MIN_EXPONENT[q.dtype], 0.0).exp_().tril_()
        torch.mul(qc[T], e[T][..., None], out=QS[T][..., :DK])  # q̂ times the incoming state's weight
        torch.mul(qc[T] @ kc[T].transpose(-2, -1), D[T], out=QS[T][..., DK:])  # S̃ = (q̂ kᵀ) ⊙ D'
        torch.matmul(QS[T], CV[T], out=num[T])  # q_in C_in + S̃ [v | 1] = [q̂ᵀC_t | q̂ᵀn_t]
        # eq. 21 (times a reciprocal rather than a division)
        torch.abs(num[T][..., DV], out=den_abs[T])
        torch.reciprocal(torch.maximum(den_abs[T], bound[T]).add_(eps), out=r[T])
        torch.mul(num[T][..., :DV], r[T][..., None], out=h_out[T].unflatten(-2, (NC, L)))
    keep = (qc, kc, CV, QS, D, num, alpha, f_s, m_in, g, a, a_max, cm_idx, A, B, m_t, e, den_abs, bound, r)
    return Ca_out, m_in[..., NC].clone(), list(keep)


def _span_backward(saved, L, eps, dh, dCa, dm, dq_out, dk_out, dv_out, di_out, dlf_out):
    """The backward pass of ``_span_forward``: writes the gradients of q, k, v, ĩ, log f into the ``*_out``
    views (any layout) and returns those of the incoming state (Ca, m), given those of the outgoing one."""
    (qc, kc, CV, QS, D, num, alpha, f_s, m_in, g, a, a_max, cm_idx, A, B, m_t, e, den_abs, bound, r) = saved
    *batch, NC, _, DK = qc.shape
    S, DV = NC * L, CV.shape[-1] - 1
    tiles = _tiles(batch, S, L)
    mx = _MAX_EXPONENT[qc.dtype]
    dh = dh.unflatten(-2, (NC, L))
    d_max, du, dw, ds, dxa = (torch.empty_like(a) for _ in range(5))
    dxf = torch.empty_like(f_s)
    dCa_in = torch.empty_like(dCa)
    for T in tiles:  # everything of one tile, while its tensors are in cache
        # h = num_v · r,  r = 1 / (max(|den|, bound) + eps),  bound = exp(min(-m_t, mx))
        dnum = torch.empty_like(num[T])
        torch.mul(dh[T], r[T][..., None], out=dnum[..., :DV])
        torch.sum(dh[T] * num[T][..., :DV], -1, out=d_max[T]).mul_(r[T] * r[T]).neg_()
        dnum[..., DV] = _ties(den_abs[T], bound[T], d_max[T]) * num[T][..., DV].sgn()
        # num = [q_in | S̃] @ [C_in ; V],  S̃ = (q kᵀ) ⊙ D,  D = exp(u_t + w_s) (s <= t),  q_in = q ⊙ e
        dQS = dnum @ CV[T].transpose(-2, -1)  # [dq_in | dS̃]
        dCV = QS[T].transpose(-2, -1) @ dnum  # [dC_in ; dV]
        dq_in, dSm = dQS[..., :DK], dQS[..., DK:]
        dlogD = dSm * QS[T][..., DK:]  # = dD ⊙ D
        dP = dSm.mul_(D[T])
        torch.sum(dlogD, -1, out=du[T])
        torch.sum(dlogD, -2, out=dw[T])
        torch.sum(dq_in * qc[T], -1, out=ds[T])
        torch.addcmul(dP @ kc[T], dq_in, e[T][..., None], out=dq_out[T].unflatten(-2, (NC, L)))
        # the borders, backwards: Ca_{c+1} = f'_c Ca_c + C_loc_c; dCn[c] is the gradient of Ca_{c+1}
        C_in, dC_in, V = CV[T][..., :DK, :], dCV[..., :DK, :], CV[T][..., DK:, :]
        dCn = torch.empty_like(C_in)
        dCn.select(-3, NC - 1).copy_(dCa[T])
        for c in reversed(range(NC)):
            out = dCn.select(-3, c - 1) if c else dCa_in[T]
            torch.addcmul(dC_in.select(-3, c), dCn.select(-3, c), f_s[T][..., c, None, None], out=out)
        torch.sum(dCn * C_in, (-2, -1), out=dxf[T])  # (times f': the gradient of f'_c's exponent)
        # C_loc = (k ⊙ alpha)ᵀ V,  alpha = exp(a - m_{c+1})
        Kd = kc[T] @ dCn  # so that the gradient of V through C_loc is alpha ⊙ Kd
        dka = V @ dCn.transpose(-2, -1)
        torch.addcmul(dP.transpose(-2, -1) @ qc[T], dka, alpha[T][..., None], out=dk_out[T].unflatten(-2, (NC, L)))
        torch.addcmul(dCV[..., DK:, :DV], Kd[..., :DV], alpha[T][..., None], out=dv_out[T].unflatten(-2, (NC, L)))
        torch.sum(V * Kd, -1, out=dxa[T])
    dCa = dCa_in
    dxf.mul_(f_s)  # gradient of f'_c's exponent g_c + m_c - m_{c+1}
    dm_t = (_ties(bound, den_abs, d_max) * bound).masked_fill_(m_t < -mx, 0).neg_()
    ds.mul_(e)  # through e = exp(u + m_c)
    du += ds
    dm_c = ds.sum(-1)
    # u = b - m_t - log √DK,  m_t = maximum(b + m_c, b + cummax(w)),  w = ĩ - b
    db = du.clone()
    dm_t -= du
    dA = _ties(A, B, dm_t)
    dB = _ties(B, A, dm_t)
    db += dA
    db += dB
    dm_c += dA.sum(-1)
    dw.scatter_add_(-1, cm_idx, dB)
    di = dw
    db -= dw
    dxa.mul_(alpha)  # gradient of alpha's exponent a_s - m_{c+1}
    # --- the stabilizers at the borders, backwards: m_{c+1} = maximum(g_c + m_c, a_max_c)
    d_end = dxa.sum(-1).add_(dxf).neg_()  # what m_{c+1} receives through alpha and f'
    dg = dxf.clone()
    da_max = torch.empty_like(a_max)
    for c in reversed(range(NC)):
        d_next = dm + d_end[..., c]
        G = g[..., c] + m_in[..., c]
        dG = _ties(G, a_max[..., c], d_next)
        dg[..., c] += dG
        da_max[..., c] = _ties(a_max[..., c], G, d_next)
        dm = dxf[..., c] + dG + dm_c[..., c]
    # a_max = amax(a) (ties share evenly),  a = g - b + ĩ,  g = b_L,  b = cumsum(log f)
    ties = a == a_max[..., None]
    da = dxa.addcmul_(ties, (da_max / ties.sum(-1))[..., None])
    di += da
    db -= da
    dg += da.sum(-1)
    db[..., -1] += dg
    di_out.copy_(di.reshape(di_out.shape))
    dlf_out.copy_(db.flip(-1).cumsum(-1).flip(-1).reshape(dlf_out.shape))
    return dCa, dm
