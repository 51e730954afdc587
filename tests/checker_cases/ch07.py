"""Answers for the checkers of chapter 7 (the chunkwise mLSTM): the solution of each exercise and mistakes learners
make."""

import numpy as np

import xlstm_edu.np as xnp
from checker_cases import Case
from xlstm_edu.np.gating import log_sigmoid


# ------------------------------------------------------------------------------------------------------ 7.1
def chunk_end_state(C, n, m, k, v, i_pre, f_pre):
    b = np.cumsum(log_sigmoid(f_pre))
    log_w = b[-1] - b + i_pre  # log D_{L s}: the weight of step s at the chunk's end
    m_new = max(b[-1] + m, log_w.max())  # the carried state competes too
    w = np.exp(log_w - m_new)
    decay = np.exp(b[-1] + m - m_new)
    return decay * C + (k * w[:, None]).T @ v, decay * n + k.T @ w, m_new


def ignores_the_carried_m(C, n, m, k, v, i_pre, f_pre):  # m_new = log_w.max()
    b = np.cumsum(log_sigmoid(f_pre))
    log_w = b[-1] - b + i_pre
    m_new = log_w.max()
    w = np.exp(log_w - m_new)
    decay = np.exp(b[-1] + m - m_new)
    return decay * C + (k * w[:, None]).T @ v, decay * n + k.T @ w, m_new


def old_state_not_decayed(C, n, m, k, v, i_pre, f_pre):
    b = np.cumsum(log_sigmoid(f_pre))
    log_w = b[-1] - b + i_pre
    m_new = max(b[-1] + m, log_w.max())
    w = np.exp(log_w - m_new)
    return C + (k * w[:, None]).T @ v, n + k.T @ w, m_new


def input_gates_forgotten(C, n, m, k, v, i_pre, f_pre):
    b = np.cumsum(log_sigmoid(f_pre))
    log_w = b[-1] - b
    m_new = max(b[-1] + m, log_w.max())
    w = np.exp(log_w - m_new)
    decay = np.exp(b[-1] + m - m_new)
    return decay * C + (k * w[:, None]).T @ v, decay * n + k.T @ w, m_new


def step_by_step(C, n, m, k, v, i_pre, f_pre):  # right numbers, breaks the rule
    for t in range(len(i_pre)):
        log_f = log_sigmoid(f_pre[t])
        m_new = max(log_f + m, i_pre[t])
        f_s, i_s = np.exp(log_f + m - m_new), np.exp(i_pre[t] - m_new)
        C, n, m = f_s * C + i_s * np.outer(k[t], v[t]), f_s * n + i_s * k[t], m_new
    return C, n, m


def the_package_recurrence(C, n, m, k, v, i_pre, f_pre):
    return xnp.mlstm_recurrent(np.zeros_like(k), k, v, i_pre, f_pre, state=(C, n, m))[1]


# ------------------------------------------------------------------------------------------------------ 7.2
def _chunkwise(q, k, v, i_pre, f_pre, chunk_size=16, state=None, eps=1e-6, *, end_state=chunk_end_state,
               carried_in_m=True, bound_one=False):
    S, DK = q.shape
    if state is None:
        state = (np.zeros((DK, v.shape[1]), dtype=q.dtype), np.zeros(DK, dtype=q.dtype), 0.0)
    C, n, m = state
    h = np.zeros((S, v.shape[1]), dtype=q.dtype)
    for start in range(0, S, chunk_size):
        c = slice(start, min(start + chunk_size, S))
        L = len(i_pre[c])
        b = np.cumsum(log_sigmoid(f_pre[c]))
        logD = np.where(np.tri(L, dtype=bool), b[:, None] - b[None, :] + i_pre[c][None, :], -np.inf)
        m_t = np.maximum(b + m, logD.max(axis=1)) if carried_in_m else logD.max(axis=1)
        w_old = np.exp(b + m - m_t)
        qc = q[c] / np.sqrt(DK)
        S_in = (qc @ k[c].T) * np.exp(logD - m_t[:, None])
        num = w_old[:, None] * (qc @ C) + S_in @ v[c]
        den = w_old * (qc @ n) + S_in.sum(axis=1)
        with np.errstate(over="ignore"):
            bound = 1.0 if bound_one else np.exp(-m_t)
            h[c] = num / (np.maximum(np.abs(den), bound) + eps)[:, None]
        C, n, m = end_state(C, n, m, k[c], v[c], i_pre[c], f_pre[c])
    return h, (C, n, m)


def my_mlstm_chunkwise(q, k, v, i_pre, f_pre, chunk_size=16, state=None, eps=1e-6):
    return _chunkwise(q, k, v, i_pre, f_pre, chunk_size, state, eps)


def carried_state_left_out_of_m(q, k, v, i_pre, f_pre, chunk_size=16, state=None, eps=1e-6):
    with np.errstate(over="ignore", invalid="ignore"):
        return _chunkwise(q, k, v, i_pre, f_pre, chunk_size, state, eps, carried_in_m=False)


def end_state_ignores_carried_m(q, k, v, i_pre, f_pre, chunk_size=16, state=None, eps=1e-6):
    with np.errstate(over="ignore", invalid="ignore"):
        return _chunkwise(q, k, v, i_pre, f_pre, chunk_size, state, eps, end_state=ignores_the_carried_m)


def bound_one_in_chunks(q, k, v, i_pre, f_pre, chunk_size=16, state=None, eps=1e-6):
    return _chunkwise(q, k, v, i_pre, f_pre, chunk_size, state, eps, bound_one=True)


def only_whole_chunks(q, k, v, i_pre, f_pre, chunk_size=16, state=None, eps=1e-6):  # drops a last, shorter chunk
    S_full = (len(q) // chunk_size) * chunk_size
    h, st = _chunkwise(q[:S_full], k[:S_full], v[:S_full], i_pre[:S_full], f_pre[:S_full], chunk_size, state, eps)
    return np.concatenate([h, np.zeros((len(q) - S_full, v.shape[1]), dtype=h.dtype)]), st


def the_package(q, k, v, i_pre, f_pre, chunk_size=16, state=None, eps=1e-6):
    return xnp.mlstm_chunkwise(q, k, v, i_pre, f_pre, chunk_size=chunk_size, state=state, eps=eps)


# ------------------------------------------------------------------------------------------------------ 7.3
def run_in_pieces(chunkwise, q, k, v, i_pre, f_pre, piece, chunk_size=8):
    hs, state = [], None
    for a in range(0, len(i_pre), piece):
        s = slice(a, a + piece)
        h, state = chunkwise(q[s], k[s], v[s], i_pre[s], f_pre[s], chunk_size=chunk_size, state=state)
        hs.append(h)
    return np.concatenate(hs), state


def state_not_passed(chunkwise, q, k, v, i_pre, f_pre, piece, chunk_size=8):
    hs, state = [], None
    for a in range(0, len(i_pre), piece):
        s = slice(a, a + piece)
        h, state = chunkwise(q[s], k[s], v[s], i_pre[s], f_pre[s], chunk_size=chunk_size)
        hs.append(h)
    return np.concatenate(hs), state


def one_call(chunkwise, q, k, v, i_pre, f_pre, piece, chunk_size=8):  # ignores the pieces
    return chunkwise(q, k, v, i_pre, f_pre, chunk_size=chunk_size)


def overlapping_pieces(chunkwise, q, k, v, i_pre, f_pre, piece, chunk_size=8):  # a:a+piece+1
    hs, state = [], None
    for a in range(0, len(i_pre), piece):
        s = slice(a, a + piece + 1)
        h, state = chunkwise(q[s], k[s], v[s], i_pre[s], f_pre[s], chunk_size=chunk_size, state=state)
        hs.append(h[:piece])
    return np.concatenate(hs), state


def the_package_recurrence(chunkwise, q, k, v, i_pre, f_pre, piece, chunk_size=8):
    return xnp.mlstm_recurrent(q, k, v, i_pre, f_pre)


CASES = {
    "7.1": Case(good=chunk_end_state, wrong={
        "m_new = log_w.max(): the carried state left out": ignores_the_carried_m,
        "the old state not decayed": old_state_not_decayed,
        "the input gates forgotten": input_gates_forgotten,
        "a loop over the chunk's steps": step_by_step,
        "the package's recurrence": the_package_recurrence,
    }),
    "7.2": Case(good=my_mlstm_chunkwise, wrong={
        "the carried state left out of the common stabilizer": carried_state_left_out_of_m,
        "the end state ignores the carried m": end_state_ignores_carried_m,
        "the bound 1 on stabilized states": bound_one_in_chunks,
        "a last, shorter chunk dropped": only_whole_chunks,
        "the package": the_package,
    }),
    "7.3": Case(good=run_in_pieces, wrong={
        "the state not passed on": state_not_passed,
        "one call on the whole sequence": one_call,
        "overlapping pieces": overlapping_pieces,
        "the package's recurrence on the whole sequence": the_package_recurrence,
    }),
}
