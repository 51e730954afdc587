"""Checkers of chapter 6 (the parallel mLSTM).

6.1 ``check_log_D(my_log_D)`` — the log gate matrix with a cumulative sum (no loop);
6.2 ``check_mlstm_parallel(my_mlstm_parallel)`` — the stabilized parallel form (``check_implementation``);
6.3 ``check_parallel_backward(my_parallel_backward)`` — the gradients of the parallel form with respect to q, k, v
    and the gate pre-activations (stretch), against centred differences of the package's forward pass.
"""

from __future__ import annotations

import numpy as np

from xlstm_edu.exercises import check_gradient, check_implementation, combine, exercise
from xlstm_edu.exercises._rules import call_learner, check_cases_without_time_loop
from xlstm_edu.exercises.core import _emit, compare, raised_verdict
from xlstm_edu.np.gating import log_sigmoid

# ------------------------------------------------------------------------------------------------------ 6.1
HINT_6_1 = ("log D_ts is ĩ_s plus the log forget gates that act after step s, up to t; above the diagonal the weight "
            "is zero")


def _variants_6_1(i_pre, f_pre):
    S = len(i_pre)
    log_f = log_sigmoid(f_pre)
    b = np.cumsum(log_f)
    full = b[:, None] - b[None, :] + i_pre[None, :]
    lower = np.tri(S, dtype=bool)
    return {
        "the cumulative sum is off by one: b_t - b_s sums log f_r for r = s+1 .. t, without step s's own gate":
            lambda: np.where(lower, full + log_f[None, :], -np.inf),
        "there are zeros above the diagonal: in log space zero weight is -inf (a 0 is the weight e^0 = 1 on the "
        "future)": lambda: np.tril(full),
        "the pre-activation f̃ is used as log f: the forget gate is a sigmoid, log f = log sigmoid(f̃)":
            lambda: np.where(lower, np.cumsum(f_pre)[:, None] - np.cumsum(f_pre)[None, :] + i_pre[None, :], -np.inf),
        "the wrong triangle is kept: row t (the query) may see columns s <= t only":
            lambda: np.where(lower.T, full, -np.inf),
    }


def _gates(rng, S, i_scale=3.0, f_mean=1.0, f_scale=3.0):
    return rng.normal(0, i_scale, S), rng.normal(f_mean, f_scale, S)


def _package_log_D(i_pre, f_pre):
    import xlstm_edu.np as xnp

    S = len(i_pre)
    z = np.zeros((S, 1))
    return xnp.mlstm_parallel_parts(z, z, z, i_pre, f_pre)["log_D"]


@exercise("6.1")
def check_log_D(fn, *, quiet: bool = False):
    """Exercise 6.1: ``fn(i_pre (S,), f_pre (S,))`` -> log D (S, S) (sigmoid forget gate), -inf above the
    diagonal, without a loop over time."""
    name = "exercise 6.1: my_log_D"
    rng = np.random.default_rng(61)
    cases = [
        ("S = 7", _gates(rng, 7)),
        ("one step (S = 1)", _gates(rng, 1)),
        ("S = 30, forget gates from nearly shut to wide open", _gates(rng, 30, 4.0, 0.0, 6.0)),
    ]
    return check_cases_without_time_loop(name, fn, cases, _package_log_D, hint=HINT_6_1, rtol=1e-10, atol=1e-10,
                                         variants=_variants_6_1,
                                         make_args=lambda S: _gates(np.random.default_rng(S), S),
                                         advice="use np.cumsum and broadcasting", quiet=quiet)


# ------------------------------------------------------------------------------------------------------ 6.2
@exercise("6.2")
def check_mlstm_parallel(fn, *, quiet: bool = False):
    """Exercise 6.2: ``fn(q, k, v, i_pre, f_pre, eps=1e-6)`` -> h equals ``xlstm_edu.np.mlstm_parallel``."""
    return check_implementation("mlstm_parallel", fn, quiet=quiet)


# ------------------------------------------------------------------------------------------------------ 6.3
GRAD_NAMES = ("q", "k", "v", "i_pre", "f_pre")
HINT_6_3 = ("go through the chain from the end: H = P V, P = S̃ / d with d = max(|S̃ 1|, exp(-m)), S̃ = A ⊙ D', "
            "D' = exp(log D - m) with m held constant, log D from the cumulative sum of log f")
HINTS_6_3 = {
    "v": "H = P V: dL/dV comes from the normalized matrix P (transposed), not from S̃",
    "q": "is the denominator held constant? d_t = |sum_s S̃_ts| depends on S̃ too (where it beats the bound), so "
         "every entry of row t gets a second share of the gradient",
    "k": "is the denominator held constant? d_t = |sum_s S̃_ts| depends on S̃ too (where it beats the bound)",
    "i_pre": "ĩ_s sits in column s of log D: sum d log D over the right axis, and only where s <= t",
    "f_pre": "is the gradient carried back through the cumulative sum? log f_r enters every b_t with t >= r; and "
             "d log sigmoid(x)/dx = sigmoid(-x)",
}


def _backward_case(rng, S, DK, DV, q_scale=1.0):
    return dict(dh=rng.standard_normal((S, DV)), q=rng.standard_normal((S, DK)) * q_scale,
                k=rng.standard_normal((S, DK)), v=rng.standard_normal((S, DV)), i_pre=rng.normal(0, 2, S),
                f_pre=rng.normal(1, 1.5, S))


@exercise("6.3")
def check_parallel_backward(fn, *, quiet: bool = False):
    """Exercise 6.3: ``fn(dh, q, k, v, i_pre, f_pre)`` -> dict of dL/dq, dL/dk, dL/dv, dL/di_pre, dL/df_pre for
    L = sum(dh * mlstm_parallel(q, k, v, i_pre, f_pre, eps=0)), each checked with centred differences."""
    import xlstm_edu.np as xnp

    name = "exercise 6.3: my_parallel_backward"
    rng = np.random.default_rng(63)
    cases = [
        ("S = 6, DK = 3, DV = 2", _backward_case(rng, 6, 3, 2)),
        ("S = 5, DK = 2, DV = 3, small queries (the bound wins in some rows)", _backward_case(rng, 5, 2, 3, 0.1)),
    ]
    verdicts = []
    for what, c in cases:
        grads, bad = call_learner(name, fn, *(c[key].copy() for key in ("dh",) + GRAD_NAMES), hint=HINT_6_3)
        if bad is not None:
            return _emit(bad, quiet)
        if not isinstance(grads, dict) or set(grads) != set(GRAD_NAMES):
            got = sorted(grads) if isinstance(grads, dict) else type(grads).__name__
            return _emit(raised_verdict(name, f"expected a dict with the keys {list(GRAD_NAMES)}, got {got}",
                                        HINT_6_3), quiet)
        x = {key: c[key].copy() for key in GRAD_NAMES}

        def loss():
            return float(np.sum(c["dh"] * xnp.mlstm_parallel(x["q"], x["k"], x["v"], x["i_pre"], x["f_pre"],
                                                              eps=0.0)))

        for key in GRAD_NAMES:
            x_key, g_key, first = x[key], grads[key], None
            if key == "f_pre":
                # f_1 never enters log D (b_t - b_s sums r = s+1 .. t): its gradient is exactly 0, which centred
                # differences only reproduce up to round-off; check it on its own, the rest against differences
                try:
                    g_key = np.asarray(g_key, dtype=np.float64)
                except (TypeError, ValueError):
                    return _emit(raised_verdict(name, "dL/df_pre is not an array of numbers"), quiet)
                if g_key.shape == x_key.shape and g_key.size:
                    first = g_key[0]
                    x_key, g_key = x_key[1:], g_key[1:]  # a view: the differences perturb x["f_pre"] itself
            v = check_gradient(f"{name}: dL/d{key} ({what})", loss, x_key, g_key, tol=1e-6, hint=HINTS_6_3[key],
                               quiet=True)
            if v.ok and first is not None:
                v = compare(f"{name}: dL/df_pre[0] ({what})", first, 0.0, rtol=0, atol=1e-9,
                            hint="the first forget gate never enters log D (b_t - b_s sums r = s+1 .. t), so its "
                                 "gradient is 0")
            if not v.ok:
                return _emit(v, quiet)
            verdicts.append(v)
    return combine(name, verdicts, quiet=quiet)
