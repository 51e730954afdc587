"""The hand-chosen sLSTM that solves parity (xlstm_edu.handcrafted), run through the package's sLSTM."""

import numpy as np
import pytest

from xlstm_edu.handcrafted import (parity_from_h, parity_inputs, parity_predict, parity_reference,
                                   parity_weights)

slstm = pytest.importorskip("xlstm_edu.np").slstm_recurrent


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("length", [1, 2, 7, 40, 256, 300])
def test_parity_is_exact_on_random_strings(dtype, length):
    rng = np.random.default_rng(length)
    bits = rng.integers(0, 2, size=(64, length))
    np.testing.assert_array_equal(parity_predict(bits, dtype=dtype), parity_reference(bits))


def test_parity_on_hard_strings():
    """All zeros, all ones, a single 1 at the start or the end, alternating, long runs: every prefix right."""
    S = 512
    cases = [np.zeros(S, int), np.ones(S, int), np.eye(1, S, 0, dtype=int)[0], np.eye(1, S, S - 1, dtype=int)[0],
             np.arange(S) % 2, (np.arange(S) // 100) % 2]
    bits = np.stack(cases)
    np.testing.assert_array_equal(parity_predict(bits), parity_reference(bits))


def test_every_string_up_to_length_10():
    """Exhaustive: all 2**10 strings of length 10 (so every prefix of every shorter string as well)."""
    n = 10
    bits = (np.arange(2 ** n)[:, None] >> np.arange(n)[None, :]) & 1
    np.testing.assert_array_equal(parity_predict(bits), parity_reference(bits))


def test_the_state_keeps_a_clear_margin():
    """|h| stays near 1 on every step, so the sign is never a coin toss (robust, not lucky)."""
    W, R, b = parity_weights()
    bits = np.random.default_rng(0).integers(0, 2, size=(16, 300))
    h, _ = slstm(parity_inputs(bits, W), R, b)
    assert np.abs(h).min() > 0.99


def test_without_memory_mixing_parity_fails():
    """Zero the recurrent matrix: the cell can no longer see its own state and falls to chance on parity."""
    W, R, b = parity_weights()
    bits = np.random.default_rng(1).integers(0, 2, size=(256, 100))
    h, _ = slstm(parity_inputs(bits, W), np.zeros_like(R), b)
    acc = (parity_from_h(h) == parity_reference(bits)).mean()
    assert 0.4 < acc < 0.6, acc


def test_layout_matches_slstm_recurrent():
    W, R, b = parity_weights()
    assert W.shape == (2, 4, 1) and R.shape == (4, 1, 1, 1) and b.shape == (4, 1)
    wx = parity_inputs(np.array([[0, 1, 1]]), W)
    assert wx.shape == (1, 3, 4, 1)


@pytest.mark.parametrize("bits", [[], [0, 2, 1], [0.5, 1.0], np.zeros((0,), int)])
def test_bad_bits_raise(bits):
    W, _, _ = parity_weights()
    with pytest.raises(ValueError, match="bits"):
        parity_inputs(np.asarray(bits), W)


def test_bad_h_raises():
    with pytest.raises(ValueError, match="h"):
        parity_from_h(np.zeros(3))
