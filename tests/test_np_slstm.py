"""The numpy sLSTM (eq. 8-17): equal to the official vanilla cell (xlstm 2.0.6), stable where the unstabilized
form overflows, hand-written backward equal to numerical gradients and autograd, causal, heads independent,
strict about its inputs."""

import numpy as np
import pytest

from xlstm_edu.np import slstm_recurrent, slstm_recurrent_backward, slstm_recurrent_unstabilized, slstm_step
from xlstm_edu.np.gradcheck import numerical_gradient, relative_error

FORGET_GATES = ["sigmoid", "exp"]


def rel(a, b):
    """max |a - b| / max |b|: the relative deviation of a whole array."""
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(b)))


def random_slstm(rng, lead=(2,), S=6, NH=2, DH=3, scale=1.0, dtype=np.float64):
    H = NH * DH
    wx = (scale * rng.normal(size=lead + (S, 4, H))).astype(dtype)
    R = (0.5 * rng.normal(size=(4, NH, DH, DH))).astype(dtype)
    b = (scale * rng.normal(size=(4, H))).astype(dtype)
    return wx, R, b


def richardson_gradient(f, x, h=1e-3):
    """Centred differences at h and h/2 combined to cancel the O(h²) error: error O(h⁴) ~ 1e-12 plus round-off
    ~1e-12 in float64, about 30x below plain centred differences at their best h. That keeps the element-wise
    relative error meaningful even for gradient entries of 1e-4."""
    return (4 * numerical_gradient(f, x, h / 2) - numerical_gradient(f, x, h)) / 3


def gradient_errors(f, inputs, analytic):
    return {k: relative_error(analytic[k], richardson_gradient(f, x)) for k, x in inputs.items()}


def a_state(rng, lead, H):
    """A state as the recurrence leaves it: n >= 1 (see slstm.py), |c| <= n, any m."""
    n = 1 + 2 * rng.random(lead + (H,))
    c = n * rng.uniform(-1, 1, lead + (H,))
    return rng.uniform(-1, 1, lead + (H,)), c, n, rng.normal(size=lead + (H,))


# ----------------------------------------------------------------------------------------------- the official cell
def official_cell(R, b):
    """The official vanilla sLSTM cell in float64 with our weights R (4, NH, DH, DH) and b (4, H)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("xlstm")
    from xlstm.blocks.slstm.cell import sLSTMCell, sLSTMCellConfig

    _, NH, DH, _ = R.shape
    cell = sLSTMCell(sLSTMCellConfig(hidden_size=NH * DH, num_heads=NH, backend="vanilla"))
    # float64: .double() converts the parameters; the vanilla cell keeps its states in the input's dtype
    cell = cell.double()
    assert cell._recurrent_kernel_.dtype == cell._bias_.dtype == torch.float64
    # external layouts: recurrent_kernel (NH, DH_in, 4, DH_out) = R[g, j] at [j, :, g, :]; bias (NH, 4, DH)
    cell.recurrent_kernel[:] = torch.from_numpy(np.ascontiguousarray(R.transpose(1, 2, 0, 3)))
    cell.bias[:] = torch.from_numpy(np.ascontiguousarray(b.reshape(4, NH, DH).transpose(1, 0, 2)))
    return cell


def run_official(cell, wx, state=None, *, x_grad=False):
    """Call the official cell on x (B, S, 4H) = wx flattened (gates i, f, z, o; heads inside each gate).
    Returns h (B, S, H) (from its (B, NH, S, DH) output), the state (h, c, n, m) and the torch tensors."""
    import torch

    B, S, _, H = wx.shape
    x = torch.tensor(wx.reshape(B, S, 4 * H), requires_grad=x_grad)
    st = None if state is None else torch.tensor(np.stack(state))
    y, st_out = cell(x, state=st)
    h = y.permute(0, 2, 1, 3).reshape(B, S, H)
    return h, st_out, x


@pytest.mark.oracle
@pytest.mark.parametrize("NH, DH", [(1, 4), (2, 3), (4, 1)])
def test_matches_official_vanilla_cell(NH, DH):
    rng = np.random.default_rng(NH)
    wx, R, b = random_slstm(rng, lead=(3,), S=12, NH=NH, DH=DH, scale=3.0)
    wx[:, 4, 0] += 40.0  # a large input gate at one step: the stabilizer m jumps
    wx[:, 7, 1] -= 30.0  # a forget gate near 0
    cell = official_cell(R, b)
    h_ref, st_ref, _ = run_official(cell, wx)
    h, st = slstm_recurrent(wx, R, b)
    assert rel(h, h_ref.detach().numpy()) <= 1e-10
    for name, ours, ref in zip("hcnm", st, st_ref.detach().numpy()):
        assert rel(ours, ref) <= 1e-10, name


@pytest.mark.oracle
def test_official_first_step_rule_and_clamp_where_they_matter():
    """ĩ_1 = -800: the official first step takes m_1 = ĩ_1, and its f'_1 = exp(logσ(f̃) + 0 + 800) overflows to
    inf before the clamp to 1 (it multiplies c = n = 0). Ours gives f'_1 = 0 (m_0 = -inf for an empty memory):
    the same h and state. Later steps jump between ĩ = +600 and ĩ = -600."""
    rng = np.random.default_rng(5)
    wx, R, b = random_slstm(rng, lead=(2,), S=6, NH=2, DH=2)
    wx[:, 0, 0] = -800.0
    wx[:, 2, 0] = 600.0
    wx[:, 4, 0] = -600.0
    h_ref, st_ref, _ = run_official(official_cell(R, b), wx)
    h, st = slstm_recurrent(wx, R, b)
    assert np.all(np.isfinite(h_ref.detach().numpy()))
    assert rel(h, h_ref.detach().numpy()) <= 1e-10
    for name, ours, ref in zip("hcnm", st, st_ref.detach().numpy()):
        assert rel(ours, ref) <= 1e-10, name


@pytest.mark.oracle
def test_state_handover_with_the_official_cell():
    """Two halves with the state passed on = one run, in our code and across ours <-> official."""
    rng = np.random.default_rng(10)
    wx, R, b = random_slstm(rng, lead=(2,), S=10, NH=2, DH=2, scale=2.0)
    cell = official_cell(R, b)
    h_full, st_full = slstm_recurrent(wx, R, b)
    h1, st1 = slstm_recurrent(wx[:, :4], R, b)
    h2, st2 = slstm_recurrent(wx[:, 4:], R, b, st1)
    assert rel(np.concatenate([h1, h2], axis=1), h_full) <= 1e-13
    for ours, ref in zip(st2, st_full):
        assert rel(ours, ref) <= 1e-13
    # our state -> official cell
    h2_off, st2_off, _ = run_official(cell, wx[:, 4:], st1)
    assert rel(h2_off.detach().numpy(), h2) <= 1e-10
    for ours, ref in zip(st2, st2_off.detach().numpy()):
        assert rel(ours, ref) <= 1e-10
    # official state -> our code
    _, st1_off, _ = run_official(cell, wx[:, :4])
    h2_from_off, _ = slstm_recurrent(wx[:, 4:], R, b, tuple(st1_off.detach().numpy()))
    assert rel(h2_from_off, h2) <= 1e-10


@pytest.mark.oracle
def test_backward_matches_autograd_through_the_official_cell():
    """The official cell lets autograd flow through m as well; since h does not depend on m that is the same
    gradient as ours with m held constant (App. A.2)."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(11)
    wx, R, b = random_slstm(rng, lead=(2,), S=8, NH=2, DH=3, scale=2.0)
    state = a_state(rng, (2,), 6)
    w = rng.normal(size=(2, 8, 6))
    for st in (None, state):
        cell = official_cell(R, b)
        h, _, x = run_official(cell, wx, st, x_grad=True)
        (h * torch.from_numpy(w)).sum().backward()
        g = slstm_recurrent_backward(w, wx, R, b, st)
        assert rel(g["wx"], x.grad.numpy().reshape(wx.shape)) <= 1e-10
        assert rel(g["R"], cell.recurrent_kernel.grad.numpy().transpose(2, 0, 1, 3)) <= 1e-10
        assert rel(g["b"], cell.bias.grad.numpy().transpose(1, 0, 2).reshape(4, 6)) <= 1e-10


# ----------------------------------------------------------------------------------------------- torch autograd
def torch_slstm(wx, R, b, state, forget_gate):
    """eq. 8-17 transcribed in torch ops, with the official first-step rule and clamps, m *not* detached."""
    import torch
    import torch.nn.functional as F

    B, S, _, H = wx.shape
    NH, DH = R.shape[1], R.shape[2]
    h, c, n, m = state if state is not None else [torch.zeros(B, H, dtype=wx.dtype)] * 4
    hs = []
    for t in range(S):
        rec = torch.einsum("bjk,gjkd->bgjd", h.reshape(B, NH, DH), R).reshape(B, 4, H)
        i_pre, f_pre, z_pre, o_pre = (wx[:, t] + rec + b).unbind(1)
        log_f = F.logsigmoid(f_pre) if forget_gate == "sigmoid" else f_pre
        m_new = i_pre if torch.all(n == 0) else torch.maximum(log_f + m, i_pre)
        one = torch.ones_like(i_pre)
        i_s = torch.minimum(torch.exp(i_pre - m_new), one)
        f_s = torch.minimum(torch.exp(log_f + m - m_new), one)
        c = f_s * c + i_s * torch.tanh(z_pre)
        n = f_s * n + i_s
        h = torch.sigmoid(o_pre) * c / n
        m = m_new
        hs.append(h)
    return torch.stack(hs, 1), (h, c, n, m)


@pytest.mark.parametrize("forget_gate", FORGET_GATES)
def test_backward_matches_torch_autograd(forget_gate):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(12)
    wx, R, b = random_slstm(rng, lead=(2,), S=7, NH=3, DH=2, scale=1.5)
    state = a_state(rng, (2,), 6)
    w = rng.normal(size=(2, 7, 6))
    for st in (None, state):
        leaves = {k: torch.tensor(v, requires_grad=True) for k, v in dict(wx=wx, R=R, b=b).items()}
        st_t = None if st is None else [torch.tensor(s, requires_grad=True) for s in st]
        h_t, _ = torch_slstm(leaves["wx"], leaves["R"], leaves["b"], st_t, forget_gate)
        h, _ = slstm_recurrent(wx, R, b, st, forget_gate=forget_gate)
        assert rel(h, h_t.detach().numpy()) <= 1e-12  # the transcription computes the same function
        (h_t * torch.from_numpy(w)).sum().backward()
        g = slstm_recurrent_backward(w, wx, R, b, st, forget_gate=forget_gate)
        for k, v in leaves.items():
            assert rel(g[k], v.grad.numpy()) <= 1e-10, k
        if st is not None:
            for k, v in zip(("h0", "c0", "n0", "m0"), st_t):
                assert rel(g[k], v.grad.numpy()) <= 1e-10, k


# ----------------------------------------------------------------------------------------------- numerical gradients
@pytest.mark.parametrize("forget_gate", FORGET_GATES)
def test_backward_matches_numerical_gradient(forget_gate):
    """Several heads, a given state (its m0 included), both forget gates."""
    rng = np.random.default_rng(13)
    wx, R, b = random_slstm(rng, lead=(2,), S=5, NH=2, DH=2, scale=0.7)
    h0, c0, n0, m0 = a_state(rng, (2,), 4)
    w = rng.normal(size=(2, 5, 4))

    def loss():
        return float(np.sum(w * slstm_recurrent(wx, R, b, (h0, c0, n0, m0), forget_gate=forget_gate)[0]))

    g = slstm_recurrent_backward(w, wx, R, b, (h0, c0, n0, m0), forget_gate=forget_gate)
    errors = gradient_errors(loss, dict(wx=wx, R=R, b=b, h0=h0, c0=c0, n0=n0, m0=m0), g)
    assert max(errors.values()) <= 1e-6, errors


@pytest.mark.parametrize("forget_gate", FORGET_GATES)
def test_backward_from_zero_state_and_the_input_gate_bias(forget_gate):
    """From the zero state, shifting every ĩ_t by the same amount scales c and n alike: h does not change, so
    the input-gate bias gets exactly zero gradient. Everything else matches the numerical gradient."""
    rng = np.random.default_rng(14)
    wx, R, b = random_slstm(rng, lead=(2,), S=5, NH=3, DH=1, scale=0.7)
    w = rng.normal(size=(2, 5, 3))

    def loss():
        return float(np.sum(w * slstm_recurrent(wx, R, b, forget_gate=forget_gate)[0]))

    g = slstm_recurrent_backward(w, wx, R, b, forget_gate=forget_gate)
    errors = gradient_errors(loss, dict(wx=wx, R=R), g)
    assert max(errors.values()) <= 1e-6, errors
    num_b = richardson_gradient(loss, b)
    assert np.max(np.abs(g["b"][0])) <= 1e-13 and np.max(np.abs(num_b[0])) <= 1e-10
    # b[0] is 0 against numerical noise of ~1e-12, so the relative error is taken over b[1:] alone
    assert relative_error(g["b"][1:], num_b[1:]) <= 1e-6


def test_backward_through_two_halves_equals_one_run():
    """Feeding the second half's h0, c0, n0 gradients back as d_last_state continues BPTT exactly (m's gradient
    is not needed: with m held constant it drops out)."""
    rng = np.random.default_rng(15)
    wx, R, b = random_slstm(rng, lead=(2,), S=9, NH=2, DH=2, scale=2.0)
    w = rng.normal(size=(2, 9, 4))
    for fg in FORGET_GATES:
        full = slstm_recurrent_backward(w, wx, R, b, forget_gate=fg)
        _, st = slstm_recurrent(wx[:, :4], R, b, forget_gate=fg)
        second = slstm_recurrent_backward(w[:, 4:], wx[:, 4:], R, b, st, forget_gate=fg)
        first = slstm_recurrent_backward(w[:, :4], wx[:, :4], R, b, forget_gate=fg,
                                         d_last_state=(second["h0"], second["c0"], second["n0"]))
        assert rel(np.concatenate([first["wx"], second["wx"]], axis=1), full["wx"]) <= 1e-12
        assert rel(first["R"] + second["R"], full["R"]) <= 1e-12
        assert rel(first["b"] + second["b"], full["b"]) <= 1e-12


# ----------------------------------------------------------------------------------------------- stabilization
@pytest.mark.parametrize("forget_gate", FORGET_GATES)
def test_stabilized_equals_unstabilized_where_finite(forget_gate):
    rng = np.random.default_rng(16)
    wx, R, b = random_slstm(rng, lead=(2,), S=12, NH=2, DH=2, scale=3.0)
    h, (hl, c, n, m) = slstm_recurrent(wx, R, b, forget_gate=forget_gate)
    hu, (hul, cu, nu) = slstm_recurrent_unstabilized(wx, R, b, forget_gate=forget_gate)
    assert np.all(np.isfinite(hu))
    assert rel(hu, h) <= 1e-12
    assert rel(cu, c * np.exp(m)) <= 1e-12 and rel(nu, n * np.exp(m)) <= 1e-12  # the state is scaled by exp(-m)
    # and it continues from a handed-over state in true scale
    h2, _ = slstm_recurrent(wx, R, b, (hl, c, n, m), forget_gate=forget_gate)
    hu2, _ = slstm_recurrent_unstabilized(wx, R, b, (hul, cu, nu), forget_gate=forget_gate)
    assert rel(hu2, h2) <= 1e-12


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
@pytest.mark.parametrize("forget_gate", FORGET_GATES)
def test_unstabilized_overflows_exactly_at_the_dtype_limit(dtype, forget_gate):
    """exp(ĩ) overflows once ĩ > log(max float): 11.09 in float16, 88.72 in float32. Just below, the
    unstabilized cell is finite and equals the stabilized one; just above, it returns NaN (inf/inf), while the
    stabilized cell is fine up to ĩ = 1000."""
    limit = float(np.log(np.finfo(dtype).max))
    R, b = np.zeros((4, 1, 2, 2), dtype), np.zeros((4, 2), dtype)
    for i_pre, finite in [(limit - 0.01, True), (limit + 0.01, False), (1000.0, False)]:
        wx = np.full((1, 1, 4, 2), 0.5, dtype)
        wx[..., 0, :] = i_pre
        h_stab = slstm_recurrent(wx, R, b, forget_gate=forget_gate)[0]
        h_unst = slstm_recurrent_unstabilized(wx, R, b, forget_gate=forget_gate)[0]
        assert h_stab.dtype == h_unst.dtype == dtype
        expected = (1 / (1 + np.exp(-0.5))) * np.tanh(0.5)  # one step from zero: h = o·z
        np.testing.assert_allclose(h_stab.astype(np.float64), expected, rtol=2e-3)
        assert np.all(np.isfinite(h_unst)) == finite, (i_pre, h_unst)
        if finite:
            np.testing.assert_allclose(h_unst.astype(np.float64), expected, rtol=2e-3)


def test_unstabilized_underflows_for_very_negative_input_gate():
    """The other side: exp(-110) = 0 in float32, so n_1 = 0 and h_1 = 0/0. The stabilizer sets m_1 = ĩ_1."""
    R, b = np.zeros((4, 1, 2, 2), np.float32), np.zeros((4, 2), np.float32)
    wx = np.full((1, 1, 4, 2), 0.5, np.float32)
    wx[..., 0, :] = -110.0
    assert np.all(np.isnan(slstm_recurrent_unstabilized(wx, R, b)[0]))
    h, (_, c, n, m) = slstm_recurrent(wx, R, b)
    assert np.all(np.isfinite(h)) and np.all(m == -110.0) and np.all(n == 1.0)


@pytest.mark.parametrize("forget_gate", FORGET_GATES)
def test_float32_long_sequence_with_huge_preactivations_stays_finite(forget_gate):
    """S = 10,000 steps, every gate pre-activation in [-1000, 1000] (|R h| <= 0.2 since |h| <= 1)."""
    rng = np.random.default_rng(17)
    wx = rng.uniform(-999, 999, size=(2, 10_000, 4, 4)).astype(np.float32)
    R = rng.uniform(-0.1, 0.1, size=(4, 2, 2, 2)).astype(np.float32)
    b = np.zeros((4, 4), np.float32)
    h, st = slstm_recurrent(wx, R, b, forget_gate=forget_gate)
    assert h.dtype == np.float32
    assert np.all(np.isfinite(h)) and all(np.all(np.isfinite(s)) for s in st)
    assert np.max(np.abs(h)) <= 1 + 1e-6  # |c/n| <= 1: a weighted mean of z values in [-1, 1]
    assert np.all(st[2] >= 1)  # n >= 1 after the first step
    assert not np.all(np.isfinite(slstm_recurrent_unstabilized(wx[:, :50], R, b, forget_gate=forget_gate)[0]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("forget_gate", FORGET_GATES)
def test_backward_finite_at_extreme_gates(dtype, forget_gate):
    """Every gate pre-activation in [-1000, 1000]: the hand-written backward stays finite (the sLSTM has no bound
    exp(-m) that could overflow: n >= 1 after the first step, and every stabilized gate is <= 1)."""
    rng = np.random.default_rng(31)
    wx = rng.uniform(-1000, 1000, size=(2, 30, 4, 4)).astype(dtype)
    R = rng.uniform(-1, 1, size=(4, 2, 2, 2)).astype(dtype)
    b = np.zeros((4, 4), dtype)
    with np.errstate(over="raise", invalid="raise"):
        h, _ = slstm_recurrent(wx, R, b, forget_gate=forget_gate)
        grads = slstm_recurrent_backward(rng.normal(size=h.shape).astype(dtype), wx, R, b, forget_gate=forget_gate)
    assert np.all(np.isfinite(h))
    assert all(np.all(np.isfinite(g)) for g in grads.values())


# ----------------------------------------------------------------------------------------------- structure
def test_step_by_step_equals_sequence():
    rng = np.random.default_rng(18)
    wx, R, b = random_slstm(rng, lead=(2, 3), S=6, NH=2, DH=2, scale=2.0)
    for fg in FORGET_GATES:
        h_seq, last = slstm_recurrent(wx, R, b, forget_gate=fg)
        state = None
        for t in range(6):
            h_t, state = slstm_step(wx[..., t, :, :], R, b, state, forget_gate=fg)
            np.testing.assert_allclose(h_t, h_seq[..., t, :], rtol=1e-13, atol=1e-15)
        for a, b_ in zip(state, last):
            np.testing.assert_allclose(a, b_, rtol=1e-13, atol=1e-15)


def test_heads_are_independent_cells():
    """Memory mixing only inside a head: head j of a multi-head sLSTM is a one-head sLSTM of its own units."""
    rng = np.random.default_rng(19)
    NH, DH = 3, 2
    wx, R, b = random_slstm(rng, lead=(2,), S=7, NH=NH, DH=DH, scale=2.0)
    h = slstm_recurrent(wx, R, b)[0]
    for j in range(NH):
        units = slice(j * DH, (j + 1) * DH)
        h_j = slstm_recurrent(wx[..., units], R[:, j:j + 1], b[:, units])[0]
        np.testing.assert_allclose(h_j, h[..., units], rtol=1e-13, atol=1e-15)


def test_vectorised_and_batch_elements_independent():
    """Leading dims are independent; the first-step rule is decided per entry, so a batch that mixes a zero
    state with a handed-over one gives each element what it would get alone."""
    rng = np.random.default_rng(20)
    wx, R, b = random_slstm(rng, lead=(2, 3), S=5, NH=2, DH=2, scale=2.0)
    state = list(a_state(rng, (2, 3), 4))
    for s in state:
        s[0, 1] = 0.0  # element (0, 1) starts from the zero state
    h = slstm_recurrent(wx, R, b, tuple(state))[0]
    assert h.shape == (2, 3, 5, 4)
    for i in range(2):
        for j in range(3):
            st = None if (i, j) == (0, 1) else tuple(s[i, j] for s in state)
            np.testing.assert_allclose(slstm_recurrent(wx[i, j], R, b, st)[0], h[i, j], rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("forget_gate", FORGET_GATES)
def test_causal(forget_gate):
    rng = np.random.default_rng(21)
    wx, R, b = random_slstm(rng, lead=(2,), S=9, NH=2, DH=2, scale=2.0)
    h = slstm_recurrent(wx, R, b, forget_gate=forget_gate)[0]
    for t in (0, 4, 7):
        wx2 = wx.copy()
        wx2[:, t + 1:] = rng.normal(size=wx2[:, t + 1:].shape) * 5
        h2 = slstm_recurrent(wx2, R, b, forget_gate=forget_gate)[0]
        assert np.array_equal(h2[:, :t + 1], h[:, :t + 1])
        assert not np.allclose(h2[:, t + 1:], h[:, t + 1:])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(dtype):
    rng = np.random.default_rng(22)
    wx, R, b = random_slstm(rng, dtype=dtype)
    h, st = slstm_recurrent(wx, R, b)
    assert h.dtype == dtype and all(s.dtype == dtype for s in st)
    g = slstm_recurrent_backward(np.ones_like(h), wx, R, b, st)
    assert all(v.dtype == dtype for v in g.values())
    h64 = slstm_recurrent(*(a.astype(np.float64) for a in (wx, R, b)))[0]
    assert rel(h, h64) <= (1e-5 if dtype == np.float32 else 1e-15)


def test_float16_inputs_are_computed_in_float32():
    """float16 in, float16 out, but the work (and the state handed on) in float32: the result is the float64
    result on the same inputs rounded once, not the drift of half-precision gate arithmetic."""
    rng = np.random.default_rng(24)
    wx, R, b = (a.astype(np.float16) for a in random_slstm(rng, S=16, scale=3.0))
    h, st = slstm_recurrent(wx, R, b)
    h64 = slstm_recurrent(*(a.astype(np.float64) for a in (wx, R, b)))[0]
    assert h.dtype == np.float16 and all(s.dtype == np.float32 for s in st)
    assert rel(h, h64) <= 1e-3
    g = slstm_recurrent_backward(np.ones_like(h), wx, R, b)
    g64 = slstm_recurrent_backward(np.ones(h.shape), *(a.astype(np.float64) for a in (wx, R, b)))
    assert all(g[k].dtype == np.float16 for k in g) and rel(g["wx"], g64["wx"]) <= 2e-3


# ----------------------------------------------------------------------------------------------- bad input
def _good():
    rng = np.random.default_rng(23)
    wx, R, b = random_slstm(rng, lead=(2,), S=4, NH=2, DH=3)
    return wx, R, b, None


def _zeros_state(n=4, shape=(2, 6)):
    return tuple(np.zeros(shape) for _ in range(n))


BAD = [
    (dict(wx=lambda wx: wx[0, 0]), r"wx: expected shape \(\.\.\., S, 4, H\).*got shape \(4, 6\)"),
    (dict(wx=lambda wx: wx[..., :2, :]), r"wx: .*4 gates.*got shape \(2, 4, 2, 6\)"),
    (dict(wx=lambda wx: wx[:, :0]), r"wx: .*S >= 1"),
    (dict(wx=lambda wx: np.where(wx > 1, np.inf, wx)), r"wx: expected finite values"),
    (dict(R=lambda R: R[0]), r"R: expected shape \(4, NH, DH, DH\).*got shape \(2, 3, 3\)"),
    (dict(R=lambda R: R[:3]), r"R: expected shape \(4, NH, DH, DH\).*got \(3, 2, 3, 3\)"),
    (dict(R=lambda R: R[..., :2]), r"R: expected shape \(4, NH, DH, DH\).*got \(4, 2, 3, 2\)"),
    (dict(R=lambda R: R[:, :1]), r"R: expected NH \* DH = H = 6.*NH \* DH = 1 \* 3 = 3"),
    (dict(R=lambda R: np.full_like(R, np.nan)), r"R: expected finite values"),
    (dict(b=lambda b: b[:, :5]), r"b: expected shape \(4, H\) = \(4, 6\), got \(4, 5\)"),
    (dict(b=lambda b: b.astype(np.int64)), r"b: expected dtype float"),
    (dict(state=lambda s: _zeros_state(3)),
     r"state: expected a tuple \(h, c, n, m\) of 4 arrays, got tuple of length 3"),
    (dict(state=lambda s: np.zeros((4, 2, 6))), r"state: expected a tuple \(h, c, n, m\) of 4 arrays, got ndarray"),
    (dict(state=lambda s: _zeros_state(shape=(3, 6))), r"state h: expected shape .*\(2, 6\), got \(3, 6\)"),
    (dict(state=lambda s: (*_zeros_state(3), np.full((2, 6), np.nan))), r"state m: expected finite"),
    (dict(state=lambda s: (*_zeros_state(2), -np.ones((2, 6)), np.zeros((2, 6)))), r"state n: expected n >= 0"),
    (dict(state=lambda s: (np.zeros((2, 6)), np.ones((2, 6)), *_zeros_state(2))),
     r"state c: expected c = 0 wherever n = 0"),
    (dict(forget_gate="relu"), r"forget_gate: expected one of \['exp', 'sigmoid'\], got 'relu'"),
]


@pytest.mark.parametrize("change, match", BAD)
def test_bad_input_raises_value_error(change, match):
    wx, R, b, state = _good()
    wx = change.get("wx", lambda a: a)(wx)
    R = change.get("R", lambda a: a)(R)
    b = change.get("b", lambda a: a)(b)
    state = change.get("state", lambda a: a)(state)
    fg = change.get("forget_gate", "sigmoid")
    with pytest.raises(ValueError, match=match):
        slstm_recurrent(wx, R, b, state, forget_gate=fg)
    dh = np.zeros(wx.shape[:-2] + wx.shape[-1:])
    with pytest.raises(ValueError, match=match):
        slstm_recurrent_backward(dh, wx, R, b, state, forget_gate=fg)
    if "state" not in change:
        with pytest.raises(ValueError, match=match):
            slstm_recurrent_unstabilized(wx, R, b, forget_gate=fg)


def test_bad_input_for_step_unstabilized_state_and_backward():
    wx, R, b, _ = _good()
    with pytest.raises(ValueError, match=r"wx_t: expected shape \(\.\.\., 4, H\)"):
        slstm_step(wx[0, 0, 0], R, b)
    with pytest.raises(ValueError, match=r"state: expected a tuple \(h, c, n\) of 3 arrays, got tuple of length 4"):
        slstm_recurrent_unstabilized(wx, R, b, _zeros_state(4))
    with pytest.raises(ValueError, match=r"dh: expected shape .*= \(2, 4, 6\), got \(2, 4\)"):
        slstm_recurrent_backward(np.zeros((2, 4)), wx, R, b)
    with pytest.raises(ValueError, match=r"d_last_state: expected a tuple \(dh_last, dc_last, dn_last\) of 3 arrays, "
                                         r"got tuple of length 2"):
        slstm_recurrent_backward(np.zeros((2, 4, 6)), wx, R, b, d_last_state=_zeros_state(2))
