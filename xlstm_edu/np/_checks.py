"""The numpy side of the input checks: arguments become float arrays, then the shared rules of
``xlstm_edu._validate`` (shape contracts, finite values, possible states) are applied, before any work.

Arrays come back in the dtype the computation runs in: float64 if any input is float64, else float32 (float16
inputs are computed in float32, like the torch cells), together with the dtype the outputs are returned in
(the common dtype of the inputs other than the state). States are carried, and returned, in the compute dtype.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xlstm_edu._validate import (
    MLSTM_STATE,
    as_float_array,
    cell_dims,
    check_cell_state,
    check_eps,
    check_finite,
    check_forget_gate,
    check_mlstm_state,
    check_shape,
    check_slstm_state_values,
    mlstm_dims,
    result_dtype,
)

__all__ = ["MlstmInputs", "check_mlstm_inputs", "check_state", "check_dh", "check_eps", "check_cell_inputs",
           "check_cell_grad_state", "compute_dtype"]


def compute_dtype(out_dtype) -> np.dtype:
    """The dtype the work is done in: float64 for float64 results, float32 otherwise (never half precision)."""
    return np.dtype(np.float64) if np.dtype(out_dtype) == np.float64 else np.dtype(np.float32)


def _arrays(named: dict) -> dict:
    """Each argument as a float array (dtype checked, values not yet)."""
    return {name: as_float_array(x, name, allow_nonfinite=True) for name, x in named.items()}


def _finite(named: dict) -> None:
    for name, a in named.items():
        check_finite(a, name)


# ----------------------------------------------------------------------------------------------- mLSTM
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


def _state_arrays(state, arg: str) -> tuple | None:
    if state is None or not isinstance(state, (tuple, list)) or len(state) != 3:
        return state  # None, or a wrong container: check_mlstm_state names the problem
    return tuple(as_float_array(s, f"{arg} {name}", allow_nonfinite=True) for s, name in zip(state, MLSTM_STATE))


def check_state(state, lead: tuple, DK: int, DV: int, dtype, name: str = "state"):
    """``state`` = (C, n, m) with C (..., DK, DV), n (..., DK), m (...) finite; ``...`` = ``lead``. None passes.
    Returns C, n in ``dtype`` and m in float64."""
    state = check_mlstm_state(_state_arrays(state, name), tuple(lead), DK, DV, name)
    if state is None:
        return None
    _finite({f"{name} {n}": s for n, s in zip(MLSTM_STATE, state)})
    C, n, m = state
    return C.astype(dtype, copy=False), n.astype(dtype, copy=False), m.astype(np.float64, copy=False)


def check_mlstm_inputs(q, k, v, i_pre, f_pre, *, state=None, eps=1e-6, forget_gate="sigmoid",
                       step: bool = False) -> MlstmInputs:
    """Check the arguments of an mLSTM form (the contract ``xlstm_edu._validate.mlstm_dims``). ``step=True``: one
    time step, q (..., DK), v (..., DV), gates (...); otherwise a sequence, q (..., S, DK), v (..., S, DV),
    gates (..., S)."""
    a = _arrays(dict(q=q, k=k, v=v, i_pre=i_pre, f_pre=f_pre))
    check_forget_gate(forget_gate)
    eps = check_eps(eps)
    lead, _, DK, DV = mlstm_dims(*a.values(), step=step)
    st = check_mlstm_state(_state_arrays(state, "state"), lead, DK, DV)
    _finite(a)
    out_dtype = result_dtype(*a.values())  # the state does not change it: it is carried in the compute dtype
    dtype = compute_dtype(out_dtype)
    state = check_state(st, lead, DK, DV, dtype)
    return MlstmInputs(
        q=a["q"].astype(dtype, copy=False),
        k=a["k"].astype(dtype, copy=False),
        v=a["v"].astype(dtype, copy=False),
        i_pre=a["i_pre"].astype(np.float64, copy=False),
        f_pre=a["f_pre"].astype(np.float64, copy=False),
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


# ----------------------------------------------------------------------------------------------- LSTM, sLSTM
def check_cell_inputs(wx, R, b, state, *, heads: bool, state_names: tuple, step: bool = False,
                      forget_gate: str | None = None, slstm_state: bool = False, upcast: bool = True):
    """Check the arguments of the LSTM (``heads=False``) or the sLSTM (``heads=True``), contract
    ``xlstm_edu._validate.cell_dims``. ``slstm_state``: the state must be one the sLSTM can produce.
    ``upcast=False`` keeps the inputs' dtype for the work (the unstabilized teaching cells, which exist to show
    where float16 or float32 overflow).

    Returns (wx, R, b, states, out_dtype), the arrays in the compute dtype; ``states`` = zeros when ``state`` is None.
    """
    name = "wx_t" if step else "wx"
    a = _arrays({name: wx, "R": R, "b": b})
    if forget_gate is not None:
        check_forget_gate(forget_gate)
    lead, _, H, _, _ = cell_dims(*a.values(), heads=heads, step=step)
    if isinstance(state, (tuple, list)) and len(state) == len(state_names):
        state = tuple(as_float_array(s, f"state {n}", allow_nonfinite=True) for s, n in zip(state, state_names))
    st = check_cell_state(state, state_names, lead, H)
    _finite(a)
    if st is not None:
        _finite({f"state {n}": s for n, s in zip(state_names, st)})
        if slstm_state:
            check_slstm_state_values(st[1], st[2])
    out_dtype = result_dtype(*a.values())  # the state does not change it: it is carried in the compute dtype
    dtype = compute_dtype(out_dtype) if upcast else out_dtype
    cast = lambda x: x.astype(dtype, copy=False)  # noqa: E731
    states = (np.zeros(lead + (H,), dtype),) * len(state_names) if st is None else tuple(cast(s) for s in st)
    return cast(a[name]), cast(a["R"]), cast(a["b"]), states, out_dtype


def check_cell_grad_state(d_state, names: tuple, lead: tuple, H: int, dtype, arg: str = "d_last_state") -> tuple:
    """Gradients arriving at a returned state: each (..., H), finite; returned in ``dtype``."""
    if isinstance(d_state, (tuple, list)) and len(d_state) == len(names):
        d_state = tuple(as_float_array(s, f"{arg} {n}", allow_nonfinite=True) for s, n in zip(d_state, names))
    d_state = check_cell_state(d_state, names, lead, H, arg)
    _finite({f"{arg} {n}": s for n, s in zip(names, d_state)})
    return tuple(s.astype(dtype) for s in d_state)
