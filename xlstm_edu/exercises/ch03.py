"""Checkers of chapter 3 (stabilization).

3.1 ``check_stabilizer_step(stabilizer_step)`` — one step of the stabilizer (eq. 15-17), for inputs up to ±1000 and
    an empty memory (m_{t-1} = -inf);
3.2 ``check_slstm_one_head(my_slstm)`` — the stabilized sLSTM with one head over a sequence, its output and the
    state (h, c, n, m) it hands on, against the package on a battery (large pre-activations, a given state, one
    whose stabilizer dominates, float32 near ±100);
3.3 ``check_step_gradients(step_gradients)`` — the derivatives of one stabilized step with m held constant.

The expected values come from the package (``xlstm_edu.np``), computed before the learner's code runs; while the
learner's stabilizer and sLSTM run, the package's implementations refuse. A failure is compared with the known
mistakes (the bug museum's, chapter 8) and the hint names the one that matches. ``reference_slstm_one_head`` is the
package's answer to exercise 3.2, used by the chapter while the exercise is not solved.
"""

from __future__ import annotations

import math

import numpy as np

from xlstm_edu.exercises import combine, exercise
from xlstm_edu.exercises._rules import call_learner, compare_diagnosed, refused
from xlstm_edu.exercises.core import _emit, compare, raised_verdict


def _log_sigmoid(x):
    return -np.logaddexp(0.0, -np.asarray(x, dtype=np.float64))


# ------------------------------------------------------------------------------------------------------ 3.1
HINT_3_1 = ("i'_t <= 1 and f'_t <= 1 mean two lower bounds on m_t; take the smallest m_t that meets both, and compute "
            "every exponent in log space (exp of ĩ itself overflows)")


def _variants_3_1(log_f, i_pre, m_prev):
    with np.errstate(all="ignore"):
        m = np.maximum(log_f + m_prev, i_pre)
        i_raw = np.exp(i_pre)
        m_exp = np.maximum(log_f + m_prev, np.log(i_raw))
        return {
            "the exponential taken before the max: exp(ĩ) overflows for ĩ > 709, and inf * exp(-m) is NaN (the bug "
            "museum's exhibit II)": lambda: np.stack([m_exp, i_raw * np.exp(-m_exp), np.exp(log_f + m_prev - m_exp)]),
            "f' not rescaled: f' = f = exp(log f) instead of exp(log f + m_(t-1) - m_t) (exhibit III)":
                lambda: np.stack([m, np.exp(i_pre - m), np.exp(log_f)]),
            "the max forgets log f: m_t = max(m_(t-1), ĩ_t), so f' can exceed 1":
                lambda: np.stack([np.maximum(m_prev, i_pre), np.exp(i_pre - np.maximum(m_prev, i_pre)),
                                  np.exp(log_f + m_prev - np.maximum(m_prev, i_pre))]),
            "the exponent of f' with the wrong sign: exp(log f + m_t - m_(t-1))":
                lambda: np.stack([m, np.exp(i_pre - m), np.exp(log_f + m - m_prev)]),
            "i' and f' swapped": lambda: np.stack([m, np.exp(log_f + m_prev - m), np.exp(i_pre - m)]),
        }


def _stab_inputs(rng, shape, scale=1000.0):
    return (_log_sigmoid(rng.uniform(-scale, scale, shape)), rng.uniform(-scale, scale, shape),
            rng.uniform(-scale, scale, shape))


@exercise("3.1")
def check_stabilizer_step(fn, *, quiet: bool = False):
    """Exercise 3.1: ``fn(log_f, i_pre, m_prev)`` -> ``(m, i_stab, f_stab)`` element-wise, as
    ``xlstm_edu.np.gating.stabilizer_step`` (eq. 15-17)."""
    from xlstm_edu.np.gating import stabilizer_step

    name = "exercise 3.1: stabilizer_step"
    rng = np.random.default_rng(31)
    empty = _stab_inputs(rng, (5,), 10.0)
    empty = (empty[0], empty[1], np.full(5, -np.inf))
    cases = [
        ("50 random entries with log f, ĩ, m_(t-1) up to ±1000", _stab_inputs(rng, (50,))),
        ("moderate values, a 3 x 4 array", _stab_inputs(rng, (3, 4), 5.0)),
        ("an empty memory, m_(t-1) = -inf: the first step gives m_t = ĩ_t, i' = 1, f' = 0", empty),
        ("single numbers", tuple(np.float64(a) for a in (-0.3, 2.0, 1.5))),
    ]
    verdicts = []
    for what, args in cases:
        with np.errstate(all="ignore"):
            expected = np.stack(stabilizer_step(*args))
        out, bad = call_learner(name, fn, *(np.array(a, copy=True) for a in args), hint=HINT_3_1)
        if bad is not None:
            return _emit(bad, quiet)
        if not (isinstance(out, (tuple, list)) and len(out) == 3):
            got = f"a tuple of {len(out)}" if isinstance(out, (tuple, list)) else type(out).__name__
            return _emit(raised_verdict(name, f"expected the tuple (m, i_stab, f_stab), got {got}", HINT_3_1), quiet)
        try:
            got = np.stack([np.broadcast_to(np.asarray(a, dtype=np.float64), np.shape(args[1])) for a in out])
        except (TypeError, ValueError) as exc:
            return _emit(raised_verdict(name, f"could not read (m, i_stab, f_stab) as arrays of the inputs' shape "
                                              f"({exc})", HINT_3_1), quiet)
        v = compare_diagnosed(f"{name} ({what})", got, expected, rtol=1e-12, atol=1e-300, hint=HINT_3_1,
                              variants=_variants_3_1(*args))
        if not v.ok:
            return _emit(_which_part(v, ("m", "i_stab", "f_stab")), quiet)
        verdicts.append(v)
    return combine(name, verdicts, quiet=quiet)


def _which_part(v, labels):
    """Name the part of a stacked comparison that differs (the index's first entry)."""
    msg = v.message
    if "at index (" in msg:
        first = msg.split("at index (", 1)[1].split(",")[0].rstrip(")")
        if first.isdigit() and int(first) < len(labels):
            v.message = msg.replace("wrong (", f"wrong ({labels[int(first)]} differs; ", 1)
    return v


# ------------------------------------------------------------------------------------------------------ 3.2
HINT_3_2 = ("go through the usual suspects: is f' rescaled by exp(m_(t-1) - m_t), is the max taken on ĩ (not on "
            "exp(ĩ)), do c and n use the same i', f', is h = o c / n, and do you hand on the last (h, c, n, m)?")


def reference_slstm_one_head(wx, R, b, state=None):
    """The package's answer to exercise 3.2: ``xlstm_edu.np.slstm_recurrent`` with one head, R (4, H, H) as
    ``R[:, None]`` (4, 1, H, H)."""
    import xlstm_edu.np as xnp

    return xnp.slstm_recurrent(wx, np.asarray(R)[:, None], b, state)


def _slstm_inputs(rng, S, H=4, scale=1.0, shift=(0.0, 0.0, 0.0, 0.0), uniform=None):
    if uniform is not None:
        wx = rng.uniform(-uniform, uniform, (S, 4, H))
    else:
        wx = rng.standard_normal((S, 4, H)) * scale + np.asarray(shift)[None, :, None]
    return wx, rng.standard_normal((4, H, H)) / math.sqrt(H), rng.standard_normal((4, H)) * 0.5


def _slstm_cases():
    import xlstm_edu.np as xnp

    rng = np.random.default_rng(32)
    cases = [("S = 5, H = 4, random float64 inputs", _slstm_inputs(rng, 5), None, False),
             ("one step (S = 1)", _slstm_inputs(rng, 1), None, False),
             ("S = 12, gates varying over time (ĩ from about -4 to 4)", _slstm_inputs(rng, 12, scale=2.0,
                                                                                    shift=(0, 1, 0, 0)), None, False),
             ("S = 9, pre-activations up to ±50 (the stabilizer at work)", _slstm_inputs(rng, 9, uniform=50.0),
              None, False),
             ("S = 8, input-gate pre-activations near 800 (exp(ĩ) overflows even in float64)",
              _slstm_inputs(rng, 8, scale=3.0, shift=(800.0, 0, 0, 0)), None, False)]
    wx, R, b = _slstm_inputs(rng, 6)
    _, st = reference_slstm_one_head(*_slstm_inputs(rng, 5))
    cases.append(("S = 6, from a given state (h, c, n, m) of an earlier run", (wx, R, b), st, False))
    h0, c0, n0, m0 = st
    shift = np.exp(m0 - 20.0)
    cases.append(("S = 7, a given state whose stabilizer dominates (m = 20)", _slstm_inputs(rng, 7),
                  (h0, c0 * shift, n0 * shift, np.full_like(m0, 20.0)), False))
    wx, R, b = _slstm_inputs(rng, 10)
    wx = rng.choice([-1.0, 1.0], wx.shape) * 100 + rng.normal(0, 1, wx.shape)
    cases.append(("float32, S = 10, pre-activations near ±100 (a stabilized cell stays finite)",
                  tuple(a.astype(np.float32) for a in (wx, R, b)), None, True))
    out = []
    for what, args, state, low in cases:
        with np.errstate(all="ignore"):
            expected = xnp.slstm_recurrent(args[0], np.asarray(args[1])[:, None], args[2], state)
        out.append((what, args, state, low, expected))
    return out


def _flatten_slstm(out):
    """(h, [h_last, c, n, m]) from a return value, or a sentence saying what is wrong with its form."""
    if not (isinstance(out, tuple) and len(out) == 2):
        got = f"a tuple of {len(out)}" if isinstance(out, tuple) else type(out).__name__
        return f"expected (h, (h_last, c_last, n_last, m_last)), got {got}"
    h, state = out
    if not (isinstance(state, (tuple, list)) and len(state) == 4):
        got = f"{len(state)} items" if isinstance(state, (tuple, list)) else type(state).__name__
        return f"expected the state as a tuple (h_last, c_last, n_last, m_last), got {got}"
    try:
        return [np.asarray(h, dtype=np.float64)] + [np.asarray(s, dtype=np.float64) for s in state]
    except (TypeError, ValueError):
        return "h and the state must be arrays of numbers"


_SLSTM_BUGS = [  # (description, knobs of xlstm_edu.exercises.bugs.slstm, distinguished by h alone)
    ("the exponential taken before the max (the bug museum's exhibit II, in the sLSTM)", dict(exp_first=True), True),
    ("the forget gate not rescaled by exp(m_(t-1) - m_t) (exhibit XIV: exhibit III in the sLSTM)",
     dict(rescale_f=False), True),
    ("the missing stabilizer: raw exponential gates (exhibit I, in the sLSTM)", dict(stabilize=False), True),
    ("the missing normalizer: h = o c instead of o c / n", dict(normalize=False), True),
    ("R used untransposed: R[g] @ h instead of h @ R[g] (docs/conventions.md, section 2)", dict(transpose_R=True),
     True),
    ("an exponential forget gate where the sigmoid belongs", dict(exp_forget=True), True),
    ("every step starts from the initial state: the state is not carried through time (exhibit XII)",
     dict(reset=True), True),
    ("the empty-memory rule missing: a fresh state must start at m = -inf (first step m_1 = ĩ_1), not m = 0; h is "
     "right, the state (c, n, m) you hand on is not", dict(first_step_rule=False), False),
]


def _close(a, b, rtol):
    scale = max(1.0, float(np.max(np.abs(np.nan_to_num(b, nan=0.0, posinf=0.0, neginf=0.0))))) if b.size else 1.0
    return a.shape == b.shape and np.allclose(a, b, rtol=rtol, atol=rtol * 1e-3 * scale, equal_nan=True)


def _slstm_mistake(parts, expected, args, state, low):
    """The known mistake whose output (h, or h, c and n for a mistake that shows only in the state) equals the
    learner's on this case while differing from the right answer."""
    from xlstm_edu.exercises import bugs

    rtol = 1e-3 if low else 1e-7
    for what, knobs, by_h in _SLSTM_BUGS:
        try:
            with np.errstate(all="ignore"):
                h, st = bugs.slstm(args[0], np.asarray(args[1])[:, None], args[2], state, **knobs)
        except Exception:  # noqa: BLE001 -- a variant that cannot run here matches nothing
            continue
        variant = [np.asarray(h, np.float64)] + [np.asarray(s, np.float64) for s in st]
        idx = [0] if by_h else [0, 2, 3]
        if all(_close(variant[i], expected[i], rtol) for i in idx):
            continue  # this mistake makes no difference on this case
        if all(_close(parts[i], variant[i], rtol) for i in idx):
            return what
    return None


@exercise("3.2")
def check_slstm_one_head(fn, *, quiet: bool = False):
    """Exercise 3.2: ``fn(wx (S, 4, H), R (4, H, H), b (4, H), state=None)`` -> ``(h (S, H), (h, c, n, m))`` equals
    ``reference_slstm_one_head`` (the package's ``slstm_recurrent`` with one head) on a battery of cases."""
    name = "exercise 3.2: my_slstm"
    cases = _slstm_cases()
    for idx, (what, args, state, low, expected) in enumerate(cases, 1):
        kwargs = {} if state is None else {"state": tuple(np.array(s, copy=True) for s in state)}
        with np.errstate(all="ignore"):
            out, bad = call_learner(name, fn, *(np.array(a, copy=True) for a in args), hint=HINT_3_2, **kwargs)
        if bad is not None:
            return _emit(bad, quiet)
        parts = _flatten_slstm(out)
        if isinstance(parts, str):
            return _emit(raised_verdict(name, parts, HINT_3_2), quiet)
        want = [np.asarray(expected[0], np.float64)] + [np.asarray(s, np.float64) for s in expected[1]]
        for label, got, exp in zip(("h", "h_last", "c_last", "n_last", "m_last"), parts, want):
            if got.shape != exp.shape and got.size == exp.size:
                got = got.reshape(exp.shape)
            scale = max(1.0, float(np.max(np.abs(exp)))) if exp.size else 1.0
            rtol, atol = (2e-3, 2e-3 * scale) if low else (1e-9, 1e-12)
            text = None
            if np.all(np.isfinite(exp)) and not np.all(np.isfinite(got)):
                text = (f"on case {idx} of {len(cases)} ({what}): {label} has {int(np.sum(~np.isfinite(got)))} "
                        f"non-finite value(s) (inf/NaN) where the answer is finite")
            else:
                v = compare(label, got, exp, rtol=rtol, atol=atol)
                if not v.ok:
                    text = f"wrong on case {idx} of {len(cases)} ({what}): {v.message[2:]}"
            if text is not None:
                mistake = _slstm_mistake(parts, want, args, state, low) if all(
                    p.shape == w.shape for p, w in zip(parts, want)) else None
                return _emit(raised_verdict(name, text, f"it looks like {mistake}" if mistake else HINT_3_2), quiet)
    msg = (f"✅ {name}: matches the package's slstm_recurrent (one head) on all {len(cases)} cases (S from 1 to 12, "
           f"pre-activations up to ±50 and input gates near 800, a given state, one with m = 20, float32 near ±100)")
    from xlstm_edu.exercises.core import Verdict

    return _emit(Verdict(name, "close", 0.0, 0.0, msg), quiet)


# ------------------------------------------------------------------------------------------------------ 3.3
HINT_3_3 = ("with m_t fixed, i' = exp(ĩ - m_t) has derivative i' and f' = exp(log σ(f̃) + m_(t-1) - m_t) has derivative "
            "f' (1 - σ(f̃)); then the quotient rule on c'/n', where both c' and n' move")


def reference_step_gradients(i_pre, f_pre, z, c_prev, n_prev, m_prev):
    """d h̃/dĩ and d h̃/df̃ of one stabilized sLSTM step (h̃ = c'/n'), element-wise, with m_t held constant."""
    log_f = _log_sigmoid(f_pre)
    with np.errstate(invalid="ignore"):
        m = np.maximum(log_f + m_prev, i_pre)  # eq. 15
    i_s, f_s = np.exp(i_pre - m), np.exp(log_f + m_prev - m)  # eq. 16-17
    c, n = f_s * c_prev + i_s * z, f_s * n_prev + i_s
    h = c / n
    sig = np.exp(log_f)
    return i_s * (z - h) / n, f_s * (1 - sig) * (c_prev - h * n_prev) / n


def _variants_3_3(i_pre, f_pre, z, c_prev, n_prev, m_prev):
    log_f = _log_sigmoid(f_pre)
    m = np.maximum(log_f + m_prev, i_pre)
    i_s, f_s = np.exp(i_pre - m), np.exp(log_f + m_prev - m)
    c, n = f_s * c_prev + i_s * z, f_s * n_prev + i_s
    h = c / n
    sig = np.exp(log_f)
    d_i, d_f = reference_step_gradients(i_pre, f_pre, z, c_prev, n_prev, m_prev)
    i_wins = i_pre > log_f + m_prev
    return {
        "dh/dĩ without the factor i' (the derivative of exp(ĩ - m) is exp(ĩ - m) itself)":
            lambda: np.stack([(z - h) / n, d_f]),
        "dh/dĩ = i' z / n': the quotient rule's second term (-h dn'/dĩ) is missing": lambda: np.stack([i_s * z / n, d_f]),
        "dh/df̃ with σ(f̃) where 1 - σ(f̃) belongs (d log σ(x)/dx = 1 - σ(x))":
            lambda: np.stack([d_i, f_s * sig * (c_prev - h * n_prev) / n]),
        "dh/df̃ without the factor 1 - σ(f̃): that is the exponential forget gate's derivative":
            lambda: np.stack([d_i, f_s * (c_prev - h * n_prev) / n]),
        "m differentiated in i' only: where ĩ wins the max, m moves with ĩ, so it must move f' too (or be held "
        "constant everywhere)": lambda: np.stack([np.where(i_wins, 0.0, d_i), d_f]),
    }


def _grad_inputs(rng, H=6, big=0.0):
    i_pre, f_pre = rng.normal(size=H) + big, rng.normal(size=H) + 1
    z = np.tanh(rng.normal(size=H))
    c_prev, n_prev, m_prev = rng.normal(size=H), rng.uniform(1, 3, H), rng.normal(size=H) * 0.5 + big
    i_pre[: H // 2] += 1.5  # some units where ĩ wins the max, others where log f + m_prev does
    return i_pre, f_pre, z, c_prev * 0.8, n_prev, m_prev


@exercise("3.3")
def check_step_gradients(fn, *, quiet: bool = False):
    """Exercise 3.3: ``fn(i_pre, f_pre, z, c_prev, n_prev, m_prev)`` (each (H,)) -> ``(dh/dĩ, dh/df̃)`` of
    h̃ = c'/n' after one stabilized step, m held constant (equal to the exact gradient, m recomputed)."""
    import xlstm_edu.np as xnp

    name = "exercise 3.3: step_gradients"
    rng = np.random.default_rng(33)
    empty = _grad_inputs(rng, 4)
    empty = empty[:3] + (np.zeros(4), np.zeros(4), np.full(4, -np.inf))
    cases = [("6 units, ĩ wins the max in some, log f + m_(t-1) in the others", _grad_inputs(rng)),
             ("6 units with large values (ĩ and m_(t-1) near 40)", _grad_inputs(rng, big=40.0)),
             ("an empty memory (c = n = 0, m = -inf)", empty)]
    verdicts = []
    for what, args in cases:
        with np.errstate(all="ignore"):
            expected = np.stack(reference_step_gradients(*args))
        with refused(xnp.slstm_recurrent_backward):
            out, bad = call_learner(name, fn, *(a.copy() for a in args), hint=HINT_3_3, forbid=False)
        if bad is not None:
            return _emit(bad, quiet)
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            return _emit(raised_verdict(name, "expected the tuple (d_i, d_f)", HINT_3_3), quiet)
        try:
            got = np.stack([np.asarray(a, dtype=np.float64) for a in out])
        except (TypeError, ValueError) as exc:
            return _emit(raised_verdict(name, f"could not read (d_i, d_f) as two arrays ({exc})", HINT_3_3), quiet)
        with np.errstate(all="ignore"):
            v = compare_diagnosed(f"{name} ({what})", got, expected, rtol=1e-9, atol=1e-14, hint=HINT_3_3,
                                  variants=_variants_3_3(*args))
        if not v.ok:
            return _emit(_which_part(v, ("d_i", "d_f")), quiet)
        verdicts.append(v)
    return combine(name, verdicts, quiet=quiet)
