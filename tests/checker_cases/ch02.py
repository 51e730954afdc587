"""Answers for the checkers of chapter 2 (exponential gating): the solution of each exercise and mistakes learners
make."""

import numpy as np

from checker_cases import Case
from xlstm_edu.figures.softmax import normalizer_weights


# ------------------------------------------------------------------------------------------------------ 2.1
def exp_gated_memory(z, i_pre, f_pre):
    c = np.zeros_like(z[..., 0])
    n = np.zeros_like(z[..., 0])
    cs, ns = [], []
    for t in range(z.shape[-1]):
        i_t = np.exp(i_pre[..., t])  # eq. 12
        f_t = 1 / (1 + np.exp(-f_pre[..., t]))  # eq. 13, sigmoid
        c = f_t * c + i_t * z[..., t]  # eq. 8
        n = f_t * n + i_t  # eq. 9
        cs.append(c)
        ns.append(n)
    c, n = np.stack(cs, axis=-1), np.stack(ns, axis=-1)
    return c, n, c / n


def only_the_ratio_is_right(z, i_pre, f_pre):  # c and n renormalized every step: c/n passes, c and n do not
    c, n = np.zeros_like(z[..., 0]), np.zeros_like(z[..., 0])
    cs, ns = [], []
    for t in range(z.shape[-1]):
        f_t = 1 / (1 + np.exp(-f_pre[..., t]))
        c, n = f_t * c + np.exp(i_pre[..., t]) * z[..., t], f_t * n + np.exp(i_pre[..., t])
        c, n = c / n, np.ones_like(n)
        cs.append(c)
        ns.append(n)
    c, n = np.stack(cs, axis=-1), np.stack(ns, axis=-1)
    return c, n, c / n


def stabilized_states(z, i_pre, f_pre):  # chapter 3's c', n' (scaled by e^-m): the right ratio, not the true states
    c, n, m = np.zeros_like(z[..., 0]), np.zeros_like(z[..., 0]), np.full(z.shape[:-1], -np.inf)
    cs, ns = [], []
    for t in range(z.shape[-1]):
        log_f = -np.logaddexp(0, -f_pre[..., t])
        m_new = np.maximum(log_f + m, i_pre[..., t])
        c = np.exp(log_f + m - m_new) * c + np.exp(i_pre[..., t] - m_new) * z[..., t]
        n = np.exp(log_f + m - m_new) * n + np.exp(i_pre[..., t] - m_new)
        m = m_new
        cs.append(c)
        ns.append(n)
    c, n = np.stack(cs, axis=-1), np.stack(ns, axis=-1)
    return c, n, c / n


def sigmoid_input_gate(z, i_pre, f_pre):
    return exp_gated_memory(z, np.log(1 / (1 + np.exp(-i_pre))), f_pre)


def exponential_forget_gate(z, i_pre, f_pre):  # eq. 13's other option, not the one asked for
    c, n = np.zeros_like(z[..., 0]), np.zeros_like(z[..., 0])
    cs, ns = [], []
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(z.shape[-1]):
            f_t = np.exp(f_pre[..., t])
            c = f_t * c + np.exp(i_pre[..., t]) * z[..., t]
            n = f_t * n + np.exp(i_pre[..., t])
            cs.append(c)
            ns.append(n)
        c, n = np.stack(cs, axis=-1), np.stack(ns, axis=-1)
        return c, n, c / n


def normalizer_without_forgetting(z, i_pre, f_pre):
    c, n = np.zeros_like(z[..., 0]), np.zeros_like(z[..., 0])
    cs, ns = [], []
    for t in range(z.shape[-1]):
        f_t = 1 / (1 + np.exp(-f_pre[..., t]))
        c = f_t * c + np.exp(i_pre[..., t]) * z[..., t]
        n = n + np.exp(i_pre[..., t])
        cs.append(c)
        ns.append(n)
    c, n = np.stack(cs, axis=-1), np.stack(ns, axis=-1)
    return c, n, c / n


def only_the_last_step(z, i_pre, f_pre):
    c, n, h = exp_gated_memory(z, i_pre, f_pre)
    return c[..., -1], n[..., -1], h[..., -1]


# ------------------------------------------------------------------------------------------------------ 2.2
def readout_weights(i_pre, f_pre):
    log_f = -np.logaddexp(0, -f_pre)  # log σ(f̃), stable
    after = np.cumsum(log_f[::-1])[::-1] - log_f  # Σ_{r>s} log f_r
    log_w = i_pre + after
    w = np.exp(log_w - log_w.max())
    return w / w.sum()


def own_forget_gate_included(i_pre, f_pre):
    log_f = -np.logaddexp(0, -f_pre)
    log_w = i_pre + np.cumsum(log_f[::-1])[::-1]  # Σ_{r>=s}: off by one
    w = np.exp(log_w - log_w.max())
    return w / w.sum()


def without_the_max(i_pre, f_pre):
    log_f = -np.logaddexp(0, -f_pre)
    with np.errstate(over="ignore", invalid="ignore"):
        w = np.exp(i_pre + np.cumsum(log_f[::-1])[::-1] - log_f)
        return w / w.sum()


def a_loop_over_time(i_pre, f_pre):  # right numbers, breaks the rule
    S = len(i_pre)
    log_w = np.empty(S)
    for s in range(S):
        log_w[s] = i_pre[s] + np.sum(-np.logaddexp(0, -f_pre[s + 1:]))
    w = np.exp(log_w - log_w.max())
    return w / w.sum()


def the_package(i_pre, f_pre):
    return normalizer_weights(i_pre, f_pre)[-1]


# ------------------------------------------------------------------------------------------------------ 2.3
def grad_readout_wrt_ipre(z, i_pre, f_pre):
    w = readout_weights(i_pre, f_pre)
    return w * (z - w @ z)


CASES = {
    "2.1": Case(good=exp_gated_memory, wrong={
        "c and n renormalized every step (only c/n right)": only_the_ratio_is_right,
        "the stabilized states c', n' of chapter 3": stabilized_states,
        "a sigmoid input gate": sigmoid_input_gate,
        "an exponential forget gate": exponential_forget_gate,
        "a normalizer without the forget gate": normalizer_without_forgetting,
        "only the last step": only_the_last_step,
        "c and n only": lambda z, i, f: exp_gated_memory(z, i, f)[:2],
    }),
    "2.2": Case(good=readout_weights, wrong={
        "the stored step's own forget gate included": own_forget_gate_included,
        "exp before subtracting the maximum": without_the_max,
        "the forget gates left out": lambda i, f: np.exp(i - i.max()) / np.exp(i - i.max()).sum(),
        "not normalized": lambda i, f: readout_weights(i, f) * 3.0,
        "a loop over time": a_loop_over_time,
        "calls the package": the_package,
    }),
    "2.3": Case(good=grad_readout_wrt_ipre, wrong={
        "the normalizer's term missing": lambda z, i, f: readout_weights(i, f) * z,
        "sign flipped": lambda z, i, f: -grad_readout_wrt_ipre(z, i, f),
        "the factor w missing": lambda z, i, f: z - readout_weights(i, f) @ z,
        "weights without the forget gates": lambda z, i, f: grad_readout_wrt_ipre(z, i, np.full_like(f, 800.0)),
        "the weights including the stored step's own forget gate": lambda z, i, f: own_forget_gate_included(i, f) * (
            z - own_forget_gate_included(i, f) @ z),
    }),
}
