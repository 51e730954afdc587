"""The linear-RNN family (issue 14): every member's recurrent and parallel forms agree in float64, are causal,
continue from a state, and relate to each other and to the mLSTM as the chapter says; bad input is refused."""

import math

import numpy as np
import pytest

from xlstm_edu.np import linear_rnn as L
from xlstm_edu.np import mlstm_parallel, mlstm_recurrent

LEAD, S, DK, DV = (2, 3), 11, 4, 5


def rel(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def qkv(seed=0, lead=LEAD, n=S, dk=DK, dv=DV, normalize_k=False):
    rng = np.random.default_rng(seed)
    q, k, v = rng.normal(size=lead + (n, dk)), rng.normal(size=lead + (n, dk)), rng.normal(size=lead + (n, dv))
    if normalize_k:
        k /= np.linalg.norm(k, axis=-1, keepdims=True)
    return q, k, v


def gates(seed=1, lead=LEAD, n=S, lo=-1.0, hi=1.0):
    return np.random.default_rng(seed).uniform(lo, hi, size=lead + (n,))


# every member as (name, recurrent(q, k, v, state) -> (h, S), parallel(q, k, v) -> h or None, needs normalized k)
A = gates(1)
A01 = gates(2, lo=0.0, hi=1.0)
I_GATE = gates(3, lo=0.0, hi=3.0)
BETA = gates(4, lo=0.0, hi=2.0)
ALPHA = gates(5)
MEMBERS = [
    ("linear attention", lambda q, k, v, s=None: L.linear_attention_recurrent(q, k, v, state=s),
     L.linear_attention_parallel),
    ("retnet", lambda q, k, v, s=None: L.retnet_recurrent(q, k, v, 0.9, state=s),
     lambda q, k, v: L.retnet_parallel(q, k, v, 0.9)),
    ("retnet per head", lambda q, k, v, s=None: L.retnet_recurrent(q, k, v, np.array([0.5, 0.8, 1.0]), state=s),
     lambda q, k, v: L.retnet_parallel(q, k, v, np.array([0.5, 0.8, 1.0]))),
    ("gated [-1, 1]", lambda q, k, v, s=None: L.gated_recurrent(q, k, v, A, state=s),
     lambda q, k, v: L.gated_parallel(q, k, v, A)),
    ("gated with input gate", lambda q, k, v, s=None: L.gated_recurrent(q, k, v, A01, I_GATE, state=s),
     lambda q, k, v: L.gated_parallel(q, k, v, A01, I_GATE)),
    ("deltanet", lambda q, k, v, s=None: L.deltanet_recurrent(q, k, v, BETA, state=s),
     lambda q, k, v: L.deltanet_parallel(q, k, v, BETA)[0]),
    ("gated deltanet", lambda q, k, v, s=None: L.gated_deltanet_recurrent(q, k, v, ALPHA, BETA, state=s), None),
]
IDS = [m[0] for m in MEMBERS]


@pytest.mark.parametrize("name,rec,par", [m for m in MEMBERS if m[2] is not None],
                         ids=[m[0] for m in MEMBERS if m[2] is not None])
def test_parallel_equals_recurrent(name, rec, par):
    q, k, v = qkv(normalize_k=True)
    h_rec, _ = rec(q, k, v)
    assert rel(par(q, k, v), h_rec) < 1e-12


@pytest.mark.parametrize("name,rec,par", MEMBERS, ids=IDS)
def test_causal(name, rec, par):
    """Changing the inputs at step t0 leaves every output before t0 unchanged (and changes the one at t0)."""
    q, k, v = qkv(normalize_k=True)
    t0 = 6
    q2, k2, v2 = q.copy(), k.copy(), v.copy()
    q2[..., t0:, :] += 1.0
    k2[..., t0:, :] = np.roll(k2[..., t0:, :], 1, axis=-1)
    v2[..., t0:, :] -= 2.0
    forms = [lambda *a: rec(*a)[0]] + ([par] if par is not None else [])
    for f in forms:
        h1, h2 = f(q, k, v), f(q2, k2, v2)
        np.testing.assert_array_equal(h1[..., :t0, :], h2[..., :t0, :])
        assert np.max(np.abs(h1[..., t0, :] - h2[..., t0, :])) > 1e-3


def test_causal_in_the_gates():
    """A gate at step t0 only acts from t0 on (the decay matrix and the UT transform are lower-triangular)."""
    q, k, v = qkv(normalize_k=True)
    a2, b2 = A.copy(), BETA.copy()
    a2[..., 7:] = -a2[..., 7:]
    b2[..., 7:] = 2.0 - b2[..., 7:]
    np.testing.assert_array_equal(L.gated_parallel(q, k, v, A)[..., :7, :], L.gated_parallel(q, k, v, a2)[..., :7, :])
    np.testing.assert_array_equal(L.deltanet_parallel(q, k, v, BETA)[0][..., :7, :],
                                  L.deltanet_parallel(q, k, v, b2)[0][..., :7, :])


SPLIT_MEMBERS = [
    ("linear attention", lambda q, k, v, sl, s=None: L.linear_attention_recurrent(q, k, v, state=s)),
    ("retnet", lambda q, k, v, sl, s=None: L.retnet_recurrent(q, k, v, 0.7, state=s)),
    ("gated", lambda q, k, v, sl, s=None: L.gated_recurrent(q, k, v, A[..., sl], I_GATE[..., sl], state=s)),
    ("deltanet", lambda q, k, v, sl, s=None: L.deltanet_recurrent(q, k, v, BETA[..., sl], state=s)),
    ("deltanet parallel", lambda q, k, v, sl, s=None: L.deltanet_parallel(q, k, v, BETA[..., sl], state=s)),
    ("gated deltanet",
     lambda q, k, v, sl, s=None: L.gated_deltanet_recurrent(q, k, v, ALPHA[..., sl], BETA[..., sl], state=s)),
]


@pytest.mark.parametrize("name,f", SPLIT_MEMBERS, ids=[m[0] for m in SPLIT_MEMBERS])
def test_two_pieces_equal_one_run(name, f):
    q, k, v = qkv(normalize_k=True)
    h, S_last = f(q, k, v, slice(None))
    a, b = slice(0, 4), slice(4, None)
    h1, S1 = f(q[..., a, :], k[..., a, :], v[..., a, :], a)
    h2, S2 = f(q[..., b, :], k[..., b, :], v[..., b, :], b, S1)
    assert rel(np.concatenate([h1, h2], axis=-2), h) < 1e-12
    assert rel(S2, S_last) < 1e-12


def test_deltanet_parallel_with_state_equals_recurrent():
    q, k, v = qkv(normalize_k=True)
    S0 = np.random.default_rng(9).normal(size=LEAD + (DK, DV))
    h_r, S_r = L.deltanet_recurrent(q, k, v, BETA, state=S0)
    h_p, S_p = L.deltanet_parallel(q, k, v, BETA, state=S0)
    assert rel(h_p, h_r) < 1e-12 and rel(S_p, S_r) < 1e-12


# ----------------------------------------------------------------------------------------------- the relations
def test_members_are_special_cases_of_the_decay_family():
    q, k, v = qkv()
    ones = np.ones(LEAD + (S,))
    h_la, S_la = L.linear_attention_recurrent(q, k, v)
    np.testing.assert_allclose(L.gated_recurrent(q, k, v, ones)[0], h_la, rtol=1e-13)
    np.testing.assert_allclose(L.retnet_recurrent(q, k, v, 1.0)[0], h_la, rtol=1e-13)
    np.testing.assert_allclose(L.retnet_recurrent(q, k, v, 0.6)[0], L.gated_recurrent(q, k, v, 0.6 * ones)[0],
                               rtol=1e-13)
    # gated DeltaNet with α = 1 is DeltaNet; with β = 0 it only decays
    kn = qkv(normalize_k=True)[1]
    np.testing.assert_allclose(L.gated_deltanet_recurrent(q, kn, v, ones, BETA)[0],
                               L.deltanet_recurrent(q, kn, v, BETA)[0], rtol=1e-12)
    S0 = np.random.default_rng(3).normal(size=LEAD + (DK, DV))
    _, S_end = L.gated_deltanet_recurrent(q, kn, v, 0.5 * ones, 0 * ones, state=S0)
    np.testing.assert_allclose(S_end, 0.5 ** S * S0, rtol=1e-12)


def test_decay_matrix_is_the_product_of_decays():
    a = np.array([0.5, -1.0, 0.0, 0.3, -0.7, 1.0])
    D = L.decay_matrix(a)
    for t in range(6):
        for s in range(6):
            want = float(np.prod(a[s + 1:t + 1])) if s <= t else 0.0
            assert D[t, s] == pytest.approx(want, abs=1e-15)


def test_linear_attention_is_the_mlstm_with_unit_gates_and_no_normalizer():
    """i = exp(0) = 1, f = exp(0) = 1 (exponential forget gate): the mLSTM's h times its denominator
    max(|q̂ᵀn|, 1) + eps is linear attention with q̂ = q/√DK."""
    q, k, v = qkv()
    zeros = np.zeros(LEAD + (S,))
    eps = 1e-6
    h_m = mlstm_recurrent(q, k, v, zeros, zeros, eps=eps, forget_gate="exp")[0]
    q_hat = q / math.sqrt(DK)
    qn = np.abs(L.linear_attention_recurrent(q_hat, k, np.ones(LEAD + (S, 1)))[0])  # |q̂ᵀn_t|, n_t = Σ k
    h_la = L.linear_attention_recurrent(q_hat, k, v)[0]
    assert rel(h_m * (np.maximum(qn, 1.0) + eps), h_la) < 1e-12
    # and the parallel mLSTM agrees as well
    assert rel(mlstm_parallel(q, k, v, zeros, zeros, eps=eps, forget_gate="exp") * (np.maximum(qn, 1.0) + eps),
               h_la) < 1e-12


@pytest.mark.parametrize("forget_gate", ["sigmoid", "exp"])
def test_mlstm_is_gated_linear_attention_plus_normalizer(forget_gate):
    """Numerator q̂ᵀC_t = gated(q̂, k, v, a = f, i = exp(ĩ)), denominator max(|q̂ᵀn_t|, 1): the mLSTM's h (eps = 0)."""
    q, k, v = qkv()
    rng = np.random.default_rng(7)
    i_pre = rng.normal(size=LEAD + (S,))
    f_pre = rng.normal(size=LEAD + (S,)) + (2.0 if forget_gate == "sigmoid" else -0.5)
    f_pre = np.minimum(f_pre, 0.0) if forget_gate == "exp" else f_pre  # exp gate: f = exp(f̃) <= 1
    a, i = L.mlstm_decay_and_input_gate(i_pre, f_pre, forget_gate)
    q_hat = q / math.sqrt(DK)
    num = L.gated_recurrent(q_hat, k, v, a, i)[0]
    qn = L.gated_recurrent(q_hat, k, np.ones(LEAD + (S, 1)), a, i)[0]
    h = num / np.maximum(np.abs(qn), 1.0)
    assert rel(h, mlstm_recurrent(q, k, v, i_pre, f_pre, eps=0.0, forget_gate=forget_gate)[0]) < 1e-12
    assert rel(L.gated_parallel(q_hat, k, v, a, i), num) < 1e-12


# ----------------------------------------------------------------------------------------------- DeltaNet
def test_deltanet_matches_the_transition_matrix_and_the_papers_orientation():
    """Two independent writings: S_t = A_t S_{t-1} + β k vᵀ with A_t = deltanet_transition(k, β), and the
    paper's S'_t = S'_{t-1}(I - β k kᵀ) + β v kᵀ, h = S' q, which holds the transpose of ours."""
    q, k, v = qkv(lead=(), normalize_k=True)
    beta = BETA[0, 0]
    Sm, Sp = np.zeros((DK, DV)), np.zeros((DV, DK))
    hs_m, hs_p = [], []
    for t in range(S):
        A_t = L.deltanet_transition(k[t], beta[t])
        Sm = A_t @ Sm + beta[t] * np.outer(k[t], v[t])
        Sp = Sp @ (np.eye(DK) - beta[t] * np.outer(k[t], k[t])) + beta[t] * np.outer(v[t], k[t])
        hs_m.append(q[t] @ Sm)
        hs_p.append(Sp @ q[t])
    h, S_last = L.deltanet_recurrent(q, k, v, beta)
    assert rel(h, np.array(hs_m)) < 1e-12 and rel(h, np.array(hs_p)) < 1e-12
    assert rel(S_last, Sm) < 1e-12 and rel(S_last.T, Sp) < 1e-12


def test_deltanet_step_equals_recurrent():
    q, k, v = qkv(normalize_k=True)
    h, S_last = L.deltanet_recurrent(q, k, v, BETA)
    St = None
    for t in range(S):
        ht, St = L.deltanet_step(q[..., t, :], k[..., t, :], v[..., t, :], BETA[..., t], St)
        assert rel(ht, h[..., t, :]) < 1e-12
    assert rel(St, S_last) < 1e-12


def test_delta_rule_replaces_the_value_stored_at_a_key():
    """β = 1, ‖k‖ = 1: after writing (k, v_new) over (k, v_old), reading with q = k returns v_new exactly,
    where linear attention would return v_old + v_new."""
    k = np.array([[0.6, 0.8, 0.0], [0.6, 0.8, 0.0]])
    v = np.array([[1.0, 2.0], [5.0, -1.0]])
    h, _ = L.deltanet_recurrent(k, k, v, np.ones(2))
    np.testing.assert_allclose(h[1], v[1], atol=1e-15)
    np.testing.assert_allclose(L.linear_attention_recurrent(k, k, v)[0][1], v[0] + v[1], atol=1e-15)


@pytest.mark.parametrize("beta", [0.0, 0.3, 1.0, 1.5, 2.0])
def test_deltanet_eigenvalues(beta):
    k = np.array([1.0, -2.0, 0.5, 2.0])
    kn = k / np.linalg.norm(k)
    ev = np.sort(np.linalg.eigvalsh(L.deltanet_transition(kn, np.array(beta))))
    np.testing.assert_allclose(ev, np.sort([1 - beta, 1.0, 1.0, 1.0]), atol=1e-12)
    # unnormalized keys: 1 - β‖k‖²
    ev = np.sort(np.linalg.eigvalsh(L.deltanet_transition(k, np.array(beta))))
    np.testing.assert_allclose(ev, np.sort([1 - beta * k @ k, 1.0, 1.0, 1.0]), atol=1e-12)


# ----------------------------------------------------------------------------------------------- dtypes, input checks
def test_dtypes():
    q, k, v = (x.astype(np.float32) for x in qkv(normalize_k=True))
    h, S_last = L.deltanet_recurrent(q, k, v, BETA.astype(np.float32))
    assert h.dtype == np.float32 and S_last.dtype == np.float32
    assert L.gated_parallel(q, k, v, A.astype(np.float32)).dtype == np.float32
    assert L.linear_attention_recurrent(q, k, v.astype(np.float64))[0].dtype == np.float64
    h64 = L.deltanet_recurrent(*(x.astype(np.float64) for x in (q, k, v)), BETA)[0]
    assert rel(h, h64) < 1e-5


@pytest.mark.parametrize("call,match", [
    (lambda q, k, v: L.linear_attention_recurrent(None, k, v), "q: expected a float array, got None"),
    (lambda q, k, v: L.linear_attention_recurrent(q, k[..., :3], v), r"k: expected shape"),
    (lambda q, k, v: L.linear_attention_parallel(q, k, v[..., :5, :]), r"v: expected shape"),
    (lambda q, k, v: L.linear_attention_recurrent(q[0, 0, 0], k[0, 0, 0], v[0, 0, 0]), r"at least 2 dims"),
    (lambda q, k, v: L.gated_recurrent(q, k, v, np.log(A01 + 0.01)), r"a: expected values in \[-1.0, 1.0\]"),
    (lambda q, k, v: L.gated_parallel(q, k, v, A[..., :3]), r"a: expected shape"),
    (lambda q, k, v: L.gated_recurrent(q, k, v, A, I_GATE[0]), r"i: expected shape"),
    (lambda q, k, v: L.retnet_recurrent(q, k, v, 1.5), r"gamma: expected a fixed decay in \[0, 1\]"),
    (lambda q, k, v: L.retnet_parallel(q, k, v, np.ones(4)), r"gamma: expected a number or an array"),
    (lambda q, k, v: L.deltanet_recurrent(q, k, v, BETA[..., None]), r"beta: expected shape"),
    (lambda q, k, v: L.deltanet_recurrent(q, k, v, BETA, state=np.zeros((DK, DV))), r"state: expected shape"),
    (lambda q, k, v: L.deltanet_parallel(q, k, v, BETA * np.nan), r"beta: expected finite values"),
    (lambda q, k, v: L.deltanet_step(q[..., 0, :], k[..., 0, :], v[..., 0, :], BETA), r"beta: expected shape"),
    (lambda q, k, v: L.gated_deltanet_recurrent(q, k, v, 2 * ALPHA, BETA), r"alpha: expected values in"),
    (lambda q, k, v: L.deltanet_transition(k[..., 0, :], BETA), r"beta: expected shape"),
    (lambda q, k, v: L.decay_matrix(np.float64(0.5)), r"a: expected shape"),
    (lambda q, k, v: L.mlstm_decay_and_input_gate(A, A[..., :2]), r"f_pre: expected shape"),
    (lambda q, k, v: L.gated_recurrent(q.astype(int), k, v, A), r"q: expected dtype float"),
])
def test_bad_input_is_refused_clearly(call, match):
    q, k, v = qkv()
    with pytest.raises(ValueError, match=match):
        call(q, k, v)


def test_family_table_lists_every_member():
    assert set(L.FAMILY) == {"linear attention", "RetNet", "GLA / Mamba 2", "mLSTM", "DeltaNet", "gated DeltaNet"}
    assert L.FAMILY["mLSTM"][0] is mlstm_recurrent  # reused, not re-implemented
    for name, (rec, par, transition, eig) in L.FAMILY.items():
        assert callable(rec) and (par is None or callable(par)) and transition and eig
