"""Answers for the chapter-11 checkers (format: tests/checker_cases/__init__.py)."""

import numpy as np

from checker_cases import Case


def _logsig(x):
    return -np.logaddexp(0.0, -np.asarray(x, dtype=float))


def stabilizer_good(i_pre, f_pre):
    log_f, m = _logsig(f_pre), np.empty(len(i_pre))
    m[0] = i_pre[0]
    for t in range(1, len(i_pre)):
        m[t] = max(log_f[t] + m[t - 1], i_pre[t])
    return m


def stabilizer_m0_zero(i_pre, f_pre):  # starts from m_0 = 0 instead of an empty memory
    log_f, m, prev = _logsig(f_pre), np.empty(len(i_pre)), 0.0
    for t in range(len(i_pre)):
        m[t] = prev = max(log_f[t] + prev, i_pre[t])
    return m


def stabilizer_raw_f(i_pre, f_pre):  # uses f̃ instead of log σ(f̃)
    m = np.empty(len(i_pre))
    m[0] = i_pre[0]
    for t in range(1, len(i_pre)):
        m[t] = max(f_pre[t] + m[t - 1], i_pre[t])
    return m


def stabilizer_no_carry(i_pre, f_pre):  # forgets m_{t-1}
    return np.maximum(_logsig(f_pre), i_pre)


def memory_good(keys, values, weights):
    return np.einsum("j,jk,jv->kv", weights, keys, values)


def memory_transposed(keys, values, weights):  # d_v x d_k
    return np.einsum("j,jk,jv->vk", weights, keys, values)


def memory_unweighted(keys, values, weights):
    return keys.T @ values


def log_D_good(i_pre, f_pre):
    b = np.cumsum(_logsig(f_pre))
    out = b[:, None] - b[None, :] + i_pre[None, :]
    out[np.triu_indices(len(i_pre), 1)] = -np.inf
    return out


def log_D_no_mask(i_pre, f_pre):
    b = np.cumsum(_logsig(f_pre))
    return b[:, None] - b[None, :] + i_pre[None, :]


def log_D_raw_f(i_pre, f_pre):  # f̃ instead of log σ(f̃)
    b = np.cumsum(f_pre)
    out = b[:, None] - b[None, :] + i_pre[None, :]
    out[np.triu_indices(len(i_pre), 1)] = -np.inf
    return out


def log_D_input_of_t(i_pre, f_pre):  # ĩ_t (the row's) instead of ĩ_s (the column's)
    b = np.cumsum(_logsig(f_pre))
    out = b[:, None] - b[None, :] + i_pre[:, None]
    out[np.triu_indices(len(i_pre), 1)] = -np.inf
    return out


def unsolved(*args):
    raise NotImplementedError("exercise: your code here")


CASES = {
    "11.1": Case(good=(float(np.log(np.finfo(np.float16).max)),),
                 wrong={"forgot the logarithm": (65504.0,), "log2 instead of ln": (float(np.log2(65504.0)),),
                        "the float32 threshold": (float(np.log(np.finfo(np.float32).max)),),
                        "not solved yet": (None,)}),
    "11.2": Case(good=(stabilizer_good,),
                 wrong={"m_0 = 0 instead of an empty memory": (stabilizer_m0_zero,),
                        "f̃ instead of log σ(f̃)": (stabilizer_raw_f,),
                        "m_{t-1} not carried": (stabilizer_no_carry,), "not solved yet": (unsolved,)}),
    "11.3": Case(good=(memory_good,),
                 wrong={"transposed (d_v x d_k)": (memory_transposed,), "weights ignored": (memory_unweighted,),
                        "not solved yet": (unsolved,)}),
    "11.4": Case(good=(log_D_good,),
                 wrong={"future not masked": (log_D_no_mask,), "f̃ instead of log σ(f̃)": (log_D_raw_f,),
                        "ĩ of the row instead of the column": (log_D_input_of_t,), "not solved yet": (unsolved,)}),
}
