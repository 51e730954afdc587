"""Answers for chapter 15's checkers (xLSTM at scale): the good one and mistakes learners make."""

import numpy as np
import torch
import torch.nn.functional as F
from checker_cases import Case

from xlstm_edu.nn.large import XLSTM_7B, count_flops, count_params


def cap(x, a):
    return a * np.tanh(x / a)


def cap_grad(x, a):
    return 1 - np.tanh(x / a) ** 2


def swiglu(x, Wg, Wu, Wd):
    return (F.silu(x @ Wg.T) * (x @ Wu.T)) @ Wd.T


def block(E, NH, qk, v, Fd):
    return 2 * E + 2 * E * qk + 2 * E * v + 2 * (E * NH + NH) + v + v * E + 3 * E * Fd


_c, _f = count_params(XLSTM_7B), count_flops(XLSTM_7B, 8192)

CASES = {
    "15.1": Case(
        good=(cap, cap_grad),
        wrong={
            "tanh without the inner scaling": (lambda x, a: a * np.tanh(x), cap_grad),
            "a hard clip instead of a soft cap": (lambda x, a: np.clip(x, -a, a), lambda x, a: (np.abs(x) < a) * 1.0),
            "gradient missing the chain rule's 1/a": (cap, lambda x, a: a * (1 - np.tanh(x / a) ** 2)),
            "gradient of tanh(x) instead of tanh(x/a)": (cap, lambda x, a: 1 - np.tanh(x) ** 2),
            "not solved yet": (None, None),
        }),
    "15.2": Case(
        good=(swiglu,),
        wrong={
            "gate and up branches swapped": (lambda x, Wg, Wu, Wd: (F.silu(x @ Wu.T) * (x @ Wg.T)) @ Wd.T,),
            "GeLU instead of SiLU": (lambda x, Wg, Wu, Wd: (F.gelu(x @ Wg.T) * (x @ Wu.T)) @ Wd.T,),
            "sigmoid gate (GLU) instead of SiLU": (lambda x, Wg, Wu, Wd: (torch.sigmoid(x @ Wg.T) * (x @ Wu.T)) @ Wd.T,),
            "weights not transposed": (lambda x, Wg, Wu, Wd: (F.silu(x @ Wg) * (x @ Wu)) @ Wd,),
        }),
    "15.3": Case(
        good=(block,),
        wrong={
            "gate biases forgotten": (lambda E, NH, qk, v, Fd: block(E, NH, qk, v, Fd) - 2 * NH,),
            "norm weights forgotten": (lambda E, NH, qk, v, Fd: block(E, NH, qk, v, Fd) - 2 * E - v,),
            "q and k at full width": (lambda E, NH, qk, v, Fd: block(E, NH, E, v, Fd),),
            "a two-matrix MLP": (lambda E, NH, qk, v, Fd: block(E, NH, qk, v, Fd) - E * Fd,),
        }),
    "15.4": Case(
        good=(6 * (_c["total"] - _c["embedding"]) + 3 * _f["cell"],),
        wrong={
            "6N with the embedding counted": (6 * _c["total"],),
            "6N without the mLSTM cell": (6 * (_c["total"] - _c["embedding"]),),
            "forward only (2N + cell)": (2 * (_c["total"] - _c["embedding"]) + _f["cell"],),
            "not solved yet": (None,),
        }),
}
