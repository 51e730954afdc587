"""The torch side of the input checks: the rules of ``xlstm_edu._validate`` (the same shape contracts, messages,
finite values and possible states as the numpy engine), applied to tensors on any device.

Value checks cost one host synchronisation per call: each tensor is reduced to its sum (a NaN or inf entry makes
the sum NaN or inf), all sums and the sLSTM state conditions are gathered into one boolean, and only when that
flags a problem do the exact, entry-by-entry checks run to name it (a sum can also overflow on finite values; the
exact check then lets the call through).
"""

from __future__ import annotations

import functools

import torch

from xlstm_edu._validate import (  # noqa: F401 (re-exported for the cells)
    check_choice,
    check_eps,
    check_finite,
    check_forget_gate,
    check_ndim,
    check_positive_int,
    check_shape,
    check_slstm_state_values,
    check_state_tuple,
)

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def check_tensor(x, name: str) -> torch.Tensor:
    """``x`` must be a floating-point ``torch.Tensor`` (its shape is checked by the contracts)."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    if x.dtype not in FLOAT_DTYPES:
        raise ValueError(f"{name}: expected a floating-point tensor (float16, bfloat16, float32 or float64), "
                         f"got {x.dtype}")
    return x


def check_tensors(named: dict) -> None:
    """Every entry a floating-point tensor, all on the device of the first one."""
    for name, t in named.items():
        check_tensor(t, name)
    (name0, t0), *rest = named.items()
    for name, t in rest:
        if t.device != t0.device:
            raise ValueError(f"{name}: expected a tensor on the device of {name0} ({t0.device}), got {t.device}")


def check_values(named: dict, slstm_state: tuple | None = None, arg: str = "state") -> None:
    """Every tensor finite; ``slstm_state`` = (c, n): n >= 0 and c = 0 wherever n = 0. One host sync."""
    with torch.no_grad():
        flags = [t.sum(dtype=torch.float64 if t.dtype == torch.float64 else torch.float32).isfinite()
                 for t in named.values()]
        if slstm_state is not None:
            c, n = slstm_state
            flags += [(n >= 0).all(), ((n != 0) | (c == 0)).all()]
        if bool(torch.stack(flags).all()):
            return
    for name, t in named.items():  # name the problem (or let a sum that merely overflowed through)
        check_finite(t, name)
    if slstm_state is not None:
        check_slstm_state_values(*slstm_state, arg=arg)


def dtypes(tensors) -> tuple:
    """(the results' dtype = the inputs' common dtype, the compute dtype = that, but at least float32)."""
    out = functools.reduce(torch.promote_types, (t.dtype for t in tensors))
    return out, torch.promote_types(out, torch.float32)
