"""Input checks shared by the numpy mLSTM forms (recurrent, parallel, chunkwise) and their backward passes.

Everything is checked before any work is done; bad input raises ``ValueError`` naming what was expected and
what came. The arrays come back in the dtype the computation runs in (float64 if any input is float64, else
float32), together with the dtype the results are returned in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from xlstm_edu._validate import (
    as_float_array,
    check_choice,
    check_ndim,
    check_shape,
    result_dtype,
)
from xlstm_edu.np.gating import FORGET_GATES


@dataclass
class MlstmInputs:
    q: np.ndarray  # (..., S, DK)   in the compute dtype
    k: np.ndarray  # (..., S, DK)
    v: np.ndarray  # (..., S, DV)
    i_pre: np.ndarray  # (..., S)  float64: the log-space gate arithmetic always runs in float64
    f_pre: np.ndarray  # (..., S)  float64
    state: tuple | None  # (C (..., DK, DV) compute dtype, n (..., DK) compute dtype, m (...) float64) or None
    eps: float
    forget_gate: str
    out_dtype: np.dtype  # the dtype results are returned in (the inputs' common dtype)
    dtype: np.dtype  # the dtype of the big arrays during the computation (float32 or float64)

    @property
    def lead(self) -> tuple:
        return self.q.shape[:-2]

    @property
    def S(self) -> int:
        return self.q.shape[-2]


def check_eps(eps) -> float:
    if isinstance(eps, bool) or not isinstance(eps, (int, float, np.integer, np.floating)):
        raise ValueError(f"eps: expected a finite number >= 0, got {eps!r}")
    if not math.isfinite(float(eps)) or eps < 0:
        raise ValueError(f"eps: expected a finite number >= 0, got {eps!r}")
    return float(eps)


def check_state(state, lead: tuple, DK: int, DV: int, dtype, name: str = "state"):
    """``state`` = (C, n, m) with C (..., DK, DV), n (..., DK), m (...); ``...`` = ``lead``. None passes."""
    if state is None:
        return None
    if not isinstance(state, (tuple, list)) or len(state) != 3:
        raise ValueError(
            f"{name}: expected a tuple (C, n, m) of 3 arrays, got "
            f"{type(state).__name__}{' of length ' + str(len(state)) if isinstance(state, (tuple, list)) else ''}"
        )
    C = as_float_array(state[0], f"{name}[0] (C)")
    n = as_float_array(state[1], f"{name}[1] (n)")
    m = as_float_array(state[2], f"{name}[2] (m)")
    check_shape(C, f"{name}[0] (C)", lead + (DK, DV), "(..., DK, DV)")
    check_shape(n, f"{name}[1] (n)", lead + (DK,), "(..., DK)")
    check_shape(m, f"{name}[2] (m)", lead, "(...)")
    return C.astype(dtype, copy=False), n.astype(dtype, copy=False), m.astype(np.float64, copy=False)


def check_mlstm_inputs(q, k, v, i_pre, f_pre, *, state=None, eps=1e-6, forget_gate="sigmoid",
                       step: bool = False) -> MlstmInputs:
    """Check the arguments of an mLSTM form. ``step=True``: one time step, q (..., DK), v (..., DV),
    gates (...); otherwise a sequence, q (..., S, DK), v (..., S, DV), gates (..., S)."""
    t = "" if step else "S, "
    q = as_float_array(q, "q")
    k = as_float_array(k, "k")
    v = as_float_array(v, "v")
    i_pre = as_float_array(i_pre, "i_pre")
    f_pre = as_float_array(f_pre, "f_pre")
    check_choice(forget_gate, "forget_gate", FORGET_GATES)
    eps = check_eps(eps)

    min_ndim = 1 if step else 2
    check_ndim(q, "q", min_ndim, f"(..., {t}DK)")
    check_shape(k, "k", q.shape, f"(..., {t}DK), the same as q")
    check_ndim(v, "v", min_ndim, f"(..., {t}DV)")
    if v.shape[:-1] != q.shape[:-1]:
        raise ValueError(
            f"v: expected shape (..., {t}DV) with (..., {t.rstrip(', ') or ''}) = {q.shape[:-1]} as in q, "
            f"got {tuple(v.shape)}"
        )
    check_shape(i_pre, "i_pre", q.shape[:-1], f"(...{', S' if not step else ''}) (q's shape without DK)")
    check_shape(f_pre, "f_pre", q.shape[:-1], f"(...{', S' if not step else ''}) (q's shape without DK)")
    DK, DV = q.shape[-1], v.shape[-1]
    if DK < 1 or DV < 1:
        raise ValueError(f"q, v: expected head dimensions DK, DV >= 1, got DK={DK}, DV={DV}")
    if not step and q.shape[-2] < 1:
        raise ValueError(f"q: expected at least one time step (S >= 1), got shape {tuple(q.shape)}")

    out_dtype = result_dtype(q, k, v, i_pre, f_pre)
    dtype = np.dtype(np.float64) if out_dtype == np.float64 else np.dtype(np.float32)
    lead = q.shape[:-1] if step else q.shape[:-2]
    state = check_state(state, lead, DK, DV, dtype)
    return MlstmInputs(
        q=q.astype(dtype, copy=False),
        k=k.astype(dtype, copy=False),
        v=v.astype(dtype, copy=False),
        i_pre=i_pre.astype(np.float64, copy=False),
        f_pre=f_pre.astype(np.float64, copy=False),
        state=state,
        eps=eps,
        forget_gate=forget_gate,
        out_dtype=out_dtype,
        dtype=dtype,
    )


def check_dh(dh, like_v: np.ndarray) -> np.ndarray:
    """The upstream gradient dL/dh has the shape of h, which is the shape of v."""
    dh = as_float_array(dh, "dh")
    check_shape(dh, "dh", like_v.shape, "(..., S, DV), the shape of h")
    return dh
