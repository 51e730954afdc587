"""Answers for the chapter checkers, run by ``tests/test_checkers.py``.

One module per chapter, ``chNN.py``, defining ``CASES = {"N.k": Case(good=..., wrong={"what the bug is": ...})}``:
``good`` and every wrong answer are the positional arguments passed to the registered checker of exercise N.k, as
a tuple (or a ``dict`` of keyword arguments). The good answer must pass; every wrong one (at least two, each a
mistake a learner really makes) must be rejected. Import ``Case`` with ``from checker_cases import Case``
(any object with ``.good`` and ``.wrong``, or a dict with those keys, works too).
"""

from dataclasses import dataclass, field


@dataclass
class Case:
    good: object
    wrong: dict = field(default_factory=dict)
