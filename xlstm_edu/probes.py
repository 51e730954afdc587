"""Behavioural checks that catch the classic xLSTM implementation mistakes (notebook 08, the bug museum).

Shape checks pass for almost every broken mLSTM. These probes test what an mLSTM must *do*:

* ``causality_probe``    -- outputs at times <= t must not move when inputs after t change (no future leak).
* ``memory_probe``       -- outputs after the first step must move when the first step's inputs change (the state is
  carried through time; a recurrence that restarts from the initial state at every step has no memory).
* ``batch_leak_probe``   -- one sequence in a batch must not move when another one changes.
* ``column_consistency_probe`` -- one scalar gate pair per head means every value column is read with the same
  weights: two equal columns of v must give two equal columns of h (per-unit gates break this).
* ``compare_to_reference`` -- same outputs as a trusted implementation (e.g. ``xlstm_edu.np.mlstm_recurrent``).
* ``check_finite``       -- no NaN or inf (a missing or half-applied stabilizer overflows).

Every function takes the model as a callable ``fn(**inputs)`` returning the output array (or a tuple whose first
entry is the output, like ``mlstm_recurrent``), so any implementation with the course's argument names fits.
"""

from __future__ import annotations

import numpy as np

from xlstm_edu._validate import check_choice
from xlstm_edu.exercises import Verdict, check

#: time axis of each mLSTM input: q, k, v are (..., S, D); the gate pre-activations are (..., S)
MLSTM_TIME_AXES = {"q": -2, "k": -2, "v": -2, "i_pre": -1, "f_pre": -1}


def _output(fn, inputs):
    out = fn(**inputs)
    if isinstance(out, tuple):  # (h, state)
        out = out[0]
    return np.asarray(out, dtype=np.float64)


def _check_inputs(inputs, time_axes=None):
    if not isinstance(inputs, dict) or not inputs:
        raise ValueError(f"inputs: expected a non-empty dict of name -> array, got {type(inputs).__name__}")
    arrays = {name: np.asarray(a) for name, a in inputs.items()}
    if time_axes is not None:
        for name in arrays:
            if name not in time_axes:
                raise ValueError(f"time_axes: expected an axis for input {name!r}, got keys {sorted(time_axes)}")
    return arrays


def _seq_len(arrays, time_axes):
    lengths = {arrays[n].shape[time_axes[n]] for n in arrays if np.ndim(arrays[n]) > 0}
    if len(lengths) != 1:
        raise ValueError(f"inputs: expected one sequence length along the time axes, got lengths {sorted(lengths)}")
    return lengths.pop()


def causality_probe(fn, inputs: dict, t: int, *, time_axes: dict | None = None, out_time_axis: int = -2,
                    scale: float = 1.0, seed: int = 0) -> float:
    """Change every input at times > ``t`` (add Gaussian noise of size ``scale``) and return the largest change
    of the outputs at times <= ``t``. A causal model returns exactly 0.0 (the same arithmetic runs on the same
    numbers); a model that lets the future leak into the past returns a clearly positive number.

    ``time_axes`` maps each input name to its time axis (default ``MLSTM_TIME_AXES``); the output's time axis is
    ``out_time_axis`` (h is (..., S, DV): -2).
    """
    time_axes = MLSTM_TIME_AXES if time_axes is None else time_axes
    arrays = _check_inputs(inputs, time_axes)
    S = _seq_len(arrays, time_axes)
    if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or not 0 <= t < S - 1:
        raise ValueError(f"t: expected an integer time index in [0, {S - 2}] (some future must exist), got {t!r}")
    return _perturbation_effect(fn, arrays, time_axes, out_time_axis, scale, seed, change=slice(t + 1, None),
                                observe=slice(0, t + 1))


def memory_probe(fn, inputs: dict, *, t: int = 0, time_axes: dict | None = None, out_time_axis: int = -2,
                 scale: float = 1.0, seed: int = 0) -> float:
    """Change every input at time ``t`` only (Gaussian noise of size ``scale``) and return the largest change of the
    outputs at times > ``t``. A recurrence that carries its state returns a clearly positive number (unless its forget
    gates shut completely); one whose steps all start from the initial state returns exactly 0.0 -- it has no memory.
    """
    time_axes = MLSTM_TIME_AXES if time_axes is None else time_axes
    arrays = _check_inputs(inputs, time_axes)
    S = _seq_len(arrays, time_axes)
    if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or not 0 <= t < S - 1:
        raise ValueError(f"t: expected an integer time index in [0, {S - 2}] (a later step must exist), got {t!r}")
    return _perturbation_effect(fn, arrays, time_axes, out_time_axis, scale, seed, change=t,
                                observe=slice(t + 1, None))


def _perturbation_effect(fn, arrays, time_axes, out_time_axis, scale, seed, *, change, observe) -> float:
    """Add Gaussian noise of size ``scale`` to every input at the times ``change`` (an index or a slice along each
    input's time axis) and return the largest change of the outputs at the times ``observe`` (NaN counts as inf)."""
    rng = np.random.default_rng(seed)
    changed = {}
    for name, a in arrays.items():
        b = np.array(a, dtype=a.dtype, copy=True)
        idx = [slice(None)] * b.ndim
        idx[time_axes[name] % b.ndim] = change
        b[tuple(idx)] += scale * rng.standard_normal(b[tuple(idx)].shape).astype(b.dtype)
        changed[name] = b
    h0, h1 = _output(fn, arrays), _output(fn, changed)
    idx = [slice(None)] * h0.ndim
    idx[out_time_axis % h0.ndim] = observe
    d = np.abs(h0[tuple(idx)] - h1[tuple(idx)])
    return float(np.nan_to_num(d, nan=np.inf).max())


def batch_leak_probe(fn, inputs: dict, *, batch_index: int = 0, scale: float = 1.0, seed: int = 0) -> float:
    """Change sequence ``batch_index`` (axis 0 of every input) and return the largest change of the *other*
    sequences' outputs. Independent sequences give exactly 0.0; a state averaged over the batch does not."""
    arrays = _check_inputs(inputs)
    B = {a.shape[0] for a in arrays.values() if a.ndim > 0}
    if len(B) != 1 or B.pop() < 2:
        raise ValueError("inputs: expected a batch axis 0 of the same size >= 2 in every input, got shapes "
                         f"{ {n: a.shape for n, a in arrays.items()} }")
    rng = np.random.default_rng(seed)
    changed = {}
    for name, a in arrays.items():
        b = np.array(a, copy=True)
        b[batch_index] += scale * rng.standard_normal(b[batch_index].shape).astype(b.dtype)
        changed[name] = b
    h0, h1 = _output(fn, arrays), _output(fn, changed)
    others = [j for j in range(h0.shape[0]) if j != batch_index]
    d = np.abs(h0[others] - h1[others])
    return float(np.nan_to_num(d, nan=np.inf).max())


def column_consistency_probe(fn, inputs: dict, *, value_name: str = "v", columns=(0, 1)) -> float:
    """Copy value column ``columns[0]`` into ``columns[1]`` and return the largest difference between the two
    output columns. In an mLSTM head the gates are one scalar pair per time step, so every value column is
    mixed with the same weights and equal columns give equal outputs (0.0). Gates per unit break this."""
    arrays = _check_inputs(inputs)
    check_choice(value_name, "value_name", list(arrays))
    a, b = columns
    v = np.array(arrays[value_name], copy=True)
    v[..., b] = v[..., a]
    h = _output(fn, {**arrays, value_name: v})
    return float(np.nan_to_num(np.abs(h[..., a] - h[..., b]), nan=np.inf).max())


def compare_to_reference(fn, reference, inputs: dict, *, name: str | None = None, rtol: float = 1e-6,
                         atol: float = 1e-8, hint: str | None = None, quiet: bool = False) -> Verdict:
    """Run ``fn`` and the trusted ``reference`` on the same ``inputs`` and print the verdict of
    ``xlstm_edu.exercises.check`` (exact / close / wrong with the max difference). Returns the Verdict."""
    arrays = _check_inputs(inputs)
    if not callable(fn) or not callable(reference):
        raise ValueError("fn, reference: expected two callables")
    label = name or f"{getattr(fn, '__name__', 'fn')} vs {getattr(reference, '__name__', 'reference')}"
    with np.errstate(all="ignore"):
        got = _output(fn, arrays)
    return check(label, got, _output(reference, arrays), rtol=rtol, atol=atol, hint=hint, quiet=quiet)


def check_finite(name: str, x, *, quiet: bool = False) -> Verdict:
    """Verdict on whether ``x`` is free of NaN and inf; the message counts the bad entries."""
    a = np.asarray(x[0] if isinstance(x, tuple) else x, dtype=np.float64)
    n_nan, n_inf = int(np.isnan(a).sum()), int(np.isinf(a).sum())
    if n_nan == 0 and n_inf == 0:
        v = Verdict(name, "exact", 0.0, 0.0, f"✅ {name}: all {a.size} values finite")
    else:
        v = Verdict(name, "wrong", np.inf, np.inf,
                    f"❌ {name}: {n_nan} NaN and {n_inf} inf among {a.size} values")
    if not quiet:
        print(v.message)
        v.printed = True  # a cell ending in run_check(...) would otherwise show the verdict twice
    return v


def probe_verdict(name: str, leak: float, *, tol: float = 1e-12, what: str = "leak", quiet: bool = False) -> Verdict:
    """Turn a probe's number into a printed verdict: ✅ when ``leak <= tol``, ❌ otherwise."""
    if leak <= tol:
        v = Verdict(name, "exact" if leak == 0 else "close", leak, 0.0, f"✅ {name}: no {what} (max change {leak:.1e})")
    else:
        v = Verdict(name, "wrong", leak, np.inf, f"❌ {name}: {what} detected (max change {leak:.3g})")
    if not quiet:
        print(v.message)
        v.printed = True  # a cell ending in run_check(...) would otherwise show the verdict twice
    return v


CHECKS = ("finite", "reference", "causality", "memory", "batch", "columns")


def run_check(kind: str, fn, inputs: dict, *, reference=None, name: str | None = None, tol: float = 1e-12,
              rtol: float = 1e-6, atol: float = 1e-8, quiet: bool = False) -> Verdict:
    """Run one of the course's checks on ``fn`` and print its verdict (✅ passes, ❌ caught something).

    kind: "finite"    -- no NaN or inf in the outputs (``check_finite``);
          "reference" -- same outputs as ``reference`` (``compare_to_reference``, rtol/atol);
          "causality" -- ``causality_probe`` at the start, the middle and the end of the sequence, worst case;
          "memory"    -- ``memory_probe`` changing the first step: ✅ when later outputs move by more than ``tol``;
          "batch"     -- ``batch_leak_probe`` changing the first sequence of the batch;
          "columns"   -- ``column_consistency_probe`` on the value columns 0 and 1.
    """
    check_choice(kind, "kind", CHECKS)
    label = name or getattr(fn, "__name__", "fn")
    if kind == "finite":
        with np.errstate(all="ignore"):
            return check_finite(f"{label}: finite outputs", fn(**inputs), quiet=quiet)
    if kind == "reference":
        if reference is None:
            raise ValueError("reference: expected a callable for kind='reference', got None")
        return compare_to_reference(fn, reference, inputs, name=f"{label} vs reference", rtol=rtol, atol=atol,
                                    quiet=quiet)
    with np.errstate(all="ignore"):
        if kind == "causality":
            S = _seq_len(_check_inputs(inputs, MLSTM_TIME_AXES), MLSTM_TIME_AXES)
            leak = max(causality_probe(fn, inputs, t) for t in sorted({0, S // 2, S - 2}))
            return probe_verdict(f"{label}: causality probe", leak, tol=tol, what="future leak", quiet=quiet)
        if kind == "memory":
            moved = memory_probe(fn, inputs)
            if moved > tol:
                v = Verdict(f"{label}: memory probe", "close", moved, 0.0,
                            f"✅ {label}: memory probe: the first step moves later outputs (max change {moved:.3g})")
            else:
                v = Verdict(f"{label}: memory probe", "wrong", moved, np.inf,
                            f"❌ {label}: memory probe: no memory -- changing the first step moves no later output "
                            f"(max change {moved:.1e})")
            if not quiet:
                print(v.message)
                v.printed = True
            return v
        if kind == "batch":
            return probe_verdict(f"{label}: batch probe", batch_leak_probe(fn, inputs), tol=tol,
                                 what="leak between sequences", quiet=quiet)
        return probe_verdict(f"{label}: column probe", column_consistency_probe(fn, inputs), tol=tol,
                             what="column inconsistency", quiet=quiet)
