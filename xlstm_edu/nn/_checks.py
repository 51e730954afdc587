"""The torch side of the input checks: the rules of ``xlstm_edu._validate`` (the same shape contracts, messages,
finite values and possible states as the numpy engine), applied to tensors on any device.

Value checks are cheap: small CPU tensors (one generation step) through numpy views, large ones (a training batch)
through one sum each and a single host synchronisation per call (``check_values``).
"""

from __future__ import annotations

import functools

import numpy as np
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


_SMALL = 1 << 16  # entries: up to this size a CPU tensor is checked through numpy, without torch's per-op overhead
_NUMPY_DTYPES = (torch.float32, torch.float64)


def _small_cpu(t) -> bool:
    return t.is_cpu and t.dtype in _NUMPY_DTYPES and t.numel() <= _SMALL


def check_values(named: dict, slstm_state: tuple | None = None, arg: str = "state") -> None:
    """Every tensor finite; ``slstm_state`` = (c, n): n >= 0 and c = 0 wherever n = 0.

    Small CPU tensors (a generation step) are checked together through numpy, in a few microseconds; the others
    (a training batch) are each reduced to their sum (a NaN or inf entry makes the sum NaN or inf) and all sums are
    gathered into one boolean: one host synchronisation per call. Only when something is flagged do the exact,
    entry-by-entry checks run to name it (a sum can also overflow on finite values; the exact check then lets the
    call through)."""
    small, large = [], []
    for t in named.values():
        (small if _small_cpu(t) else large).append(t)
    ok = not small or bool(np.isfinite(np.concatenate([t.detach().numpy().ravel() for t in small])).all())
    conditions = []
    if slstm_state is not None:
        c, n = slstm_state
        if _small_cpu(c) and _small_cpu(n):
            cn, nn_ = c.detach().numpy(), n.detach().numpy()
            ok = ok and bool((nn_ >= 0).all()) and bool(((nn_ != 0) | (cn == 0)).all())
        else:
            conditions = [(n >= 0).all(), ((n != 0) | (c == 0)).all()]
    if ok and (large or conditions):
        with torch.no_grad():
            sums = [t.sum(dtype=torch.float64 if t.dtype == torch.float64 else torch.float32).isfinite() for t in large]
            ok = bool(torch.stack(sums + conditions).all())
    if ok:
        return
    for name, t in named.items():  # name the problem (or let a sum that merely overflowed through)
        check_finite(t, name)
    if slstm_state is not None:
        check_slstm_state_values(*slstm_state, arg=arg)


def dtypes(tensors) -> tuple:
    """(the results' dtype = the inputs' common dtype, the compute dtype = that, but at least float32)."""
    out = functools.reduce(torch.promote_types, (t.dtype for t in tensors))
    return out, torch.promote_types(out, torch.float32)
