"""The numpy mLSTM (issue 2): recurrent, parallel and chunkwise forms agree with each other, with the official
``mlstm_kernels`` code, and their hand-written gradients with numerical and torch-autograd gradients.

Relative errors below are normwise: max|a - b| / max|b|.
"""

import numpy as np
import pytest

from xlstm_edu.np import (
    mlstm_chunkwise,
    mlstm_parallel,
    mlstm_parallel_backward,
    mlstm_parallel_parts,
    mlstm_recurrent,
    mlstm_recurrent_backward,
    mlstm_recurrent_unstabilized,
    mlstm_step,
)
from xlstm_edu.np.gradcheck import numerical_gradient

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


def rel(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def make_inputs(seed=0, lead=(2, 3), S=23, DK=5, DV=4, dtype=np.float64, i_loc=0.0, i_scale=3.0, f_loc=1.5):
    rng = np.random.default_rng(seed)
    q = rng.normal(size=lead + (S, DK))
    k = rng.normal(size=lead + (S, DK))
    v = rng.normal(size=lead + (S, DV))
    i_pre = i_loc + i_scale * rng.normal(size=lead + (S,))
    f_pre = f_loc + 2.0 * rng.normal(size=lead + (S,))
    return tuple(a.astype(dtype) for a in (q, k, v, i_pre, f_pre))


def time_slice(args, sl):
    """(q, k, v, i_pre, f_pre) restricted to the time steps ``sl`` (time is axis -2 of q, k, v, -1 of gates)."""
    q, k, v, i, f = args
    return tuple(a[..., sl, :] for a in (q, k, v)) + tuple(a[..., sl] for a in (i, f))


def make_state(seed=1, lead=(2, 3), DK=5, DV=4, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=lead + (DK, DV)).astype(dtype), rng.normal(size=lead + (DK,)).astype(dtype),
            rng.normal(size=lead).astype(dtype))


# ------------------------------------------------------------------------------------------------ forms agree

@pytest.mark.parametrize("chunk_size", [1, 2, 5, 8, 23, 64])  # 5, 8: S = 23 not a multiple; 64 > S
@pytest.mark.parametrize("with_state", [False, True])
@pytest.mark.parametrize("forget_gate", ["sigmoid", "exp"])
def test_chunkwise_equals_recurrent(chunk_size, with_state, forget_gate):
    args = make_inputs(f_loc=1.5 if forget_gate == "sigmoid" else -0.3)
    state = make_state() if with_state else None
    h_r, (C_r, n_r, m_r) = mlstm_recurrent(*args, state=state, forget_gate=forget_gate)
    h_c, (C_c, n_c, m_c) = mlstm_chunkwise(*args, chunk_size=chunk_size, state=state, forget_gate=forget_gate)
    assert rel(h_c, h_r) <= 1e-10
    assert rel(C_c, C_r) <= 1e-10 and rel(n_c, n_r) <= 1e-10
    np.testing.assert_allclose(m_c, m_r, rtol=0, atol=1e-10)  # the same stabilizer, step by step


@settings(max_examples=20, deadline=None)
@given(lead=st.lists(st.integers(1, 3), max_size=2).map(tuple), S=st.integers(1, 40),
       chunk=st.integers(1, 50), DK=st.integers(1, 6), DV=st.integers(1, 6), seed=st.integers(0, 2**16))
def test_chunkwise_equals_recurrent_any_shape(lead, S, chunk, DK, DV, seed):
    args = make_inputs(seed, lead, S, DK, DV)
    h_r, state_r = mlstm_recurrent(*args)
    h_c, state_c = mlstm_chunkwise(*args, chunk_size=chunk)
    assert h_c.shape == lead + (S, DV)
    assert rel(h_c, h_r) <= 1e-10
    for a, b in zip(state_c, state_r):
        assert a.shape == b.shape and np.allclose(a, b, rtol=1e-10, atol=1e-12)


def test_parallel_equals_recurrent_with_eps_zero():
    args = make_inputs(i_loc=4.0)
    h_r, _ = mlstm_recurrent(*args, eps=0.0)
    assert rel(mlstm_parallel(*args, eps=0.0), h_r) <= 1e-10


def test_parallel_vs_recurrent_eps_effect_is_exactly_the_m0_difference():
    """With eps > 0 the forms differ because the parallel m_t is the row maximum (m_0 = -inf) while the
    recurrent one starts at m_0 = 0: m_rec = max(m_par, b_t). Since h = q̂ᵀĈ / (max(|q̂ᵀn̂|, 1) + eps·e^m)
    in unstabilized terms, h_rec = h_par (n + eps) / (n + eps·e^(m_rec - m_par)): predicted to round-off."""
    args = make_inputs(i_loc=-4.0, i_scale=2.0, f_loc=3.0)  # m_par < 0 <≈ b_t: here the m_0 choice matters
    eps = 1e-6
    parts = mlstm_parallel_parts(*args, eps=eps)
    h_r, _ = mlstm_recurrent(*args, eps=eps)
    assert rel(parts["h"], h_r) > 1e-9  # the effect is real ...
    m_rec = np.maximum(parts["m"], parts["b"])
    ratio = (parts["n"] + eps) / (parts["n"] + eps * np.exp(m_rec - parts["m"]))
    assert rel(parts["h"] * ratio[..., None], h_r) <= 1e-10  # ... and fully explained


def test_parallel_parts_are_consistent():
    args = make_inputs(S=9)
    p = mlstm_parallel_parts(*args)
    assert rel(p["h"], mlstm_parallel(*args)) <= 1e-12
    S = 9
    assert np.all(np.isneginf(p["log_D"][..., np.triu_indices(S, 1)[0], np.triu_indices(S, 1)[1]]))
    np.testing.assert_allclose(p["m"], p["log_D"].max(axis=-1), rtol=1e-13, atol=1e-12)
    np.testing.assert_allclose(p["D_prime"].max(axis=-1), 1.0)  # the row maximum is stabilized to exp(0)
    np.testing.assert_allclose(p["S_tilde"], p["qk"] * p["D_prime"])


def test_step_by_step_equals_recurrent():
    q, k, v, i, f = make_inputs(S=7)
    h_r, state_r = mlstm_recurrent(q, k, v, i, f)
    state = None
    for t in range(7):
        h_t, state = mlstm_step(q[..., t, :], k[..., t, :], v[..., t, :], i[..., t], f[..., t], state=state)
        assert rel(h_t, h_r[..., t, :]) <= 1e-13
    for a, b in zip(state, state_r):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("lead", [(), (3,), (2, 2)])
def test_leading_dims_are_independent(lead):
    q, k, v, i, f = make_inputs(lead=lead, S=11)
    h = mlstm_chunkwise(q, k, v, i, f, chunk_size=4)[0]
    hp = mlstm_parallel(q, k, v, i, f)
    assert h.shape == hp.shape == lead + (11, 4)
    for idx in np.ndindex(*lead):
        one = mlstm_recurrent(q[idx], k[idx], v[idx], i[idx], f[idx])[0]
        assert rel(h[idx], one) <= 1e-12
        assert rel(hp[idx], mlstm_parallel(q[idx], k[idx], v[idx], i[idx], f[idx])) <= 1e-13


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(dtype):
    args = make_inputs(dtype=dtype, S=10)
    args64 = [a.astype(np.float64) for a in args]
    h64, hp64 = mlstm_recurrent(*args64)[0], mlstm_parallel(*args64)
    outs = [mlstm_recurrent(*args), mlstm_chunkwise(*args, chunk_size=4), mlstm_recurrent_unstabilized(*args)]
    for h, state in outs:
        assert h.dtype == dtype and all(s.dtype == dtype for s in state)
    assert mlstm_parallel(*args).dtype == dtype
    assert mlstm_step(*time_slice(args, 0))[0].dtype == dtype
    tol = 1e-5 if dtype == np.float32 else 1e-13
    assert rel(outs[1][0], h64) <= tol and rel(mlstm_parallel(*args), hp64) <= tol


# ------------------------------------------------------------------------------------------------ state hand-over

@pytest.mark.parametrize("split", [1, 10, 17])
def test_state_handover_recurrent_and_chunkwise(split):
    args = make_inputs(S=23)
    h_full, state_full = mlstm_recurrent(*args)
    first, second = time_slice(args, slice(None, split)), time_slice(args, slice(split, None))
    for run in (lambda *a, state=None: mlstm_recurrent(*a, state=state),
                lambda *a, state=None: mlstm_chunkwise(*a, chunk_size=4, state=state)):
        h1, s1 = run(*first)
        h2, s2 = run(*second, state=s1)
        assert rel(np.concatenate([h1, h2], axis=-2), h_full) <= 1e-10
        for a, b in zip(s2, state_full):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    # and across forms: recurrent first half, chunkwise second half
    h1, s1 = mlstm_recurrent(*first)
    h2, _ = mlstm_chunkwise(*second, chunk_size=3, state=s1)
    assert rel(np.concatenate([h1, h2], axis=-2), h_full) <= 1e-10


# ------------------------------------------------------------------------------------------------ stabilization

def test_stabilized_equals_unstabilized_where_finite():
    args = make_inputs(S=30, i_scale=2.0)
    h_s = mlstm_recurrent(*args, eps=0.0)[0]
    h_u, (C_u, n_u) = mlstm_recurrent_unstabilized(*args, eps=0.0)
    assert np.all(np.isfinite(h_u))
    assert rel(h_u, h_s) <= 1e-10
    _, (C_s, n_s, m_s) = mlstm_recurrent(*args, eps=0.0)
    # the stabilized state is the unstabilized one times exp(-m)
    assert rel(C_s * np.exp(m_s)[..., None, None], C_u) <= 1e-10
    assert rel(n_s * np.exp(m_s)[..., None], n_u) <= 1e-10
    # with eps > 0 they differ by the effective eps only: eps there, eps·exp(m_t) here
    assert rel(mlstm_recurrent_unstabilized(*args)[0], h_u) < 1e-4


@pytest.mark.parametrize("dtype,big", [(np.float32, 100.0), (np.float64, 800.0)])  # > log(max float)
def test_unstabilized_overflows_where_stabilized_does_not(dtype, big):
    q, k, v, i, f = make_inputs(S=20, dtype=dtype, i_scale=1.0)
    i = i.copy()
    i[..., 12] = big  # exp(ĩ) = inf: 88.7 is the float32 limit, 709.8 the float64 one
    with np.errstate(all="ignore"):
        h_u = mlstm_recurrent_unstabilized(q, k, v, i, f)[0]
    assert np.all(np.isfinite(h_u[..., :12, :]))
    assert not np.any(np.isfinite(h_u[..., 12:, :]))  # inf/inf = NaN from the big step on
    for h in (mlstm_recurrent(q, k, v, i, f)[0], mlstm_chunkwise(q, k, v, i, f, chunk_size=8)[0],
              mlstm_parallel(q, k, v, i, f)):
        assert np.all(np.isfinite(h))
    assert rel(h_u[..., :12, :], mlstm_recurrent(q, k, v, i, f, eps=0.0)[0][..., :12, :]) < 1e-4


def test_float32_extreme_gates_long_sequence_stays_finite():
    """Gate pre-activations uniform in [-1000, 1000], S = 10,000, float32: no NaN or inf in any form, and the
    forms agree with a float64 reference to float32 accuracy. (Parallel: one 10⁴ × 10⁴ matrix, ~1 GB, ~4 s.)"""
    rng = np.random.default_rng(0)
    S, D = 10_000, 4
    q, k, v = (rng.normal(size=(1, 1, S, D)).astype(np.float32) for _ in range(3))
    i, f = (rng.uniform(-1000, 1000, size=(1, 1, S)).astype(np.float32) for _ in range(2))
    h_ref = mlstm_chunkwise(*(a.astype(np.float64) for a in (q, k, v, i, f)))[0]
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # no NaN from inf - inf, 0 · inf, 0/0
        h_r, state_r = mlstm_recurrent(q, k, v, i, f)
        h_c, state_c = mlstm_chunkwise(q, k, v, i, f)
        h_p = mlstm_parallel(q, k, v, i, f)
    for h in (h_r, h_c, h_p):
        assert h.dtype == np.float32 and np.all(np.isfinite(h))
        assert rel(h, h_ref) <= 1e-4
    assert all(np.all(np.isfinite(s)) for s in state_r + state_c)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("form", ["parallel", "recurrent"])
@pytest.mark.parametrize("gates", ["uniform", "closed"])
def test_backward_finite_at_extreme_gates(dtype, form, gates):
    """Gate pre-activations in [-1000, 1000]: m_t can drop below -log(max float) (-88.7 in float32, -709.8 in
    float64), where exp(-m_t) overflowed to inf, h_t was 0 and the backward computed 0·inf = NaN. "closed": every
    gate at -1000, so m_t = -1000 at every step, beyond both limits. Outputs and gradients must stay finite,
    without any overflow or invalid operation on the way."""
    rng = np.random.default_rng(5)
    q, k, v = (rng.normal(size=(2, 40, 4)).astype(dtype) for _ in range(3))
    if gates == "uniform":
        i, f = (rng.uniform(-1000, 1000, size=(2, 40)).astype(dtype) for _ in range(2))
    else:
        i = f = np.full((2, 40), -1000.0, dtype)
    dh = rng.normal(size=v.shape).astype(dtype)
    forward, backward = {"parallel": (mlstm_parallel, mlstm_parallel_backward),
                         "recurrent": (lambda *a: mlstm_recurrent(*a)[0], mlstm_recurrent_backward)}[form]
    with np.errstate(over="raise", invalid="raise"):
        h = forward(q, k, v, i, f)
        grads = backward(dh, q, k, v, i, f)
    assert np.all(np.isfinite(h))
    for name in ("q", "k", "v", "i_pre", "f_pre"):
        assert grads[name].dtype == dtype and np.all(np.isfinite(grads[name])), name


# ------------------------------------------------------------------------------------------------ causality

FORMS = {
    "recurrent": lambda *a: mlstm_recurrent(*a)[0],
    "unstabilized": lambda *a: mlstm_recurrent_unstabilized(*a)[0],
    "parallel": lambda *a: mlstm_parallel(*a),
    "chunkwise": lambda *a: mlstm_chunkwise(*a, chunk_size=4)[0],
    "chunkwise_one_chunk": lambda *a: mlstm_chunkwise(*a, chunk_size=64)[0],
}


@pytest.mark.parametrize("form", sorted(FORMS))
@pytest.mark.parametrize("t0", [0, 6, 13])
def test_causality(form, t0):
    args = make_inputs(S=19)
    h = FORMS[form](*args)
    rng = np.random.default_rng(99)
    changed = [a.copy() for a in args]
    for a in time_slice(changed, slice(t0 + 1, None)):
        a += 3 * rng.normal(size=a.shape)  # a view: changes the inputs after t0 in place
    h2 = FORMS[form](*changed)
    np.testing.assert_array_equal(h2[..., : t0 + 1, :], h[..., : t0 + 1, :])
    assert not np.allclose(h2[..., t0 + 1:, :], h[..., t0 + 1:, :])


# ------------------------------------------------------------------------------------------------ gradients

NAMES = ("q", "k", "v", "i_pre", "f_pre")


def numerical_grads(forward, inputs, dh, names=NAMES):
    loss = lambda: float(np.sum(forward(**inputs) * dh))  # noqa: E731
    return {name: numerical_gradient(loss, inputs[name]) for name in names}


@pytest.mark.parametrize("forget_gate", ["sigmoid", "exp"])
def test_recurrent_backward_matches_numerical_gradient(forget_gate):
    q, k, v, i, f = make_inputs(lead=(1, 2), S=6, DK=3, DV=2, i_loc=2.0,
                                f_loc=1.5 if forget_gate == "sigmoid" else -0.3, seed=3)
    state = make_state(lead=(1, 2), DK=3, DV=2)
    dh = np.random.default_rng(5).normal(size=v.shape)
    inputs = dict(q=q, k=k, v=v, i_pre=i, f_pre=f)
    C0, n0, m0 = (s.copy() for s in state)
    fwd = lambda **a: mlstm_recurrent(**a, state=(C0, n0, m0), forget_gate=forget_gate)[0]  # noqa: E731
    g = mlstm_recurrent_backward(dh, **inputs, state=state, forget_gate=forget_gate, checkpoint_every=4)
    num = numerical_grads(fwd, inputs, dh)
    for name in NAMES:
        assert rel(g[name], num[name]) <= 1e-6, name
    # the gradient with respect to the initial state, m_0 included
    loss = lambda: float(np.sum(fwd(**inputs) * dh))  # noqa: E731
    for got, arr, name in zip(g["state"], (C0, n0, m0), "Cnm"):
        assert rel(got, numerical_gradient(loss, arr)) <= 1e-6, name


def test_parallel_backward_matches_numerical_gradient():
    q, k, v, i, f = make_inputs(lead=(1, 2), S=7, DK=3, DV=2, i_loc=2.0, seed=4)
    dh = np.random.default_rng(6).normal(size=v.shape)
    inputs = dict(q=q, k=k, v=v, i_pre=i, f_pre=f)
    g = mlstm_parallel_backward(dh, **inputs)
    num = numerical_grads(mlstm_parallel, inputs, dh)
    for name in NAMES:
        assert rel(g[name], num[name]) <= 1e-6, name
    g_exp = mlstm_parallel_backward(dh, **inputs, forget_gate="exp")
    num_exp = numerical_grads(lambda **a: mlstm_parallel(**a, forget_gate="exp"), inputs, dh)
    for name in NAMES:
        assert rel(g_exp[name], num_exp[name]) <= 1e-6, name


@pytest.mark.parametrize("which", ["recurrent", "parallel"])
def test_gradient_through_m_matters_only_through_eps(which):
    """m reaches h only via eps·exp(m). With big input gates (m ≈ 12) and eps = 1e-6 that is visible: treating
    m as a constant (App. A.2) misses ~1e-5 of the gate gradients; with eps = 0 both are exact."""
    fwd_fn, bwd_fn = ((lambda **a: mlstm_recurrent(**a)[0], mlstm_recurrent_backward) if which == "recurrent"
                      else (mlstm_parallel, mlstm_parallel_backward))
    q, k, v, i, f = make_inputs(lead=(1, 2), S=6, DK=3, DV=2, i_loc=12.0, seed=7)
    dh = np.random.default_rng(8).normal(size=v.shape)
    for eps in (1e-6, 0.0):
        inputs = dict(q=q.copy(), k=k.copy(), v=v.copy(), i_pre=i.copy(), f_pre=f.copy())
        num = numerical_grads(lambda **a: fwd_fn(**a, eps=eps), inputs, dh, names=("i_pre", "f_pre"))
        exact = bwd_fn(dh, **inputs, eps=eps)
        const_m = bwd_fn(dh, **inputs, eps=eps, grad_through_m=False)
        for name in ("i_pre", "f_pre"):
            assert rel(exact[name], num[name]) <= 1e-6
            if eps == 0.0:
                assert rel(const_m[name], exact[name]) <= 1e-10
            else:
                assert rel(const_m[name], num[name]) > 1e-6
        for name in ("q", "k", "v"):  # m depends on the gates only
            assert rel(const_m[name], exact[name]) <= 1e-12


def test_recurrent_backward_in_two_halves_equals_one():
    args = make_inputs(lead=(2,), S=12, DK=3, DV=2)
    dh = np.random.default_rng(9).normal(size=args[2].shape)
    full = mlstm_recurrent_backward(dh, *args)
    first, second = time_slice(args, slice(None, 5)), time_slice(args, slice(5, None))
    _, s1 = mlstm_recurrent(*first)
    g2 = mlstm_recurrent_backward(dh[..., 5:, :], *second, state=s1)
    g1 = mlstm_recurrent_backward(dh[..., :5, :], *first, dstate=g2["state"])
    for name in NAMES:
        assert rel(np.concatenate([g1[name], g2[name]], axis=-2 if name in "qkv" else -1), full[name]) <= 1e-10


# ------------------------------------------------------------------------------------------------ bad input

def _good():
    return dict(q=np.zeros((2, 5, 3)), k=np.zeros((2, 5, 3)), v=np.zeros((2, 5, 4)), i_pre=np.zeros((2, 5)),
                f_pre=np.zeros((2, 5)))


BAD = [
    ("q", lambda a: a.update(q=np.zeros(3)), "q"),
    ("k shape", lambda a: a.update(k=np.zeros((2, 5, 2))), "k"),
    ("v leading", lambda a: a.update(v=np.zeros((2, 6, 4))), "v"),
    ("i_pre shape", lambda a: a.update(i_pre=np.zeros((2, 4))), "i_pre"),
    ("f_pre shape", lambda a: a.update(f_pre=np.zeros((5,))), "f_pre"),
    ("q nan", lambda a: a["q"].__setitem__((0, 1, 2), np.nan), "q"),
    ("i_pre inf", lambda a: a["i_pre"].__setitem__((1, 3), np.inf), "i_pre"),
    ("int dtype", lambda a: a.update(v=np.zeros((2, 5, 4), dtype=int)), "v"),
    ("no steps", lambda a: a.update(q=np.zeros((2, 0, 3)), k=np.zeros((2, 0, 3)), v=np.zeros((2, 0, 4)),
                                    i_pre=np.zeros((2, 0)), f_pre=np.zeros((2, 0))), "S >= 1"),
    ("forget_gate", lambda a: a.update(forget_gate="tanh"), "forget_gate"),
    ("eps", lambda a: a.update(eps=-1e-6), "eps"),
    ("eps nan", lambda a: a.update(eps=float("nan")), "eps"),
]
BAD_STATE = [
    ("not a triple", lambda: (np.zeros((2, 3, 4)), np.zeros((2, 3))), "state"),
    ("C shape", lambda: (np.zeros((2, 4, 3)), np.zeros((2, 3)), np.zeros(2)), "C"),
    ("n shape", lambda: (np.zeros((2, 3, 4)), np.zeros((2, 4)), np.zeros(2)), "n"),
    ("m shape", lambda: (np.zeros((2, 3, 4)), np.zeros((2, 3)), np.zeros((2, 1))), "m"),
    ("m inf", lambda: (np.zeros((2, 3, 4)), np.zeros((2, 3)), np.array([0.0, np.inf])), "m"),
]
FUNCS = {
    "recurrent": mlstm_recurrent,
    "chunkwise": mlstm_chunkwise,
    "parallel": mlstm_parallel,
    "parallel_parts": mlstm_parallel_parts,
    "unstabilized": mlstm_recurrent_unstabilized,
    "recurrent_backward": lambda **a: mlstm_recurrent_backward(np.zeros((2, 5, 4)), **a),
    "parallel_backward": lambda **a: mlstm_parallel_backward(np.zeros((2, 5, 4)), **a),
}


@pytest.mark.parametrize("func", sorted(FUNCS))
@pytest.mark.parametrize("case,change,needle", BAD, ids=[b[0] for b in BAD])
def test_bad_input_raises_clear_value_error(func, case, change, needle):
    args = _good()
    change(args)
    with pytest.raises(ValueError, match="expected") as info:
        FUNCS[func](**args)
    assert needle in str(info.value)


@pytest.mark.parametrize("func", ["recurrent", "chunkwise", "recurrent_backward"])
@pytest.mark.parametrize("case,make,needle", BAD_STATE, ids=[b[0] for b in BAD_STATE])
def test_bad_state_raises(func, case, make, needle):
    with pytest.raises(ValueError, match="expected") as info:
        FUNCS[func](**_good(), state=make())
    assert needle in str(info.value)


@pytest.mark.parametrize("chunk_size", [0, -3, 2.5, True, "8"])
def test_bad_chunk_size_raises(chunk_size):
    with pytest.raises(ValueError, match="chunk_size: expected an integer >= 1"):
        mlstm_chunkwise(**_good(), chunk_size=chunk_size)


def test_bad_dh_and_step_inputs_raise():
    with pytest.raises(ValueError, match="dh: expected shape"):
        mlstm_recurrent_backward(np.zeros((2, 5, 3)), **_good())
    with pytest.raises(ValueError, match="dh: expected shape"):
        mlstm_parallel_backward(np.zeros((2, 4, 4)), **_good())
    with pytest.raises(ValueError, match="i_pre"):
        mlstm_step(np.zeros((2, 3)), np.zeros((2, 3)), np.zeros((2, 4)), np.zeros(3), np.zeros(2))
    with pytest.raises(ValueError, match="C"):
        mlstm_step(np.zeros((2, 3)), np.zeros((2, 3)), np.zeros((2, 4)), np.zeros(2), np.zeros(2),
                   state=(np.zeros((2, 3, 3)), np.zeros((2, 3)), np.zeros(2)))


# ------------------------------------------------------------------------------------------------ official code

torch_oracle = pytest.mark.oracle


def _official():
    torch = pytest.importorskip("torch")
    pytest.importorskip("mlstm_kernels")
    return torch


def _t(torch, a, grad=False):
    return torch.tensor(np.asarray(a), dtype=torch.float64, requires_grad=grad)


def _official_recurrent(torch, q, k, v, i, f, state=None, eps=1e-6):
    """The official one-step kernel in a loop, states in float64 (it keeps them in float32 unless told)."""
    from mlstm_kernels.torch.recurrent.native_step import mlstm_recurrent_step__native_fw

    B, NH, S, DK = q.shape
    if state is None:
        C = torch.zeros(B, NH, DK, v.shape[-1], dtype=torch.float64)
        n = torch.zeros(B, NH, DK, dtype=torch.float64)
        m = torch.zeros(B, NH, 1, dtype=torch.float64)
    else:
        C, n, m = state[0], state[1], state[2][..., None]
    hs = []
    for t in range(S):
        h, (C, n, m) = mlstm_recurrent_step__native_fw(C, n, m, q[:, :, t], k[:, :, t], v[:, :, t],
                                                       i[:, :, t, None], f[:, :, t, None], eps=eps,
                                                       dtype_state=torch.float64)
        hs.append(h)
    return torch.stack(hs, dim=2), (C, n, m[..., 0])


@torch_oracle
def test_parallel_matches_official():
    torch = _official()
    from mlstm_kernels.torch.parallel.native.fw import mlstm_parallel_fw

    args = make_inputs(S=33, i_loc=2.0)
    h, n, m = mlstm_parallel_fw(*(_t(torch, a) for a in args), eps=1e-6)
    parts = mlstm_parallel_parts(*args)
    assert rel(mlstm_parallel(*args), h.numpy()) <= 1e-10
    assert rel(parts["n"], n.numpy()) <= 1e-10 and rel(parts["m"], m.numpy()) <= 1e-10


@torch_oracle
@pytest.mark.parametrize("with_state", [False, True])
def test_chunkwise_matches_official(with_state):
    torch = _official()
    from mlstm_kernels.torch.chunkwise.native.fw import mlstm_chunkwise_fw

    args = make_inputs(S=32)
    state = make_state() if with_state else None
    kw = {} if state is None else dict(matC_initial=_t(torch, state[0]), vecN_initial=_t(torch, state[1]),
                                       scaM_initial=_t(torch, state[2][..., None]))
    h, _, _, (C, n, m), _ = mlstm_chunkwise_fw(*(_t(torch, a) for a in args), **kw, return_last_states=True,
                                               chunk_size=8, eps=1e-6)
    for chunk_size in (8, 5, 64):  # theirs needs 8 | 32; ours gives the same for any chunk size
        h_o, (C_o, n_o, m_o) = mlstm_chunkwise(*args, chunk_size=chunk_size, state=state)
        assert rel(h_o, h.numpy()) <= 1e-10
        assert rel(C_o, C.numpy()) <= 1e-10 and rel(n_o, n.numpy()) <= 1e-10
        np.testing.assert_allclose(m_o, m.numpy()[..., 0], rtol=0, atol=1e-10)


@torch_oracle
def test_recurrent_matches_official_step_kernel():
    torch = _official()
    args = make_inputs(S=17, i_loc=1.0)
    state = make_state()
    h, (C, n, m) = _official_recurrent(torch, *(_t(torch, a) for a in args), state=[_t(torch, s) for s in state])
    h_o, (C_o, n_o, m_o) = mlstm_recurrent(*args, state=state)
    assert rel(h_o, h.numpy()) <= 1e-10
    assert rel(C_o, C.numpy()) <= 1e-10 and rel(n_o, n.numpy()) <= 1e-10 and rel(m_o, m.numpy()) <= 1e-10
    h1, _ = mlstm_step(*time_slice(args, 0), state=state)
    assert rel(h1, h.numpy()[..., 0, :]) <= 1e-10


@torch_oracle
def test_official_parallel_and_recurrent_differ_like_ours():
    """The official parallel and recurrent kernels differ by the same eps/m_0 effect as our forms do."""
    torch = _official()
    from mlstm_kernels.torch.parallel.native.fw import mlstm_parallel_fw

    args = make_inputs(S=20, i_loc=-4.0, i_scale=2.0, f_loc=3.0)
    ta = [_t(torch, a) for a in args]
    theirs = (mlstm_parallel_fw(*ta, eps=1e-6)[0] - _official_recurrent(torch, *ta)[0]).numpy()
    ours = mlstm_parallel(*args) - mlstm_recurrent(*args)[0]
    assert np.max(np.abs(ours)) > 1e-9
    assert np.max(np.abs(ours - theirs)) <= 1e-10 * np.max(np.abs(mlstm_parallel(*args)))


@torch_oracle
def test_state_handover_between_ours_and_official():
    torch = _official()
    from mlstm_kernels.torch.chunkwise.native.fw import mlstm_chunkwise_fw

    args = make_inputs(S=32)
    h_full, _ = mlstm_recurrent(*args)
    first, second = time_slice(args, slice(None, 16)), time_slice(args, slice(16, None))
    # ours -> theirs
    h1, (C, n, m) = mlstm_recurrent(*first)
    h2 = mlstm_chunkwise_fw(*(_t(torch, a) for a in second), matC_initial=_t(torch, C), vecN_initial=_t(torch, n),
                            scaM_initial=_t(torch, m[..., None]), chunk_size=4)[0].numpy()
    assert rel(np.concatenate([h1, h2], axis=-2), h_full) <= 1e-10
    # theirs -> ours
    h1t, _, _, (Ct, nt, mt), _ = mlstm_chunkwise_fw(*(_t(torch, a) for a in first), return_last_states=True,
                                                     chunk_size=4)
    h2o, _ = mlstm_chunkwise(*second, chunk_size=5, state=(Ct.numpy(), nt.numpy(), mt.numpy()[..., 0]))
    assert rel(np.concatenate([h1t.numpy(), h2o], axis=-2), h_full) <= 1e-10


def _autograd(torch, fn, args, dh):
    ts = [_t(torch, a, grad=True) for a in args]
    (fn(*ts) * torch.tensor(dh)).sum().backward()
    return dict(zip(NAMES, (t.grad.numpy() for t in ts)))


@torch_oracle
def test_parallel_backward_matches_official_autograd():
    torch = _official()
    from mlstm_kernels.torch import get_mlstm_kernel

    kernel = get_mlstm_kernel("parallel--native_autograd")
    args = make_inputs(S=16, i_loc=6.0, seed=11)  # large m: the eps·exp(m) path is visible
    dh = np.random.default_rng(12).normal(size=args[2].shape)
    theirs = _autograd(torch, lambda *t: kernel(*t, eps=1e-6), args, dh)
    ours = mlstm_parallel_backward(dh, *args)
    for name in NAMES:
        assert rel(ours[name], theirs[name]) <= 1e-10, name


@torch_oracle
def test_recurrent_backward_matches_official_chunkwise_autograd():
    """The chunkwise kernel's m equals the recurrent m, so autograd through it is the recurrent gradient."""
    torch = _official()
    from mlstm_kernels.torch import get_mlstm_kernel

    kernel = get_mlstm_kernel("chunkwise--native_autograd")
    args = make_inputs(S=16, i_loc=6.0, seed=13)
    dh = np.random.default_rng(14).normal(size=args[2].shape)
    theirs = _autograd(torch, lambda *t: kernel(*t, eps=1e-6, chunk_size=4), args, dh)
    ours = mlstm_recurrent_backward(dh, *args)
    for name in NAMES:
        assert rel(ours[name], theirs[name]) <= 1e-10, name


@torch_oracle
def test_recurrent_backward_with_state_matches_autograd_through_official_steps():
    torch = _official()
    args = make_inputs(lead=(1, 2), S=9, i_loc=3.0, seed=15)
    state = make_state(lead=(1, 2))
    dh = np.random.default_rng(16).normal(size=args[2].shape)
    ts = [_t(torch, a, grad=True) for a in args]
    ss = [_t(torch, s, grad=True) for s in state]
    h, _ = _official_recurrent(torch, *ts, state=ss)
    (h * torch.tensor(dh)).sum().backward()
    ours = mlstm_recurrent_backward(dh, *args, state=state)
    for name, t in zip(NAMES, ts):
        assert rel(ours[name], t.grad.numpy()) <= 1e-10, name
    for got, s in zip(ours["state"], ss):
        assert rel(got, s.grad.numpy()) <= 1e-10


@torch_oracle
def test_official_custbw_is_not_the_exact_gradient():
    """The official ``*_custbw`` kernels treat the denominator and m as constants; it differs from the exact gradient by
    O(1) in dq, dk and the gate gradients, which is why our reference is the exact one."""
    torch = _official()
    from mlstm_kernels.torch import get_mlstm_kernel

    args = make_inputs(S=16, seed=17)
    dh = np.random.default_rng(18).normal(size=args[2].shape)
    custbw = get_mlstm_kernel("parallel--native_custbw")
    theirs = _autograd(torch, lambda *t: custbw(*t, eps=1e-6, autocast_kernel_dtype=torch.float32), args, dh)
    ours = mlstm_parallel_backward(dh, *args)
    assert rel(ours["v"], theirs["v"]) <= 1e-6  # v does not see the denominator's derivative
    assert max(rel(theirs[name], ours[name]) for name in ("q", "k", "i_pre", "f_pre")) > 1e-2
