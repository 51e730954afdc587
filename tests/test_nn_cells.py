"""The torch cells (xlstm_edu.nn) against the numpy core, against each other and against the official kernels.

float64 everywhere an equality is claimed: torch == numpy to 1e-10 in forward and gradients (autograd vs the
hand-written numpy backward), torch == the official ``mlstm_kernels`` ``*_autograd`` kernels and the official
vanilla sLSTM cell. Sizes are tiny so the whole file runs in seconds on one thread.
"""

import math
import re

import numpy as np
import pytest
import torch

import xlstm_edu.np as xnp
from xlstm_edu.nn import (mlstm_chunkwise, mlstm_parallel, mlstm_recurrent, mlstm_step, slstm_recurrent,
                          slstm_step, slstm_zero_state)

F64 = torch.float64
TOL = 1e-10


def rel(a, b):
    a = a.detach().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    b = b.detach().numpy() if isinstance(b, torch.Tensor) else np.asarray(b)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


def mlstm_inputs(lead=(2, 3), S=13, DK=4, DV=5, seed=0, gate_scale=3.0, dtype=F64):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(*lead, S, DK, generator=g, dtype=dtype)
    k = torch.randn(*lead, S, DK, generator=g, dtype=dtype)
    v = torch.randn(*lead, S, DV, generator=g, dtype=dtype)
    i = gate_scale * torch.randn(*lead, S, generator=g, dtype=dtype)
    f = gate_scale * torch.randn(*lead, S, generator=g, dtype=dtype) + 1.0
    return q, k, v, i, f


def mlstm_state(lead=(2, 3), DK=4, DV=5, seed=1):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(*lead, DK, DV, generator=g, dtype=F64), torch.randn(*lead, DK, generator=g, dtype=F64),
            torch.randn(*lead, generator=g, dtype=F64))


def np_(t):
    return t.detach().numpy()


# ============================================================================================== mLSTM forward
@pytest.mark.parametrize("forget_gate", ["sigmoid", "exp"])
def test_mlstm_parallel_equals_numpy(forget_gate):
    q, k, v, i, f = mlstm_inputs()
    if forget_gate == "exp":
        f = -f.abs()  # log f = f̃ <= 0: a forget gate in (0, 1]
    h = mlstm_parallel(q, k, v, i, f, forget_gate=forget_gate)
    h_np = xnp.mlstm_parallel(*map(np_, (q, k, v, i, f)), forget_gate=forget_gate)
    assert rel(h, h_np) < TOL


@pytest.mark.parametrize("with_state", [False, True])
def test_mlstm_recurrent_and_step_equal_numpy(with_state):
    q, k, v, i, f = mlstm_inputs()
    st = mlstm_state() if with_state else None
    h, (C, n, m) = mlstm_recurrent(q, k, v, i, f, state=st)
    h_np, (C_np, n_np, m_np) = xnp.mlstm_recurrent(*map(np_, (q, k, v, i, f)),
                                                   state=None if st is None else tuple(map(np_, st)))
    for a, b in [(h, h_np), (C, C_np), (n, n_np), (m, m_np)]:
        assert rel(a, b) < TOL
    # one step at a time == the sequence
    s = st
    for t in range(q.shape[-2]):
        ht, s = mlstm_step(q[..., t, :], k[..., t, :], v[..., t, :], i[..., t], f[..., t], state=s)
        assert rel(ht, h[..., t, :]) < 1e-13


@pytest.mark.parametrize("S,L", [(13, 4), (13, 13), (13, 64), (16, 4), (1, 3), (7, 1)])
@pytest.mark.parametrize("with_state", [False, True])
def test_mlstm_chunkwise_any_S_equals_numpy_and_recurrent(S, L, with_state):
    q, k, v, i, f = mlstm_inputs(S=S, seed=S + L)
    st = mlstm_state() if with_state else None
    h, (C, n, m) = mlstm_chunkwise(q, k, v, i, f, chunk_size=L, state=st)
    h_r, (C_r, n_r, m_r) = mlstm_recurrent(q, k, v, i, f, state=st)
    h_np, (C_np, n_np, m_np) = xnp.mlstm_chunkwise(*map(np_, (q, k, v, i, f)), chunk_size=L,
                                                   state=None if st is None else tuple(map(np_, st)))
    for a, b, c in [(h, h_r, h_np), (C, C_r, C_np), (n, n_r, n_np), (m, m_r, m_np)]:
        assert rel(a, b) < TOL  # the chunkwise stabilizer equals the recurrent one: round-off only
        assert rel(a, c) < TOL


# ============================================================================================ mLSTM gradients
def _grads(fn, inputs, w):
    xs = [x.clone().requires_grad_(True) for x in inputs]
    out = fn(*xs)
    h = out[0] if isinstance(out, tuple) else out
    return torch.autograd.grad((h * w).sum(), xs)


def test_mlstm_parallel_grad_equals_numpy_backward():
    q, k, v, i, f = mlstm_inputs()
    w = torch.randn(*q.shape[:-1], v.shape[-1], dtype=F64)
    g = _grads(mlstm_parallel, (q, k, v, i, f), w)
    g_np = xnp.mlstm_parallel_backward(np_(w), *map(np_, (q, k, v, i, f)))
    for name, gt in zip(("q", "k", "v", "i_pre", "f_pre"), g):
        assert rel(gt, g_np[name]) < TOL, name


def test_mlstm_recurrent_and_chunkwise_grad_equal_numpy_backward():
    q, k, v, i, f = mlstm_inputs(S=11)
    st = mlstm_state()
    w = torch.randn(*q.shape[:-1], v.shape[-1], dtype=F64)
    g_np = xnp.mlstm_recurrent_backward(np_(w), *map(np_, (q, k, v, i, f)), state=tuple(map(np_, st)))
    for fn in (lambda *a: mlstm_recurrent(*a[:5], state=tuple(a[5:])),
               lambda *a: mlstm_chunkwise(*a[:5], chunk_size=4, state=tuple(a[5:]))):
        g = _grads(fn, (q, k, v, i, f, *st), w)
        for name, gt in zip(("q", "k", "v", "i_pre", "f_pre"), g[:5]):
            assert rel(gt, g_np[name]) < TOL, name
        for j, gt in enumerate(g[5:]):
            assert rel(gt, g_np["state"][j]) < TOL, f"state[{j}]"


# ============================================================== the chunkwise form's hand-written backward pass
def _chunkwise_autograd(q, k, v, i_pre, f_pre, L, state, eps=1e-6, forget_gate="sigmoid"):
    """The chunkwise form written with plain differentiable torch ops, so that autograd derives its backward
    pass: the reference for the hand-written one of ``mlstm_chunkwise``. Same math (eq. 15-21 per chunk with the
    normalizer as an extra column of C), no tricks. Returns (h, (C, n, m))."""
    from xlstm_edu.nn.gating import log_forget_gate, normalizer_bound

    C, n, m = state
    DK, DV = q.shape[-1], v.shape[-1]
    log_f = log_forget_gate(f_pre, forget_gate)
    Ca = torch.cat([C, n[..., None]], dim=-1)
    hs = []
    for s0 in range(0, q.shape[-2], L):
        qc, kc, ic, lf = q[..., s0:s0 + L, :], k[..., s0:s0 + L, :], i_pre[..., s0:s0 + L], log_f[..., s0:s0 + L]
        Lc = qc.shape[-2]
        Va = torch.cat([v[..., s0:s0 + L, :], torch.ones_like(v[..., s0:s0 + L, :1])], dim=-1)
        b = torch.cumsum(lf, dim=-1)
        w = ic - b
        m_t = torch.maximum(b + m[..., None], b + torch.cummax(w, dim=-1).values)  # the recurrent m_t
        u = b - m_t - 0.5 * math.log(DK)
        causal = torch.ones(Lc, Lc, dtype=torch.bool).tril()
        D = torch.exp(torch.where(causal, u[..., :, None] + w[..., None, :], -math.inf))
        num = (qc * torch.exp(u + m[..., None])[..., None]) @ Ca + ((qc @ kc.transpose(-2, -1)) * D) @ Va
        den = torch.maximum(num[..., DV].abs(), normalizer_bound(m_t))
        hs.append(num[..., :DV] / (den[..., None] + eps))
        # the state at the chunk end
        g = b[..., -1]
        a = g[..., None] - b + ic
        m_next = torch.maximum(g + m, a.amax(dim=-1))
        Ca = (torch.exp(g + m - m_next)[..., None, None] * Ca
              + (kc * torch.exp(a - m_next[..., None])[..., None]).transpose(-2, -1) @ Va)
        m = m_next
    return torch.cat(hs, dim=-2), (Ca[..., :DV], Ca[..., DV], m)


def _all_grads(fn, inputs, seed=5):
    """Gradients of a loss on h and on the returned state (C, n, m), for every input (the state's too)."""
    xs = [x.clone().requires_grad_(True) for x in inputs]
    h, (C, n, m) = fn(*xs)
    g = torch.Generator().manual_seed(seed)
    loss = sum((t * torch.randn(t.shape, generator=g, dtype=t.dtype)).sum() for t in (h, C, n, m))
    return (h, C, n, m), torch.autograd.grad(loss, xs)


@pytest.mark.parametrize("S,L", [(16, 4), (13, 4), (13, 64), (7, 1), (24, 8)])
@pytest.mark.parametrize("forget_gate", ["sigmoid", "exp"])
def test_chunkwise_backward_equals_autograd_through_the_same_math(S, L, forget_gate):
    """The hand-written backward of the chunkwise form is the exact gradient: equal (float64, 1e-10) to autograd
    through the same computation written with plain ops, for a loss on h and on the returned state, including
    the gradients of the initial state (C, n, m) and through the stabilizers."""
    q, k, v, i, f = mlstm_inputs(S=S, seed=S + L)
    if forget_gate == "exp":
        f = -f.abs()
    st = mlstm_state()
    ins = (q, k, v, i, f, *st)
    ours = _all_grads(lambda *a: mlstm_chunkwise(*a[:5], chunk_size=L, state=a[5:], forget_gate=forget_gate), ins)
    ref = _all_grads(lambda *a: _chunkwise_autograd(*a[:5], L, a[5:], forget_gate=forget_gate), ins)
    for a, b in zip(ours[0], ref[0]):
        assert rel(a, b) < TOL
    for name, a, b in zip(("q", "k", "v", "i_pre", "f_pre", "C0", "n0", "m0"), ours[1], ref[1]):
        assert rel(a, b) < TOL, name


@pytest.mark.parametrize("dtype", [torch.float32, F64], ids=["float32", "float64"])
def test_chunkwise_with_weights_below_the_float_range_equals_autograd(dtype):
    """Forget gates far closed (log f ≈ -20 per step in float32, -100 in float64): most decay weights inside a
    chunk are far below the smallest normal float, where the kernel raises them to it (exp of subnormal results is
    slow). The results and gradients still equal autograd through the plain formula, to round-off. (Not the
    gradient of f̃: at f̃ = -100 it is a sum of large terms that cancel to 1e-9 of their size, so two correct
    float computations of it differ in their last digits, with or without the raised weights.)"""
    q, k, v, i, _ = mlstm_inputs(S=24, dtype=dtype)
    f = torch.full_like(i, -20.0 if dtype == torch.float32 else -100.0)
    st = tuple(t.to(dtype) for t in mlstm_state())
    ins = (q, k, v, i, f, *st)
    ours = _all_grads(lambda *a: mlstm_chunkwise(*a[:5], chunk_size=12, state=a[5:]), ins)
    ref = _all_grads(lambda *a: _chunkwise_autograd(*a[:5], 12, a[5:]), ins)
    tol = TOL if dtype == F64 else 1e-5
    for name, a, b in zip(("h", "C", "n", "m", "q", "k", "v", "i_pre", "f_pre", "C0", "n0", "m0"),
                          ours[0] + ours[1], ref[0] + ref[1]):
        if name != "f_pre":
            assert rel(a, b) < tol, name


def test_chunkwise_backward_splits_ties_like_autograd():
    """Exponential forget gates at f̃ = 0 and input gates at 0: every maximum in the stabilizers is a tie (the
    row maximum, the cumulative maximum, the chunk-border maximum). Torch splits a tie's gradient in halves
    (``maximum``), evenly (``amax``) or gives it to the returned index (``cummax``); the hand-written backward
    follows the same rules, so the gradients still equal autograd's."""
    q, k, v, _, _ = mlstm_inputs(S=12)
    zeros = torch.zeros(q.shape[:-1], dtype=F64)
    st = (torch.zeros(2, 3, 4, 5, dtype=F64), torch.zeros(2, 3, 4, dtype=F64), torch.zeros(2, 3, dtype=F64))
    ins = (q, k, v, zeros, zeros, *st)
    ours = _all_grads(lambda *a: mlstm_chunkwise(*a[:5], chunk_size=4, state=a[5:], forget_gate="exp"), ins)
    ref = _all_grads(lambda *a: _chunkwise_autograd(*a[:5], 4, a[5:], forget_gate="exp"), ins)
    for name, a, b in zip(("q", "k", "v", "i_pre", "f_pre", "C0", "n0", "m0"), ours[1], ref[1]):
        assert rel(a, b) < TOL, name


def test_chunkwise_in_tiles_equals_one_pass(monkeypatch):
    """The kernel walks the batch in tiles (to keep its (L, L) intermediates in cache): cut into tiles of one
    batch row, the results and gradients equal those of one tile."""
    import xlstm_edu.nn.mlstm as mlstm_module

    q, k, v, i, f = mlstm_inputs(lead=(5, 3), S=12)
    st = mlstm_state(lead=(5, 3))
    fn = lambda *a: mlstm_chunkwise(*a[:5], chunk_size=4, state=a[5:])  # noqa: E731
    one = _all_grads(fn, (q, k, v, i, f, *st))
    monkeypatch.setattr(mlstm_module, "_TILE_ENTRIES", 1)
    assert len(mlstm_module._tiles((5, 3), 12, 4)) == 5
    tiled = _all_grads(fn, (q, k, v, i, f, *st))
    for a, b in zip(one[0] + one[1], tiled[0] + tiled[1]):
        assert rel(a, b) < 1e-13


def test_chunkwise_under_autocast_computes_in_the_inputs_dtype():
    """Under bf16 autocast (the trainer's setting on a GPU) the chunkwise kernel's products stay in float32, like
    the rest of the cell: the same h and gradients as without autocast."""
    q, k, v, i, f = mlstm_inputs(S=20, dtype=torch.float32)
    w = torch.randn(*q.shape[:-1], v.shape[-1])
    plain = _grads(lambda *a: mlstm_chunkwise(*a, chunk_size=8), (q, k, v, i, f), w)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        auto = _grads(lambda *a: mlstm_chunkwise(*a, chunk_size=8), (q, k, v, i, f), w)
    for a, b in zip(auto, plain):
        assert a.dtype == torch.float32 and rel(a, b) < 1e-6


def test_chunkwise_keeps_the_inputs_memory_layout():
    """Head-major views of token-major tensors (how the blocks call it): h comes back laid out like v and the
    gradients of q, k, v and ĩ like their inputs (no transposed copies), with the values of contiguous inputs."""
    g = torch.Generator().manual_seed(0)
    B, S, NH, D = 2, 10, 3, 4
    tok = [torch.randn(B, S, NH, D, generator=g, dtype=F64) for _ in range(3)]
    gates = [torch.randn(B, S, NH, generator=g, dtype=F64) for _ in range(2)]
    views = [t.transpose(1, 2).requires_grad_(True) for t in (*tok, *gates)]
    h, _ = mlstm_chunkwise(*views, chunk_size=4)
    assert h.stride() == views[2].stride()
    w = torch.randn(h.shape, generator=g, dtype=F64)
    grads = torch.autograd.grad((h * w).sum(), views)
    for x, gx in zip(views[:4], grads):
        assert gx.stride() == x.stride()
    cont = [x.detach().contiguous().requires_grad_(True) for x in views]
    h2, _ = mlstm_chunkwise(*cont, chunk_size=4)
    assert rel(h, h2) < 1e-14
    for a, b in zip(grads, torch.autograd.grad((h2 * w).sum(), cont)):
        assert rel(a, b) < 1e-14


def test_block_entry_points_equal_the_public_functions_and_check_a_given_state():
    """The mLSTM block calls the cells without their input checks (it builds the inputs itself); the results are
    the public functions', and a state given from outside is still checked, with the public functions' messages."""
    from xlstm_edu.nn.mlstm import block_chunkwise, block_step

    q, k, v, i, f = mlstm_inputs(S=9)
    st = mlstm_state()
    h, (C, n, m) = block_chunkwise(q, k, v, i, f, 4, st, "sigmoid")
    h2, (C2, n2, m2) = mlstm_chunkwise(q, k, v, i, f, chunk_size=4, state=st)
    for a, b in [(h, h2), (C, C2), (n, n2), (m, m2)]:
        assert torch.equal(a, b)
    h, (C, n, m) = block_step(q[..., 0, :], k[..., 0, :], v[..., 0, :], i[..., 0], f[..., 0], st, "sigmoid")
    h2, (C2, n2, m2) = mlstm_step(q[..., 0, :], k[..., 0, :], v[..., 0, :], i[..., 0], f[..., 0], state=st)
    for a, b in [(h, h2), (C, C2), (n, n2), (m, m2)]:
        assert torch.equal(a, b)
    bad = (st[0][:1], st[1], st[2])  # batch 1 for a batch of 2
    for public, block in [(lambda s: mlstm_chunkwise(q, k, v, i, f, chunk_size=4, state=s),
                           lambda s: block_chunkwise(q, k, v, i, f, 4, s, "sigmoid")),
                          (lambda s: mlstm_step(q[..., 0, :], k[..., 0, :], v[..., 0, :], i[..., 0], f[..., 0], s),
                           lambda s: block_step(q[..., 0, :], k[..., 0, :], v[..., 0, :], i[..., 0], f[..., 0], s,
                                                "sigmoid"))]:
        for s in (bad, st[:2], (st[0], st[1], "m")):
            with pytest.raises(ValueError) as want:
                public(s)
            with pytest.raises(ValueError, match=re.escape(str(want.value))):
                block(s)


# ============================================================================================= mLSTM oracles
@pytest.mark.oracle
def test_mlstm_equals_official_autograd_kernels_forward_and_grad():
    mk = pytest.importorskip("mlstm_kernels.torch")
    q, k, v, i, f = mlstm_inputs(lead=(2, 2), S=32, DK=8, DV=8, seed=3)
    w = torch.randn(2, 2, 32, 8, dtype=F64)
    # parallel
    off = mk.get_mlstm_kernel("parallel--native_autograd")
    assert rel(mlstm_parallel(q, k, v, i, f), off(q, k, v, i, f)) < TOL
    for a, b in zip(_grads(mlstm_parallel, (q, k, v, i, f), w), _grads(off, (q, k, v, i, f), w)):
        assert rel(a, b) < TOL
    # chunkwise, with an initial state and the returned last state
    C0, n0, m0 = mlstm_state(lead=(2, 2), DK=8, DV=8)
    offc = mk.get_mlstm_kernel("chunkwise--native_autograd")
    h_o, (C_o, n_o, m_o) = offc(q, k, v, i, f, c_initial=C0, n_initial=n0, m_initial=m0[..., None],
                                return_last_states=True, chunk_size=8)
    h, (C, n, m) = mlstm_chunkwise(q, k, v, i, f, chunk_size=8, state=(C0, n0, m0))
    for a, b in [(h, h_o), (C, C_o), (n, n_o), (m, m_o[..., 0])]:
        assert rel(a, b) < TOL
    ours = _grads(lambda *a: mlstm_chunkwise(*a[:5], chunk_size=8, state=(a[5], a[6], a[7])),
                  (q, k, v, i, f, C0, n0, m0), w)
    theirs = _grads(lambda *a: offc(*a[:5], c_initial=a[5], n_initial=a[6], m_initial=a[7][..., None],
                                    chunk_size=8), (q, k, v, i, f, C0, n0, m0), w)
    for a, b in zip(ours, theirs):
        assert rel(a, b) < TOL


@pytest.mark.oracle
def test_mlstm_step_equals_official_step():
    pytest.importorskip("mlstm_kernels")
    from mlstm_kernels.torch.recurrent.native_step import mlstm_recurrent_step__native_fw

    q, k, v, i, f = mlstm_inputs(lead=(2, 3), S=1, DK=4, DV=4)
    C0, n0, m0 = mlstm_state(lead=(2, 3), DK=4, DV=4)
    h_o, (C_o, n_o, m_o) = mlstm_recurrent_step__native_fw(C0, n0, m0[..., None], q[..., 0, :], k[..., 0, :],
                                                           v[..., 0, :], i, f, dtype_state=F64)
    h, (C, n, m) = mlstm_step(q[..., 0, :], k[..., 0, :], v[..., 0, :], i[..., 0], f[..., 0], state=(C0, n0, m0))
    for a, b in [(h, h_o), (C, C_o), (n, n_o), (m, m_o[..., 0])]:
        assert rel(a, b) < TOL


# ======================================================================================= mLSTM robustness
def _step_loop(q, k, v, i, f):
    """mlstm_step called once per time step (the generation path), outputs stacked."""
    state, hs = None, []
    for t in range(q.shape[-2]):
        h, state = mlstm_step(q[..., t, :], k[..., t, :], v[..., t, :], i[..., t], f[..., t], state=state)
        hs.append(h)
    return torch.stack(hs, dim=-2)


MLSTM_FORMS = {
    "parallel": lambda *a: mlstm_parallel(*a),
    "chunkwise L=8": lambda *a: mlstm_chunkwise(*a, chunk_size=8)[0],
    "chunkwise L=1": lambda *a: mlstm_chunkwise(*a, chunk_size=1)[0],
    "chunkwise L=64": lambda *a: mlstm_chunkwise(*a, chunk_size=64)[0],
    "recurrent": lambda *a: mlstm_recurrent(*a)[0],
    "step": _step_loop,
}


@pytest.mark.parametrize("form", sorted(MLSTM_FORMS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("gates", ["uniform", "closed", "pattern"])
def test_mlstm_grads_finite_at_extreme_gates(form, dtype, gates):
    """Gate pre-activations in [-1000, 1000]. Once m_t < -log(max float) (-88.7 in float32, -709.8 in float64),
    exp(-m_t) overflowed to inf: h_t = 0 but the backward computed 0·inf = NaN. "closed": every gate at -1000,
    so m_t = -1000 at every step."""
    q, k, v, i, f = mlstm_inputs(S=20, dtype=dtype)
    if gates == "uniform":
        g = torch.Generator().manual_seed(7)
        i, f = (2000 * torch.rand(*i.shape, generator=g, dtype=dtype) - 1000 for _ in range(2))
    elif gates == "closed":
        i, f = torch.full_like(i, -1000.0), torch.full_like(f, -1000.0)
    else:
        i = torch.tensor([500.0, -500.0, 88.0, 100.0, -100.0] * 4, dtype=dtype).expand_as(i).clone()
        f = torch.tensor([-500.0, 500.0, 30.0, -30.0] * 5, dtype=dtype).expand_as(f).clone()
    xs = [x.clone().requires_grad_(True) for x in (q, k, v, i, f)]
    h = MLSTM_FORMS[form](*xs)
    assert h.dtype == dtype and torch.isfinite(h).all()
    h.square().sum().backward()
    for name, x in zip(("q", "k", "v", "i_pre", "f_pre"), xs):
        assert torch.isfinite(x.grad).all(), name


@pytest.mark.parametrize("form", ["parallel", "chunkwise", "recurrent"])
def test_mlstm_is_causal(form):
    q, k, v, i, f = mlstm_inputs(S=12)
    fn = {"parallel": lambda *a: mlstm_parallel(*a), "chunkwise": lambda *a: mlstm_chunkwise(*a, chunk_size=5)[0],
          "recurrent": lambda *a: mlstm_recurrent(*a)[0]}[form]
    h = fn(q, k, v, i, f)
    t0 = 7
    q2, k2, v2, i2, f2 = (x.clone() for x in (q, k, v, i, f))
    for x in (q2, k2, v2):
        x[..., t0:, :] += 5.0
    i2[..., t0:] += 3.0
    f2[..., t0:] -= 3.0
    h2 = fn(q2, k2, v2, i2, f2)
    assert torch.equal(h[..., :t0, :], h2[..., :t0, :])  # the past does not see the future
    assert not torch.allclose(h[..., t0:, :], h2[..., t0:, :])


# bad input: tests/test_np_rules.py checks that every rule of the numpy engine holds here, with the same message


# ============================================================================================== sLSTM
def slstm_inputs(lead=(3,), S=9, NH=2, DH=3, seed=0, scale=2.0, dtype=F64):
    g = torch.Generator().manual_seed(seed)
    H = NH * DH
    wx = scale * torch.randn(*lead, S, 4, H, generator=g, dtype=dtype)
    R = 0.5 * torch.randn(4, NH, DH, DH, generator=g, dtype=dtype)
    b = torch.randn(4, H, generator=g, dtype=dtype)
    return wx, R, b


def slstm_state(lead=(3,), H=6, seed=1):
    g = torch.Generator().manual_seed(seed)
    h, c, m = (torch.randn(*lead, H, generator=g, dtype=F64) for _ in range(3))
    n = torch.rand(*lead, H, generator=g, dtype=F64) + 0.5
    return h, c, n, m


@pytest.mark.parametrize("forget_gate", ["sigmoid", "exp"])
@pytest.mark.parametrize("with_state", [False, True])
def test_slstm_equals_numpy_forward_and_backward(forget_gate, with_state):
    wx, R, b = slstm_inputs(lead=(2, 3))
    st = slstm_state(lead=(2, 3)) if with_state else None
    h, last = slstm_recurrent(wx, R, b, state=st, forget_gate=forget_gate)
    h_np, last_np = xnp.slstm_recurrent(np_(wx), np_(R), np_(b), state=None if st is None else tuple(map(np_, st)),
                                        forget_gate=forget_gate)
    assert rel(h, h_np) < TOL
    for a, c in zip(last, last_np):
        assert rel(a, c) < TOL
    # gradients, including those arriving at the returned last state (dh_last, dc_last, dn_last)
    ins = [wx, R, b] + (list(st) if st else [])
    xs = [x.clone().requires_grad_(True) for x in ins]
    h, (hl, cl, nl, _) = slstm_recurrent(xs[0], xs[1], xs[2], state=tuple(xs[3:]) if st else None,
                                         forget_gate=forget_gate)
    w, wh, wc, wn = torch.randn_like(h), torch.randn_like(hl), torch.randn_like(cl), torch.randn_like(nl)
    loss = (h * w).sum() + (hl * wh).sum() + (cl * wc).sum() + (nl * wn).sum()
    g = torch.autograd.grad(loss, xs)
    g_np = xnp.slstm_recurrent_backward(np_(w), np_(wx), np_(R), np_(b),
                                        state=None if st is None else tuple(map(np_, st)), forget_gate=forget_gate,
                                        d_last_state=(np_(wh), np_(wc), np_(wn)))
    names = ["wx", "R", "b"] + (["h0", "c0", "n0", "m0"] if st else [])
    for name, gt in zip(names, g):
        assert rel(gt, g_np[name]) < TOL, name


def test_slstm_fused_equals_step_loop_under_autograd():
    wx, R, b = slstm_inputs(S=15)
    st = slstm_state()
    xs = [x.clone().requires_grad_(True) for x in (wx, R, b, *st)]
    h, _ = slstm_recurrent(xs[0], xs[1], xs[2], state=tuple(xs[3:]))
    s, hs = tuple(xs[3:]), []
    for t in range(wx.shape[-3]):
        ht, s = slstm_step(xs[0][..., t, :, :], xs[1], xs[2], state=s)
        hs.append(ht)
    h_loop = torch.stack(hs, dim=-2)
    assert rel(h, h_loop) < 1e-13
    w = torch.randn_like(h)
    g1 = torch.autograd.grad((h * w).sum(), xs)
    g2 = torch.autograd.grad((h_loop * w).sum(), xs)
    for a, c in zip(g1, g2):
        assert rel(a, c) < 1e-12


def test_slstm_block_entry_points_equal_the_public_functions_and_check_a_given_state():
    """The sLSTM block calls the cell without its input checks; the results are the public functions', and a state
    given from outside is still checked, with the public functions' messages."""
    from xlstm_edu.nn.slstm import block_recurrent, block_step

    wx, R, b = slstm_inputs()
    st = slstm_state()
    for state in (None, st):
        h, last = block_recurrent(wx, R, b, state, "sigmoid")
        h2, last2 = slstm_recurrent(wx, R, b, state=state)
        for x, y in zip((h, *last), (h2, *last2)):
            assert torch.equal(x, y)
    h, last = block_step(wx[..., 0, :, :], R, b, st, "sigmoid")
    h2, last2 = slstm_step(wx[..., 0, :, :], R, b, state=st)
    for x, y in zip((h, *last), (h2, *last2)):
        assert torch.equal(x, y)
    bad_shape = (st[0][:1], *st[1:])
    impossible = (st[0], st[1], -st[2], st[3])  # n < 0
    for public, block, states in [
            (lambda s: slstm_recurrent(wx, R, b, state=s), lambda s: block_recurrent(wx, R, b, s, "sigmoid"),
             (bad_shape, st[:3], impossible)),
            (lambda s: slstm_step(wx[..., 0, :, :], R, b, state=s),
             lambda s: block_step(wx[..., 0, :, :], R, b, s, "sigmoid"), (bad_shape, st[:3]))]:
        for s_ in states:
            with pytest.raises(ValueError) as want:
                public(s_)
            with pytest.raises(ValueError, match=re.escape(str(want.value))):
                block(s_)


def test_slstm_continues_exactly_from_its_last_state():
    wx, R, b = slstm_inputs(S=10)
    h, last = slstm_recurrent(wx, R, b)
    h1, mid = slstm_recurrent(wx[..., :4, :, :], R, b)
    h2, last2 = slstm_recurrent(wx[..., 4:, :, :], R, b, state=mid)
    assert rel(torch.cat([h1, h2], dim=-2), h) < 1e-13
    for a, c in zip(last, last2):
        assert rel(a, c) < 1e-13


@pytest.mark.oracle
def test_slstm_equals_official_vanilla_cell_forward_and_grad():
    pytest.importorskip("xlstm")
    from xlstm.blocks.slstm.cell import sLSTMCell, sLSTMCellConfig

    B, S, NH, DH = 2, 7, 2, 4
    H = NH * DH
    cell = sLSTMCell(sLSTMCellConfig(hidden_size=H, num_heads=NH, backend="vanilla"))
    cell = cell.double()
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        cell._recurrent_kernel_.copy_(cell._recurrent_kernel_ext2int(
            0.5 * torch.randn(NH, DH, 4, DH, generator=g, dtype=F64)))
        cell._bias_.copy_(cell._bias_ext2int(torch.randn(NH, 4, DH, generator=g, dtype=F64)))
    x = 2.0 * torch.randn(B, S, 4 * H, generator=g, dtype=F64, requires_grad=True)
    y, state = cell(x)  # y (B, NH, S, DH), state (4, B, H): (h, c, n, m)
    y = y.permute(0, 2, 1, 3).reshape(B, S, H)
    # official layouts -> ours: recurrent_kernel (NH, DH_in, 4, DH_out) -> R (4, NH, DH_in, DH_out)
    R = cell.recurrent_kernel.clone().permute(2, 0, 1, 3).contiguous().requires_grad_(True)
    b = cell.bias.clone().permute(1, 0, 2).reshape(4, H).contiguous().requires_grad_(True)
    wx = x.view(B, S, 4, H)
    h, last = slstm_recurrent(wx, R, b)
    assert rel(h, y) < TOL
    for a, c in zip(last, state):
        assert rel(a, c) < TOL
    w = torch.randn(B, S, H, generator=g, dtype=F64)
    gx_off, gR_off, gb_off = torch.autograd.grad((y * w).sum(), [x, cell._recurrent_kernel_, cell._bias_])
    gx, gR, gb = torch.autograd.grad((h * w).sum(), [x, R, b])
    assert rel(gx, gx_off) < TOL
    assert rel(gR, cell._recurrent_kernel_int2ext(gR_off).permute(2, 0, 1, 3)) < TOL
    assert rel(gb, cell._bias_int2ext(gb_off).permute(1, 0, 2).reshape(4, H)) < TOL


def _slstm_step_loop(wx, R, b, forget_gate="sigmoid"):
    state, hs = None, []
    for t in range(wx.shape[-3]):
        h, state = slstm_step(wx[..., t, :, :], R, b, state=state, forget_gate=forget_gate)
        hs.append(h)
    return torch.stack(hs, dim=-2)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_slstm_grads_finite_at_extreme_gates(dtype):
    """The fused sequence and the step loop, with every gate pre-activation in [-1000, 1000] (and a pattern of
    extreme ones): finite outputs and gradients. (The sLSTM has no overflowing bound; this guards that.)"""
    wx, R, b = slstm_inputs(S=12, dtype=dtype)
    wx[..., 0, :] = torch.tensor([500.0, -500.0, 90.0, -90.0, 1000.0, 0.0]).repeat(2)[:6]  # ĩ extreme
    wx[..., 1, :] = torch.tensor([-500.0, 500.0, 40.0, -40.0, 0.0, 1e4])[:6]  # f̃ extreme
    g = torch.Generator().manual_seed(8)
    wx_uniform = 2000 * torch.rand(*wx.shape, generator=g, dtype=dtype) - 1000  # every gate in [-1000, 1000]
    for fg in ("sigmoid", "exp"):
        for w in (wx, wx_uniform):
            for run in (lambda *a: slstm_recurrent(*a, forget_gate=fg)[0],
                        lambda *a: _slstm_step_loop(*a, forget_gate=fg)):
                xs = [x.clone().requires_grad_(True) for x in (w, R, b)]
                h = run(*xs)
                assert torch.isfinite(h).all(), fg
                h.square().sum().backward()
                for x in xs:
                    assert torch.isfinite(x.grad).all(), fg


def test_slstm_is_causal():
    wx, R, b = slstm_inputs(S=10)
    h, _ = slstm_recurrent(wx, R, b)
    wx2 = wx.clone()
    wx2[..., 6:, :, :] += 3.0
    h2, _ = slstm_recurrent(wx2, R, b)
    assert torch.equal(h[..., :6, :], h2[..., :6, :])
    assert not torch.allclose(h[..., 6:, :], h2[..., 6:, :])


# ============================================================================================ precision
HALF = [torch.float16, torch.bfloat16]


def _rel64(a, b):
    a, b = a.detach().double(), b.detach().double()
    return float((a - b).abs().max() / b.abs().max())


@pytest.mark.parametrize("dtype", HALF, ids=["float16", "bfloat16"])
@pytest.mark.parametrize("form", sorted(MLSTM_FORMS))
def test_mlstm_half_inputs_computed_in_float32(dtype, form):
    """float16/bfloat16 inputs: the gate arithmetic (exp, log, cumulative sums, the stabilizer) runs in float32,
    so the result is the float64 result on the same inputs, rounded once to the inputs' dtype (half precision
    arithmetic gave errors of 18-75% here). Gates in [-5, 5]; |h| is compared to its maximum."""
    g = torch.Generator().manual_seed(11)
    q, k, v = (torch.randn(2, 3, 24, 8, generator=g).to(dtype) for _ in range(3))
    i, f = ((10 * torch.rand(2, 3, 24, generator=g) - 5).to(dtype) for _ in range(2))
    h = MLSTM_FORMS[form](q, k, v, i, f)
    h64 = MLSTM_FORMS[form](*(x.double() for x in (q, k, v, i, f)))
    assert h.dtype == dtype
    assert _rel64(h, h64) < (4e-3 if dtype == torch.bfloat16 else 1e-3)
    # and the gradients, through the same float32 computation
    xs = [x.clone().requires_grad_(True) for x in (q, k, v, i, f)]
    xs64 = [x.double().requires_grad_(True) for x in (q, k, v, i, f)]
    w = torch.randn(h.shape, generator=g)
    (MLSTM_FORMS[form](*xs).float() * w).sum().backward()
    (MLSTM_FORMS[form](*xs64) * w.double()).sum().backward()
    for name, x, x64 in zip(("q", "k", "v", "i_pre", "f_pre"), xs, xs64):
        assert x.grad.dtype == dtype
        assert _rel64(x.grad, x64.grad) < (2e-2 if dtype == torch.bfloat16 else 4e-3), name


@pytest.mark.parametrize("dtype", HALF, ids=["float16", "bfloat16"])
def test_mlstm_parallel_half_finite_at_large_gates(dtype):
    """float16 overflows at 65504: exp and the cumulative sums of large gates did, giving inf/NaN."""
    q, k, v, i, f = (x.to(dtype) for x in mlstm_inputs(S=16, gate_scale=30.0, dtype=torch.float32))
    for h in (mlstm_parallel(q, k, v, i, f), mlstm_chunkwise(q, k, v, i, f, chunk_size=4)[0]):
        assert h.dtype == dtype and torch.isfinite(h).all()
        assert _rel64(h, mlstm_parallel(*(x.double() for x in (q, k, v, i, f)))) < 1e-2


@pytest.mark.parametrize("dtype", HALF, ids=["float16", "bfloat16"])
def test_half_inputs_state_is_carried_in_float32(dtype):
    """h comes back in the inputs' dtype, the state in float32 (the compute dtype); a float32 state handed back
    with half inputs keeps h in half precision."""
    q, k, v, i, f = (x.to(dtype) for x in mlstm_inputs(S=6, dtype=torch.float32))
    for h, state in (mlstm_recurrent(q, k, v, i, f), mlstm_chunkwise(q, k, v, i, f, chunk_size=4),
                     mlstm_step(q[..., 0, :], k[..., 0, :], v[..., 0, :], i[..., 0], f[..., 0])):
        assert h.dtype == dtype and all(s.dtype == torch.float32 for s in state)
    h, state = mlstm_step(q[..., 1, :], k[..., 1, :], v[..., 1, :], i[..., 1], f[..., 1], state=state)
    assert h.dtype == dtype and all(s.dtype == torch.float32 for s in state)
    wx, R, b = (x.to(dtype) for x in slstm_inputs(S=5, dtype=torch.float32))
    h, state = slstm_recurrent(wx, R, b)
    assert h.dtype == dtype and all(s.dtype == torch.float32 for s in state)
    h, state = slstm_step(wx[..., 0, :, :], R, b, state=state)
    assert h.dtype == dtype and all(s.dtype == torch.float32 for s in state)


@pytest.mark.parametrize("dtype", HALF, ids=["float16", "bfloat16"])
@pytest.mark.parametrize("run", ["recurrent", "step"])
def test_slstm_half_inputs_computed_in_float32(dtype, run):
    wx, R, b = (x.to(dtype) for x in slstm_inputs(S=16, scale=3.0, dtype=torch.float32))
    fn = (lambda *a: slstm_recurrent(*a)[0]) if run == "recurrent" else _slstm_step_loop
    h = fn(wx, R, b)
    h64 = fn(wx.double(), R.double(), b.double())
    assert h.dtype == dtype
    assert _rel64(h, h64) < (4e-3 if dtype == torch.bfloat16 else 1e-3)


def test_mixed_dtypes_are_promoted_like_numpy():
    """One rule in both engines: inputs of different float dtypes are promoted (numpy's and torch's rule), not
    refused; the result has the common dtype."""
    q, k, v, i, f = mlstm_inputs(S=6)
    h = mlstm_parallel(q.float(), k, v, i, f)
    h_np = xnp.mlstm_parallel(np_(q).astype(np.float32), *map(np_, (k, v, i, f)))
    assert h.dtype == torch.float64 and h_np.dtype == np.float64
    assert rel(h, h_np) < 1e-12


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cells_run_on_cuda_and_match_cpu():
    q, k, v, i, f = mlstm_inputs(S=20)
    h = mlstm_chunkwise(q, k, v, i, f, chunk_size=8)[0]
    h_cuda = mlstm_chunkwise(*(x.cuda() for x in (q, k, v, i, f)), chunk_size=8)[0]
    assert h_cuda.device.type == "cuda" and rel(h_cuda.cpu(), h) < 1e-10
    wx, R, b = slstm_inputs()
    hs = slstm_recurrent(wx, R, b)[0]
    hs_cuda = slstm_recurrent(wx.cuda(), R.cuda(), b.cuda())[0]
    assert rel(hs_cuda.cpu(), hs) < 1e-10
    assert not math.isnan(float(hs_cuda.sum()))
