"""One rule set for the inputs of every cell, shared by the numpy engine (``xlstm_edu.np``) and the torch cells
(``xlstm_edu.nn``).

Every public function checks its inputs *before* doing any work and raises ``ValueError`` with a message that
names the argument, what was expected and what came. The rules, the same in both engines:

* every array is a floating-point array (float16, float32, float64; torch also bfloat16) of finite values
  (torch: all on one device). Mixed dtypes are promoted as numpy/torch promote them; the computation runs in at
  least float32 (float64 when any input is float64); outputs come back in the inputs' common dtype (the state
  aside), states in the compute dtype (a memory rounded to half precision at every step would drift);
* shapes follow the contracts below, written once: ``mlstm_dims`` for the mLSTM forms, ``cell_dims`` for the
  LSTM and the sLSTM (their ``wx``, ``R``, ``b``), ``check_state_shapes`` for any state;
* ``eps`` is a finite number >= 0, sizes such as ``chunk_size`` are integers >= 1, ``forget_gate`` is one of
  ``FORGET_GATES``;
* an sLSTM state is one the recurrence can produce: its normalizer n >= 0 (a sum of positive gate values) and
  c = 0 wherever n = 0 (an empty memory).

The functions here only look at ``.shape``, ``.ndim`` and ``.dtype`` and at values through operators that numpy
arrays and torch tensors share, so they serve both engines. The engine-specific parts (turning the arguments
into arrays, the compute dtype, the torch device) live in ``xlstm_edu.np._checks`` and ``xlstm_edu.nn._checks``.
"""

from __future__ import annotations

import math

import numpy as np

FORGET_GATES = ("sigmoid", "exp")  # logσ(f̃) (the official code's choice) or f̃ as log f_t, paper eq. 13 / 26
FLOAT_DTYPES = (np.float16, np.float32, np.float64)


# ----------------------------------------------------------------------------------------------- scalars
def check_choice(value, name: str, choices) -> None:
    if value not in choices:
        raise ValueError(f"{name}: expected one of {sorted(choices)}, got {value!r}")


def check_forget_gate(forget_gate) -> str:
    check_choice(forget_gate, "forget_gate", FORGET_GATES)
    return forget_gate


def check_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")
    return int(value)


def check_eps(eps) -> float:
    """eps: a finite real number >= 0 (not a bool, not an array)."""
    if isinstance(eps, bool) or not isinstance(eps, (int, float, np.integer, np.floating)):
        raise ValueError(f"eps: expected a finite number >= 0, got {eps!r}")
    if not math.isfinite(float(eps)) or eps < 0:
        raise ValueError(f"eps: expected a finite number >= 0, got {eps!r}")
    return float(eps)


# ----------------------------------------------------------------------------------------------- numpy arrays
def as_float_array(x, name: str, *, allow_nonfinite: bool = False) -> np.ndarray:
    """``np.asarray(x)`` that must be a float16/32/64 array, of finite values unless ``allow_nonfinite``."""
    if x is None:
        raise ValueError(f"{name}: expected a float array, got None")
    try:
        a = np.asarray(x)
    except Exception as e:  # ragged lists and the like
        raise ValueError(f"{name}: expected a float array, got {type(x).__name__} ({e})") from None
    if a.dtype.type not in FLOAT_DTYPES:
        raise ValueError(f"{name}: expected dtype float16, float32 or float64, got {a.dtype}")
    if not allow_nonfinite:
        check_finite(a, name)
    return a


def result_dtype(*arrays) -> np.dtype:
    """The common float dtype of numpy inputs (what the outputs are returned in)."""
    return np.result_type(*[a.dtype for a in arrays])


# ----------------------------------------------------------------------------------------------- values
def _isfinite(a):
    return np.isfinite(a) if isinstance(a, np.ndarray) else a.isfinite()


def check_finite(a, name: str) -> None:
    """Every entry of ``a`` (a numpy array or a torch tensor) is finite."""
    finite = _isfinite(a)
    if not bool(finite.all()):
        bad = np.argwhere(~np.asarray(finite.cpu() if hasattr(finite, "cpu") else finite))[0]
        raise ValueError(
            f"{name}: expected finite values, got NaN or inf (first at index {tuple(int(i) for i in bad)})"
        )


def check_slstm_state_values(c, n, arg: str = "state") -> None:
    """An sLSTM state the recurrence can produce: n >= 0 (n_t = f'_t n_{t-1} + i'_t, eq. 9, with positive gates)
    and c = 0 wherever n = 0 (an empty memory). Both are unchanged by the stabilizer's rescaling of (c, n)."""
    if bool((n < 0).any()):
        raise ValueError(f"{arg} n: expected n >= 0 (a sum of positive gate values), got min {float(n.min()):g}")
    if bool(((n == 0) & (c != 0)).any()):
        raise ValueError(f"{arg} c: expected c = 0 wherever n = 0 (an empty memory), got c != 0 there")


# ----------------------------------------------------------------------------------------------- shapes
def check_ndim(a, name: str, min_ndim: int, layout: str) -> None:
    """``a`` must have at least ``min_ndim`` axes; ``layout`` describes them, e.g. '(..., S, DK)'."""
    if a.ndim < min_ndim:
        raise ValueError(f"{name}: expected shape {layout} (at least {min_ndim} dims), got shape {tuple(a.shape)}")


def check_shape(a, name: str, expected: tuple, layout: str) -> None:
    """``a.shape`` must equal ``expected``; ``layout`` names the axes, e.g. '(4, H, H)'."""
    if tuple(a.shape) != tuple(expected):
        raise ValueError(f"{name}: expected shape {layout} = {tuple(expected)}, got {tuple(a.shape)}")


def check_state_tuple(state, names: tuple, arg: str = "state") -> tuple:
    """``state`` must be a tuple (or list) of ``len(names)`` entries; returns it as a tuple."""
    what = "(" + ", ".join(names) + ")"
    if not isinstance(state, (tuple, list)) or len(state) != len(names):
        got = (f"{type(state).__name__} of length {len(state)}" if isinstance(state, (tuple, list))
               else type(state).__name__)
        raise ValueError(f"{arg}: expected a tuple {what} of {len(names)} arrays, got {got}")
    return tuple(state)


def check_state_shapes(state: tuple, names: tuple, shapes: tuple, layouts: tuple, arg: str = "state") -> None:
    """Entry j of ``state`` (called ``arg names[j]``) must have shape ``shapes[j]`` (described by ``layouts[j]``)."""
    for s, name, shape, layout in zip(state, names, shapes, layouts):
        check_shape(s, f"{arg} {name}", shape, layout)


def mlstm_dims(q, k, v, i_pre, f_pre, *, step: bool = False):
    """The shape contract of every mLSTM form. A sequence: q, k (..., S, DK), v (..., S, DV), i_pre, f_pre
    (..., S); one step (``step=True``): q, k (..., DK), v (..., DV), i_pre, f_pre (...).
    DK, DV >= 1 and S >= 1. Returns (lead, S, DK, DV) with lead = the leading dims ``...`` and S = None for a step."""
    t = "" if step else "S, "
    check_ndim(q, "q", 1 if step else 2, f"(..., {t}DK)")
    check_shape(k, "k", q.shape, f"(..., {t}DK), the same as q")
    check_ndim(v, "v", 1 if step else 2, f"(..., {t}DV)")
    if tuple(v.shape[:-1]) != tuple(q.shape[:-1]):
        raise ValueError(f"v: expected shape (..., {t}DV) with (...{', S' if not step else ''}) = "
                         f"{tuple(q.shape[:-1])} as in q, got {tuple(v.shape)}")
    gate_layout = f"(...{', S' if not step else ''}) (q's shape without DK)"
    check_shape(i_pre, "i_pre", q.shape[:-1], gate_layout)
    check_shape(f_pre, "f_pre", q.shape[:-1], gate_layout)
    DK, DV = q.shape[-1], v.shape[-1]
    if DK < 1 or DV < 1:
        raise ValueError(f"q, v: expected head dimensions DK, DV >= 1, got DK={DK}, DV={DV}")
    if step:
        return tuple(q.shape[:-1]), None, DK, DV
    S = q.shape[-2]
    if S < 1:
        raise ValueError(f"q: expected at least one time step (S >= 1), got shape {tuple(q.shape)}")
    return tuple(q.shape[:-2]), S, DK, DV


MLSTM_STATE = ("C", "n", "m")


def check_mlstm_state(state, lead: tuple, DK: int, DV: int, arg: str = "state") -> tuple | None:
    """An mLSTM state (C (..., DK, DV), n (..., DK), m (...)) as in the official kernels; None passes."""
    if state is None:
        return None
    state = check_state_tuple(state, MLSTM_STATE, arg)
    check_state_shapes(state, MLSTM_STATE, (lead + (DK, DV), lead + (DK,), lead),
                       ("(..., DK, DV)", "(..., DK)", "(...)"), arg)
    return state


def cell_dims(wx, R, b, *, heads: bool, step: bool = False):
    """The shape contract of the LSTM (``heads=False``) and the sLSTM (``heads=True``).

    wx (..., S, 4, H) (one step: (..., 4, H)) the input contributions W x_t of the gates (i, f, z, o), S, H >= 1;
    R (4, H, H) for the LSTM, (4, NH, DH, DH) block-diagonal with NH·DH = H for the sLSTM; b (4, H).
    Returns (lead, S, H, NH, DH) with S = None for a step (NH = 1, DH = H for the LSTM)."""
    layout = "(..., 4, H)" if step else "(..., S, 4, H)"
    name = "wx_t" if step else "wx"
    check_ndim(wx, name, 2 if step else 3, layout)
    if wx.shape[-2] != 4:
        raise ValueError(f"{name}: expected shape {layout} with 4 gates (i, f, z, o) on axis -2, "
                         f"got shape {tuple(wx.shape)}")
    H = wx.shape[-1]
    if H < 1:
        raise ValueError(f"{name}: expected shape {layout} with H >= 1, got shape {tuple(wx.shape)}")
    S = None if step else wx.shape[-3]
    if not step and S < 1:
        raise ValueError(f"{name}: expected shape {layout} with at least one time step S >= 1, "
                         f"got shape {tuple(wx.shape)}")
    if heads:
        check_ndim(R, "R", 4, "(4, NH, DH, DH)")
        if R.ndim != 4 or R.shape[0] != 4 or R.shape[2] != R.shape[3]:
            raise ValueError(f"R: expected shape (4, NH, DH, DH) (4 gates, NH heads of DH x DH blocks), "
                             f"got {tuple(R.shape)}")
        NH, DH = R.shape[1], R.shape[2]
        if NH * DH != H:
            raise ValueError(f"R: expected NH * DH = H = {H} (the last axis of {name}), got R of shape "
                             f"{tuple(R.shape)}: NH * DH = {NH} * {DH} = {NH * DH}")
    else:
        check_shape(R, "R", (4, H, H), "(4, H, H)")
        NH, DH = 1, H
    check_shape(b, "b", (4, H), "(4, H)")
    lead = tuple(wx.shape[:-2] if step else wx.shape[:-3])
    return lead, S, H, NH, DH


def check_cell_state(state, names: tuple, lead: tuple, H: int, arg: str = "state") -> tuple | None:
    """An LSTM (h, c) or sLSTM (h, c, n, m) state: each entry (..., H) with the leading dims of wx; None passes."""
    if state is None:
        return None
    state = check_state_tuple(state, names, arg)
    check_state_shapes(state, names, (lead + (H,),) * len(names),
                       ("(..., H) with the leading dims of wx",) * len(names), arg)
    return state
