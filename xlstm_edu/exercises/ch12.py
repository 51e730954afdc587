"""Checkers of chapter 12 (checking the paper's claims). Each compares the learner's function with the package's
reference on inputs the checker builds itself, including the boundary cases where the realistic mistakes show:

* 12.1 ``check_running_parity(running_parity)`` — the parity of every prefix (``task.prefix_labels``);
* 12.2 ``check_scaled_accuracy(scaled_accuracy)`` — the paper's rescaling (``xlstm_edu.tasks.scaled_accuracy``);
* 12.3 ``check_failure_kind(failure_kind)`` — where a formal-language run fails (``experiments.failure_kind``);
* 12.4 ``check_mqar_outcome(mqar_outcome)`` — what an MQAR run learned (``experiments.mqar_outcome``);
* 12.5 ``check_steps_to(steps_to)`` — the budget at which a learning curve reaches a level (``experiments.steps_to``).
"""

from __future__ import annotations

import numpy as np

from xlstm_edu.exercises.core import (
    Verdict,
    _emit,
    check,
    combine,
    describe_exception,
    exercise,
    raised_verdict,
    unsolved_verdict,
)


def call_learner(name, fn, *args, hint=None, quiet=False):
    """``(fn(*args), None)``, or ``(None, verdict)`` when ``fn`` is a placeholder, raises NotImplementedError
    ("not solved yet") or raises anything else (❌ naming the exception, no traceback)."""
    if fn is None or fn is Ellipsis:
        return None, _emit(unsolved_verdict(name, hint, f"got {fn!r}"), quiet)
    if not callable(fn):
        return None, _emit(raised_verdict(name, f"expected a function, got {type(fn).__name__}", hint), quiet)
    try:
        return fn(*args), None  # None can be a right answer here (12.5), so it is not read as "unsolved"
    except NotImplementedError as exc:
        return None, _emit(unsolved_verdict(name, hint, str(exc)), quiet)
    except Exception as exc:  # noqa: BLE001 -- any error in the learner's code becomes a verdict
        return None, _emit(raised_verdict(name, f"your code raised {describe_exception(exc)}", hint), quiet)


@exercise("12.1")
def check_running_parity(running_parity, *, quiet: bool = False):
    """Exercise 12.1: ``running_parity(bits)`` for bits (B, L) -> the parity of every prefix (B, L)."""
    from xlstm_edu.tasks import get_task

    name = "exercise 12.1: running parity"
    hint = "count the ones of every prefix along the time axis (axis 1), then take the count mod 2"
    task = get_task("parity")
    verdicts = []
    for seed, (B, L) in enumerate([(16, 40), (3, 1), (5, 7)]):
        bits, _ = task.sample(np.random.default_rng(120 + seed), B, L)
        got, bad = call_learner(name, running_parity, bits.copy(), hint=hint, quiet=quiet)
        if bad is not None:
            return bad
        verdicts.append(check(f"{name} (B={B}, L={L})", got, task.prefix_labels(bits), hint=hint, quiet=True))
    return combine(name, verdicts, quiet=quiet)


@exercise("12.2")
def check_scaled_accuracy(scaled_accuracy, *, quiet: bool = False):
    """Exercise 12.2: ``scaled_accuracy(accuracy, chance)`` = (accuracy - chance) / (1 - chance), arrays too."""
    from xlstm_edu.tasks import scaled_accuracy as reference

    name = "exercise 12.2: rescaled accuracy"
    hint = "guessing (accuracy = chance) must give 0 and a perfect model 1; below chance stays negative"
    accs = np.array([0.0, 0.2, 0.25, 0.5, 0.6, 1.0])
    verdicts = []
    for chance in (0.5, 0.2, 0.25):
        got, bad = call_learner(name, scaled_accuracy, accs.copy(), chance, hint=hint, quiet=quiet)
        if bad is not None:
            return bad
        verdicts.append(check(f"{name} (chance {chance})", got, reference(accs, chance), hint=hint, quiet=True))
    return combine(name, verdicts, quiet=quiet)


def _labels(name, fn, cases, reference, hint, quiet):
    """Call ``fn`` on every case and compare its label with ``reference``'s; the first mismatch is the verdict."""
    for case in cases:
        got, bad = call_learner(name, fn, dict(case), hint=hint, quiet=quiet)
        if bad is not None:
            return bad
        want = reference(case)
        if got != want:
            shown = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in case.items())
            return _emit(raised_verdict(name, f"for {{{shown}}} expected {want!r}, got {got!r}", hint), quiet)
    return _emit(Verdict(name, "exact", 0.0, 0.0, f"✅ {name}: all {len(cases)} cases agree"), quiet)


FORMAL_CASES = [  # (inside the training range, beyond it): every branch and every threshold from both sides
    (1.0, 1.0), (1.0, 0.9), (0.95, 0.89), (0.9, 0.1), (0.98, -0.05), (0.89, 0.95), (0.7, 0.0), (0.5, 0.5),
    (0.49, 0.0), (0.1, 0.9), (-0.1, -0.1), (0.02, 0.01),
]


@exercise("12.3")
def check_failure_kind(failure_kind, *, quiet: bool = False):
    """Exercise 12.3: ``failure_kind(row)`` -> "not learned" / "partly learned" / "generalizes" /
    "fails beyond the training lengths", from ``row["train_range_scaled"]`` and ``row["scaled_accuracy"]``."""
    from xlstm_edu.experiments import failure_kind as reference

    name = "exercise 12.3: where does the run fail?"
    hint = ("look inside the training range first (train_range_scaled: below 0.5 not learned, below 0.9 partly "
            "learned); only a run that fits the training lengths can fail *beyond* them (scaled_accuracy >= 0.9 "
            "generalizes)")
    cases = [{"train_range_scaled": a, "scaled_accuracy": b} for a, b in FORMAL_CASES]
    return _labels(name, failure_kind, cases, reference, hint, quiet)


MQAR_CASES = [  # (accuracy, in_context, pairs); 32 values, so in_context_chance = pairs / 32
    (0.99, 1.0, 4), (0.9, 0.95, 16), (0.89, 0.99, 4), (0.27, 1.0, 4), (0.49, 0.98, 4), (0.5, 0.98, 4),
    (0.12, 0.97, 16), (0.2, 0.9, 16), (0.07, 0.4, 16), (0.02, 0.05, 4), (0.3, 0.5, 4), (0.9, 0.3, 8),
    (0.03, 0.5, 16), (0.07, 0.7, 16), (0.08, 0.75, 16), (0.2, 0.55, 4), (0.2, 0.57, 4),
]


@exercise("12.4")
def check_mqar_outcome(mqar_outcome, *, quiet: bool = False):
    """Exercise 12.4: ``mqar_outcome(row)`` -> "recalls" / "format not learned" / "guesses a stored value" /
    "partial recall", from ``accuracy``, ``in_context``, ``in_context_chance`` (pairs / values) and
    ``stored_value_level`` (1 / pairs)."""
    from xlstm_edu.experiments import mqar_outcome as reference

    name = "exercise 12.4: what did the MQAR run learn?"
    hint = ("compare the accuracy with the level of guessing among the stored values (stored_value_level = "
            "1/pairs), not with 1/V; and ask whether the answers are stored values more often than random value "
            "tokens would be: in_context below (1 + in_context_chance) / 2 means the format is not learned")
    cases = [{"accuracy": a, "in_context": c, "in_context_chance": n / 32, "stored_value_level": 1.0 / n}
             for a, c, n in MQAR_CASES]
    return _labels(name, mqar_outcome, cases, reference, hint, quiet)


def _curves():
    rng = np.random.default_rng(125)
    out = []
    for shape in ("rises", "never", "first", "flat-then-jump", "touches"):
        steps = np.arange(0, 700, 100)
        if shape == "rises":
            acc = np.clip(np.linspace(0.02, 1.0, len(steps)) + rng.normal(0, 0.01, len(steps)), 0, 1)
        elif shape == "never":
            acc = np.full(len(steps), 0.26)
        elif shape == "first":
            acc = np.full(len(steps), 0.95)
        elif shape == "flat-then-jump":
            acc = np.array([0.01, 0.25, 0.26, 0.27, 0.96, 0.99, 0.99])
        else:  # reaches exactly the level, falls back, comes back
            acc = np.array([0.01, 0.5, 0.9, 0.7, 0.85, 0.95, 0.97])
        out.append([[int(s), float(s) / 20, float(a), 1.0] for s, a in zip(steps, acc)])
    return out


@exercise("12.5")
def check_steps_to(steps_to, *, quiet: bool = False):
    """Exercise 12.5: ``steps_to(curve, threshold)`` -> the first recorded step whose validation accuracy (the
    third column) reaches ``threshold``, or None."""
    from xlstm_edu.experiments import steps_to as reference

    name = "exercise 12.5: steps to a level"
    hint = ("walk the rows [step, train_time_s, val_accuracy, train_loss] in order and return the *step* (not the "
            "row index) of the first accuracy >= threshold; None if there is none")
    for curve in _curves():
        for threshold in (0.9, 0.5, 0.25):
            got, bad = call_learner(name, steps_to, [list(r) for r in curve], threshold, hint=hint, quiet=quiet)
            if bad is not None:
                return bad
            want = reference(curve, threshold)
            if got != want:
                accs = ", ".join(f"{r[0]}: {r[2]:.2f}" for r in curve)
                return _emit(raised_verdict(name, f"threshold {threshold}, curve {{{accs}}}: expected {want!r}, "
                                                  f"got {got!r}", hint), quiet)
    return _emit(Verdict(name, "exact", 0.0, 0.0, f"✅ {name}: all {5 * 3} cases agree"), quiet)
