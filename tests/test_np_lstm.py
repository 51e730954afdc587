"""The numpy LSTM (eq. 2-7): equal to torch.nn.LSTM, its hand-written backward equal to numerical gradients
and to autograd, causal, vectorised, and strict about its inputs."""

import numpy as np
import pytest

from xlstm_edu.np import lstm_recurrent, lstm_recurrent_backward, lstm_step
from xlstm_edu.np.gradcheck import numerical_gradient, relative_error


def rel(a, b):
    """max |a - b| / max |b|: the relative deviation of a whole array."""
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(b)))


def richardson_gradient(f, x, h=1e-3):
    """Centred differences at h and h/2 combined to cancel the O(h²) error: error O(h⁴) ~ 1e-12 plus round-off
    ~1e-12 in float64, about 30x below plain centred differences at their best h. That keeps the element-wise
    relative error meaningful even for gradient entries of 1e-4."""
    return (4 * numerical_gradient(f, x, h / 2) - numerical_gradient(f, x, h)) / 3


def random_lstm(rng, lead=(2,), S=6, H=3, scale=1.0, dtype=np.float64):
    wx = (scale * rng.normal(size=lead + (S, 4, H))).astype(dtype)
    R = (0.5 * rng.normal(size=(4, H, H))).astype(dtype)
    b = rng.normal(size=(4, H)).astype(dtype)
    return wx, R, b


# ----------------------------------------------------------------------------------------------- torch oracle
def torch_lstm_and_weights(B, S, In, H, seed):
    """A torch.nn.LSTM in float64 and our (wx, R, b) for the same input x."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(seed)
    lstm = torch.nn.LSTM(In, H, batch_first=True).double()
    x = torch.randn(B, S, In, dtype=torch.float64)
    W_ih, W_hh = lstm.weight_ih_l0.detach(), lstm.weight_hh_l0.detach()
    # torch's gate order (i, f, g, o) is ours (i, f, z, o); gates = x W_ihᵀ + b_ih + h W_hhᵀ + b_hh
    wx = (x @ W_ih.T).reshape(B, S, 4, H).numpy()
    R = W_hh.reshape(4, H, H).transpose(1, 2).numpy().copy()  # R[g] = W_hh[g-block]ᵀ
    b = (lstm.bias_ih_l0 + lstm.bias_hh_l0).detach().reshape(4, H).numpy()
    return lstm, x, wx, R, b


def test_matches_torch_lstm_with_state_in_and_out():
    torch = pytest.importorskip("torch")
    B, S, In, H = 3, 11, 5, 4
    lstm, x, wx, R, b = torch_lstm_and_weights(B, S, In, H, seed=0)
    h0, c0 = torch.randn(1, B, H, dtype=torch.float64), torch.randn(1, B, H, dtype=torch.float64)
    y, (hn, cn) = lstm(x, (h0, c0))
    h, (h_last, c_last) = lstm_recurrent(wx, R, b, (h0[0].numpy(), c0[0].numpy()))
    assert rel(h, y.detach().numpy()) <= 1e-10
    assert rel(h_last, hn[0].detach().numpy()) <= 1e-10
    assert rel(c_last, cn[0].detach().numpy()) <= 1e-10
    # and from the zero state, torch's default
    y0, _ = lstm(x)
    assert rel(lstm_recurrent(wx, R, b)[0], y0.detach().numpy()) <= 1e-10


def test_backward_matches_torch_autograd():
    torch = pytest.importorskip("torch")
    B, S, In, H = 2, 7, 3, 4
    lstm, x, wx, R, b = torch_lstm_and_weights(B, S, In, H, seed=1)
    rng = np.random.default_rng(1)
    h0, c0 = rng.normal(size=(B, H)), rng.normal(size=(B, H))
    w = rng.normal(size=(B, S, H))
    wx_t = torch.tensor(wx, requires_grad=True)
    R_t, b_t = torch.tensor(R, requires_grad=True), torch.tensor(b, requires_grad=True)
    h0_t, c0_t = torch.tensor(h0, requires_grad=True), torch.tensor(c0, requires_grad=True)
    # autograd through torch.nn.LSTM itself: feed wx as an identity input projection
    lstm_id = torch.nn.LSTM(4 * H, H, batch_first=True, bias=True).double()
    out, _ = torch.func.functional_call(lstm_id, {
        "weight_ih_l0": torch.eye(4 * H, dtype=torch.float64),
        "weight_hh_l0": R_t.transpose(1, 2).reshape(4 * H, H),
        "bias_ih_l0": b_t.reshape(4 * H),
        "bias_hh_l0": torch.zeros(4 * H, dtype=torch.float64),
    }, (wx_t.reshape(B, S, 4 * H), (h0_t[None], c0_t[None])))
    (out * torch.tensor(w)).sum().backward()
    g = lstm_recurrent_backward(w, wx, R, b, (h0, c0))
    for name, ref in [("wx", wx_t), ("R", R_t), ("b", b_t), ("h0", h0_t), ("c0", c0_t)]:
        assert rel(g[name], ref.grad.numpy()) <= 1e-10, name


# ----------------------------------------------------------------------------------------------- gradients
def test_backward_matches_numerical_gradient():
    """Moderate inputs keep every gate out of saturation, where gradients shrink towards the numerical noise;
    saturated inputs are covered by the autograd test."""
    rng = np.random.default_rng(2)
    wx, R, b = random_lstm(rng, lead=(2,), S=5, H=3, scale=0.5)
    b = 0.5 * b
    h0, c0 = rng.normal(size=(2, 3)), rng.normal(size=(2, 3))
    w = rng.normal(size=(2, 5, 3))

    def loss():
        return float(np.sum(w * lstm_recurrent(wx, R, b, (h0, c0))[0]))

    g = lstm_recurrent_backward(w, wx, R, b, (h0, c0))
    inputs = dict(wx=wx, R=R, b=b, h0=h0, c0=c0)
    errors = {k: relative_error(g[k], richardson_gradient(loss, x)) for k, x in inputs.items()}
    assert max(errors.values()) <= 1e-6, errors


def test_backward_through_two_halves_equals_one_run():
    """The state gradients h0, c0 of the second half, fed back as d_last_state, continue BPTT exactly."""
    rng = np.random.default_rng(3)
    wx, R, b = random_lstm(rng, lead=(2,), S=8, H=3)
    w = rng.normal(size=(2, 8, 3))
    full = lstm_recurrent_backward(w, wx, R, b)
    _, st = lstm_recurrent(wx[:, :5], R, b)
    second = lstm_recurrent_backward(w[:, 5:], wx[:, 5:], R, b, st)
    first = lstm_recurrent_backward(w[:, :5], wx[:, :5], R, b, d_last_state=(second["h0"], second["c0"]))
    assert rel(np.concatenate([first["wx"], second["wx"]], axis=1), full["wx"]) <= 1e-12
    assert rel(first["R"] + second["R"], full["R"]) <= 1e-12
    assert rel(first["b"] + second["b"], full["b"]) <= 1e-12


# ----------------------------------------------------------------------------------------------- forward
def test_step_by_step_equals_sequence_and_state_handover():
    rng = np.random.default_rng(4)
    wx, R, b = random_lstm(rng, lead=(2, 3), S=7, H=4)
    h_seq, (h_last, c_last) = lstm_recurrent(wx, R, b)
    state = None
    for t in range(7):
        h_t, state = lstm_step(wx[..., t, :, :], R, b, state)
        np.testing.assert_allclose(h_t, h_seq[..., t, :], rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(state[1], c_last, rtol=1e-13, atol=1e-15)
    h1, st = lstm_recurrent(wx[..., :3, :, :], R, b)
    h2, (h2_last, c2_last) = lstm_recurrent(wx[..., 3:, :, :], R, b, st)
    assert rel(np.concatenate([h1, h2], axis=-2), h_seq) <= 1e-13
    assert rel(c2_last, c_last) <= 1e-13


def test_vectorised_over_leading_dims():
    rng = np.random.default_rng(5)
    wx, R, b = random_lstm(rng, lead=(2, 3), S=5, H=4)
    h = lstm_recurrent(wx, R, b)[0]
    assert h.shape == (2, 3, 5, 4)
    for i in range(2):
        for j in range(3):
            np.testing.assert_allclose(lstm_recurrent(wx[i, j], R, b)[0], h[i, j], rtol=1e-13, atol=1e-15)


def test_causal():
    rng = np.random.default_rng(6)
    wx, R, b = random_lstm(rng, lead=(2,), S=9, H=3)
    h = lstm_recurrent(wx, R, b)[0]
    for t in (0, 4, 7):
        wx2 = wx.copy()
        wx2[:, t + 1:] = rng.normal(size=wx2[:, t + 1:].shape) * 5
        h2 = lstm_recurrent(wx2, R, b)[0]
        assert np.array_equal(h2[:, :t + 1], h[:, :t + 1])
        assert not np.allclose(h2[:, t + 1:], h[:, t + 1:])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept_and_float32_close_to_float64(dtype):
    rng = np.random.default_rng(7)
    wx, R, b = random_lstm(rng, dtype=dtype)
    h, (hl, cl) = lstm_recurrent(wx, R, b)
    assert h.dtype == hl.dtype == cl.dtype == dtype
    g = lstm_recurrent_backward(np.ones_like(h), wx, R, b)
    assert all(v.dtype == dtype for v in g.values())
    h64 = lstm_recurrent(wx.astype(np.float64), R.astype(np.float64), b.astype(np.float64))[0]
    assert rel(h, h64) <= (1e-5 if dtype == np.float32 else 1e-15)


def test_float16_inputs_are_computed_in_float32():
    rng = np.random.default_rng(10)
    wx, R, b = (a.astype(np.float16) for a in random_lstm(rng))
    h, (hl, cl) = lstm_recurrent(wx, R, b)
    assert h.dtype == np.float16 and hl.dtype == cl.dtype == np.float32  # the state stays in the compute dtype
    assert rel(h, lstm_recurrent(*(a.astype(np.float64) for a in (wx, R, b)))[0]) <= 1e-3


def test_float32_long_sequence_large_preactivations_stays_finite():
    rng = np.random.default_rng(8)
    wx = rng.uniform(-1000, 1000, size=(2, 10_000, 4, 4)).astype(np.float32)
    R = (0.1 * rng.normal(size=(4, 4, 4))).astype(np.float32)
    h, (hl, cl) = lstm_recurrent(wx, R, np.zeros((4, 4), np.float32))
    assert np.all(np.isfinite(h)) and np.all(np.isfinite(cl)) and np.all(np.abs(h) <= 1)


# ----------------------------------------------------------------------------------------------- bad input
def _good():
    rng = np.random.default_rng(9)
    return random_lstm(rng, lead=(2,), S=4, H=3)


@pytest.mark.parametrize("make, match", [
    (lambda wx, R, b: (wx[0, 0], R, b, None), r"wx: expected shape \(\.\.\., S, 4, H\).*got shape \(4, 3\)"),
    (lambda wx, R, b: (wx[..., :3, :], R, b, None), r"wx: .*4 gates.*got shape \(2, 4, 3, 3\)"),
    (lambda wx, R, b: (wx[:, :0], R, b, None), r"wx: .*S >= 1.*got shape \(2, 0, 4, 3\)"),
    (lambda wx, R, b: (wx, R[:, :2], b, None), r"R: expected shape \(4, H, H\) = \(4, 3, 3\), got \(4, 2, 3\)"),
    (lambda wx, R, b: (wx, R, b[:3], None), r"b: expected shape \(4, H\) = \(4, 3\), got \(3, 3\)"),
    (lambda wx, R, b: (np.where(wx > 1, np.nan, wx), R, b, None), r"wx: expected finite values"),
    (lambda wx, R, b: (wx, np.full_like(R, np.inf), b, None), r"R: expected finite values"),
    (lambda wx, R, b: (wx.astype(int), R, b, None), r"wx: expected dtype float"),
    (lambda wx, R, b: (wx, R, b, (np.zeros((2, 3)),)),
     r"state: expected a tuple \(h, c\) of 2 arrays, got tuple of length 1"),
    (lambda wx, R, b: (wx, R, b, (np.zeros((2, 3)), np.zeros((3, 3)))),
     r"state c: expected shape .*\(2, 3\), got \(3, 3\)"),
    (lambda wx, R, b: (wx, R, b, (np.zeros((2, 3)), np.full((2, 3), np.nan))), r"state c: expected finite"),
])
def test_bad_input_raises_value_error(make, match):
    wx, R, b, state = make(*_good())
    with pytest.raises(ValueError, match=match):
        lstm_recurrent(wx, R, b, state)
    with pytest.raises(ValueError, match=match):
        lstm_recurrent_backward(np.zeros(wx.shape[:-2] + wx.shape[-1:]) if wx.ndim >= 2 else 0.0, wx, R, b, state)


def test_bad_input_for_step_and_backward():
    wx, R, b = _good()
    with pytest.raises(ValueError, match=r"wx_t: expected shape \(\.\.\., 4, H\)"):
        lstm_step(wx[0, 0, 0], R, b)
    with pytest.raises(ValueError, match=r"dh: expected shape .*= \(2, 4, 3\), got \(2, 4, 2\)"):
        lstm_recurrent_backward(np.zeros((2, 4, 2)), wx, R, b)
    with pytest.raises(ValueError, match=r"d_last_state dc_last: expected shape .*\(2, 3\), got \(3,\)"):
        lstm_recurrent_backward(np.zeros((2, 4, 3)), wx, R, b, d_last_state=(np.zeros((2, 3)), np.zeros(3)))

