"""Good and wrong answers for the chapter-14 checkers (``xlstm_edu/exercises/ch14.py``)."""

import math

import numpy as np

import xlstm_edu.np as xnp
from checker_cases import Case


# ---- 14.1: linear attention from the mLSTM
def la_good(q, k, v):
    zeros = np.zeros(q.shape[:-1])
    parts = xnp.mlstm_parallel_parts(q, k, v, zeros, zeros, forget_gate="exp")
    return math.sqrt(q.shape[-1]) * parts["S_tilde"] @ v


def la_no_sqrt(q, k, v):  # forgets that the mLSTM scales the query by 1/√DK
    zeros = np.zeros(q.shape[:-1])
    return xnp.mlstm_parallel_parts(q, k, v, zeros, zeros, forget_gate="exp")["S_tilde"] @ v


def la_sigmoid_gate(q, k, v):  # f̃ = 0 with the sigmoid gate is f = 1/2, not 1
    zeros = np.zeros(q.shape[:-1])
    return math.sqrt(q.shape[-1]) * xnp.mlstm_parallel_parts(q, k, v, zeros, zeros)["S_tilde"] @ v


def la_normalized(q, k, v):  # keeps the normalizer: the mLSTM's h, not linear attention
    zeros = np.zeros(q.shape[:-1])
    return xnp.mlstm_parallel(q, k, v, zeros, zeros, forget_gate="exp")


def la_direct(q, k, v):  # right numbers, but not through the mLSTM
    return xnp.linear_attention_parallel(q, k, v)


# ---- 14.2: DeltaNet step
def step_good(q, k, v, beta, S):
    S = S - beta * np.outer(k, k @ S) + beta * np.outer(k, v)
    return S.T @ q, S


def step_linear_attention(q, k, v, beta, S):  # no erase
    S = S + beta * np.outer(k, v)
    return S.T @ q, S


def step_plus_sign(q, k, v, beta, S):  # (I + β k kᵀ) S
    S = S + beta * np.outer(k, k @ S) + beta * np.outer(k, v)
    return S.T @ q, S


def step_read_before_write(q, k, v, beta, S):  # h from S_{t-1}
    h = S.T @ q
    return h, S - beta * np.outer(k, k @ S) + beta * np.outer(k, v)


def step_papers_orientation(q, k, v, beta, S):  # v kᵀ written into a (DK, DV) state
    S = S - beta * np.outer(k, k @ S) + beta * np.outer(v, k)
    return S.T @ q, S


def step_uses_package(q, k, v, beta, S):  # calls the package: refused while the checker runs
    h, S = xnp.deltanet_step(q, k, v, np.array(beta), S)
    return h, S


# ---- 14.3: eigenvalues of I - β k kᵀ
def eig_good(k, beta):
    k = np.asarray(k, dtype=float)
    return np.sort(np.concatenate([[1.0 - beta * (k @ k)], np.ones(len(k) - 1)]))


def eig_forgets_norm(k, beta):  # as if ‖k‖ = 1
    return np.sort(np.concatenate([[1.0 - beta], np.ones(len(k) - 1)]))


def eig_only_one(k, beta):  # only the eigenvalue along k
    return np.array([1.0 - beta * (np.asarray(k) @ np.asarray(k))])


def eig_plus(k, beta):  # sign error
    k = np.asarray(k, dtype=float)
    return np.sort(np.concatenate([[1.0 + beta * (k @ k)], np.ones(len(k) - 1)]))


def eig_solver(k, beta):  # right, but with an eigen-solver
    k = np.asarray(k, dtype=float)
    return np.linalg.eigvalsh(np.eye(len(k)) - beta * np.outer(k, k))


CASES = {
    "14.1": Case(good=(la_good,), wrong={"no √DK": (la_no_sqrt,), "sigmoid forget gate": (la_sigmoid_gate,),
                                        "normalizer kept": (la_normalized,), "not through the mLSTM": (la_direct,),
                                        "unsolved": (None,)}),
    "14.2": Case(good=(step_good,), wrong={"no erase (linear attention)": (step_linear_attention,),
                                          "I + βkkᵀ": (step_plus_sign,), "read before write": (step_read_before_write,),
                                          "v kᵀ orientation": (step_papers_orientation,),
                                          "package call": (step_uses_package,), "unsolved": (None,)}),
    "14.3": Case(good=(eig_good,), wrong={"forgets ‖k‖²": (eig_forgets_norm,), "one eigenvalue": (eig_only_one,),
                                         "1 + β‖k‖²": (eig_plus,), "eigen-solver": (eig_solver,),
                                         "unsolved": (...,)}),
    "14.4": Case(good=(2.0, 0.5), wrong={"β = 1 (a reset, eigenvalue 0)": (1.0, 0.5), "v = 1": (2.0, 1.0),
                                        "β = 0": (0.0, 0.5), "unsolved": (None, None)}),
}
