"""Self-checking exercises: compare a learner's answer with the package's reference and print a clear verdict.

    from xlstm_edu.exercises import check, check_gradient, check_implementation, learner_or_reference

* ``check(name, got, expected)`` — values (arrays, tensors, numbers; or a zero-argument lambda computing one);
* ``check_gradient(name, f, x, analytic)`` — a hand-written gradient against centred differences;
* ``check_implementation(name, fn)`` — a learner's LSTM / sLSTM / mLSTM (recurrent, parallel, chunkwise) against
  the package on a battery of cases, with the ready-made implementations refused while it runs, and a failure
  matched against a bank of known bugs (``xlstm_edu.exercises.bugs``);
* ``combine(name, verdicts)`` — several sub-checks as one verdict;
* ``learner_or_reference(fn, reference, "N.k")`` — the learner's function, or the package's while unsolved;
* ``exercise("N.k")`` — the decorator registering a chapter's checker (modules ``chNN``) in ``EXERCISES``;
* ``forbid_package_calls()`` — the context manager that makes the ready-made implementations refuse.

Every checker returns a ``Verdict`` (``.ok``, ``.status`` in "exact"/"close"/"wrong"/"unsolved", ``.message``)
and prints ✅ or ❌. An unsolved exercise (``None``, ``...``, a function raising ``NotImplementedError``) gives
❌ "not solved yet" with the hint, never a traceback; an exception in the learner's code gives ❌ naming it.
"""

from xlstm_edu.exercises.core import (  # noqa: F401
    EXERCISES,
    RESULTS,
    Verdict,
    check,
    check_gradient,
    combine,
    exercise,
    learner_or_reference,
)
from xlstm_edu.exercises.forbid import WriteItYourself, forbid_package_calls  # noqa: F401
from xlstm_edu.exercises.implementations import IMPLEMENTATIONS, check_implementation  # noqa: F401

__all__ = ["check", "check_gradient", "check_implementation", "combine", "learner_or_reference", "exercise",
           "forbid_package_calls", "Verdict", "EXERCISES", "RESULTS", "IMPLEMENTATIONS", "WriteItYourself"]
