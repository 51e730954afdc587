"""The package's stand-ins for the learner's answers (used by chapters 2, 3 and 8 while an exercise is unsolved)
equal the package's cells, so a chapter that falls back to them teaches the right numbers."""

import numpy as np
import pytest

import xlstm_edu.np as xnp
from xlstm_edu.exercises import ch02


@pytest.mark.parametrize("shape", [(7,), (3, 12), (2, 2, 5)])
def test_reference_memory_is_the_package_slstm(shape):
    rng = np.random.default_rng(len(shape))
    z, i_pre, f_pre = np.tanh(rng.normal(size=shape)), rng.normal(0, 2, shape), rng.normal(1, 2, shape)
    for got, want in zip(ch02.reference_memory(z, i_pre, f_pre), ch02._package_states(z, i_pre, f_pre)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def test_reference_memory_overflows_like_the_plain_formula():
    S = 600
    c, n, h = ch02.reference_memory(np.full(S, 0.5, np.float16), np.full(S, 5.0, np.float16),
                                    np.full(S, 10.0, np.float16))
    assert n.dtype == np.float16 and not np.all(np.isfinite(n))
    assert np.all(np.isfinite(n[:300]))


def test_reference_readout_gradient_is_the_derivative_of_the_package_readout():
    rng = np.random.default_rng(3)
    S = 9
    z, i_pre, f_pre = np.tanh(rng.normal(size=S)), rng.normal(0, 2, S), rng.normal(1, 1, S)

    def readout(i):
        wx = np.zeros((S, 4, 1))
        wx[:, 0, 0], wx[:, 1, 0], wx[:, 2, 0], wx[:, 3, 0] = i, f_pre, np.arctanh(z), 60.0
        return xnp.slstm_recurrent(wx, np.zeros((4, 1, 1, 1)), np.zeros((4, 1)))[0][-1, 0]

    h = 1e-6
    numeric = np.array([(readout(i_pre + h * e) - readout(i_pre - h * e)) / (2 * h) for e in np.eye(S)])
    np.testing.assert_allclose(ch02.reference_readout_gradient(z, i_pre, f_pre), numeric, rtol=1e-6, atol=1e-9)
