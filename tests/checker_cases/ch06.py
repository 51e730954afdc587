"""Answers for the checkers of chapter 6 (the parallel mLSTM): the solution of each exercise and mistakes learners
make."""

import numpy as np

import xlstm_edu.np as xnp
from checker_cases import Case
from xlstm_edu.np.gating import log_sigmoid, sigmoid


# ------------------------------------------------------------------------------------------------------ 6.1
def my_log_D(i_pre, f_pre):
    b = np.cumsum(log_sigmoid(f_pre))
    logD = b[:, None] - b[None, :] + i_pre[None, :]
    return np.where(np.tri(len(i_pre), dtype=bool), logD, -np.inf)


def off_by_one(i_pre, f_pre):  # includes log f_s: sums r = s .. t
    log_f = log_sigmoid(f_pre)
    b = np.cumsum(log_f)
    logD = b[:, None] - b[None, :] + log_f[None, :] + i_pre[None, :]
    return np.where(np.tri(len(i_pre), dtype=bool), logD, -np.inf)


def zeros_above_the_diagonal(i_pre, f_pre):  # np.tril: weight e^0 = 1 on the future
    b = np.cumsum(log_sigmoid(f_pre))
    return np.tril(b[:, None] - b[None, :] + i_pre[None, :])


def raw_pre_activation_as_log_f(i_pre, f_pre):  # the exponential forget gate by mistake
    b = np.cumsum(f_pre)
    logD = b[:, None] - b[None, :] + i_pre[None, :]
    return np.where(np.tri(len(i_pre), dtype=bool), logD, -np.inf)


def double_loop(i_pre, f_pre):  # right numbers, breaks the rule
    S = len(i_pre)
    log_f = log_sigmoid(f_pre)
    out = np.full((S, S), -np.inf)
    for t in range(S):
        for s in range(t + 1):
            out[t, s] = log_f[s + 1:t + 1].sum() + i_pre[s]
    return out


def from_the_package(i_pre, f_pre):
    z = np.zeros((len(i_pre), 1))
    return xnp.mlstm_parallel_parts(z, z, z, i_pre, f_pre)["log_D"]


# ------------------------------------------------------------------------------------------------------ 6.2
def _parallel(q, k, v, i_pre, f_pre, eps=1e-6, *, log_D=my_log_D, bound_one=False, stabilize=True,
              eps_inside=False):
    S, DK = q.shape
    logD = log_D(i_pre, f_pre)
    m = logD.max(axis=1, keepdims=True) if stabilize else np.zeros((S, 1))
    with np.errstate(over="ignore", invalid="ignore"):
        St = ((q / np.sqrt(DK)) @ k.T) * np.exp(logD - m)
        r = np.abs(St.sum(axis=1, keepdims=True))
        bound = 1.0 if bound_one else np.exp(-m)
        den = np.maximum(r + eps, bound) if eps_inside else np.maximum(r, bound) + eps
        return (St / den) @ v


def my_mlstm_parallel(q, k, v, i_pre, f_pre, eps=1e-6):
    return _parallel(q, k, v, i_pre, f_pre, eps)


def bound_one(q, k, v, i_pre, f_pre, eps=1e-6):
    return _parallel(q, k, v, i_pre, f_pre, eps, bound_one=True)


def no_row_stabilizer(q, k, v, i_pre, f_pre, eps=1e-6):
    return _parallel(q, k, v, i_pre, f_pre, eps, stabilize=False)


def future_not_masked(q, k, v, i_pre, f_pre, eps=1e-6):
    return _parallel(q, k, v, i_pre, f_pre, eps, log_D=zeros_above_the_diagonal)


def recurrence_standing_in(q, k, v, i_pre, f_pre, eps=1e-6):
    return xnp.mlstm_recurrent(q, k, v, i_pre, f_pre, eps=eps)[0]


# ------------------------------------------------------------------------------------------------------ 6.3
def _backward(dh, q, k, v, i_pre, f_pre, *, normalizer_grad=True, reverse_cumsum=True, dlogsig=None):
    S, DK = q.shape
    logD = my_log_D(i_pre, f_pre)
    m = logD.max(axis=1, keepdims=True)
    Dp = np.exp(logD - m)
    A = (q / np.sqrt(DK)) @ k.T
    St = A * Dp
    r = St.sum(axis=1, keepdims=True)
    bound = np.exp(-m)
    d = np.maximum(np.abs(r), bound)
    P = St / d
    dv = P.T @ dh
    dP = dh @ v.T
    dSt = dP / d
    if normalizer_grad:
        dd = -(dP * P).sum(axis=1, keepdims=True) / d
        dSt = dSt + dd * np.sign(r) * (np.abs(r) > bound)
    dA = dSt * Dp
    dq, dk = dA @ k / np.sqrt(DK), dA.T @ q / np.sqrt(DK)
    dlogD = dSt * A * Dp
    di = dlogD.sum(axis=0)
    db = dlogD.sum(axis=1) - dlogD.sum(axis=0)
    dlogf = np.cumsum(db[::-1])[::-1] if reverse_cumsum else db
    df = dlogf * (sigmoid(-f_pre) if dlogsig is None else dlogsig(f_pre))
    return {"q": dq, "k": dk, "v": dv, "i_pre": di, "f_pre": df}


def my_parallel_backward(dh, q, k, v, i_pre, f_pre):
    return _backward(dh, q, k, v, i_pre, f_pre)


def normalizer_held_constant(dh, q, k, v, i_pre, f_pre):  # the denominator treated as a constant
    return _backward(dh, q, k, v, i_pre, f_pre, normalizer_grad=False)


def no_reverse_cumsum(dh, q, k, v, i_pre, f_pre):  # dL/dlog f = dL/db
    return _backward(dh, q, k, v, i_pre, f_pre, reverse_cumsum=False)


def wrong_log_sigmoid_derivative(dh, q, k, v, i_pre, f_pre):  # sigma(x) instead of sigma(-x)
    return _backward(dh, q, k, v, i_pre, f_pre, dlogsig=sigmoid)


def the_package_backward(dh, q, k, v, i_pre, f_pre):
    return xnp.mlstm_parallel_backward(dh, q, k, v, i_pre, f_pre, eps=0.0)


CASES = {
    "6.1": Case(good=my_log_D, wrong={
        "the cumulative sum off by one (log f_s included)": off_by_one,
        "zeros above the diagonal (np.tril)": zeros_above_the_diagonal,
        "the raw pre-activation used as log f": raw_pre_activation_as_log_f,
        "a double loop": double_loop,
        "the package's intermediates": from_the_package,
    }),
    "6.2": Case(good=my_mlstm_parallel, wrong={
        "the bound 1 after row-wise stabilization": bound_one,
        "no row-wise stabilizer": no_row_stabilizer,
        "the future not masked": future_not_masked,
        "the package's recurrence standing in": recurrence_standing_in,
    }),
    "6.3": Case(good=my_parallel_backward, wrong={
        "the normalizer held constant": normalizer_held_constant,
        "no reverse cumulative sum": no_reverse_cumsum,
        "the wrong derivative of log sigmoid": wrong_log_sigmoid_derivative,
        "the package's backward": the_package_backward,
    }),
}
