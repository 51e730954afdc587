"""The verdict, the comparison checkers, the exercise registry and the fallback for unsolved exercises.

In the spirit of nn-zero-to-hero's ``cmp`` and CS231n's relative-error checks::

    >>> check("c_t", my_c, reference_c)
    ✅ c_t: exact
    >>> check("c_t", 2 * my_c, reference_c, hint="did you add i_t * z_t?")
    ❌ c_t: wrong (max abs diff 0.83 at index (3,)) -- hint: did you add i_t * z_t?

An answer that is not there yet is never a traceback: ``None``, ``...``, or a function (or zero-argument lambda)
that raises ``NotImplementedError`` gives ❌ "not solved yet" with the hint; any other exception raised by the
learner's code gives ❌ naming the exception and the line, without a traceback.
"""

from __future__ import annotations

import functools
import linecache
import os
import traceback
from dataclasses import dataclass

import numpy as np

STATUSES = ("exact", "close", "wrong", "unsolved")


@dataclass
class Verdict:
    """The outcome of one check. ``ok`` is True for "exact" and "close"; ``message`` is the printed line."""

    name: str
    status: str  # "exact", "close", "wrong" or "unsolved"
    max_abs_diff: float = np.inf
    max_rel_err: float = np.inf
    message: str = ""
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


def _emit(v: Verdict, quiet: bool) -> Verdict:
    if not quiet:
        print(v.message)
        v.printed = True
    return v


def _hint_txt(hint) -> str:
    return f" -- hint: {hint}" if hint else ""


class _Unsolved(Exception):
    """Internal: the learner's answer is not there yet."""


class _Raised(Exception):
    """Internal: the learner's code raised; ``str(self)`` describes it without a traceback."""


def describe_exception(exc: BaseException) -> str:
    """``ValueError: bad shape (in my_lstm, line 12)``: the exception and the innermost line of the learner's own
    code (frames inside numpy, the standard library or this package are skipped). No traceback."""
    where = ""
    frames = traceback.extract_tb(exc.__traceback__)
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the xlstm_edu package
    own = [f for f in frames if "site-packages" not in f.filename and not f.filename.startswith(here)
           and "/lib/python" not in f.filename]
    if own:
        f = own[-1]
        code = (f.line or linecache.getline(f.filename, f.lineno) or "").strip()
        where = f" (in {f.name}, line {f.lineno}{': ' + code if code else ''})"
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}{': ' + msg if msg else ''}{where}"


def is_unsolved(x) -> bool:
    """True for the placeholders of an unsolved exercise: None and ``...``."""
    return x is None or x is Ellipsis


def resolve(x, what: str = "answer"):
    """The learner's answer as a value: placeholders raise ``_Unsolved``; a callable is called with no arguments
    (``NotImplementedError`` -> ``_Unsolved``, any other exception -> ``_Raised`` describing it)."""
    if is_unsolved(x):
        raise _Unsolved(f"got {x!r}")
    if callable(x) and not isinstance(x, np.ndarray) and not hasattr(x, "detach"):
        try:
            x = x()
        except NotImplementedError as exc:
            raise _Unsolved(str(exc) or "NotImplementedError") from None
        except Exception as exc:  # noqa: BLE001 -- any error in the learner's code becomes a verdict
            raise _Raised(f"your code raised {describe_exception(exc)}") from None
        if is_unsolved(x):
            raise _Unsolved(f"got {x!r}")
    return x


def call_learner(name: str, fn, *args, hint=None, quiet: bool = False, **kwargs):
    """Call the learner's ``fn(*args, **kwargs)`` for a checker. Returns ``(result, None)``; or ``(None, verdict)``
    (already printed unless ``quiet``) when ``fn`` is a placeholder or raises NotImplementedError ("not solved
    yet") or raises anything else (❌ naming the exception, no traceback)."""
    result, bad = learner_result(name, fn, args, kwargs, hint)
    return result, (None if bad is None else _emit(bad, quiet))


def learner_result(name: str, fn, args=(), kwargs=None, hint=None):
    """``fn(*args, **kwargs)`` of the learner: ``(result, None)``, or ``(None, verdict)`` (not printed) when ``fn``
    is a placeholder, not a function, unsolved, or raises."""
    if is_unsolved(fn):
        return None, unsolved_verdict(name, hint, f"got {fn!r}")
    if not callable(fn):
        return None, raised_verdict(name, f"expected a function, got {type(fn).__name__}", hint)
    return run_learner(name, lambda: fn(*args, **(kwargs or {})), hint)


def run_learner(name: str, thunk, hint=None):
    """Run the learner's code ``thunk()`` for a checker: ``(result, None)``, or ``(None, verdict)`` (not printed)
    when it is unsolved or raises. Lives here, not in a chapter module, so that it keeps working inside
    ``forbid_package_calls()``, which refuses the chapter modules' own functions."""
    try:
        return resolve(thunk), None
    except _Unsolved as u:
        return None, unsolved_verdict(name, hint, str(u))
    except _Raised as r:
        return None, raised_verdict(name, str(r), hint)


def unsolved_verdict(name: str, hint=None, detail: str = "") -> Verdict:
    d = f" ({detail})" if detail and detail not in ("NotImplementedError",) else ""
    return Verdict(name, "unsolved", np.inf, np.inf, f"❌ {name}: not solved yet{d}{_hint_txt(hint)}")


def raised_verdict(name: str, text: str, hint=None) -> Verdict:
    return Verdict(name, "wrong", np.inf, np.inf, f"❌ {name}: {text}{_hint_txt(hint)}")


def _to_numpy(x):
    if hasattr(x, "detach"):  # a torch tensor
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def compare(name: str, got, expected, *, rtol: float = 1e-6, atol: float = 1e-8, hint=None) -> Verdict:
    """The comparison of ``check`` on two resolved values, without printing."""
    try:
        g, e = _to_numpy(got), _to_numpy(expected)
    except Exception as exc:  # noqa: BLE001 -- e.g. a ragged list
        return raised_verdict(name, f"could not read the answer as an array ({describe_exception(exc)})", hint)
    if g.dtype == object or not (np.issubdtype(g.dtype, np.number) or g.dtype == bool):
        return raised_verdict(name, f"expected numbers, got {type(got).__name__} of dtype {g.dtype}", hint)
    if g.shape != e.shape:
        return Verdict(name, "wrong", np.inf, np.inf,
                       f"❌ {name}: wrong shape: expected {e.shape}, got {g.shape}{_hint_txt(hint)}")
    if g.size == 0:
        return Verdict(name, "exact", 0.0, 0.0, f"✅ {name}: exact (empty)")
    g64, e64 = g.astype(np.float64), e.astype(np.float64)
    if np.array_equal(g64, e64, equal_nan=True):
        return Verdict(name, "exact", 0.0, 0.0, f"✅ {name}: exact")
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        diff = np.abs(g64 - e64)
        bad_nan = (np.isnan(g64) != np.isnan(e64)) | (np.isinf(g64) & (g64 != e64))
        diff = np.where(bad_nan, np.inf, np.nan_to_num(diff, nan=0.0))
        rel = diff / np.maximum(np.abs(g64) + np.abs(e64), 1e-8)  # CS231n's relative error
    worst = np.unravel_index(int(np.argmax(diff)), diff.shape)
    mad, mre = float(diff.max()), float(np.max(np.nan_to_num(rel, nan=np.inf)))
    if np.all(diff <= atol + rtol * np.abs(np.nan_to_num(e64))):
        return Verdict(name, "close", mad, mre,
                       f"✅ {name}: close (max abs diff {mad:.1e}, max rel err {mre:.1e}, "
                       f"tolerance rtol={rtol:g} atol={atol:g})")
    where = f" at index {tuple(int(i) for i in worst)}" if diff.ndim else ""
    nonfinite = int(np.sum(~np.isfinite(g64)))
    extra = f", {nonfinite} non-finite value(s) (inf/NaN)" if nonfinite and np.all(np.isfinite(e64)) else ""
    return Verdict(name, "wrong", mad, mre,
                   f"❌ {name}: wrong (max abs diff {mad:.3g}{where}{extra}){_hint_txt(hint)}")


def check(name: str, got, expected, *, rtol: float = 1e-6, atol: float = 1e-8, hint: str | None = None,
          quiet: bool = False) -> Verdict:
    """Compare ``got`` with ``expected`` (arrays, tensors or numbers) and print a verdict.

    exact: identical values; close: ``|got - expected| <= atol + rtol * |expected|`` everywhere;
    wrong: anything else, including a shape mismatch or NaN where the reference has none;
    unsolved: ``None``, ``...``, or a callable raising ``NotImplementedError``.
    ``got`` may be a zero-argument callable (``lambda: my_lstm(wx, R, b)[0]``): it is called here, so that an
    unsolved exercise gives ❌ instead of a traceback.
    """
    try:
        got = resolve(got)
    except _Unsolved as u:
        return _emit(unsolved_verdict(name, hint, str(u)), quiet)
    except _Raised as r:
        return _emit(raised_verdict(name, str(r), hint), quiet)
    return _emit(compare(name, got, expected, rtol=rtol, atol=atol, hint=hint), quiet)


def check_gradient(name: str, f, x, analytic, *, tol: float = 1e-6, h: float = 1e-6, hint: str | None = None,
                   quiet: bool = False) -> Verdict:
    """Gradient-check exercise: compare a hand-written gradient ``analytic`` of the scalar ``f()`` with respect to
    the float64 array ``x`` (changed in place and restored) against centred differences
    (``xlstm_edu.np.gradcheck``). ``analytic`` may be a zero-argument callable; ``f`` raising
    ``NotImplementedError`` also counts as not solved yet."""
    from xlstm_edu.np.gradcheck import numerical_gradient, relative_error

    try:
        analytic = resolve(analytic)
        try:
            num = numerical_gradient(f, x, h)
        except NotImplementedError as exc:
            raise _Unsolved(str(exc)) from None
        except Exception as exc:  # noqa: BLE001
            raise _Raised(f"computing the loss raised {describe_exception(exc)}") from None
    except _Unsolved as u:
        return _emit(unsolved_verdict(name, hint, str(u)), quiet)
    except _Raised as r:
        return _emit(raised_verdict(name, str(r), hint), quiet)
    try:
        analytic = _to_numpy(analytic).astype(np.float64)
    except Exception as exc:  # noqa: BLE001
        return _emit(raised_verdict(name, f"could not read the gradient as an array ({describe_exception(exc)})",
                                    hint), quiet)
    if analytic.shape != num.shape:
        v = Verdict(name, "wrong", np.inf, np.inf,
                    f"❌ {name}: gradient has shape {analytic.shape}, expected {num.shape}{_hint_txt(hint)}")
    elif not np.all(np.isfinite(analytic)):
        v = Verdict(name, "wrong", np.inf, np.inf,
                    f"❌ {name}: gradient has {int(np.sum(~np.isfinite(analytic)))} non-finite value(s)"
                    f"{_hint_txt(hint)}")
    else:
        err = relative_error(analytic, num)
        mad = float(np.max(np.abs(analytic - num))) if num.size else 0.0
        if err <= tol:
            v = Verdict(name, "close", mad, err,
                        f"✅ {name}: gradient matches centred differences (relative error {err:.1e} <= {tol:g})")
        else:
            v = Verdict(name, "wrong", mad, err,
                        f"❌ {name}: gradient is off (relative error {err:.2g} > {tol:g}){_hint_txt(hint)}")
    return _emit(v, quiet)


def combine(name: str, verdicts, *, quiet: bool = False) -> Verdict:
    """Several sub-checks (run with ``quiet=True``) as one verdict: ✅ when all pass, otherwise ❌ with the first
    failing sub-check's message. Status: "unsolved" if that first failure is unsolved, else "wrong"; "exact" when
    every sub-check is exact, else "close"."""
    verdicts = list(verdicts)
    if not verdicts:
        raise ValueError("combine: expected at least one verdict, got none")
    for v in verdicts:
        if not isinstance(v, Verdict):
            raise ValueError(f"combine: expected Verdict objects, got {type(v).__name__}")
    bad = [v for v in verdicts if not v.ok]
    if bad:
        first = bad[0]
        detail = first.message[2:] if first.message.startswith("❌ ") else first.message
        more = f" (and {len(bad) - 1} more failing check{'s' if len(bad) > 2 else ''})" if len(bad) > 1 else ""
        v = Verdict(name, "unsolved" if first.status == "unsolved" else "wrong", first.max_abs_diff,
                    first.max_rel_err, f"❌ {name}: {detail}{more}")
    else:
        status = "exact" if all(v.status == "exact" for v in verdicts) else "close"
        mad = max(v.max_abs_diff for v in verdicts)
        mre = max(v.max_rel_err for v in verdicts)
        n = len(verdicts)
        what = f"all {n} checks pass" if n > 1 else verdicts[0].message[2:]
        v = Verdict(name, status, mad, mre, f"✅ {name}: {what}")
    return _emit(v, quiet)


# ------------------------------------------------------------------------------------------ the exercise registry
EXERCISES: dict = {}  # "N.k" -> the registered checker (a function returning a Verdict)
RESULTS: dict = {}  # "N.k" -> the Verdict of the latest run of its checker in this session


def _valid_number(number) -> str:
    import re

    if not isinstance(number, str) or not re.fullmatch(r"\d+\.\d+", number):
        raise ValueError(f"exercise: expected a number 'N.k' (chapter N, k-th exercise), got {number!r}")
    return number


def exercise(number: str):
    """Decorator registering a chapter checker as exercise ``"N.k"`` in ``EXERCISES``.

    The checker returns a ``Verdict``; the registered wrapper records it in ``RESULTS[number]`` (read by
    ``learner_or_reference``) and turns an unexpected exception inside the checker into a ❌ verdict."""
    number = _valid_number(number)

    def register(fn):
        if number in EXERCISES and EXERCISES[number].__wrapped__.__qualname__ != fn.__qualname__:
            raise ValueError(f"exercise {number}: registered twice ({EXERCISES[number].__name__} and "
                             f"{fn.__name__})")

        @functools.wraps(fn)
        def checker(*args, **kwargs):
            try:
                v = fn(*args, **kwargs)
            except NotImplementedError as exc:
                v = _emit(unsolved_verdict(f"exercise {number}", None, str(exc)), kwargs.get("quiet", False))
            if not isinstance(v, Verdict):
                raise TypeError(f"the checker of exercise {number} returned {type(v).__name__}, not a Verdict")
            RESULTS[number] = v
            return v

        checker.exercise = number
        EXERCISES[number] = checker
        return checker

    return register


def _describe_reference(reference) -> str:
    mod = getattr(reference, "__module__", None) or ""
    name = getattr(reference, "__qualname__", None) or getattr(reference, "__name__", None) or repr(reference)
    # the public path: xlstm_edu.np.mlstm_parallel rather than xlstm_edu.np.mlstm_parallel.mlstm_parallel
    for public in ("xlstm_edu.np", "xlstm_edu.nn"):
        if mod.startswith(public + "."):
            import importlib

            try:
                if getattr(importlib.import_module(public), name, None) is reference:
                    return f"{public}.{name}"
            except ImportError:
                pass
    return f"{mod}.{name}" if mod else name


def learner_or_reference(fn, reference, exercise: str):
    """The learner's function where it is sound to use it, the package's ``reference`` otherwise (saying so).

    * ``fn`` None or ``...``, or exercise ``exercise``'s checker last gave "unsolved" or "wrong" in this session:
      prints one line and returns ``reference``;
    * otherwise returns a wrapper that calls ``fn``; if that raises ``NotImplementedError`` (an unsolved stub),
      it prints one line once and uses ``reference`` from then on.
    """
    ref_name = _describe_reference(reference)
    if is_unsolved(fn):
        print(f"exercise {exercise} not solved yet: using {ref_name}")
        return reference
    if not callable(fn):
        raise ValueError(f"learner_or_reference: expected a function for exercise {exercise}, got "
                         f"{type(fn).__name__}")
    last = RESULTS.get(exercise)
    if last is not None and not last.ok:
        why = "not solved yet" if last.status == "unsolved" else "did not pass its checker"
        print(f"exercise {exercise} {why}: using {ref_name}")
        return reference
    state = {"fallback": False}

    @functools.wraps(fn)
    def learner(*args, **kwargs):
        if state["fallback"]:
            return reference(*args, **kwargs)
        try:
            return fn(*args, **kwargs)
        except NotImplementedError:
            state["fallback"] = True
            print(f"exercise {exercise} not solved yet: using {ref_name}")
            return reference(*args, **kwargs)

    learner.exercise = exercise
    learner.reference = reference
    return learner
