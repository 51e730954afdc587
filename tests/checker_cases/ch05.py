"""Answers for the checkers of chapter 5 (matrix memory): the solution of each exercise and mistakes learners make."""

import numpy as np

import xlstm_edu.np as xnp
from checker_cases import Case
from xlstm_edu.np.gating import log_sigmoid


# ------------------------------------------------------------------------------------------------------ 5.1
def store_with_gates(keys, values, i, f):
    b = np.cumsum(np.log(f))  # b_t = sum_{r<=t} log f_r
    w = np.exp(b[-1] - b) * i  # prod_{r=s+1}^{S} f_r * i_s
    return (keys * w[:, None]).T @ values


def decay_includes_own_gate(keys, values, i, f):  # prod_{r=s}^{S}: off by one
    b = np.cumsum(np.log(f))
    w = np.exp(b[-1] - b + np.log(f)) * i
    return (keys * w[:, None]).T @ values


def decay_from_the_start(keys, values, i, f):  # the gates before s instead of after
    b = np.cumsum(np.log(f))
    w = np.exp(b - np.log(f)) * i
    return (keys * w[:, None]).T @ values


def with_a_loop(keys, values, i, f):  # right numbers, breaks the rule
    C = np.zeros((keys.shape[1], values.shape[1]))
    for k, v, i_t, f_t in zip(keys, values, i, f):
        C = f_t * C + i_t * np.outer(k, v)
    return C


def calls_the_package(keys, values, i, f):
    _, (C, _, m) = xnp.mlstm_recurrent(keys, keys, values, np.log(i), np.log(f), forget_gate="exp")
    return C * np.exp(m)


# ------------------------------------------------------------------------------------------------------ 5.2
def _mlstm(q, k, v, i_pre, f_pre, state=None, eps=1e-6, *, bound_one=False, no_abs=False, eps_inside=False,
           stabilize=True):
    S, DK = q.shape
    if state is None:
        C, n, m = np.zeros((DK, v.shape[1]), dtype=q.dtype), np.zeros(DK, dtype=q.dtype), 0.0
    else:
        C, n, m = state
    h = np.zeros((S, v.shape[1]), dtype=q.dtype)
    for t in range(S):
        log_f = log_sigmoid(f_pre[t])
        if stabilize:
            m_new = np.maximum(log_f + m, i_pre[t])
            i_s, f_s = np.exp(i_pre[t] - m_new), np.exp(log_f + m - m_new)
        else:
            m_new, i_s, f_s = 0.0, np.exp(i_pre[t]), np.exp(log_f)
        C = f_s * C + i_s * np.outer(k[t], v[t])
        n = f_s * n + i_s * k[t]
        m = m_new
        q_hat = q[t] / np.sqrt(DK)
        qn = q_hat @ n if no_abs else abs(q_hat @ n)
        bound = 1.0 if bound_one else np.exp(-m)
        h[t] = (q_hat @ C) / (np.maximum(qn + eps, bound) if eps_inside else np.maximum(qn, bound) + eps)
    return h, (C, n, m)


def my_mlstm_recurrent(q, k, v, i_pre, f_pre, state=None, eps=1e-6):
    return _mlstm(q, k, v, i_pre, f_pre, state, eps)


def bound_one_on_stabilized_states(q, k, v, i_pre, f_pre, state=None, eps=1e-6):
    return _mlstm(q, k, v, i_pre, f_pre, state, eps, bound_one=True)


def no_absolute_value(q, k, v, i_pre, f_pre, state=None, eps=1e-6):
    return _mlstm(q, k, v, i_pre, f_pre, state, eps, no_abs=True)


def no_stabilizer(q, k, v, i_pre, f_pre, state=None, eps=1e-6):
    with np.errstate(over="ignore", invalid="ignore"):
        return _mlstm(q, k, v, i_pre, f_pre, state, eps, stabilize=False)


def package_recurrence(q, k, v, i_pre, f_pre, state=None, eps=1e-6):
    return xnp.mlstm_recurrent(q, k, v, i_pre, f_pre, state=state, eps=eps)


def package_chunkwise_standing_in(q, k, v, i_pre, f_pre, state=None, eps=1e-6):
    return xnp.mlstm_chunkwise(q, k, v, i_pre, f_pre, chunk_size=4, state=state, eps=eps)


# ------------------------------------------------------------------------------------------------------ 5.3
def linear_attention(q, k, v):
    A = np.tril((q / np.sqrt(q.shape[1])) @ k.T)
    return (A @ v) / np.maximum(np.abs(A.sum(axis=1)), 1.0)[:, None]


def not_causal(q, k, v):
    A = (q / np.sqrt(q.shape[1])) @ k.T
    return (A @ v) / np.maximum(np.abs(A.sum(axis=1)), 1.0)[:, None]


def without_the_bound(q, k, v):
    A = np.tril((q / np.sqrt(q.shape[1])) @ k.T)
    return (A @ v) / np.abs(A.sum(axis=1))[:, None]


def without_the_absolute_value(q, k, v):
    A = np.tril((q / np.sqrt(q.shape[1])) @ k.T)
    return (A @ v) / np.maximum(A.sum(axis=1), 1.0)[:, None]


def without_the_scale(q, k, v):
    A = np.tril(q @ k.T)
    return (A @ v) / np.maximum(np.abs(A.sum(axis=1)), 1.0)[:, None]


def row_by_row(q, k, v):  # right numbers, breaks the rule
    q_hat = q / np.sqrt(q.shape[1])
    rows = []
    for t in range(len(q)):
        a = k[:t + 1] @ q_hat[t]
        rows.append(a @ v[:t + 1] / max(abs(a.sum()), 1.0))
    return np.array(rows)


def the_ungated_package(q, k, v):
    S = len(q)
    return xnp.mlstm_recurrent(q, k, v, np.zeros(S), np.zeros(S), eps=0.0, forget_gate="exp")[0]


CASES = {
    "5.1": Case(good=store_with_gates, wrong={
        "the decay includes the pair's own forget gate": decay_includes_own_gate,
        "the decay of the gates before s": decay_from_the_start,
        "a loop over time": with_a_loop,
        "calls the package": calls_the_package,
    }),
    "5.2": Case(good=my_mlstm_recurrent, wrong={
        "the bound 1 on stabilized states": bound_one_on_stabilized_states,
        "no absolute value in the normalizer": no_absolute_value,
        "no stabilizer": no_stabilizer,
        "calls the package": package_recurrence,
        "the package's chunkwise form standing in": package_chunkwise_standing_in,
    }),
    "5.3": Case(good=linear_attention, wrong={
        "not causal (no tril)": not_causal,
        "no bound 1 in the denominator": without_the_bound,
        "no absolute value": without_the_absolute_value,
        "no 1/sqrt(DK) on q": without_the_scale,
        "a loop over time": row_by_row,
        "the ungated package recurrence": the_ungated_package,
    }),
}
