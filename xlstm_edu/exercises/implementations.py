"""``check_implementation(name, fn)``: a learner's LSTM / sLSTM / mLSTM against the package, on a battery of cases.

The learner's ``fn`` is called on one sequence (no batch or head dims), with exactly these calls:

=================== ===================================================================== =======================
name                call                                                                  returns
=================== ===================================================================== =======================
lstm_recurrent      ``fn(wx, R, b, state=None)``; wx (S, 4, H), R (4, H, H), b (4, H)      ``(h, (h, c))``
slstm_recurrent     ``fn(wx, R, b, state=None)``; R (4, NH, DH, DH) block-diagonal         ``(h, (h, c, n, m))``
mlstm_recurrent     ``fn(q, k, v, i_pre, f_pre, state=None, eps=1e-6)``                    ``(h, (C, n, m))``
mlstm_parallel      ``fn(q, k, v, i_pre, f_pre, eps=1e-6)``                                ``h``
mlstm_chunkwise     ``fn(q, k, v, i_pre, f_pre, chunk_size=L, state=None, eps=1e-6)``      ``(h, (C, n, m))``
=================== ===================================================================== =======================

with q, k (S, DK), v (S, DV), i_pre, f_pre (S,), a sigmoid forget gate, and the package's conventions
(``docs/conventions.md``). The battery: float64 random inputs at several S (1 and odd S included), gates that vary
over time, eps 0, 1e-6 and 0.01, a given state (one whose stabilizer dominates, m = 20), chunk sizes 1, 7 and larger
than S, and float32 with gate pre-activations near ±100 (a correct answer stays finite and close). The expected
values come from the package (``xlstm_edu.np``), computed before the learner's function runs; while it runs, the
ready-made implementations refuse (``forbid_package_calls``). A failure names the first failing case, and the
outputs are compared with the bug bank (``xlstm_edu.exercises.bugs``) to name a known mistake that matches.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from xlstm_edu.exercises import bugs as _bugs
from xlstm_edu.exercises.core import (Verdict, _emit, _hint_txt, compare, describe_exception, is_unsolved,
                                      unsolved_verdict)
from xlstm_edu.exercises.forbid import WriteItYourself, forbid_package_calls

IMPLEMENTATIONS = ("lstm_recurrent", "slstm_recurrent", "mlstm_recurrent", "mlstm_parallel", "mlstm_chunkwise")

HINTS = {
    "lstm_recurrent": "gate order (i, f, z, o); pre_g = wx[t, g] + h_prev @ R[g] + b[g]; c = f c + i z; "
                      "h = o tanh(c); return (h over time, (h_last, c_last))",
    "slstm_recurrent": "m_t = max(log f_t + m_{t-1}, ĩ_t) (an empty memory, n = 0, starts with m_t = ĩ_t); "
                       "i' = exp(ĩ - m_t), f' = exp(log f + m_{t-1} - m_t); each head only reads its own units",
    "mlstm_recurrent": "m_t = max(log f_t + m_{t-1}, ĩ_t) with m_0 = 0; C = f' C + i' k vᵀ; n = f' n + i' k; "
                       "h = (q̂ᵀC) / (max(|q̂ᵀn|, exp(-m_t)) + eps) with q̂ = q/√DK",
    "mlstm_parallel": "log D_ts = b_t - b_s + ĩ_s for s ≤ t, -inf above; m_t = row max; "
                      "S̃ = (q kᵀ/√DK) ⊙ exp(log D - m); h = S̃ V / (max(|Σ_s S̃_ts|, exp(-m_t)) + eps)",
    "mlstm_chunkwise": "inside a chunk m_t = b_t + max(m_carried, max_{s≤t}(ĩ_s - b_s)); carry (C, n, m) from "
                       "chunk to chunk; a last, shorter chunk still counts",
}

SUMMARY = {  # the battery in a few words, for the ✅ line
    "lstm_recurrent": "S from 1 to 12, a given state (h, c), float32 with gate pre-activations near ±100",
    "slstm_recurrent": "S from 1 to 12, 2 and 3 heads, a given state, one with m = 20, float32 with gates near ±100",
    "mlstm_recurrent": "S from 1 to 13, eps 0, 1e-6 and 0.01, DK ≠ DV, a given state, one with m = 20, "
                       "float32 with gates near ±100",
    "mlstm_parallel": "S from 1 to 13, eps 0, 1e-6 and 0.01, DK ≠ DV, large input gates, float32 with gates near ±100",
    "mlstm_chunkwise": "S from 1 to 13, chunk sizes 1 to 64 (larger than S, and a last shorter chunk), eps 0 to 0.01, "
                       "a given state, one with m = 20, float32 with gates near ±100",
}

STATE_NAMES = {"lstm_recurrent": ("h_last", "c_last"), "slstm_recurrent": ("h_last", "c_last", "n_last", "m_last"),
               "mlstm_recurrent": ("C", "n", "m"), "mlstm_chunkwise": ("C", "n", "m"), "mlstm_parallel": ()}


@dataclass
class Case:
    what: str  # the case in words
    args: tuple
    kwargs: dict
    low_precision: bool = False
    expected: object = None  # (h, state) or h, from the package
    outputs: list = field(default_factory=list)


# ------------------------------------------------------------------------------------------------ the battery
def _mlstm_inputs(rng, S, DK=4, DV=4, i_scale=3.0, f_mean=2.0, f_scale=2.0, i_shift=0.0):
    return (rng.standard_normal((S, DK)), rng.standard_normal((S, DK)), rng.standard_normal((S, DV)),
            rng.normal(i_shift, i_scale, S), rng.normal(f_mean, f_scale, S))


def _extreme_gates(rng, S):
    """Pre-activations near ±100 (random signs), as large as a trained model in low precision may produce."""
    return (rng.choice([-1.0, 1.0], S) * 100 + rng.normal(0, 1, S),
            rng.choice([-1.0, 1.0], S) * 100 + rng.normal(0, 1, S))


def _as32(args):
    return tuple(a.astype(np.float32) if isinstance(a, np.ndarray) else a for a in args)


def _mlstm_state_for(rng, DK, DV, m):
    """A state (C, n, m) as the recurrence leaves it: run 8 random steps, then shift m (the stabilized C, n are
    the true ones times exp(-m), so a state with m = 20 holds tiny C, n)."""
    import xlstm_edu.np as xnp

    q, k, v, i, f = _mlstm_inputs(rng, 8, DK, DV)
    _, (C, n, m0) = xnp.mlstm_recurrent(q, k, v, i, f)
    scale = math.exp(float(m0) - m)
    return C * scale, n * scale, np.asarray(float(m))


def _battery(name: str) -> list:
    rng = np.random.default_rng(20240)
    cases = []
    if name in ("mlstm_recurrent", "mlstm_parallel", "mlstm_chunkwise"):
        def add(what, inputs, eps, state=None, chunk=None, low=False):
            kw = {}
            if name == "mlstm_chunkwise":
                kw["chunk_size"] = chunk
            if name != "mlstm_parallel":
                kw["state"] = state
            kw["eps"] = eps
            cases.append(Case(what, inputs, kw, low))

        L = {"mlstm_chunkwise": True}.get(name, False)
        add("S = 5, random float64 inputs, eps = 0" + (", chunk size 2" if L else ""),
            _mlstm_inputs(rng, 5), 0.0, chunk=2)
        add("one time step (S = 1), eps = 1e-6" + (", chunk size 7" if L else ""),
            _mlstm_inputs(rng, 1), 1e-6, chunk=7)
        add("S = 13, input and forget gates varying over time, eps = 1e-6" + (", chunk size 1" if L else ""),
            _mlstm_inputs(rng, 13), 1e-6, chunk=1)
        add("S = 11, large input gates (ĩ around 8, so the stabilizer m grows), eps = 1e-6"
            + (", chunk size 7 (a last, shorter chunk)" if L else ""),
            _mlstm_inputs(rng, 11, i_shift=8.0), 1e-6, chunk=7)
        add("S = 9, DK = 3 and DV = 5 (keys and values of different sizes), eps = 1e-6"
            + (", chunk size 64 (larger than S)" if L else ""),
            _mlstm_inputs(rng, 9, DK=3, DV=5), 1e-6, chunk=64)
        add("S = 10, eps = 0.01 (large enough for the choice of m to show)" + (", chunk size 4" if L else ""),
            _mlstm_inputs(rng, 10, f_mean=0.0, i_scale=2.0), 1e-2, chunk=4)
        if name != "mlstm_parallel":
            add("S = 7, starting from a given state (C, n, m) of an earlier run" + (", chunk size 3" if L else ""),
                _mlstm_inputs(rng, 7), 1e-6, state=_mlstm_state_for(rng, 4, 4, 1.5), chunk=3)
            add("S = 6, a given state whose stabilizer dominates (m = 20), eps = 1e-6"
                + (", chunk size 4" if L else ""),
                _mlstm_inputs(rng, 6, i_scale=1.0), 1e-6, state=_mlstm_state_for(rng, 4, 4, 20.0), chunk=4)
        q, k, v, _, _ = _mlstm_inputs(rng, 12)
        i_pre, f_pre = _extreme_gates(rng, 12)
        add("float32, S = 12, gate pre-activations near ±100 (a stabilized cell stays finite)"
            + (", chunk size 5" if L else ""), _as32((q, k, v, i_pre, f_pre)), 1e-6, chunk=5, low=True)
    elif name in ("lstm_recurrent", "slstm_recurrent"):
        def lstm_inputs(S, H, NH=None, wx_scale=1.0, wx_shift=None):
            wx = rng.standard_normal((S, 4, H)) * wx_scale
            if wx_shift is not None:
                wx = wx + np.asarray(wx_shift)[None, :, None]
            if NH is None:
                R = rng.standard_normal((4, H, H)) / math.sqrt(H)
            else:
                R = rng.standard_normal((4, NH, H // NH, H // NH)) / math.sqrt(H // NH)
            return wx, R, rng.standard_normal((4, H)) * 0.5

        def add(what, inputs, state=None, low=False):
            cases.append(Case(what, inputs, {"state": state}, low))

        NH = None if name == "lstm_recurrent" else 2
        desc = "" if NH is None else ", 2 heads of 3 units"
        add(f"S = 5, H = 6{desc}, random float64 inputs", lstm_inputs(5, 6, NH))
        add(f"one time step (S = 1), H = 6{desc}", lstm_inputs(1, 6, NH))
        add(f"S = 12, H = 6{desc}, gates varying over time (input gates from -3 to 3)",
            lstm_inputs(12, 6, NH, wx_scale=2.0, wx_shift=(0.0, 1.0, 0.0, 0.0)))
        wx, R, b = lstm_inputs(7, 6, NH)
        import xlstm_edu.np as xnp

        if name == "lstm_recurrent":
            _, st = xnp.lstm_recurrent(*lstm_inputs(5, 6))
            add("S = 7, H = 6, starting from a given state (h, c) of an earlier run", (wx, R, b), state=st)
            add("S = 9, H = 4 (a different size)", lstm_inputs(9, 4))
        else:
            _, st = xnp.slstm_recurrent(*lstm_inputs(5, 6, 2))
            add("S = 7, starting from a given state (h, c, n, m) of an earlier run", (wx, R, b), state=st)
            h0, c0, n0, m0 = st
            shift = np.exp(m0 - 20.0)
            add("S = 6, a given state whose stabilizer dominates (m = 20)", lstm_inputs(6, 6, 2),
                state=(h0, c0 * shift, n0 * shift, np.full_like(m0, 20.0)))
            add("S = 8, 3 heads of 2 units", lstm_inputs(8, 6, 3))
        wx, R, b = lstm_inputs(10, 6, NH)
        wx = rng.choice([-1.0, 1.0], wx.shape) * 100 + rng.normal(0, 1, wx.shape)
        add("float32, S = 10, gate pre-activations near ±100" + (" (a stabilized cell stays finite)"
                                                                 if NH else ""), _as32((wx, R, b)), low=True)
    else:
        raise ValueError(f"check_implementation: expected name in {IMPLEMENTATIONS}, got {name!r}")
    return cases


def _reference(name):
    import xlstm_edu.np as xnp

    return getattr(xnp, name)


_BATTERIES: dict = {}


def battery(name: str) -> list:
    """The cases of ``name`` with the package's expected outputs (computed once per session)."""
    if name not in _BATTERIES:
        cases = _battery(name)
        ref = _reference(name)
        with np.errstate(all="ignore"):
            for c in cases:
                c.expected = ref(*c.args, **c.kwargs)
        _BATTERIES[name] = cases
    return _BATTERIES[name]


# ------------------------------------------------------------------------------------------------ comparing
def _tolerances(case, expected_h):
    if case.low_precision:
        scale = max(1.0, float(np.max(np.abs(np.nan_to_num(np.asarray(expected_h, np.float64))))))
        return 2e-3, 2e-3 * scale
    return 1e-7, 1e-10


def _split(name, out):
    """(h, [state parts]) from a return value; ValueError describing the problem when it has the wrong form."""
    if name == "mlstm_parallel":
        if isinstance(out, tuple):
            raise ValueError(f"expected h alone (an array (S, DV)), got a tuple of {len(out)}")
        return out, []
    want = STATE_NAMES[name]
    if not (isinstance(out, tuple) and len(out) == 2):
        got = f"a tuple of {len(out)}" if isinstance(out, tuple) else type(out).__name__
        raise ValueError(f"expected (h, ({', '.join(want)})), got {got}")
    h, state = out
    if not (isinstance(state, (tuple, list)) and len(state) == len(want)):
        got = f"{len(state)} items" if isinstance(state, (tuple, list)) else type(state).__name__
        raise ValueError(f"expected the state as a tuple ({', '.join(want)}), got {got}")
    return h, list(state)


def _compare_case(name, case, out):
    """None when ``out`` equals the expected value; otherwise a sentence saying what differs."""
    try:
        h, state = _split(name, out)
    except ValueError as exc:
        return str(exc)
    exp_h, exp_state = _split(name, case.expected)
    rtol, atol = _tolerances(case, exp_h)
    parts = [("h", h, exp_h)] + list(zip(STATE_NAMES[name], state, exp_state))
    for label, got, exp in parts:
        try:
            g = np.asarray(got.detach().cpu().numpy() if hasattr(got, "detach") else got, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            return f"{label} is not an array of numbers ({type(exc).__name__})"
        e = np.asarray(exp, dtype=np.float64)
        if g.shape != e.shape and g.size == e.size == 1:
            g = g.reshape(e.shape)
        if case.low_precision and not np.all(np.isfinite(g)) and np.all(np.isfinite(e)):
            bad = int(np.sum(~np.isfinite(g)))
            return f"{label} has {bad} non-finite value(s) (inf/NaN) where the answer is finite"
        v = compare(label, g, e, rtol=rtol, atol=atol)
        if not v.ok:
            return v.message[2:].replace(f"{label}: ", f"{label} ", 1)
    return None


def _same_output(name, case, a, b) -> bool:
    """Whether two outputs (the learner's and a bug variant's) agree: same form and shapes, non-finite values in
    both or neither, finite values close."""
    if isinstance(a, BaseException) or isinstance(b, BaseException):
        return False
    try:
        ha, sa = _split(name, a)
        hb, sb = _split(name, b)
    except ValueError:
        return False
    rtol = 1e-3 if case.low_precision else 1e-6
    for x, y in zip([ha] + sa, [hb] + sb):
        try:
            x = np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x, dtype=np.float64)
            y = np.asarray(y, dtype=np.float64)
        except (TypeError, ValueError):
            return False
        if x.size == y.size == 1:
            x, y = x.reshape(()), y.reshape(())
        if x.shape != y.shape:
            return False
        fx, fy = np.isfinite(x), np.isfinite(y)
        if fx.all() != fy.all():
            return False
        both = fx & fy
        scale = max(1.0, float(np.max(np.abs(y[both])))) if both.any() else 1.0
        if not np.allclose(x[both], y[both], rtol=rtol, atol=rtol * scale * 1e-3):
            return False
    return True


def _copy_args(case):
    return (tuple(a.copy() if isinstance(a, np.ndarray) else a for a in case.args),
            {k: (tuple(s.copy() for s in v) if isinstance(v, tuple) else v) for k, v in case.kwargs.items()})


_BUG_OUTPUTS: dict = {}


def _bug_outputs(name):
    """Each bug variant's outputs on the battery (an exception where it raises), computed once per session."""
    if name not in _BUG_OUTPUTS:
        table = []
        for bug in _bugs.bugs_for(name):
            outs = []
            for case in battery(name):
                args, kwargs = _copy_args(case)
                try:
                    with np.errstate(all="ignore"), warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        outs.append(bug.fn(*args, **kwargs))
                except Exception as exc:  # noqa: BLE001 -- a variant may fail on some inputs, like the learner's
                    outs.append(exc)
            table.append((bug, outs))
        _BUG_OUTPUTS[name] = table
    return _BUG_OUTPUTS[name]


def match_bug(name: str, outputs: list, first_bad: int):
    """The bug variant whose outputs agree with the learner's on the first failing case and on every case where
    the learner's function returned something (None when none does)."""
    for bug, outs in _bug_outputs(name):
        case = battery(name)[first_bad]
        if not _same_output(name, case, outputs[first_bad], outs[first_bad]):
            continue
        if all(isinstance(o, BaseException) or _same_output(name, c, o, bo)
               for c, o, bo in zip(battery(name), outputs, outs)):
            return bug
    return None


# ------------------------------------------------------------------------------------------------ the checker
def _run_learner(fn, case):
    """Call the learner's fn on a copy of the case's inputs with the ready-made implementations refused.
    Returns (output or exception, refused calls, names of inputs changed in place)."""
    args, kwargs = _copy_args(case)
    with forbid_package_calls() as forbidder, np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            out = fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 -- the learner's exception becomes part of the verdict
            out = exc
        calls = list(forbidder.calls)
    names = (["wx", "R", "b"] if len(case.args) == 3 else ["q", "k", "v", "i_pre", "f_pre"])
    changed = [n for n, a, orig in zip(names, args, case.args)
               if isinstance(a, np.ndarray) and not np.array_equal(a, orig, equal_nan=True)]
    st, st0 = kwargs.get("state"), case.kwargs.get("state")
    if isinstance(st0, tuple) and any(not np.array_equal(a, b) for a, b in zip(st, st0)):
        changed.append("state")
    return out, calls, changed


def check_implementation(name: str, fn, *, quiet: bool = False) -> Verdict:
    """Check a learner's implementation of ``name`` (one of ``IMPLEMENTATIONS``) against the package on the
    battery (see the module docstring); print and return the verdict.

    ❌ "not solved yet" for None, ``...`` or a function raising NotImplementedError; ❌ naming the first failing
    case in words (and the matching known bug, if any) for a wrong answer; ❌ "write it yourself" if ``fn``
    calls a ready-made implementation (this package's, numpy or torch, or the official code's)."""
    if name not in IMPLEMENTATIONS:
        raise ValueError(f"check_implementation: expected name in {IMPLEMENTATIONS}, got {name!r}")
    title = f"{name} (your implementation)"
    hint = HINTS[name]
    if is_unsolved(fn):
        return _emit(unsolved_verdict(title, hint, f"got {fn!r}"), quiet)
    if not callable(fn):
        return _emit(Verdict(title, "wrong", message=f"❌ {title}: expected a function, got {type(fn).__name__}"),
                     quiet)
    cases = battery(name)
    outputs, first_bad, problem = [], None, None
    for idx, case in enumerate(cases):
        out, calls, changed = _run_learner(fn, case)
        where = f"case {idx + 1} of {len(cases)} ({case.what})"
        if isinstance(out, NotImplementedError):
            return _emit(unsolved_verdict(title, hint, str(out)), quiet)
        if calls:
            msg = (f"❌ {title}: your function called {calls[0]}, which is off limits in this exercise: "
                   f"write it yourself")
            return _emit(Verdict(title, "wrong", message=msg), quiet)
        if isinstance(out, WriteItYourself):  # refused without being recorded (should not happen)
            return _emit(Verdict(title, "wrong", message=f"❌ {title}: {out}"), quiet)
        outputs.append(out)
        if first_bad is not None:
            continue
        if isinstance(out, Exception):
            first_bad, problem = idx, f"on {where} your code raised {describe_exception(out)}"
        elif changed:
            first_bad, problem = idx, (f"on {where} your function changed its input {', '.join(changed)} in place "
                                       f"(work on copies)")
        else:
            diff = _compare_case(name, case, out)
            if diff is not None:
                first_bad, problem = idx, f"wrong on {where}: {diff}"
    if first_bad is None:
        msg = f"✅ {title}: matches xlstm_edu.np.{name} on all {len(cases)} cases ({SUMMARY[name]})"
        return _emit(Verdict(title, "close", 0.0, 0.0, msg), quiet)
    bug = None if isinstance(outputs[first_bad], Exception) else match_bug(name, outputs, first_bad)
    known = f". It matches a known bug, {bug.label}" if bug is not None else ""
    return _emit(Verdict(title, "wrong", message=f"❌ {title}: {problem}{known}{_hint_txt(hint)}"), quiet)
