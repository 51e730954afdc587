"""Checkers of chapter 0 (start here): three warm-ups with the functions every gate uses.

0.1 ``check_stable_sigmoid(stable_sigmoid)`` — σ(x) = 1/(1 + e^{-x}) without ever computing exp of a large number;
0.2 ``check_tanh_grad(tanh_grad)`` — d tanh(x)/dx through tanh itself, checked against centred differences;
0.3 ``check_log_sigmoid(log_sigmoid)`` — log σ(x), the forget gate in log space, exact for every x.

The expected values come from the package (``xlstm_edu.np.gating``), computed before the learner's code runs. The
rule "never compute exp of a large number" is checked by what the function does: while it runs, ``np.exp`` (and
``np.expm1``, ``np.exp2``, ``np.power``) record every argument that overflows -- a warning silenced with
``np.errstate`` still computes ``inf``.
"""

from __future__ import annotations

import contextlib

import numpy as np

from xlstm_edu.exercises import check_gradient, combine, exercise
from xlstm_edu.exercises._rules import call_learner, compare_diagnosed, refused, rule_verdict
from xlstm_edu.exercises.core import _emit

# float64: exp(x) is inf for x > log(max) = 709.78; exp2 for x > 1024
_LIMITS = {"exp": np.log(np.finfo(np.float64).max), "expm1": np.log(np.finfo(np.float64).max),
           "exp2": np.log2(np.finfo(np.float64).max)}


@contextlib.contextmanager
def overflow_watch():
    """Inside the block, ``np.exp``, ``np.expm1``, ``np.exp2`` and ``np.power`` record every call whose result
    overflows to inf (finite arguments only) in the yielded list, as ``(function name, largest argument)``."""
    seen: list = []
    real = {name: getattr(np, name) for name in ("exp", "expm1", "exp2", "power")}

    def watched(name, fn):
        def call(x, *args, **kwargs):
            out = fn(x, *args, **kwargs)
            try:
                a = np.asarray(x, dtype=np.float64)
                if name == "power":
                    base, expo = a, np.asarray(args[0] if args else kwargs.get("x2"), dtype=np.float64)
                    bad = np.isinf(np.asarray(out, dtype=np.float64)) & np.isfinite(base) & np.isfinite(expo)
                    if np.any(bad):
                        seen.append(("np.power", float(np.max(np.broadcast_to(expo, bad.shape)[bad]))))
                else:
                    finite = a[np.isfinite(a)]
                    if finite.size and finite.max() > _LIMITS[name]:
                        seen.append((f"np.{name}", float(finite.max())))
            except (TypeError, ValueError):
                pass
            return out

        return call

    try:
        for name, fn in real.items():
            setattr(np, name, watched(name, fn))
        yield seen
    finally:
        for name, fn in real.items():
            setattr(np, name, fn)


def _diagnosed(name, got, expected, *, rtol, atol, hint, variants):
    """``compare_diagnosed`` matching known mistakes to ``rtol`` relative precision with no absolute slack: these
    mistakes differ from the right answer only in the tiny values."""
    return compare_diagnosed(name, got, expected, rtol=rtol, atol=atol, hint=hint, variants=variants,
                             match_rtol=1e-9, match_atol=0.0)


def _overflow_text(seen) -> str:
    fn, arg = seen[0]
    return (f"right values, but your function computed {fn}({arg:g}), which overflows to inf (silencing the warning "
            f"with np.errstate does not stop the overflow)")


# ------------------------------------------------------------------------------------------------------ 0.1
HINT_0_1 = ("for very negative x, e^{-x} is astronomically large: which of the two forms of σ(x) only ever "
            "exponentiates a number <= 0? (np.where evaluates both of its branches on every entry)")

_SIGMOID_CASES = [
    ("x from -20 to 20", np.linspace(-20, 20, 81), 1e-12),
    ("a 2 x 3 array", np.array([[-3.0, 0.0, 3.0], [-0.5, 7.25, -36.0]]), 1e-12),
    ("x = -720 and -740: tiny but not zero, about 1e-313 and 4e-322", np.array([-720.0, -740.0, 5.0]), 1e-6),
    ("x = ±1000 and ±750", np.array([-1000.0, -750.0, 750.0, 1000.0]), 1e-12),
    ("a single number, x = 0.3", np.float64(0.3), 1e-12),
]


def _sigmoid_variants(x):
    with np.errstate(all="ignore"):
        return {
            "the naive 1 / (1 + exp(-x)): exp(-x) overflows for x < -709, and the tiny values become 0":
                lambda: 1 / (1 + np.exp(-x)),
            "0.5 (1 + tanh(x / 2)): stable, but it loses every digit of small σ(x) to cancellation":
                lambda: 0.5 * (1 + np.tanh(x / 2)),
            "x clipped before exp: the tiny values come out wrong by many orders of magnitude":
                lambda: 1 / (1 + np.exp(-np.clip(x, -500, 500))),
        }


@exercise("0.1")
def check_stable_sigmoid(fn, *, quiet: bool = False):
    """Exercise 0.1: ``fn(x)`` -> σ(x) for an array (or a number) x, never computing exp of a large number."""
    from xlstm_edu.np import gating

    name = "exercise 0.1: stable_sigmoid"
    verdicts = []
    for what, x, rtol in _SIGMOID_CASES:
        expected = gating.sigmoid(np.asarray(x, dtype=np.float64))
        with refused(gating.sigmoid, gating.log_sigmoid), overflow_watch() as seen:
            got, bad = call_learner(name, fn, np.array(x, copy=True), hint=HINT_0_1, forbid=False)
        if bad is not None:
            return _emit(bad, quiet)
        v = _diagnosed(f"{name} ({what})", got, expected, rtol=rtol, atol=0.0, hint=HINT_0_1,
                              variants=_sigmoid_variants(np.asarray(x, dtype=np.float64)))
        if not v.ok:
            return _emit(v, quiet)
        if seen:
            return _emit(rule_verdict(f"{name} ({what})", _overflow_text(seen), HINT_0_1), quiet)
        verdicts.append(v)
    return combine(name, verdicts, quiet=quiet)


# ------------------------------------------------------------------------------------------------------ 0.2
HINT_0_2 = ("write tanh(x) = (e^x - e^-x) / (e^x + e^-x), differentiate with the quotient rule, and look for "
            "tanh(x) itself in the result; is your answer below 1 everywhere and exactly 1 at x = 0?")


def _tanh_variants(x):
    t = np.tanh(x)
    return {"1 - tanh(x): the tanh needs a square": lambda: 1 - t,
            "tanh(x)^2: that is the part to subtract from 1": lambda: t ** 2,
            "1 / cosh(x): the hyperbolic secant needs a square": lambda: 1 / np.cosh(x)}


@exercise("0.2")
def check_tanh_grad(fn, *, quiet: bool = False):
    """Exercise 0.2: ``fn(x)`` -> d tanh(x)/dx, element-wise; compared with the exact derivative and with centred
    differences of L(x) = Σ_j tanh(x_j)."""
    name = "exercise 0.2: tanh_grad"
    verdicts = []
    for what, x in [("x from -3 to 3", np.linspace(-3, 3, 13)), ("x from -12 to 12", np.linspace(-12, 12, 9)),
                    ("a 2 x 2 array", np.array([[0.1, -0.7], [2.5, -1.9]]))]:
        got, bad = call_learner(name, fn, x.copy(), hint=HINT_0_2, forbid=False)
        if bad is not None:
            return _emit(bad, quiet)
        v = _diagnosed(f"{name} ({what})", got, 1.0 / np.cosh(x) ** 2, rtol=1e-10, atol=1e-14,
                              hint=HINT_0_2, variants=_tanh_variants(x))
        if not v.ok:
            return _emit(v, quiet)
        verdicts.append(v)
    x = np.linspace(-3, 3, 13)
    verdicts.append(check_gradient(f"{name} (against centred differences)", lambda: np.tanh(x).sum(), x,
                                   lambda: fn(x.copy()), hint=HINT_0_2, quiet=True))
    if not verdicts[-1].ok:
        return _emit(verdicts[-1], quiet)
    return combine(name, verdicts, quiet=quiet)


# ------------------------------------------------------------------------------------------------------ 0.3
HINT_0_3 = ("log σ(x) = -log(1 + e^{-x}): which exponential stays small for x < 0, and which for x > 0? For large "
            "x, log(1 + tiny) needs np.log1p, and log(σ(x)) rounds σ(x) to 1 first")


def _log_sigmoid_variants(x):
    with np.errstate(all="ignore"):
        return {
            "-log1p(exp(-x)): exp(-x) overflows for x < -709": lambda: -np.log1p(np.exp(-x)),
            "log(σ(x)): σ(x) rounds to 1 for x > 37 (log gives 0) and to 0 for x < -745 (log gives -inf)":
                lambda: np.log(1 / (1 + np.exp(-x))),
            "log(1 + exp(-|x|)) with np.log instead of np.log1p: for large |x| the 1 + tiny rounds to 1":
                lambda: np.minimum(x, 0) - np.log(1 + np.exp(-np.abs(x))),
        }


@exercise("0.3")
def check_log_sigmoid(fn, *, quiet: bool = False):
    """Exercise 0.3: ``fn(x)`` -> log σ(x) element-wise, to full precision for every x, without overflow."""
    from xlstm_edu.np import gating

    name = "exercise 0.3: stable_log_sigmoid"
    cases = [("x from -30 to 30", np.linspace(-30, 30, 61)),
             ("x = 40 and 60: log σ(x) is about -4e-18 and -9e-27, not 0", np.array([40.0, 60.0, 20.0])),
             ("x = -800 and -1000: log σ(x) is about x", np.array([-800.0, -1000.0, -5.0])),
             ("x = 1000", np.array([1000.0, 0.0]))]
    verdicts = []
    for what, x in cases:
        expected = gating.log_sigmoid(x)
        with refused(gating.sigmoid, gating.log_sigmoid, gating.log_forget_gate), overflow_watch() as seen:
            got, bad = call_learner(name, fn, x.copy(), hint=HINT_0_3, forbid=False)
        if bad is not None:
            return _emit(bad, quiet)
        v = _diagnosed(f"{name} ({what})", got, expected, rtol=1e-12, atol=0.0, hint=HINT_0_3,
                              variants=_log_sigmoid_variants(x))
        if not v.ok:
            return _emit(v, quiet)
        if seen:
            return _emit(rule_verdict(f"{name} ({what})", _overflow_text(seen), HINT_0_3), quiet)
        verdicts.append(v)
    return combine(name, verdicts, quiet=quiet)
