"""Hand-chosen sLSTM weights that solve parity exactly: state tracking needs memory mixing (chapter 4).

Parity: after each bit x_t ∈ {0, 1} of a string, output p_t = x_1 ⊕ … ⊕ x_t (1 if the number of ones so far is
odd). The paper (Fig. 4) reports that models without memory mixing fail this task and models with sLSTM solve it.
Here one sLSTM unit (NH = DH = H = 1) solves it for any length, with weights chosen by hand.

The idea, gate by gate (eq. 8-14), with the state h_t ≈ +1 for "even so far" and h_t ≈ -1 for "odd so far":

* on a 0 the cell keeps what it stored: input gate shut (ĩ = -10, i ≈ 4.5e-5), forget gate open
  (f̃ = +20, f ≈ 1). c and n are both scaled by the same f, so c/n (and h) do not move;
* on a 1 the cell *revises* its storage decision: input gate wide open (ĩ = +10, i = exp(10) ≈ 2.2e4), forget
  gate shut (f̃ = -20, f ≈ 2e-9), so c/n ≈ z_t: the old content is overwritten (an exponential input gate can
  outweigh everything stored; a sigmoid one cannot, chapter 2);
* what is written on a 1 is z_t = tanh(-20·h_{t-1} - 10): the *flipped* sign of the previous state. This needs
  h_{t-1} inside the cell input, i.e. the recurrent matrix R_z — memory mixing. With R = 0 the cell cannot track
  parity (``tests/test_handcrafted.py`` shows it falls to chance);
* the very first steps start from h_0 = 0: a leading run of 0s writes z = tanh(-20·h + 30) > 0 ("even") and a
  first 1 writes tanh(-10) < 0 ("odd");
* the output gate stays open (õ = +10), so h_t = o_t·c_t/n_t ≈ ±1 and parity is the sign of h_t.

Layout (as ``xlstm_edu.np.slstm_recurrent`` takes it; gate order i, f, z, o):

* ``W``  (2, 4, H): the input contribution W·x_t for the one-hot input, so ``wx = W[bits]`` has shape (..., S, 4, H);
* ``R``  (4, NH, DH, DH): block-diagonal recurrent matrices, ``pre_g[head j] += h_{t-1}[head j] @ R[g, j]``;
* ``b``  (4, H).

Use::

    from xlstm_edu.handcrafted import parity_weights, parity_inputs, parity_from_h, parity_predict
    W, R, b = parity_weights()
    h, _ = xlstm_edu.np.slstm_recurrent(parity_inputs(bits, W), R, b)
    pred = parity_from_h(h)                      # (..., S) ints, equal to np.cumsum(bits, -1) % 2
    pred = parity_predict(bits)                  # the same in one call
"""

from __future__ import annotations

import numpy as np

from xlstm_edu._validate import as_float_array

# the hand-chosen numbers (see the module docstring); the gate order is (i, f, z, o)
GAIN = 20.0  # |R_z|: how strongly the previous state drives the cell input
INPUT_GATE = 10.0  # ĩ = -10 on a 0 (shut), +10 on a 1 (wide open)
FORGET_GATE = 20.0  # f̃ = +20 on a 0 (keep), -20 on a 1 (forget)
Z_ON_ZERO = 30.0  # z̃ offset on a 0: tanh(30 - 20 h) > 0, "even", for the leading run of zeros
Z_ON_ONE = -10.0  # z̃ offset on a 1: tanh(-20 h - 10) flips the sign of h (and gives "odd" from h = 0)
OUTPUT_GATE = 10.0  # õ: the output gate stays open


def parity_weights(dtype=np.float64):
    """Return ``(W, R, b)`` for one sLSTM unit (NH = DH = H = 1) that computes running parity.

    ``W`` (2, 4, 1): input contributions for the bits 0 and 1; ``R`` (4, 1, 1, 1); ``b`` (4, 1). Only R_z is
    non-zero: memory mixing through the cell input."""
    W = np.zeros((2, 4, 1), dtype=dtype)
    W[0, :, 0] = [-INPUT_GATE, +FORGET_GATE, Z_ON_ZERO, 0.0]  # a 0: keep (i shut, f open)
    W[1, :, 0] = [+INPUT_GATE, -FORGET_GATE, Z_ON_ONE, 0.0]  # a 1: overwrite (i open, f shut)
    R = np.zeros((4, 1, 1, 1), dtype=dtype)
    R[2, 0, 0, 0] = -GAIN  # z̃ += -20 h_{t-1}: the flip (eq. 11 with memory mixing)
    b = np.zeros((4, 1), dtype=dtype)
    b[3, 0] = OUTPUT_GATE  # o ≈ 1 (eq. 14)
    return W, R, b


def _check_bits(bits) -> np.ndarray:
    arr = np.asarray(bits)
    if arr.ndim < 1 or arr.size == 0:
        raise ValueError(f"bits: expected a non-empty array of shape (..., S) with values 0/1, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer) and not np.issubdtype(arr.dtype, np.bool_):
        if not np.all(np.isin(arr, (0, 1))):
            raise ValueError(f"bits: expected values 0 or 1, got dtype {arr.dtype} with other values")
    arr = arr.astype(np.int64)
    if not np.all((arr == 0) | (arr == 1)):
        raise ValueError(f"bits: expected values 0 or 1, got values in [{arr.min()}, {arr.max()}]")
    return arr


def parity_inputs(bits, W) -> np.ndarray:
    """The input contributions ``wx = W[bits]`` of shape (..., S, 4, H) for bits of shape (..., S)."""
    W = as_float_array(W, "W")
    if W.ndim != 3 or W.shape[0] != 2 or W.shape[1] != 4:
        raise ValueError(f"W: expected shape (2, 4, H), got {W.shape}")
    return W[_check_bits(bits)]


def parity_from_h(h) -> np.ndarray:
    """Decode the running parity from the sLSTM output h (..., S, H): 1 where unit 0 is negative ("odd")."""
    h = np.asarray(h)
    if h.ndim < 2:
        raise ValueError(f"h: expected shape (..., S, H), got {h.shape}")
    return (h[..., 0] < 0).astype(np.int64)


def parity_reference(bits) -> np.ndarray:
    """The true running parity: ``cumsum(bits) mod 2``."""
    return np.cumsum(_check_bits(bits), axis=-1) % 2


def parity_predict(bits, dtype=np.float64) -> np.ndarray:
    """Run the hand-crafted sLSTM (``xlstm_edu.np.slstm_recurrent``, sigmoid forget gate) on ``bits`` (..., S);
    return its running parity (..., S)."""
    from xlstm_edu.np import slstm_recurrent

    W, R, b = parity_weights(dtype)
    h, _ = slstm_recurrent(parity_inputs(bits, W), R, b)
    return parity_from_h(h)
