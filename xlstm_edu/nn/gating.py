"""Gates and the stabilizer's bound in torch: the twin of ``xlstm_edu.np.gating`` (same names, same equations).

* forget gate in log space: log f_t = logσ(f̃_t) (sigmoid, the official choice) or f̃_t (exponential)  (eq. 13 / 26)
* the mLSTM's bound exp(-m_t) on the denominator in stabilized space (eq. 21), with its exponent clamped
  before it overflows (see ``normalizer_bound``)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from xlstm_edu._validate import check_forget_gate
from xlstm_edu.np.gating import max_exponent

__all__ = ["log_forget_gate", "normalizer_bound"]

_MAX_EXPONENT = {torch.float32: max_exponent("float32"), torch.float64: max_exponent("float64")}
# the smallest x (rounded up to an integer) whose exp(x) is a normal float: exp of anything below is subnormal or 0,
# and on x86 CPUs ``torch.exp`` takes a slow path for those, 15 to 45 times slower than for normal results
_MIN_EXPONENT = {torch.float32: -87.0, torch.float64: -708.0}


def log_forget_gate(f_pre: torch.Tensor, forget_gate: str = "sigmoid") -> torch.Tensor:
    """log f_t from f̃_t (eq. 13 for the sLSTM, eq. 26 for the mLSTM): logσ(f̃) for the sigmoid gate (the official
    choice), f̃ for the exponential gate."""
    check_forget_gate(forget_gate)
    return F.logsigmoid(f_pre) if forget_gate == "sigmoid" else f_pre


def normalizer_bound(m: torch.Tensor) -> torch.Tensor:
    """exp(-m_t) with the exponent clamped at log(largest float) - 1 (87.72 in float32, 708.78 in float64; the
    cells compute in one of the two). Unclamped, m_t < -88.7 in float32 (closed gates for a while) makes the bound
    inf, h_t = 0, and the backward pass computes 0·inf = NaN; clamped, nothing changes where the bound is finite,
    and where it is not, h_t is a number at the bottom of the float range instead of 0, with finite gradients
    (``xlstm_edu.np.gating.normalizer_bound`` explains the sizes)."""
    return torch.exp(torch.clamp(-m, max=_MAX_EXPONENT[m.dtype]))
