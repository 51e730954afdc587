"""Checkers of chapter 5 (matrix memory: the mLSTM).

5.1 ``check_store_with_gates(store_with_gates)`` — the gated memory after S steps, in closed form (no loop);
5.2 ``check_mlstm_recurrent(my_mlstm_recurrent)`` — the stabilized mLSTM recurrence (``check_implementation``);
5.3 ``check_linear_attention(linear_attention)`` — causal linear attention in matrix form (no loop).

The expected values come from the package (``xlstm_edu.np.mlstm_recurrent``), computed before the learner's code
runs; while it runs, the ready-made implementations refuse.
"""

from __future__ import annotations

import numpy as np

from xlstm_edu.exercises import check_implementation, exercise
from xlstm_edu.exercises._rules import check_cases_without_time_loop

# ------------------------------------------------------------------------------------------------------ 5.1
HINT_5_1 = "pair s carries its input gate i_s and the product of the forget gates applied after it was written"


def _variants_5_1(keys, values, i, f):
    b = np.cumsum(np.log(f))

    def with_weights(w):
        return lambda: (keys * w[:, None]).T @ values

    return {
        "the decay includes the pair's own forget gate f_s; it starts at f_{s+1} (with b = cumsum(log f), the "
        "product is exp(b_S - b_s))": with_weights(np.exp(b[-1] - b + np.log(f)) * i),
        "the decay uses the forget gates before s; pair s is decayed by those that come after it":
            with_weights(np.exp(b - np.log(f)) * i),
        "the input gates i_s are missing": with_weights(np.exp(b[-1] - b)),
    }


def _gated_inputs(rng, S, DK=5, DV=3, i_scale=1.0, f_low=0.5):
    keys, values = rng.standard_normal((S, DK)), rng.standard_normal((S, DV))
    return keys, values, np.exp(rng.normal(0, i_scale, S)), rng.uniform(f_low, 1.0, S)


def _true_memory(keys, values, i, f):
    """The package's recurrence with i_pre = log i and the exponential forget gate (log f = f_pre); its stabilized
    state times exp(m) is the true memory C_S."""
    import xlstm_edu.np as xnp

    _, (C, _, m) = xnp.mlstm_recurrent(keys, keys, values, np.log(i), np.log(f), forget_gate="exp")
    return C * np.exp(m)


@exercise("5.1")
def check_store_with_gates(fn, *, quiet: bool = False):
    """Exercise 5.1: ``fn(keys (S, DK), values (S, DV), i (S,), f (S,))`` -> the true memory C_S (DK, DV)."""
    name = "exercise 5.1: store_with_gates"
    rng = np.random.default_rng(51)
    cases = [
        ("S = 12, gates that vary over time", _gated_inputs(rng, 12)),
        ("one pair (S = 1)", _gated_inputs(rng, 1)),
        ("S = 9, forget gates down to 0.05, input gates from e^-3 to e^3", _gated_inputs(rng, 9, 4, 6, 1.5, 0.05)),
    ]
    return check_cases_without_time_loop(name, fn, cases, _true_memory, hint=HINT_5_1, rtol=1e-9, atol=1e-12,
                                         variants=_variants_5_1,
                                         make_args=lambda S: _gated_inputs(np.random.default_rng(S), S),
                                         advice="write it with a cumulative sum, no loop", quiet=quiet)


# ------------------------------------------------------------------------------------------------------ 5.2
@exercise("5.2")
def check_mlstm_recurrent(fn, *, quiet: bool = False):
    """Exercise 5.2: ``fn(q, k, v, i_pre, f_pre, state=None, eps=1e-6)`` -> ``(h, (C, n, m))`` equals
    ``xlstm_edu.np.mlstm_recurrent``."""
    return check_implementation("mlstm_recurrent", fn, quiet=quiet)


# ------------------------------------------------------------------------------------------------------ 5.3
HINT_5_3 = "row t must equal the formula of section 5: only s <= t, q scaled by 1/sqrt(DK), max(|row sum|, 1) below"


def _variants_5_3(q, k, v):
    S, DK = q.shape
    A = (q / np.sqrt(DK)) @ k.T
    L = np.tril(A)
    return {
        "the scores above the diagonal are kept, so step t sees later steps: mask them (causality)":
            lambda: (A @ v) / np.maximum(np.abs(A.sum(axis=1)), 1.0)[:, None],
        "the bound 1 is missing from the denominator": lambda: (L @ v) / np.abs(L.sum(axis=1))[:, None],
        "the absolute value is missing from the denominator":
            lambda: (L @ v) / np.maximum(L.sum(axis=1), 1.0)[:, None],
        "q is not scaled by 1/sqrt(DK)": lambda: (np.tril(q @ k.T) @ v) / np.maximum(
            np.abs(np.tril(q @ k.T).sum(axis=1)), 1.0)[:, None],
    }


def _qkv(rng, S, DK, DV, q_scale=1.0):
    return rng.standard_normal((S, DK)) * q_scale, rng.standard_normal((S, DK)), rng.standard_normal((S, DV))


def _ungated(q, k, v):
    import xlstm_edu.np as xnp

    S = q.shape[0]
    h, _ = xnp.mlstm_recurrent(q, k, v, np.zeros(S), np.zeros(S), eps=0.0, forget_gate="exp")
    return h


@exercise("5.3")
def check_linear_attention(fn, *, quiet: bool = False):
    """Exercise 5.3: ``fn(q (S, DK), k (S, DK), v (S, DV))`` -> h (S, DV), the mLSTM with its gates switched off
    (ĩ = 0, exponential forget gate with f̃ = 0, eps = 0), without a loop over time."""
    name = "exercise 5.3: linear_attention"
    rng = np.random.default_rng(53)
    cases = [
        ("S = 20, DK = 6, DV = 4", _qkv(rng, 20, 6, 4)),
        ("one step (S = 1)", _qkv(rng, 1, 3, 2)),
        ("S = 9, DK = 3, DV = 5, small queries (the bound 1 matters)", _qkv(rng, 9, 3, 5, 0.2)),
    ]
    return check_cases_without_time_loop(name, fn, cases, _ungated, hint=HINT_5_3, rtol=1e-9, atol=1e-12,
                                         variants=_variants_5_3,
                                         make_args=lambda S: _qkv(np.random.default_rng(S), S, 4, 3),
                                         advice="build the S x S score matrix instead", quiet=quiet)
