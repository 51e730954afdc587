"""Checkers of chapter 2 (exponential gating and the normalizer).

2.1 ``check_exp_gated_memory(exp_gated_memory)`` — the memory c_t, the normalizer n_t and c_t/n_t (eq. 8-9, 12-13),
    every one of the three checked, on sequences with leading dimensions;
2.2 ``check_readout_weights(readout_weights)`` — the weights of the last read-out c_S/n_S as a softmax over time,
    finite for any gates, without a loop over time;
2.3 ``check_readout_gradient(grad_readout_wrt_ipre)`` — d(c_S/n_S)/dĩ_s = w_s (z_s - c_S/n_S).

The expected values come from the package: the sLSTM without stabilizer (``xlstm_edu.np``) for 2.1, the softmax
weights of ``xlstm_edu.figures.softmax`` (tested against the package's sLSTM) for 2.2 and 2.3, computed before the
learner's code runs. ``reference_memory``, ``reference_readout_gradient``: the package's answers to exercises 2.1
and 2.3, used by the chapter while they are not solved.
"""

from __future__ import annotations

import numpy as np

from xlstm_edu.exercises import combine, exercise
from xlstm_edu.exercises._rules import (call_learner, check_cases_without_time_loop, compare_diagnosed,
                                        known_mistake, refused)
from xlstm_edu.exercises.core import _emit, compare, raised_verdict


# ------------------------------------------------------------------------------------------------------ 2.1
def reference_memory(z, i_pre, f_pre):
    """The package's answer to exercise 2.1: ``(c, n, c / n)``, each (..., S): eq. 8-9 from an empty state with the
    package's unstabilized gates (``xlstm_edu.np.gating.unstabilized_gates``: i = exp(ĩ), f = σ(f̃)), in the dtype of
    the inputs, overflowing where the plain formulas overflow (chapter 2 shows it in float16). Equal to the states of
    ``xlstm_edu.np.slstm_recurrent_unstabilized`` (``_package_states``, used by the checker)."""
    from xlstm_edu.np.gating import log_forget_gate, unstabilized_gates

    z, i_pre, f_pre = (np.asarray(a) for a in (z, i_pre, f_pre))
    if not (z.shape == i_pre.shape == f_pre.shape) or z.ndim == 0:
        raise ValueError(f"z, i_pre, f_pre: expected arrays of one shape (..., S), got {z.shape}, {i_pre.shape}, "
                         f"{f_pre.shape}")
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        i, f = unstabilized_gates(log_forget_gate(f_pre), i_pre)  # eq. 12, 13
        c = np.zeros(z.shape[:-1], np.result_type(z, i, f))
        n = np.zeros_like(c)
        cs, ns = [], []
        for t in range(z.shape[-1]):
            c = f[..., t] * c + i[..., t] * z[..., t]  # eq. 8
            n = f[..., t] * n + i[..., t]  # eq. 9
            cs.append(c)
            ns.append(n)
        c, n = np.stack(cs, axis=-1), np.stack(ns, axis=-1)
        return c, n, c / n


def _package_states(z, i_pre, f_pre):
    """(c, n, c / n) from the package's sLSTM without stabilizer (``xlstm_edu.np.slstm_recurrent_unstabilized``),
    one unit, R = 0, z̃ = artanh(z), run one step at a time to collect the states (finite inputs only)."""
    import xlstm_edu.np as xnp

    wx = np.zeros(z.shape + (4, 1))
    wx[..., 0, 0], wx[..., 1, 0], wx[..., 2, 0] = i_pre, f_pre, np.arctanh(z)  # o and R play no part in c, n
    R, b = np.zeros((4, 1, 1, 1)), np.zeros((4, 1))
    state, cs, ns = None, [], []
    for t in range(z.shape[-1]):
        _, state = xnp.slstm_recurrent_unstabilized(wx[..., t:t + 1, :, :], R, b, state)
        cs.append(state[1][..., 0])
        ns.append(state[2][..., 0])
    c, n = np.stack(cs, axis=-1), np.stack(ns, axis=-1)
    return c, n, c / n


HINT_2_1 = ("check the gates (input gate exp(ĩ), forget gate σ(f̃)), that n decays with the same f_t as c, and that "
            "you return the true c and n at every step, not rescaled ones")


def _memory(z, i_pre, f_pre, *, input_gate="exp", forget_gate="sigmoid", n_forgets=True, renormalize=False,
            forget_own_write=False):
    """The memory of exercise 2.1 with one deliberate difference (for naming a learner's mistake)."""
    c = np.zeros(z.shape[:-1])
    n = np.zeros(z.shape[:-1])
    cs, ns = [], []
    with np.errstate(all="ignore"):
        for t in range(z.shape[-1]):
            i = np.exp(i_pre[..., t]) if input_gate == "exp" else 1 / (1 + np.exp(-i_pre[..., t]))
            f = 1 / (1 + np.exp(-f_pre[..., t])) if forget_gate == "sigmoid" else np.exp(f_pre[..., t])
            if forget_own_write:
                c, n = f * (c + i * z[..., t]), f * (n + i)
            else:
                c = f * c + i * z[..., t]
                n = (f * n if n_forgets else n) + i
            if renormalize:
                c, n = c / n, np.ones_like(n)
            cs.append(c)
            ns.append(n)
    c, n = np.stack(cs, axis=-1), np.stack(ns, axis=-1)
    return c, n, c / n


def _variants_2_1(z, i_pre, f_pre):
    def stabilized():  # chapter 3's states c' = c e^{-m}, n' = n e^{-m}
        import xlstm_edu.np as xnp

        S = z.shape[-1]
        wx = np.zeros(z.shape + (4, 1))
        wx[..., 0, 0], wx[..., 1, 0], wx[..., 2, 0] = i_pre, f_pre, np.arctanh(z)
        state, cs, ns = None, [], []
        for t in range(S):
            _, state = xnp.slstm_recurrent(wx[..., t:t + 1, :, :], np.zeros((4, 1, 1, 1)), np.zeros((4, 1)), state)
            cs.append(state[1][..., 0])
            ns.append(state[2][..., 0])
        c, n = np.stack(cs, axis=-1), np.stack(ns, axis=-1)
        return np.stack([c, n, c / n])

    def v(**kw):
        return lambda: np.stack(_memory(z, i_pre, f_pre, **kw))

    return {
        "stabilized states (chapter 3's c' = c e^(-m), n' = n e^(-m)): c/n is right, but c and n must be the true "
        "ones": stabilized,
        "c and n renormalized at every step (c <- c/n, n <- 1): c/n is right, c and n are not": v(renormalize=True),
        "a sigmoid input gate: eq. 12 is i = exp(ĩ)": v(input_gate="sigmoid"),
        "an exponential forget gate exp(f̃): this exercise uses the sigmoid f = σ(f̃)": v(forget_gate="exp"),
        "a normalizer without the forget gate (n_t = n_(t-1) + i_t)": v(n_forgets=False),
        "the forget gate also applied to the new input: f (c + i z) instead of f c + i z": v(forget_own_write=True),
    }


def _memory_inputs(rng, shape, i_scale=2.0, f_mean=2.0, f_scale=1.5):
    return (np.tanh(rng.normal(size=shape)), rng.normal(0, i_scale, shape), rng.normal(f_mean, f_scale, shape))


@exercise("2.1")
def check_exp_gated_memory(fn, *, quiet: bool = False):
    """Exercise 2.1: ``fn(z, i_pre, f_pre)`` -> ``(c, n, c / n)``, each (..., S), equal to ``reference_memory``."""
    name = "exercise 2.1: exp_gated_memory"
    rng = np.random.default_rng(21)
    cases = [
        ("a batch of 3 sequences of 12 steps", _memory_inputs(rng, (3, 12))),
        ("one sequence of 7 steps (1-d arrays)", _memory_inputs(rng, (7,))),
        ("shape (2, 2, 5): two leading dimensions", _memory_inputs(rng, (2, 2, 5))),
        ("one step (S = 1)", _memory_inputs(rng, (4, 1))),
        ("forget gates that shut (f̃ down to -6) and input gates from e^-6 to e^6",
         _memory_inputs(rng, (2, 9), i_scale=3.0, f_mean=-1.0, f_scale=3.0)),
    ]
    verdicts = []
    for what, args in cases:
        expected = _package_states(*args)
        out, bad = call_learner(name, fn, *(a.copy() for a in args), hint=HINT_2_1)
        if bad is not None:
            return _emit(bad, quiet)
        if not (isinstance(out, (tuple, list)) and len(out) == 3):
            got = f"a tuple of {len(out)}" if isinstance(out, (tuple, list)) else type(out).__name__
            return _emit(raised_verdict(name, f"expected the tuple (c, n, c / n), got {got}", HINT_2_1), quiet)
        parts, wrong = [], []
        for label, got, exp in zip(("c", "n", "c / n"), out, expected):
            try:
                g = np.asarray(got, dtype=np.float64)
            except (TypeError, ValueError):
                return _emit(raised_verdict(name, f"{label} is not an array of numbers", HINT_2_1), quiet)
            v = compare(f"{name}, {label} ({what})", g, exp, rtol=1e-9, atol=1e-12, hint=HINT_2_1)
            parts.append(g)
            (verdicts if v.ok else wrong).append(v if v.ok else (label, v))
        if wrong:
            labels = [label for label, _ in wrong]
            right = [lb for lb in ("c", "n", "c / n") if lb not in labels]
            first = wrong[0][1]
            detail = first.message.split(": ", 2)[-1].split(" -- hint:")[0]  # "wrong (max abs diff ...)"
            hint = HINT_2_1
            if all(p.shape == e.shape for p, e in zip(parts, expected)):
                mistake = known_mistake(np.stack(parts), _variants_2_1(*args))
                hint = f"it looks like {mistake}" if mistake else HINT_2_1
            msg = (f"{', '.join(labels[:-1]) + ' and ' + labels[-1] if len(labels) > 1 else labels[0]} wrong" + (f" ({', '.join(right)} right)" if right else "")
                   + f" on {what}: {labels[0]} {detail}")
            return _emit(raised_verdict(name, msg, hint), quiet)
    return combine(name, verdicts, quiet=quiet)


# ------------------------------------------------------------------------------------------------------ 2.2
HINT_2_2 = ("w_s is proportional to exp(ĩ_s + the sum of log f_r over the steps r AFTER s); a reversed cumulative "
            "sum gives all these sums at once; subtract the largest exponent before exp, and make the weights sum "
            "to 1")


def _log_f(f_pre):
    return -np.logaddexp(0.0, -f_pre)


def _softmax(logw):
    with np.errstate(all="ignore"):
        w = np.exp(logw - np.max(logw))
        return w / w.sum()


def _variants_2_2(i_pre, f_pre):
    log_f = _log_f(f_pre)
    after = np.cumsum(log_f[::-1])[::-1] - log_f  # Σ_{r>s} log f_r
    with np.errstate(all="ignore"):
        return {
            "the forget gate of the stored step itself is included: the decay starts at f_(s+1), not f_s":
                lambda: _softmax(i_pre + after + log_f),
            "the decay runs over the forget gates before s (a cumulative sum from the start) instead of after it":
                lambda: _softmax(i_pre + np.cumsum(log_f)),
            "the forget gates are left out (a softmax of ĩ alone)": lambda: _softmax(i_pre),
            "the exponential forget gate: log f = f̃ instead of log σ(f̃)":
                lambda: _softmax(i_pre + np.cumsum(f_pre[::-1])[::-1] - f_pre),
            "exp taken before subtracting the maximum: e^800 overflows to inf, and inf/inf is NaN":
                lambda: np.exp(i_pre + after) / np.exp(i_pre + after).sum(),
            "the weights are not normalized (they must sum to 1)": lambda: np.exp(i_pre + after - np.max(i_pre + after)),
        }


def _weights_inputs(rng, S, i_shift=0.0, i_scale=2.0, f_mean=2.0, f_scale=1.5):
    return rng.normal(i_shift, i_scale, S), rng.normal(f_mean, f_scale, S)


@exercise("2.2")
def check_readout_weights(fn, *, quiet: bool = False):
    """Exercise 2.2: ``fn(i_pre (S,), f_pre (S,))`` -> w (S,), the weights of c_S/n_S = Σ_s w_s z_s: the last row of
    ``xlstm_edu.figures.softmax.normalizer_weights``; finite for any gates, no loop over time."""
    from xlstm_edu.figures import softmax

    name = "exercise 2.2: readout_weights"
    rng = np.random.default_rng(22)
    big = _weights_inputs(rng, 8)
    big[0][[1, 4, 6]] = [800.0, 795.0, -900.0]
    cases = [
        ("S = 10, gates that vary over time", _weights_inputs(rng, 10)),
        ("one step (S = 1)", _weights_inputs(rng, 1)),
        ("S = 8 with input gates up to ĩ = 800 (exp overflows unless the maximum is subtracted first)", big),
        ("S = 12, forget gates that shut (f̃ down to -8)", _weights_inputs(rng, 12, f_mean=-2.0, f_scale=3.0)),
        ("S = 40", _weights_inputs(rng, 40, i_scale=3.0)),
    ]
    return check_cases_without_time_loop(
        name, fn, cases, lambda i_pre, f_pre: softmax.normalizer_weights(i_pre, f_pre)[-1], hint=HINT_2_2,
        rtol=1e-9, atol=1e-14, variants=_variants_2_2,
        guard=lambda: refused(softmax.normalizer_weights, softmax.log_weights),
        make_args=lambda S: _weights_inputs(np.random.default_rng(S), S), advice="use a cumulative sum", quiet=quiet)


# ------------------------------------------------------------------------------------------------------ 2.3
HINT_2_3 = ("y = Σ_r w_r z_r, and ĩ_s moves every weight, not only w_s: through the softmax, "
            "dw_r/dĩ_s = w_r (δ_rs - w_s); collect the terms and write them with y")


def reference_readout_gradient(z, i_pre, f_pre):
    """The package's answer to exercise 2.3: d(c_S/n_S)/dĩ_s = a_s (z_s - c_S/n_S), with a the last row of
    ``xlstm_edu.figures.softmax.normalizer_weights``."""
    from xlstm_edu.figures import softmax

    a = softmax.normalizer_weights(i_pre, f_pre)[-1]
    return a * (np.asarray(z, dtype=np.float64) - a @ z)


def _variants_2_3(z, i_pre, f_pre):
    from xlstm_edu.figures import softmax

    w = softmax.normalizer_weights(i_pre, f_pre)[-1]
    y = w @ z
    w_no_f = _softmax(i_pre)
    log_f = _log_f(f_pre)
    after = np.cumsum(log_f[::-1])[::-1] - log_f
    w_own = _softmax(i_pre + after + log_f)
    return {
        "w_s z_s: the normalizer's part, -w_s y, is missing": lambda: w * z,
        "w_s (y - z_s): the sign is flipped": lambda: w * (y - z),
        "z_s - y: the factor w_s is missing": lambda: z - y,
        "the weights without the forget gates (a softmax of ĩ alone)": lambda: w_no_f * (z - w_no_f @ z),
        "the weights include the stored step's own forget gate f_s": lambda: w_own * (z - w_own @ z),
    }


@exercise("2.3")
def check_readout_gradient(fn, *, quiet: bool = False):
    """Exercise 2.3: ``fn(z (S,), i_pre (S,), f_pre (S,))`` -> d(c_S/n_S)/dĩ (S,) = w_s (z_s - c_S/n_S)."""
    name = "exercise 2.3: grad_readout_wrt_ipre"
    rng = np.random.default_rng(23)
    big_i = rng.normal(0, 2, 9)
    big_i[[2, 5]] = [700.0, 702.0]
    cases = [
        ("S = 10", (np.tanh(rng.normal(size=10)), rng.normal(0, 2, 10), rng.normal(1, 1, 10))),
        ("one step (S = 1): the read-out is z_1 whatever ĩ_1, so the gradient is 0",
         (np.tanh(rng.normal(size=1)), rng.normal(size=1), rng.normal(size=1))),
        ("S = 9 with input gates near 700", (np.tanh(rng.normal(size=9)), big_i, rng.normal(2, 1, 9))),
        ("S = 15, forget gates that shut", (np.tanh(rng.normal(size=15)), rng.normal(0, 2, 15),
                                            rng.normal(-1, 3, 15))),
    ]
    verdicts = []
    for what, (z, i_pre, f_pre) in cases:
        expected = reference_readout_gradient(z, i_pre, f_pre)
        got, bad = call_learner(name, fn, z.copy(), i_pre.copy(), f_pre.copy(), hint=HINT_2_3)
        if bad is not None:
            return _emit(bad, quiet)
        v = compare_diagnosed(f"{name} ({what})", got, expected, rtol=1e-8, atol=1e-13, hint=HINT_2_3,
                              variants=_variants_2_3(z, i_pre, f_pre))
        if not v.ok:
            return _emit(v, quiet)
        verdicts.append(v)
    return combine(name, verdicts, quiet=quiet)
