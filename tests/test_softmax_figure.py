"""Chapter 2's softmax-over-time weights: they reproduce the package's sLSTM read-out, are causal, rows sum to one,
stay finite for any gates; and the heat map draws."""

import numpy as np
import pytest

import xlstm_edu.np as xnp
from xlstm_edu.figures.softmax import log_weights, normalizer_weights, plot_normalizer_weights


def _slstm_readout(z, i_pre, f_pre, forget_gate="sigmoid"):
    """c_t / n_t from the package's stabilized sLSTM: one unit, R = 0, o = 1, z̃ = artanh(z)."""
    S = len(z)
    wx = np.zeros((S, 4, 1))
    wx[:, 0, 0], wx[:, 1, 0], wx[:, 2, 0], wx[:, 3, 0] = i_pre, f_pre, np.arctanh(z), 60.0
    h, _ = xnp.slstm_recurrent(wx, np.zeros((4, 1, 1, 1)), np.zeros((4, 1)), forget_gate=forget_gate)
    return h[:, 0]


@pytest.mark.parametrize("forget_gate", ["sigmoid", "exp"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_weights_reproduce_the_package_readout(seed, forget_gate):
    rng = np.random.default_rng(seed)
    S = 17
    z, i_pre = np.tanh(rng.normal(size=S)), rng.normal(0, 3, S)
    f_pre = rng.normal(2, 2, S) if forget_gate == "sigmoid" else -np.abs(rng.normal(0, 0.5, S))
    A = normalizer_weights(i_pre, f_pre, forget_gate)
    np.testing.assert_allclose(A @ z, _slstm_readout(z, i_pre, f_pre, forget_gate), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(A.sum(axis=1), 1.0, rtol=1e-12)
    assert np.all(A >= 0) and np.all(np.triu(A, 1) == 0)  # no weight on the future


def test_log_weights_by_definition():
    i_pre, f_pre = np.array([0.5, -1.0, 2.0]), np.array([1.0, 0.0, 3.0])
    log_f = -np.log1p(np.exp(-f_pre))
    L = log_weights(i_pre, f_pre)
    assert L[2, 0] == pytest.approx(i_pre[0] + log_f[1] + log_f[2])  # the forget gates after s, not f_s itself
    assert L[1, 1] == pytest.approx(i_pre[1]) and L[0, 1] == -np.inf


def test_finite_for_huge_gates():
    A = normalizer_weights(np.array([800.0, -900.0, 1000.0, 5.0]), np.array([50.0, -50.0, 0.0, 700.0]))
    assert np.all(np.isfinite(A))
    np.testing.assert_allclose(A.sum(axis=1), 1.0)


@pytest.mark.parametrize("i_pre,f_pre", [(np.ones(3), np.ones(4)), (np.ones((2, 3)), np.ones((2, 3))),
                                         (np.array([]), np.array([]))])
def test_bad_shapes_raise(i_pre, f_pre):
    with pytest.raises(ValueError, match="i_pre, f_pre"):
        normalizer_weights(i_pre, f_pre)


def test_heat_map_draws():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(3)
    fig = plot_normalizer_weights(rng.normal(size=10), rng.normal(2, 1, 10))
    assert len(fig.axes) == 4
    with pytest.raises(ValueError, match="weights"):
        plot_normalizer_weights(np.zeros(4), np.zeros(4), weights=np.zeros((3, 3)))
    plt.close("all")
