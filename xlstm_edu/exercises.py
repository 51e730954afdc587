"""Self-checking exercises: compare a learner's answer with the reference and print a clear verdict.

In the spirit of nn-zero-to-hero's ``cmp`` and CS231n's relative-error checks::

    >>> from xlstm_edu.exercises import check
    >>> check("c_t", my_c, reference_c)
    ✅ c_t: exact
    >>> check("c_t", my_c + 1e-9, reference_c)
    ✅ c_t: close (max abs diff 1.0e-09, max rel err 2.3e-09, tolerance rtol=1e-06 atol=1e-08)
    >>> check("c_t", 2 * my_c, reference_c, hint="did you add i_t * z_t?")
    ❌ c_t: wrong (max abs diff 0.83 at index (3,)) -- hint: did you add i_t * z_t?

The verdict is also returned (``Verdict.ok``), so a checker can be used in tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Verdict:
    name: str
    status: str  # "exact", "close" or "wrong"
    max_abs_diff: float
    max_rel_err: float
    message: str
    printed: bool = False  # set when the checker already printed the message

    def _ipython_display_(self):
        # a cell ending in check(...) would otherwise show the verdict twice: printed, then as Out[..]
        if not self.printed:
            print(self.message)

    @property
    def ok(self) -> bool:
        return self.status in ("exact", "close")

    def __bool__(self) -> bool:
        return self.ok

    def __repr__(self) -> str:
        return self.message


def _to_numpy(x):
    if hasattr(x, "detach"):  # a torch tensor
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def check(name: str, got, expected, *, rtol: float = 1e-6, atol: float = 1e-8, hint: str | None = None,
          quiet: bool = False) -> Verdict:
    """Compare ``got`` with ``expected`` (arrays, tensors or numbers) and print a verdict.

    exact: identical values; close: ``|got - expected| <= atol + rtol * |expected|`` everywhere;
    wrong: anything else, including a shape mismatch, NaN where the reference has none, or no answer (None).
    """
    hint_txt = f" -- hint: {hint}" if hint else ""
    if got is None or got is Ellipsis:
        v = Verdict(name, "wrong", np.inf, np.inf, f"❌ {name}: no answer yet (got {got!r}){hint_txt}")
    else:
        g, e = _to_numpy(got), _to_numpy(expected)
        if g.shape != e.shape:
            v = Verdict(name, "wrong", np.inf, np.inf,
                        f"❌ {name}: wrong shape: expected {e.shape}, got {g.shape}{hint_txt}")
        elif g.size == 0:
            v = Verdict(name, "exact", 0.0, 0.0, f"✅ {name}: exact (empty)")
        else:
            g64, e64 = g.astype(np.float64), e.astype(np.float64)
            if np.array_equal(g64, e64, equal_nan=True):
                v = Verdict(name, "exact", 0.0, 0.0, f"✅ {name}: exact")
            else:
                with np.errstate(invalid="ignore", divide="ignore"):
                    diff = np.abs(g64 - e64)
                    diff = np.where(np.isnan(g64) != np.isnan(e64), np.inf, np.nan_to_num(diff, nan=0.0))
                    rel = diff / np.maximum(np.abs(g64) + np.abs(e64), 1e-8)  # CS231n's relative error
                worst = np.unravel_index(int(np.argmax(diff)), diff.shape)
                mad, mre = float(diff.max()), float(np.max(np.nan_to_num(rel, nan=np.inf)))
                if np.all(diff <= atol + rtol * np.abs(np.nan_to_num(e64))):
                    v = Verdict(name, "close", mad, mre,
                                f"✅ {name}: close (max abs diff {mad:.1e}, max rel err {mre:.1e}, "
                                f"tolerance rtol={rtol:g} atol={atol:g})")
                else:
                    where = f" at index {tuple(int(i) for i in worst)}" if diff.ndim else ""
                    v = Verdict(name, "wrong", mad, mre,
                                f"❌ {name}: wrong (max abs diff {mad:.3g}{where}){hint_txt}")
    if not quiet:
        print(v.message)
        v.printed = True
    return v


def check_gradient(name: str, f, x, analytic, *, tol: float = 1e-6, h: float = 1e-6, hint: str | None = None,
                   quiet: bool = False) -> Verdict:
    """Gradient-check exercise: compare a hand-written gradient ``analytic`` of the scalar ``f()`` with respect to
    the float64 array ``x`` against centred differences (see ``xlstm_edu.np.gradcheck``)."""
    from xlstm_edu.np.gradcheck import numerical_gradient, relative_error

    hint_txt = f" -- hint: {hint}" if hint else ""
    if analytic is None or analytic is Ellipsis:
        v = Verdict(name, "wrong", np.inf, np.inf, f"❌ {name}: no answer yet (got {analytic!r}){hint_txt}")
    else:
        analytic = _to_numpy(analytic)
        num = numerical_gradient(f, x, h)
        if analytic.shape != num.shape:
            v = Verdict(name, "wrong", np.inf, np.inf,
                        f"❌ {name}: gradient has shape {analytic.shape}, expected {num.shape}{hint_txt}")
        else:
            err = relative_error(analytic, num)
            mad = float(np.max(np.abs(analytic - num))) if num.size else 0.0
            if err <= tol:
                v = Verdict(name, "close", mad, err,
                            f"✅ {name}: gradient matches centred differences (relative error {err:.1e} <= {tol:g})")
            else:
                v = Verdict(name, "wrong", mad, err,
                            f"❌ {name}: gradient is off (relative error {err:.2g} > {tol:g}){hint_txt}")
    if not quiet:
        print(v.message)
        v.printed = True
    return v
