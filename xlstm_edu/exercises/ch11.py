"""Checkers of chapter 11 (gate explorer). Each compares the learner's answer with the package's reference
(``xlstm_edu.viz`` data functions and ``xlstm_edu.np``), never with a number shown in the notebook.

    from xlstm_edu.exercises import ch11
    ch11.check_overflow_threshold(i_max_float16)     # 11.1
    ch11.check_stabilizer(stabilizer_sequence)       # 11.2
    ch11.check_memory(memory_from_pairs)             # 11.3
    ch11.check_log_D(log_D)                          # 11.4
"""

from __future__ import annotations

import numpy as np

from xlstm_edu.exercises.core import check, combine, exercise


@exercise("11.1")
def check_overflow_threshold(i_max_float16, *, quiet: bool = False):
    """The largest ĩ with exp(ĩ) finite in float16: log of the largest float16; then the gate lab agrees."""
    from xlstm_edu.viz import gate_lab_data, overflow_threshold

    hint = "the largest float16 is np.finfo(np.float16).max; exp overflows past its natural logarithm"
    first = check("largest finite ĩ in float16", i_max_float16, overflow_threshold("float16"), rtol=1e-3,
                  hint=hint, quiet=True)
    parts = [first]
    if first.ok:  # the gate lab, just below and just above the learner's number
        kw = dict(t_overwrite=0, t_forget=0, dtype="float16", stabilized=False)
        x = float(i_max_float16)
        parts.append(check("gate lab: no overflow just below your answer",
                           gate_lab_data(i_write=x - 0.02, **kw).overflow_step is None, True, quiet=True))
        parts.append(check("gate lab: overflow at the write step (t = 3) just above it",
                           gate_lab_data(i_write=x + 0.02, **kw).overflow_step, 3, quiet=True))
    return combine("exercise 11.1: the float16 overflow threshold", parts, quiet=quiet)


def _slstm_m(i_pre, f_pre):
    """m_t of the package's sLSTM cell (one unit, R = 0, sigmoid forget gate) from an empty memory."""
    import xlstm_edu.np as xnp

    S = len(i_pre)
    wx = np.stack([i_pre, f_pre, np.zeros(S), np.zeros(S)], axis=-1)[:, :, None]  # (S, 4, H=1)
    state, ms = None, []
    for t in range(S):
        _, state = xnp.slstm_step(wx[t], np.zeros((4, 1, 1, 1)), np.zeros((4, 1)), state)
        ms.append(state[3][0])
    return np.array(ms)


@exercise("11.2")
def check_stabilizer(stabilizer_sequence, *, quiet: bool = False):
    """``stabilizer_sequence(i_pre, f_pre)`` → m_1..m_T (eq. 15, empty memory first) against the package's sLSTM
    cell, on the 'forget everything' preset and on random gates."""
    from xlstm_edu.viz import gate_inputs
    from xlstm_edu.viz.gate_lab import PRESETS

    hint = "m_t = max(log f_t + m_{t-1}, ĩ_t) with log f = logσ(f̃); an empty memory starts with m_1 = ĩ_1"
    p = {k: v for k, v in PRESETS["forget everything"].items() if k not in ("dtype", "stabilized")}
    seq = gate_inputs(40, **p)
    rng = np.random.default_rng(11)
    i_r, f_r = rng.normal(0, 3, 30), rng.normal(2, 3, 30)
    fn = stabilizer_sequence
    parts = [check("m_t on the 'forget everything' inputs", lambda: fn(seq["i"], seq["f"]),
                   _slstm_m(seq["i"], seq["f"]), rtol=1e-10, hint=hint, quiet=True),
             check("m_t on random gates", lambda: fn(i_r, f_r), _slstm_m(i_r, f_r), rtol=1e-10, hint=hint,
                   quiet=True)]
    return combine("exercise 11.2: the stabilizer m_t", parts, quiet=quiet)


@exercise("11.3")
def check_memory(memory_from_pairs, *, quiet: bool = False):
    """``memory_from_pairs(keys, values, weights)`` = Σ_j w_j k_j v_jᵀ (d_k × d_v) against the matrix memory the
    package builds step by step."""
    from xlstm_edu.viz import matrix_memory_data

    hint = ("one outer product per pair, keys[j][:, None] * values[j][None, :], times weights[j], summed; "
            "shape (d_k, d_v)")
    parts = []
    for kw in (dict(n_pairs=6, key_dim=4, keys="random", f_pre=2.0, i_pre=0.5),
               dict(n_pairs=9, key_dim=8, keys="orthogonal", f_pre=0.5, i_pre=-1.0)):
        mm = matrix_memory_data(**kw)
        parts.append(check(f"C = Σ w_j k_j v_jᵀ ({kw['n_pairs']} pairs, d_k = {kw['key_dim']})",
                           lambda mm=mm: memory_from_pairs(mm.keys, mm.values, mm.weights), mm.C, rtol=1e-9,
                           hint=hint, quiet=True))
    return combine("exercise 11.3: the memory as a sum of outer products", parts, quiet=quiet)


@exercise("11.4")
def check_log_D(log_D, *, quiet: bool = False):
    """``log_D(i_pre, f_pre)`` (S × S, -inf above the diagonal) against the package's parallel form."""
    import xlstm_edu.np as xnp
    from xlstm_edu.viz import parallel_form_data

    hint = "b = cumsum(logσ(f̃)); log D[t, s] = b[t] - b[s] + ĩ[s] for s <= t, -inf above the diagonal"
    pf = parallel_form_data(S=10, i_level=-1.0, i_spike=4.0, t_spike=3, f_level=2.0, t_forget=6)
    rng = np.random.default_rng(4)
    q, k, v = (rng.normal(size=(12, 4)) for _ in range(3))
    i_r, f_r = rng.normal(0, 2, 12), rng.normal(1, 2, 12)
    parts = [check("log D (the explorer's inputs)", lambda: log_D(pf.inputs["i_pre"], pf.inputs["f_pre"]),
                   pf.parts["log_D"], rtol=1e-12, atol=1e-12, hint=hint, quiet=True),
             check("log D (random gates)", lambda: log_D(i_r, f_r),
                   xnp.mlstm_parallel_parts(q, k, v, i_r, f_r)["log_D"], rtol=1e-12, atol=1e-12, hint=hint,
                   quiet=True)]
    return combine("exercise 11.4: log D from the gates", parts, quiet=quiet)
