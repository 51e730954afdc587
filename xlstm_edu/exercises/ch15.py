"""Checkers of chapter 15, "xLSTM at scale": the soft cap and its gradient, the SwiGLU feed-forward, the parameter
count of one xLSTM 7B block, the training FLOPs per token of the 7B model.

Every checker compares with the package (``xlstm_edu.nn.large``), on inputs the notebook does not show.
"""

from __future__ import annotations

import numpy as np
import torch

from xlstm_edu.exercises.core import Verdict, check, combine, exercise, is_unsolved


def _lazy(fn, *args):
    """The learner's ``fn(*args)`` as a zero-argument callable for ``check`` (placeholders stay placeholders)."""
    if is_unsolved(fn):
        return fn
    if not callable(fn):
        return lambda: (_ for _ in ()).throw(TypeError(f"expected a function, got {type(fn).__name__}"))
    return lambda: fn(*args)


# ------------------------------------------------------------------------------------------------ 15.1
@exercise("15.1")
def check_soft_cap(soft_cap_fn, soft_cap_grad_fn, *, quiet: bool = False) -> Verdict:
    """``soft_cap_fn(x, a)`` = a·tanh(x/a) and ``soft_cap_grad_fn(x, a)`` = its derivative, on numpy float64 arrays
    from −300 to 300 and three caps."""
    from xlstm_edu.nn.large import soft_cap

    x = np.linspace(-300.0, 300.0, 1201)
    verdicts = []
    for a in (15.0, 30.0, 2.5):
        xt = torch.tensor(x, requires_grad=True)
        ref = soft_cap(xt, a)
        (grad,) = torch.autograd.grad(ref.sum(), xt)  # the package's function, differentiated by autograd
        verdicts.append(check(f"soft cap (a = {a:g})", _lazy(soft_cap_fn, x.copy(), a), ref.detach().numpy(),
                              rtol=1e-9, atol=1e-9, quiet=True,
                              hint="a·tanh(x/a): divide inside the tanh, multiply outside (the result stays in (−a, a))"))
        verdicts.append(check(f"its gradient (a = {a:g})", _lazy(soft_cap_grad_fn, x.copy(), a), grad.numpy(),
                              rtol=1e-9, atol=1e-9, quiet=True,
                              hint="chain rule: d/dx tanh(u) = 1 − tanh²(u), and du/dx = 1/a cancels the factor a"))
    return combine("exercise 15.1: soft cap and its gradient", verdicts, quiet=quiet)


# ------------------------------------------------------------------------------------------------ 15.2
@exercise("15.2")
def check_swiglu(swiglu_fn, *, quiet: bool = False) -> Verdict:
    """``swiglu_fn(x, W_gate, W_up, W_down)`` (torch; weights in ``nn.Linear`` layout (out, in)) against the
    package's ``SwiGLU`` module holding the same weights, for two shapes."""
    from xlstm_edu.nn.large import SwiGLU

    verdicts = []
    g = torch.Generator().manual_seed(15)
    for shape, E, hidden in (((2, 5), 8, 24), ((3,), 16, 48)):
        ffn = SwiGLU(E, hidden, num_blocks=2).double()
        with torch.no_grad():
            for lin in (ffn.proj_up_gate, ffn.proj_up, ffn.proj_down):
                lin.weight.copy_(torch.randn(lin.weight.shape, generator=g, dtype=torch.float64))
        x = torch.randn(*shape, E, generator=g, dtype=torch.float64)
        with torch.no_grad():
            ref = ffn(x)
        w = [lin.weight.detach().clone() for lin in (ffn.proj_up_gate, ffn.proj_up, ffn.proj_down)]
        verdicts.append(check(f"SwiGLU on x of shape {tuple(x.shape)}", _lazy(swiglu_fn, x.clone(), *w), ref,
                              rtol=1e-9, atol=1e-9, quiet=True,
                              hint="W_down(silu(W_gate x) ⊙ W_up x); nn.Linear weights are (out, in), so x @ W.T; "
                                   "silu(u) = u·σ(u) goes on the gate branch only"))
    return combine("exercise 15.2: the SwiGLU feed-forward", verdicts, quiet=quiet)


# ------------------------------------------------------------------------------------------------ 15.3
@exercise("15.3")
def check_block_params(block_params_fn, *, quiet: bool = False) -> Verdict:
    """``block_params_fn(E, NH, qk_dim, v_dim, ffn_dim)`` = the parameters of one block, for three configurations
    (the 7B one among them), against the package's count (``count_params``, itself tested against the model)."""
    from xlstm_edu.nn.large import XLSTM_7B, XLSTMLargeConfig, count_params

    cfgs = [XLSTM_7B, XLSTMLargeConfig(embedding_dim=96, num_heads=3, v_dim_factor=2.0, ffn_proj_factor=2.0),
            XLSTMLargeConfig(embedding_dim=128, num_heads=4)]
    verdicts = []
    for c in cfgs:
        got = _lazy(block_params_fn, c.embedding_dim, c.num_heads, c.qk_dim, c.v_dim, c.ffn_dim)
        verdicts.append(check(f"block of E={c.embedding_dim}, NH={c.num_heads}, qk={c.qk_dim}, v={c.v_dim}, "
                              f"F={c.ffn_dim}", got, count_params(c)["block"], rtol=0, atol=0, quiet=True,
                              hint="count every weight: the two norms, the six projections of the mLSTM layer (which "
                                   "of them have a bias?), the head norm, the output projection, and how many "
                                   "matrices a SwiGLU has"))
    return combine("exercise 15.3: parameters of one block", verdicts, quiet=quiet)


# ------------------------------------------------------------------------------------------------ 15.4
@exercise("15.4")
def check_train_flops_7b(train_flops, *, quiet: bool = False) -> Verdict:
    """The training FLOPs per token of xLSTM 7B at context 8192, chunk 64, within 0.3% of ``count_flops``."""
    from xlstm_edu.nn.large import XLSTM_7B, count_flops

    ref = float(count_flops(XLSTM_7B, 8192)["train"])
    return check("exercise 15.4: training FLOPs per token of xLSTM 7B", train_flops, ref, rtol=3e-3, atol=0,
                 quiet=quiet,
                 hint="forward: 2 FLOPs per weight of every projection (not the embedding: it is a lookup), plus the "
                      "cell per head and block; then training = 3 × forward")
