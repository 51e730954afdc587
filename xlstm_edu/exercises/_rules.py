"""Helpers for the chapter checkers of chapters 4-7: call a learner's function safely, and enforce the rules an
exercise states ("no loop over time", "without the big matrix", "write your own weights") by what the function
*does*, not by how it is spelled.

* ``call_learner(name, fn, *args)`` — ``fn(*args)`` with the ready-made implementations refused
  (``forbid_package_calls``); an unsolved stub or an exception becomes a ❌ verdict instead of a traceback.
* ``python_lines(fn, *args)`` — how many lines of the learner's own Python code a call executes. A function without a
  loop over time executes the same number of lines for S = 4 and S = 40; a loop, a comprehension, a recursion, a
  helper that loops, ``np.vectorize`` or ``np.apply_along_axis`` with a Python function all grow with S.
* ``peak_memory(fn, *args)`` — the bytes a call allocates at its peak (numpy reports to ``tracemalloc``).
* ``refused(*functions)`` — a context manager in which the given functions raise ``WriteItYourself``.
* ``compare_diagnosed(name, got, expected, variants=...)`` — ``compare``, and on failure the hint names the known
  mistake whose output the answer matches (each variant is the same computation with one realistic bug).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tracemalloc

import numpy as np

from xlstm_edu.exercises import forbid_package_calls
from xlstm_edu.exercises.core import Verdict, _emit, combine, compare, learner_result, raised_verdict

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # .../xlstm_edu


def call_learner(name: str, fn, *args, hint=None, forbid: bool = True, **kwargs):
    """``(result, None)``, or ``(None, verdict)`` when the answer is missing, unsolved or raised.

    With ``forbid`` the package's and the official implementations refuse to run during the call."""
    with forbid_package_calls() if forbid else contextlib.nullcontext():
        return learner_result(name, fn, args, kwargs, hint)


def _is_learner_file(filename: str) -> bool:
    if not filename or filename.startswith("<frozen"):
        return False
    if "site-packages" in filename or f"{os.sep}lib{os.sep}python" in filename:
        return False
    return not os.path.abspath(filename).startswith(_PACKAGE_DIR)


def python_lines(fn, *args, **kwargs) -> int:
    """The number of lines of the learner's own code (not numpy's, the standard library's or this package's)
    executed by ``fn(*args, **kwargs)``. Exceptions propagate."""
    count = 0

    def local(frame, event, arg):
        nonlocal count
        if event == "line":
            count += 1
        return local

    def global_(frame, event, arg):
        return local if _is_learner_file(frame.f_code.co_filename) else None

    old = sys.gettrace()
    sys.settrace(global_)
    try:
        fn(*args, **kwargs)
    finally:
        sys.settrace(old)
    return count


def loops_over_time(fn, make_args, sizes=(4, 40), slack: int = 2) -> bool:
    """True when the learner's code executes more lines for the longer sequence: a loop over time.

    ``make_args(S)`` returns the positional arguments for a sequence of length ``S``. Run the function through
    ``call_learner`` first: an exception here gives False (no verdict on the rule)."""
    args = [make_args(S) for S in sizes]  # before the package is refused: the inputs may need it
    try:
        with forbid_package_calls():
            counts = [python_lines(fn, *a) for a in args]
    except Exception:  # noqa: BLE001 -- it ran on the checker's cases; no verdict on the rule from a crash here
        return False
    return counts[-1] > counts[0] + slack


def peak_memory(fn, *args, **kwargs) -> int:
    """Peak bytes allocated (as traced by ``tracemalloc``) during ``fn(*args, **kwargs)``."""
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        fn(*args, **kwargs)
        return max(tracemalloc.get_traced_memory()[1] - base, 0)
    finally:
        if not was_tracing:
            tracemalloc.stop()


@contextlib.contextmanager
def refused(*functions):
    """Inside the block each given (pure Python) function raises ``WriteItYourself``, under every alias: its code
    is swapped for a stub and restored on exit."""
    saved = []
    try:
        for f in functions:
            saved.append((f, f.__code__, f.__defaults__, f.__kwdefaults__))
            f.__code__ = _closure_free_stub(f).__code__
        yield
    finally:
        for f, code, defaults, kwdefaults in saved:
            f.__code__, f.__defaults__, f.__kwdefaults__ = code, defaults, kwdefaults


def _closure_free_stub(f):
    label = f"{f.__module__}.{f.__qualname__}"
    src = (f"def {f.__code__.co_name}(*args, **kwargs):\n"
           f"    raise __import__('xlstm_edu.exercises.forbid', fromlist=['WriteItYourself'])"
           f".WriteItYourself({label + ' is off limits in this exercise: write it yourself'!r})\n")
    ns: dict = {}
    exec(compile(src, f"<{label}: write it yourself>", "exec"), ns)
    return ns[f.__code__.co_name]


def rule_verdict(name: str, text: str, hint=None) -> Verdict:
    """❌ for a broken rule of the exercise (the answer may compute the right numbers)."""
    return raised_verdict(name, text, hint)


def known_mistake(got, variants, *, match_rtol: float = 1e-7, match_atol: float = 1e-10) -> str | None:
    """The description of the first variant whose output ``got`` matches (to ``match_rtol``/``match_atol``), or None.

    ``variants`` maps a description of a mistake ("the mask keeps the future") to a zero-argument function
    computing what that mistake gives on the same inputs (computed only now, after a failed comparison). Mistakes
    that differ only in tiny values need ``match_atol=0``."""
    try:
        g = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    for what, make in variants.items():
        try:
            with np.errstate(all="ignore"):
                e = np.asarray(make(), dtype=np.float64)
        except Exception:  # noqa: BLE001 -- a variant that cannot run on these inputs matches nothing
            continue
        if e.shape == g.shape and np.allclose(g, e, rtol=match_rtol, atol=match_atol, equal_nan=True):
            return what
    return None


def compare_diagnosed(name: str, got, expected, *, variants=None, hint=None, rtol=1e-9, atol=1e-12,
                      match_rtol: float = 1e-7, match_atol: float = 1e-10) -> Verdict:
    """``compare``; when it fails and the answer matches a known mistake (``known_mistake``), the hint names it."""
    v = compare(name, got, expected, rtol=rtol, atol=atol, hint=hint)
    if v.ok or not variants:
        return v
    mistake = known_mistake(got, variants, match_rtol=match_rtol, match_atol=match_atol)
    if mistake is None:
        return v
    return compare(name, got, expected, rtol=rtol, atol=atol, hint=f"it looks like {mistake}")


def check_cases(name: str, fn, cases, reference, *, hint, rtol: float, atol: float, variants=None,
                guard=contextlib.nullcontext):
    """The learner's ``fn`` on every case ``(what, args)`` against ``reference(*args)`` (computed first), with
    ``compare_diagnosed`` naming a known mistake from ``variants(*args)``. The arguments are copied for the
    learner; ``guard()`` (e.g. ``refused(...)``) surrounds each call. Returns ``(verdicts, None)`` when every case
    passes, or ``(None, the first ❌ verdict)`` (not printed)."""
    verdicts = []
    for what, args in cases:
        expected = reference(*args)
        with guard():
            got, bad = call_learner(name, fn, *(np.array(a, copy=True) for a in args), hint=hint)
        if bad is not None:
            return None, bad
        v = compare_diagnosed(f"{name} ({what})", got, expected, rtol=rtol, atol=atol, hint=hint,
                              variants=None if variants is None else variants(*args))
        if not v.ok:
            return None, v
        verdicts.append(v)
    return verdicts, None


def time_loop_verdict(name: str, fn, make_args, advice: str, hint=None) -> Verdict | None:
    """❌ (not printed) when ``fn`` runs a loop over time (``loops_over_time``), else None."""
    if loops_over_time(fn, make_args):
        return rule_verdict(name, "right numbers, but your code runs a loop over time (more Python lines for a "
                                  f"longer sequence): {advice}", hint)
    return None


def check_cases_without_time_loop(name: str, fn, cases, reference, *, make_args, advice: str, hint, rtol: float,
                                  atol: float, variants=None, guard=contextlib.nullcontext,
                                  quiet: bool = False) -> Verdict:
    """An exercise whose rule is "no loop over time": ``check_cases``, then, when every case passes,
    ``time_loop_verdict``; returns (and prints unless ``quiet``) the combined ✅ or the first ❌."""
    verdicts, bad = check_cases(name, fn, cases, reference, hint=hint, rtol=rtol, atol=atol, variants=variants,
                                guard=guard)
    if bad is None:  # (a ❌ Verdict is falsy: no `or` here)
        bad = time_loop_verdict(name, fn, make_args, advice, hint)
    return combine(name, verdicts, quiet=quiet) if bad is None else _emit(bad, quiet)
