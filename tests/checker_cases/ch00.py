"""Answers for the checkers of chapter 0 (start here): the solution of each exercise and mistakes learners make."""

import numpy as np

from checker_cases import Case
from xlstm_edu.np.gating import log_sigmoid, sigmoid


# ------------------------------------------------------------------------------------------------------ 0.1
def stable_sigmoid(x):
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(-np.abs(x))  # exp of a number <= 0 only
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def naive_with_the_warning_silenced(x):  # overflows, and the warning is switched off
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(-x))


def both_branches_of_np_where(x):  # right values, but np.where computes exp(-x) and exp(x) everywhere
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        return np.where(x >= 0, 1 / (1 + np.exp(-x)), np.exp(x) / (1 + np.exp(x)))


def through_tanh(x):  # stable, but loses the digits of small values
    return 0.5 * (1 + np.tanh(np.asarray(x, dtype=np.float64) / 2))


def clipped(x):
    return 1 / (1 + np.exp(-np.clip(np.asarray(x, dtype=np.float64), -500, 500)))


def the_package(x):
    return sigmoid(np.asarray(x, dtype=np.float64))


# ------------------------------------------------------------------------------------------------------ 0.2
def tanh_grad(x):
    return 1 - np.tanh(x) ** 2


CASES = {
    "0.1": Case(good=stable_sigmoid, wrong={
        "the naive formula with its overflow warning silenced": naive_with_the_warning_silenced,
        "np.where with both branches evaluated, warning silenced": both_branches_of_np_where,
        "0.5 (1 + tanh(x/2))": through_tanh,
        "x clipped to ±500": clipped,
        "calls the package's sigmoid": the_package,
    }),
    "0.2": Case(good=tanh_grad, wrong={
        "1 - tanh(x)": lambda x: 1 - np.tanh(x),
        "tanh(x)^2": lambda x: np.tanh(x) ** 2,
        "1 / cosh(x)": lambda x: 1 / np.cosh(x),
        "the derivative of the sigmoid": lambda x: sigmoid(x) * (1 - sigmoid(x)),
    }),
    "0.3": Case(good=lambda x: np.minimum(x, 0) - np.log1p(np.exp(-np.abs(x))), wrong={
        "log of the sigmoid": lambda x: np.log(stable_sigmoid(x)),
        "-log1p(exp(-x)) with the overflow silenced": lambda x: _silenced(lambda: -np.log1p(np.exp(-x))),
        "np.log instead of np.log1p": lambda x: np.minimum(x, 0) - np.log(1 + np.exp(-np.abs(x))),
        "calls the package's log_sigmoid": lambda x: log_sigmoid(x),
    }),
}


def _silenced(f):
    with np.errstate(over="ignore", divide="ignore"):
        return f()
