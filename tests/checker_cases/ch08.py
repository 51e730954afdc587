"""Answers for the checkers of chapter 8 (the bug museum): the solution of each exercise and mistakes learners make."""

import math

import numpy as np

import xlstm_edu.np as xnp
from checker_cases import Case
from xlstm_edu.np.gating import log_sigmoid
from xlstm_edu.probes import causality_probe


# ------------------------------------------------------------------------------------------------------ 8.1
def my_causality_probe(fn, q, k, v, i_pre, f_pre, t):
    rng = np.random.default_rng(0)
    noisy = [a.copy() for a in (q, k, v, i_pre, f_pre)]
    for a in noisy:
        a[t + 1:] += rng.standard_normal(a[t + 1:].shape)
    h0, h1 = fn(q, k, v, i_pre, f_pre), fn(*noisy)
    return float(np.abs(h0[:t + 1] - h1[:t + 1]).max())


def _bug_time_norm(q, k, v, i_pre, f_pre):
    k = (k - k.mean(axis=0)) / k.std(axis=0)
    return xnp.mlstm_recurrent(q, k, v, i_pre, f_pre)[0]


def recognizes_the_exhibit(fn, q, k, v, i_pre, f_pre, t):  # knows one bug by name, finds no other
    return float(fn is _bug_time_norm)


def perturbs_from_t(fn, q, k, v, i_pre, f_pre, t):  # changes step t itself
    noisy = [a.copy() for a in (q, k, v, i_pre, f_pre)]
    for a in noisy:
        a[t:] += 1.0
    return float(np.abs(fn(q, k, v, i_pre, f_pre)[:t + 1] - fn(*noisy)[:t + 1]).max())


def compares_every_step(fn, q, k, v, i_pre, f_pre, t):  # compares the outputs after t too
    noisy = [a.copy() for a in (q, k, v, i_pre, f_pre)]
    for a in noisy:
        a[t + 1:] += 1.0
    return float(np.abs(fn(q, k, v, i_pre, f_pre) - fn(*noisy)).max())


def only_the_next_step(fn, q, k, v, i_pre, f_pre, t):  # misses a leak from further ahead
    noisy = [a.copy() for a in (q, k, v, i_pre, f_pre)]
    for a in noisy:
        a[t + 1] += 1.0
    return float(np.abs(fn(q, k, v, i_pre, f_pre)[:t + 1] - fn(*noisy)[:t + 1]).max())


def in_place(fn, q, k, v, i_pre, f_pre, t):  # perturbs the caller's arrays
    h0 = fn(q, k, v, i_pre, f_pre)
    for a in (q, k, v, i_pre, f_pre):
        a[t + 1:] += 1.0
    return float(np.abs(h0[:t + 1] - fn(q, k, v, i_pre, f_pre)[:t + 1]).max())


def the_package_probe(fn, q, k, v, i_pre, f_pre, t):
    return causality_probe(lambda **x: fn(**x), dict(q=q, k=k, v=v, i_pre=i_pre, f_pre=f_pre), t)


# ------------------------------------------------------------------------------------------------------ 8.2
def _batched_step(C, n, m, q, k, v, i_pre, f_pre, eps, *, rescale_f=True, per_sequence=True):
    log_f = log_sigmoid(f_pre)
    m_new = np.maximum(log_f + m, i_pre)
    i_s = np.exp(i_pre - m_new)
    f_s = np.exp(log_f + m - m_new) if rescale_f else np.exp(log_f)
    C = f_s[:, None, None] * C + i_s[:, None, None] * k[:, :, None] * v[:, None, :]
    n = f_s[:, None] * n + i_s[:, None] * k
    q_hat = q / np.sqrt(q.shape[-1])
    den = np.maximum(np.abs(np.einsum("bk,bk->b", q_hat, n)), np.exp(-m_new))
    den = (den if per_sequence else den.max()) + eps
    return np.einsum("bk,bkv->bv", q_hat, C) / np.reshape(den, (-1, 1)), (C, n, m_new)


def repaired_step(C, n, m, q, k, v, i_pre, f_pre, eps):
    return _batched_step(C, n, m, q, k, v, i_pre, f_pre, eps)


def good_step(C, n, m, q, k, v, i_pre, f_pre, eps):  # the museum's specimen: one sequence, not a batch
    log_f = log_sigmoid(f_pre)
    m_new = np.maximum(log_f + m, i_pre)
    i_s, f_s = np.exp(i_pre - m_new), np.exp(log_f + m - m_new)
    C = f_s * C + i_s * np.outer(k, v)
    n = f_s * n + i_s * k
    q_hat = q / np.sqrt(q.shape[-1])
    return (q_hat @ C) / (np.maximum(np.abs(q_hat @ n), np.exp(-m_new)) + eps), (C, n, m_new)


# ------------------------------------------------------------------------------------------------------ 8.3
def _reference(q, k, v, i_pre, f_pre):
    return xnp.mlstm_recurrent(q, k, v, i_pre, f_pre)[0]


def my_mlstm_test(fn):
    rng = np.random.default_rng(0)
    for S, DK, DV, i_shift, dtype in [(13, 4, 3, 0.0, np.float64), (9, 5, 5, 8.0, np.float64),
                                      (12, 4, 4, 100.0, np.float32)]:
        x = dict(q=rng.standard_normal((S, DK)), k=rng.standard_normal((S, DK)), v=rng.standard_normal((S, DV)),
                 i_pre=rng.normal(i_shift, 3, S), f_pre=rng.normal(2, 2, S))
        x = {name: a.astype(dtype) for name, a in x.items()}
        want = _reference(**{name: a.astype(np.float64) for name, a in x.items()})
        with np.errstate(all="ignore"):
            got = np.asarray(fn(**x), dtype=np.float64)
        tol = 1e-6 if dtype == np.float64 else 1e-3
        if got.shape != want.shape or not np.all(np.isfinite(got)):
            return False
        if not np.allclose(got, want, rtol=tol, atol=tol * np.abs(want).max()):
            return False
    return True


def shapes_only(fn):
    rng = np.random.default_rng(0)
    return fn(rng.standard_normal((8, 4)), rng.standard_normal((8, 4)), rng.standard_normal((8, 3)),
              rng.normal(size=8), rng.normal(size=8)).shape == (8, 3)


def small_float64_inputs_only(fn):  # misses the stabilizer bugs
    rng = np.random.default_rng(1)
    x = dict(q=rng.standard_normal((10, 4)), k=rng.standard_normal((10, 4)), v=rng.standard_normal((10, 3)),
             i_pre=rng.normal(0, 1, 10), f_pre=rng.normal(2, 1, 10))
    return bool(np.allclose(fn(**x), _reference(**x), rtol=1e-6, atol=1e-9))


def exact_equality(fn):  # rejects correct forms that differ by round-off
    rng = np.random.default_rng(2)
    x = dict(q=rng.standard_normal((10, 4)), k=rng.standard_normal((10, 4)), v=rng.standard_normal((10, 3)),
             i_pre=rng.normal(0, 3, 10), f_pre=rng.normal(2, 2, 10))
    return bool(np.array_equal(fn(**x), _reference(**x)))


CASES = {
    "8.1": Case(good=my_causality_probe, wrong={
        "recognizes exhibit IX by identity": recognizes_the_exhibit,
        "perturbs step t too": perturbs_from_t,
        "compares the outputs after t too": compares_every_step,
        "perturbs only step t + 1": only_the_next_step,
        "perturbs the caller's arrays in place": in_place,
        "calls the package's probe": the_package_probe,
    }),
    "8.2": Case(good=repaired_step, wrong={
        "the specimen for one sequence": good_step,
        "only the denominator repaired": lambda *a: _batched_step(*a, rescale_f=False),
        "only the forget gate repaired": lambda *a: _batched_step(*a, per_sequence=False),
        "the unrepaired mystery": lambda *a: _batched_step(*a, rescale_f=False, per_sequence=False),
    }),
    "8.3": Case(good=my_mlstm_test, wrong={
        "checks shapes only (exhibit XV)": shapes_only,
        "small float64 inputs only": small_float64_inputs_only,
        "exact equality": exact_equality,
        "always False": lambda fn: False,
    }),
}
