"""Checkers of chapter 7 (the chunkwise mLSTM).

7.1 ``check_chunk_end_state(chunk_end_state)`` — the state after a chunk, from the state before it (no loop);
7.2 ``check_mlstm_chunkwise(my_mlstm_chunkwise)`` — the chunkwise form, any S and chunk size
    (``check_implementation``);
7.3 ``check_run_in_pieces(run_in_pieces)`` — streaming: a sequence in pieces, the state handed from piece to piece.
"""

from __future__ import annotations

import numpy as np

from xlstm_edu.exercises import check_implementation, combine, exercise
from xlstm_edu.exercises._rules import call_learner, compare_diagnosed, loops_over_time, rule_verdict
from xlstm_edu.exercises.core import _emit, compare, raised_verdict
from xlstm_edu.np.gating import log_sigmoid

# ------------------------------------------------------------------------------------------------------ 7.1
HINT_7_1 = ("the end state is the recurrence over the chunk written out: every step's weight at the chunk's end, the "
            "carried state's weight, and one common stabilizer for all of them")


def _variants_7_1(C, n, m, k, v, i_pre, f_pre):
    """What (C, n, m) the known mistakes give on these inputs."""
    b = np.cumsum(log_sigmoid(f_pre))

    def end(log_w, m_new, decay_old=True):
        w = np.exp(log_w - m_new)
        decay = np.exp(b[-1] + m - m_new) if decay_old else 1.0
        return decay * C + (k * w[:, None]).T @ v, decay * n + k.T @ w, m_new

    log_w = b[-1] - b + i_pre
    return {
        "the new m leaves out the carried state: m' = max(b_L + m, max_s log D_Ls) — the old state can dominate":
            lambda: end(log_w, log_w.max()),
        "the carried state is not decayed: it is multiplied by the chunk's forget gates, exp(b_L + m - m')":
            lambda: end(log_w, max(b[-1] + m, log_w.max()), decay_old=False),
        "the input gates are missing from the steps' weights (log D_Ls = b_L - b_s + ĩ_s)":
            lambda: end(b[-1] - b, max(b[-1] + m, (b[-1] - b).max())),
    }


def _chunk_case(rng, L, DK, DV, m, i_shift=0.0):
    """A state (C, n, m) as the recurrence leaves it, then a chunk of L steps."""
    import xlstm_edu.np as xnp

    q0, k0, v0 = rng.standard_normal((6, DK)), rng.standard_normal((6, DK)), rng.standard_normal((6, DV))
    _, (C, n, m0) = xnp.mlstm_recurrent(q0, k0, v0, rng.normal(0, 2, 6), rng.normal(2, 1, 6))
    scale = np.exp(float(m0) - m)  # the same true memory, stored with stabilizer m
    k, v = rng.standard_normal((L, DK)), rng.standard_normal((L, DV))
    return (C * scale, n * scale, np.float64(m), k, v, rng.normal(i_shift, 3, L), rng.normal(1, 2, L))


def _state_after(C, n, m, k, v, i_pre, f_pre):
    import xlstm_edu.np as xnp

    q = np.zeros_like(k)  # the state does not depend on the queries
    _, state = xnp.mlstm_recurrent(q, k, v, i_pre, f_pre, state=(C, n, m))
    return state


@exercise("7.1")
def check_chunk_end_state(fn, *, quiet: bool = False):
    """Exercise 7.1: ``fn(C, n, m, k, v, i_pre, f_pre)`` -> the stabilized state (C, n, m) after the chunk, equal
    to the package's recurrence over the chunk from the same state, without a loop over time."""
    name = "exercise 7.1: chunk_end_state"
    rng = np.random.default_rng(71)
    cases = [
        ("a chunk of 10 steps, carried m = 2.5", _chunk_case(rng, 10, 4, 3, 2.5)),
        ("a chunk of 10 steps, a large carried m = 30 (the old state dominates)", _chunk_case(rng, 10, 4, 3, 30.0)),
        ("a chunk of one step", _chunk_case(rng, 1, 3, 5, 1.0)),
        ("a chunk of 7 steps, carried m = -20, large input gates (the chunk dominates)",
         _chunk_case(rng, 7, 2, 2, -20.0, 8.0)),
    ]
    verdicts = []
    for what, args in cases:
        C_ref, n_ref, m_ref = _state_after(*args)
        out, bad = call_learner(name, fn, *(np.array(a, copy=True) for a in args), hint=HINT_7_1)
        if bad is not None:
            return _emit(bad, quiet)
        if not isinstance(out, (tuple, list)) or len(out) != 3:
            return _emit(raised_verdict(name, f"expected a tuple (C, n, m), got {type(out).__name__}", HINT_7_1),
                         quiet)
        parts = (("m", out[2], m_ref, 1e-12), ("C", out[0], C_ref, 1e-9), ("n", out[1], n_ref, 1e-9))
        for j, (label, got, ref, tol) in enumerate(parts):
            variants = {what_: (lambda make=make, j=j: make()[(2, 0, 1)[j]])
                        for what_, make in _variants_7_1(*args).items()}
            v = compare_diagnosed(f"{name}: {label} ({what})", got, np.asarray(ref), rtol=tol, atol=1e-12,
                                  hint=HINT_7_1, variants=variants)
            if not v.ok:
                return _emit(v, quiet)
            verdicts.append(v)
    if loops_over_time(fn, lambda L: _chunk_case(np.random.default_rng(L), L, 3, 2, 1.0)):
        return _emit(rule_verdict(name, "right numbers, but your code runs a loop over the chunk's steps (more "
                                        "Python lines for a longer chunk): write the end state in closed form",
                                  HINT_7_1), quiet)
    return combine(name, verdicts, quiet=quiet)


# ------------------------------------------------------------------------------------------------------ 7.2
@exercise("7.2")
def check_mlstm_chunkwise(fn, *, quiet: bool = False):
    """Exercise 7.2: ``fn(q, k, v, i_pre, f_pre, chunk_size=L, state=None, eps=1e-6)`` -> ``(h, (C, n, m))`` equals
    ``xlstm_edu.np.mlstm_chunkwise``."""
    return check_implementation("mlstm_chunkwise", fn, quiet=quiet)


# ------------------------------------------------------------------------------------------------------ 7.3
HINT_7_3 = ("each call of chunkwise returns (h, state): the next piece must start from that state (the first from "
            "state=None), and the pieces are consecutive slices of `piece` steps covering the sequence once")


class _Spy:
    """The ``chunkwise`` function handed to the learner: the package's ``mlstm_chunkwise``, recording each call."""

    def __init__(self):
        import xlstm_edu.np as xnp

        self._fn = xnp.mlstm_chunkwise
        self.calls = []  # (length, state passed, state returned)

    def __call__(self, q, k, v, i_pre, f_pre, chunk_size=64, state=None, eps=1e-6):
        h, new_state = self._fn(q, k, v, i_pre, f_pre, chunk_size=chunk_size, state=state, eps=eps)
        self.calls.append((len(np.asarray(i_pre)), state, new_state))
        return h, new_state


def _inputs(rng, S, DK=4, DV=3):
    return (rng.standard_normal((S, DK)), rng.standard_normal((S, DK)), rng.standard_normal((S, DV)),
            rng.normal(0, 3, S), rng.normal(2, 2, S))


@exercise("7.3")
def check_run_in_pieces(fn, *, quiet: bool = False):
    """Exercise 7.3: ``fn(chunkwise, q, k, v, i_pre, f_pre, piece, chunk_size=8)`` -> ``(h, state)`` computed by
    calling ``chunkwise`` on consecutive pieces of at most ``piece`` steps, handing the state on; equal to one
    recurrent pass over the whole sequence."""
    import xlstm_edu.np as xnp

    name = "exercise 7.3: run_in_pieces"
    rng = np.random.default_rng(73)
    verdicts = []
    for S, piece in ((100, 23), (10, 10), (7, 3), (5, 8)):
        args = _inputs(rng, S)
        h_ref, (C_ref, n_ref, m_ref) = xnp.mlstm_recurrent(*args)
        spy = _Spy()
        # the package stays usable (the learner is meant to call it through `chunkwise`); the spy checks the calls
        out, bad = call_learner(name, fn, spy, *(a.copy() for a in args), piece, forbid=False, hint=HINT_7_3)
        if bad is not None:
            return _emit(bad, quiet)
        what = f"S = {S}, pieces of {piece}"
        lengths = [c[0] for c in spy.calls]
        expected_lengths = [min(piece, S - a) for a in range(0, S, piece)]
        if not spy.calls:
            return _emit(raised_verdict(name, f"{what}: `chunkwise` was never called", HINT_7_3), quiet)
        if lengths != expected_lengths:
            return _emit(raised_verdict(name, f"{what}: `chunkwise` was called on pieces of {lengths} steps, expected "
                                              f"{expected_lengths}", HINT_7_3), quiet)
        if spy.calls[0][1] is not None:
            return _emit(raised_verdict(name, f"{what}: the first piece must start from the zero state "
                                              f"(state=None)", HINT_7_3), quiet)
        for j in range(1, len(spy.calls)):
            passed, previous = spy.calls[j][1], spy.calls[j - 1][2]
            same = passed is not None and len(passed) == 3 and all(
                np.array_equal(np.asarray(a), np.asarray(b_)) for a, b_ in zip(passed, previous))
            if not same:
                return _emit(raised_verdict(name, f"{what}: piece {j + 1} did not start from the state that piece "
                                                  f"{j} returned", HINT_7_3), quiet)
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            return _emit(raised_verdict(name, f"expected a tuple (h, state), got {type(out).__name__}", HINT_7_3),
                         quiet)
        h, state = out
        v = compare(f"{name}: h ({what})", h, h_ref, rtol=1e-9, atol=1e-10, hint=HINT_7_3)
        if v.ok and (not isinstance(state, (tuple, list)) or len(state) != 3):
            v = raised_verdict(name, f"{what}: expected the final state (C, n, m), got {type(state).__name__}",
                               HINT_7_3)
        if v.ok:
            v = combine(f"{name}: final state ({what})",
                        [compare("C", state[0], C_ref, rtol=1e-9, atol=1e-10),
                         compare("n", state[1], n_ref, rtol=1e-9, atol=1e-10),
                         compare("m", state[2], m_ref, rtol=1e-12, atol=1e-12)], quiet=True)
        if not v.ok:
            return _emit(v, quiet)
        verdicts.append(v)
    return combine(name, verdicts, quiet=quiet)
