"""Checkers of chapter 4 (the sLSTM: heads, memory mixing, state tracking).

4.1 ``check_head_recurrence(head_recurrence)`` — memory mixing head by head, without the H×H matrix;
4.2 ``check_slstm(my_slstm)`` — the stabilized multi-head sLSTM over a sequence (``check_implementation``);
4.3 ``check_parity_weights(my_parity_weights)`` — hand-set sLSTM weights that compute parity.

Every checker calls the learner's function itself, compares with the package (``xlstm_edu.np``) and refuses the
ready-made answers while the learner's code runs.
"""

from __future__ import annotations

import numpy as np

from xlstm_edu.exercises import check_implementation, combine, exercise
from xlstm_edu.exercises._rules import call_learner, check_cases, peak_memory, refused, rule_verdict
from xlstm_edu.exercises.core import _emit, compare, raised_verdict

# ------------------------------------------------------------------------------------------------------ 4.1
HINT_4_1 = ("the units of head j, h_prev[..., j*DH:(j+1)*DH], meet only the blocks R[:, j], and the result must come "
            "back in the layout (..., 4, H) of the package")


def _variants_4_1(h_prev, R):
    G, NH, DH, _ = R.shape
    hh = h_prev.reshape(*h_prev.shape[:-1], NH, DH)
    lead = h_prev.shape[:-1]
    return {
        "the blocks are transposed: the code convention is h_prev @ R[g, j] (the sum runs over a block's first "
        "index), the transpose of the equations' R h": lambda: np.einsum("...jd,gjed->...gje", hh, R).reshape(
            *lead, G, NH * DH),
        "heads and gates are interleaved: before merging into (..., 4, H) the axes must be (..., gate, head, unit)":
            lambda: np.einsum("...jd,gjde->...jge", hh, R).reshape(*lead, G, NH * DH),
    }


def _package_recurrence(h_prev, R):
    """The package's memory-mixing term: W x + R h + b with W x = b = 0, shape (..., 4, H)."""
    from xlstm_edu.np.slstm import _head_matrix, _preactivations

    H = h_prev.shape[-1]
    zeros = np.zeros(h_prev.shape[:-1] + (4, H))
    return _preactivations(zeros, _head_matrix(R), np.zeros((4, H)), h_prev)


@exercise("4.1")
def check_head_recurrence(fn, *, quiet: bool = False):
    """Exercise 4.1: ``fn(h_prev, R)`` -> (..., 4, H), with no H×H matrix formed along the way."""
    name = "exercise 4.1: head_recurrence"
    rng = np.random.default_rng(41)
    cases = [  # (what, h_prev, R)
        ("3 heads of 2 units, a batch of 5", rng.normal(size=(5, 6)), rng.normal(size=(4, 3, 2, 2))),
        ("2 heads of 3 units, no batch dimension", rng.normal(size=(6,)), rng.normal(size=(4, 2, 3, 3))),
        ("4 heads of 1 unit, batch dimensions (2, 3)", rng.normal(size=(2, 3, 4)), rng.normal(size=(4, 4, 1, 1))),
        ("1 head of 4 units (a full matrix)", rng.normal(size=(2, 4)), rng.normal(size=(4, 1, 4, 4))),
    ]
    verdicts, bad = check_cases(name, fn, [(what, (h_prev, R)) for what, h_prev, R in cases], _package_recurrence,
                                hint=HINT_4_1, rtol=1e-10, atol=1e-12, variants=_variants_4_1)
    if bad is not None:
        return _emit(bad, quiet)
    # the rule: no H x H matrix. 256 heads of 2 units: one full 512 x 512 matrix is 2 MiB, the blocks 32 KiB
    h_big, R_big = rng.normal(size=(3, 512)), rng.normal(size=(4, 256, 2, 2))
    expected = _package_recurrence(h_big, R_big)
    got, bad = call_learner(name, fn, h_big, R_big, hint=HINT_4_1)
    if bad is not None:
        return _emit(bad, quiet)
    v = compare(f"{name} (256 heads of 2 units)", got, expected, rtol=1e-10, atol=1e-12, hint=HINT_4_1)
    if not v.ok:
        return _emit(v, quiet)
    verdicts.append(v)
    peak = peak_memory(fn, h_big, R_big)
    if peak > 2 ** 20:
        return _emit(rule_verdict(
            name, f"right numbers, but the call allocated {peak / 2 ** 20:.1f} MiB for 256 heads of 2 units "
                  f"(the blocks take 0.03 MiB): an H x H matrix was built. Multiply each head by its own blocks",
            hint=HINT_4_1), quiet)
    return combine(name, verdicts, quiet=quiet)


# ------------------------------------------------------------------------------------------------------ 4.2
@exercise("4.2")
def check_slstm(fn, *, quiet: bool = False):
    """Exercise 4.2: ``fn(wx, R, b, state=None)`` -> ``(h, (h, c, n, m))`` equals ``xlstm_edu.np.slstm_recurrent``."""
    return check_implementation("slstm_recurrent", fn, quiet=quiet)


# ------------------------------------------------------------------------------------------------------ 4.3
HINT_4_3 = ("on a 0 keep (input gate shut, forget gate open), on a 1 overwrite (input gate open, forget gate shut) "
            "with z = tanh(R_z h_{t-1} + offset), R_z large and negative, so that a 1 writes the flipped state")


def _parity_strings():
    rng = np.random.default_rng(43)
    return [
        ("200 random strings of length 256", rng.integers(0, 2, size=(200, 256))),
        ("20 random strings of length 1000", rng.integers(0, 2, size=(20, 1000))),
        ("the strings 1, 11, 111, ... (a run of 300 ones)", np.ones((1, 300), dtype=int)),
        ("a run of 300 zeros", np.zeros((1, 300), dtype=int)),
        ("zeros, then ones: 0001111...", np.concatenate([np.zeros((1, 5), int), np.ones((1, 40), int)], axis=1)),
    ]


@exercise("4.3")
def check_parity_weights(fn, *, quiet: bool = False):
    """Exercise 4.3: ``fn()`` -> ``(W (2, 4, 1), R (4, 1, 1, 1), b (4, 1))``; the package's sLSTM with these weights
    reads the parity after every bit of many strings as ``h < 0``, without a single mistake."""
    import xlstm_edu.handcrafted as handcrafted
    import xlstm_edu.np as xnp

    name = "exercise 4.3: parity weights"
    with refused(handcrafted.parity_weights, handcrafted.parity_predict):
        out, bad = call_learner(name, fn, hint=HINT_4_3)
    if bad is not None:
        return _emit(bad, quiet)
    if not isinstance(out, (tuple, list)) or len(out) != 3:
        return _emit(raised_verdict(name, f"expected a tuple (W, R, b), got {type(out).__name__}", HINT_4_3), quiet)
    shapes = {"W": (2, 4, 1), "R": (4, 1, 1, 1), "b": (4, 1)}
    arrays = []
    for (label, shape), a in zip(shapes.items(), out):
        try:
            a = np.asarray(a, dtype=np.float64)
        except (TypeError, ValueError):
            return _emit(raised_verdict(name, f"{label} is not an array of numbers", HINT_4_3), quiet)
        if a.shape != shape:
            return _emit(raised_verdict(name, f"{label} has shape {a.shape}, expected {shape}", HINT_4_3), quiet)
        if not np.all(np.isfinite(a)):
            return _emit(raised_verdict(name, f"{label} holds NaN or inf", HINT_4_3), quiet)
        arrays.append(a)
    W, R, b = arrays
    verdicts = []
    for what, bits in _parity_strings():
        h, _ = xnp.slstm_recurrent(W[bits], R, b)
        got = (h[..., 0] < 0).astype(int)
        target = np.cumsum(bits, axis=1) % 2
        acc = float((got == target).mean())
        if acc < 1.0:
            t_bad = int(np.argwhere(got != target)[0][1]) + 1
            return _emit(raised_verdict(
                name, f"wrong parity on {what}: accuracy {acc:.3f} (first mistake after bit {t_bad})"
                      + (" -- with R = 0 no weights can do it" if not np.any(R) else ""), HINT_4_3), quiet)
        verdicts.append(compare(f"{name} ({what})", acc, 1.0, rtol=0, atol=0))
    return combine(name, verdicts, quiet=quiet)
