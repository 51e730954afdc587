"""The torch linear-RNN cells and language model of chapter 14: equal to the numpy family in float64, step equals
forward, causal, and the eigenvalue switch does what it says."""

import numpy as np
import pytest
import torch

from xlstm_edu.np import linear_rnn as npl
from xlstm_edu.nn import linear_rnn as tl
from xlstm_edu.nn.linear_rnn import LinearRNNConfig, LinearRNNLM


def inputs(seed=0, B=2, NH=3, S=13, D=4):
    rng = np.random.default_rng(seed)
    q, k, v = (rng.normal(size=(B, NH, S, D)) for _ in range(3))
    k /= np.linalg.norm(k, axis=-1, keepdims=True)
    return q, k, v, rng.uniform(0, 2, size=(B, NH, S)), rng.uniform(-1, 1, size=(B, NH, S))


def T(x):
    return torch.from_numpy(np.ascontiguousarray(x))


def test_torch_deltanet_equals_numpy():
    q, k, v, beta, _ = inputs()
    h_np, _ = npl.deltanet_recurrent(q, k, v, beta)
    np.testing.assert_allclose(tl.deltanet_parallel(T(q), T(k), T(v), T(beta)).numpy(), h_np, rtol=1e-11, atol=1e-12)
    S = torch.zeros(2, 3, 4, 4, dtype=torch.float64)
    for t in range(q.shape[-2]):
        h_t, S = tl.deltanet_step(T(q[..., t, :]), T(k[..., t, :]), T(v[..., t, :]), T(beta[..., t]), S)
        np.testing.assert_allclose(h_t.numpy(), h_np[..., t, :], rtol=1e-11, atol=1e-12)


def test_torch_decay_equals_numpy_with_negative_decays():
    q, k, v, _, a = inputs(1)
    h_np, _ = npl.gated_recurrent(q, k, v, a)
    np.testing.assert_allclose(tl.decay_parallel(T(q), T(k), T(v), T(a)).numpy(), h_np, rtol=1e-11, atol=1e-12)
    S = torch.zeros(2, 3, 4, 4, dtype=torch.float64)
    for t in range(q.shape[-2]):
        h_t, S = tl.decay_step(T(q[..., t, :]), T(k[..., t, :]), T(v[..., t, :]), T(a[..., t]), S)
        np.testing.assert_allclose(h_t.numpy(), h_np[..., t, :], rtol=1e-11, atol=1e-12)


def test_torch_deltanet_float32_stays_close_on_long_sequences():
    q, k, v, beta, _ = inputs(2, B=1, NH=1, S=256)
    h64 = npl.deltanet_recurrent(q, k, v, beta)[0]
    h32 = tl.deltanet_parallel(*(T(x).float() for x in (q, k, v, beta))).numpy()
    assert np.max(np.abs(h32 - h64)) / np.max(np.abs(h64)) < 1e-4


def test_cell_input_checks():
    q, k, v, beta, _ = (T(x) for x in inputs())
    with pytest.raises(ValueError, match="beta: expected shape"):
        tl.deltanet_parallel(q, k, v, beta[..., :3])
    with pytest.raises(ValueError, match="k: expected shape"):
        tl.decay_parallel(q, k[..., :2], v, beta)
    with pytest.raises(ValueError, match="a: expected the dtype and device"):
        tl.decay_parallel(q, k, v, beta.float())
    with pytest.raises(ValueError, match="q: expected a torch.Tensor"):
        tl.deltanet_parallel(q.numpy(), k, v, beta)


CONFIGS = [(c, e) for c in tl.CELLS for e in tl.EIGENVALUES]


def model(cell, eig, seed=0, **kw):
    torch.manual_seed(seed)
    m = LinearRNNLM(LinearRNNConfig(vocab_size=5, context_length=64, embedding_dim=12, num_heads=2, cell=cell,
                                    eigenvalues=eig, **kw)).double()
    return m.eval()


@pytest.mark.parametrize("cell,eig", CONFIGS)
def test_step_equals_forward(cell, eig):
    m = model(cell, eig)
    idx = torch.randint(0, 5, (3, 17), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        full = m(idx)
        state = None
        for t in range(idx.shape[1]):
            logits_t, state = m.step(idx[:, t], state)
            torch.testing.assert_close(logits_t, full[:, t], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("cell,eig", CONFIGS)
def test_model_is_causal(cell, eig):
    m = model(cell, eig)
    idx = torch.randint(0, 5, (2, 20), generator=torch.Generator().manual_seed(1))
    idx2 = idx.clone()
    idx2[:, 12:] = (idx2[:, 12:] + 1) % 5
    with torch.no_grad():
        a, b = m(idx), m(idx2)
    torch.testing.assert_close(a[:, :12], b[:, :12], rtol=0, atol=0)
    assert (a[:, 12] - b[:, 12]).abs().max() > 1e-6


@pytest.mark.parametrize("cell", tl.CELLS)
def test_eigenvalue_range_switch(cell):
    """[0, 1]: every transition eigenvalue stays in (0, 1) whatever the gate says; [-1, 1]: a large gate
    pre-activation pushes it to -1 (DeltaNet: gate → +∞ gives β → 2; decay: gate → -∞ gives a → -1)."""
    idx = torch.randint(0, 5, (4, 30), generator=torch.Generator().manual_seed(2))
    for eig in tl.EIGENVALUES:
        m = model(cell, eig)
        for blk in m.blocks:
            torch.nn.init.constant_(blk.rnn.gate.bias, 30.0 if cell == "deltanet" else -30.0)
        ev = torch.cat([e.flatten() for e in m.eigenvalues(idx)])
        if eig == "[0,1]":
            assert ev.min() >= 0 and ev.max() <= 1
        else:
            assert ev.min() >= -1 and ev.max() <= 1 and ev.min() < -0.999


def test_gradients_flow():
    m = model("deltanet", "[-1,1]").float().train()
    idx = torch.randint(0, 5, (2, 10))
    loss = m(idx).logsumexp(-1).mean()
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.parameters())


def test_config_and_input_checks():
    with pytest.raises(ValueError, match="cell: expected one of"):
        LinearRNNConfig(cell="mamba")
    with pytest.raises(ValueError, match="eigenvalues: expected one of"):
        LinearRNNConfig(eigenvalues="[0, 2]")
    with pytest.raises(ValueError, match="divisible by num_heads"):
        LinearRNNConfig(embedding_dim=10, num_heads=3)
    with pytest.raises(ValueError, match="cfg: expected a LinearRNNConfig"):
        LinearRNNLM({"vocab_size": 4})
    m = model("decay", "[0,1]")
    with pytest.raises(ValueError, match="longer than context_length"):
        m(torch.zeros(1, 65, dtype=torch.long))
    with pytest.raises(ValueError, match="token ids must lie in"):
        m(torch.full((1, 3), 5))
    with pytest.raises(ValueError, match=r"idx: expected shape \(B,\)"):
        m.step(torch.zeros(2, 2, dtype=torch.long))
