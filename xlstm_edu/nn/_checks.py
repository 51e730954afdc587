"""Input checks for the torch cells: the same rules and messages as ``xlstm_edu._validate`` for numpy arrays,
but for tensors on any device (no copy to the CPU, no device synchronisation: values are not inspected)."""

from __future__ import annotations

import torch

from xlstm_edu._validate import check_choice, check_ndim, check_positive_int, check_shape  # noqa: F401 (re-export)

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def check_tensor(x, name: str, min_ndim: int, layout: str) -> torch.Tensor:
    """``x`` must be a floating-point ``torch.Tensor`` with at least ``min_ndim`` axes (``layout`` names them)."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name}: expected a torch.Tensor of shape {layout}, got {type(x).__name__}")
    if x.dtype not in FLOAT_DTYPES:
        raise ValueError(f"{name}: expected a floating-point tensor (float16/bfloat16/float32/float64), got {x.dtype}")
    check_ndim(x, name, min_ndim, layout)
    return x


def check_same(tensors: dict, what: str = "dtype and device") -> None:
    """All tensors must share dtype and device (mixing them is a common silent bug)."""
    items = list(tensors.items())
    name0, t0 = items[0]
    for name, t in items[1:]:
        if t.dtype != t0.dtype or t.device != t0.device:
            raise ValueError(
                f"{name}: expected the {what} of {name0} ({t0.dtype}, {t0.device}), got ({t.dtype}, {t.device})"
            )


def log_forget_gate(f_pre: torch.Tensor, forget_gate: str = "sigmoid") -> torch.Tensor:
    """log f_t from f̃_t (eq. 11): logσ(f̃) for the sigmoid gate (the official choice), f̃ for the exp gate."""
    if forget_gate == "sigmoid":
        return torch.nn.functional.logsigmoid(f_pre)
    if forget_gate == "exp":
        return f_pre
    raise ValueError(f"forget_gate: expected one of ['exp', 'sigmoid'], got {forget_gate!r}")
