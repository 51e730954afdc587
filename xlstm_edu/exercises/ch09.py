"""Checkers of chapter 9 (from numpy to PyTorch).

* 9.1 ``check_mlstm_step(fn)`` — one stabilized mLSTM step with torch operations, official conventions;
* 9.2 ``check_autograd_gradients(fn)`` — the five gradients of the parallel mLSTM, by autograd;
* 9.3 ``check_blockdiag_projection(fn)`` — the block-diagonal q/k/v projection of the mLSTM block;
* 9.4 ``check_next_token_probs(fn)`` — next-token probabilities of a model, with ``model.step`` only.

Every checker calls the learner's function itself on its own inputs and compares with the package
(``xlstm_edu.nn``, the numpy backward of ``xlstm_edu.np``, ``HeadwiseLinear``, the model's full forward pass).
"""

from __future__ import annotations

import inspect
import re
import textwrap

from xlstm_edu.exercises.core import (Verdict, _emit, combine, compare, exercise, is_unsolved, raised_verdict,
                                      run_learner, unsolved_verdict)
from xlstm_edu.exercises.forbid import forbid_package_calls

__all__ = ["check_mlstm_step", "check_autograd_gradients", "check_blockdiag_projection", "check_next_token_probs"]


def _wrong(title, v: Verdict, hint: str) -> Verdict:
    return Verdict(title, "wrong", v.max_abs_diff, v.max_rel_err, f"{v.message} -- hint: {hint}")


def _source(fn) -> str | None:
    try:
        return textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError):
        return None


# ------------------------------------------------------------------------------------------------------- 9.1
HINT_91 = "write the step of eq. 15-17 and 19-21 with torch operations (see the hints above the exercise)"


def _step_variants(q, k, v, i_pre, f_pre, C, n, m, eps):
    """The step with one known mistake each: {what the mistake is: (h, C, n)}."""
    import torch
    import torch.nn.functional as F

    def step(*, rescale_f=True, scale_k=False, bound_one=False, absval=True, scale_q=True):
        log_f = F.logsigmoid(f_pre)
        m_new = torch.maximum(log_f + m, i_pre)
        i_s = torch.exp(i_pre - m_new)[..., None]
        f_s = torch.exp(log_f + m - m_new if rescale_f else log_f)[..., None]
        kk = k / k.shape[-1] ** 0.5 if scale_k else k
        C1 = f_s[..., None] * C + i_s[..., None] * (kk[..., :, None] * v[..., None, :])
        n1 = f_s * n + i_s * kk
        qq = q / q.shape[-1] ** 0.5 if scale_q and not scale_k else q
        qn = (qq * n1).sum(-1)
        den = torch.maximum(qn.abs() if absval else qn, torch.ones_like(m_new) if bound_one else torch.exp(-m_new))
        return (qq[..., None, :] @ C1)[..., 0, :] / (den[..., None] + eps), C1, n1

    return {
        "the bound 1 where the stabilized form needs exp(-m_t) (C and n carry the factor exp(-m_t))":
            step(bound_one=True),
        "no absolute value around q̂ᵀn_t in the denominator": step(absval=False),
        "q not scaled by 1/√DK": step(scale_q=False),
        "f' = f: the forget gate not rescaled by exp(m_{t-1} - m_t)": step(rescale_f=False),
        "1/√DK applied to k (the official state stores unscaled k and scales q)": step(scale_k=True),
    }


def _guess_91(out, variants) -> str:
    """Name the known mistake whose outputs match the learner's (a guess, never the answer)."""
    import torch

    h, C, n = (torch.as_tensor(t).detach().double() for t in out)
    for what, (hv, Cv, nv) in variants.items():
        if all(a.shape == b.shape and torch.allclose(a, b.double(), rtol=1e-6, atol=1e-9)
               for a, b in ((h, hv), (C, Cv), (n, nv))):
            return f"your step matches a known mistake: {what}"
    if not bool(torch.isfinite(h).all()):
        return "h_t is not finite: does an exp see a positive exponent (exp before the max)?"
    return ("no known mistake matches; compare your m_t, C_t, n_t and h_t with eq. 15-17 and 19-21 one at a time "
            "(the hints above the exercise)")


def _step_cases():
    import torch

    g = torch.Generator().manual_seed(91)
    B, DK, DV = 5, 4, 6
    f64 = torch.float64

    def gates(scale=2.0, shift=0.0):
        return shift + scale * torch.randn(B, generator=g, dtype=f64), scale * torch.randn(B, generator=g, dtype=f64)

    def qkv():
        return (torch.randn(B, DK, generator=g, dtype=f64), torch.randn(B, DK, generator=g, dtype=f64),
                torch.randn(B, DV, generator=g, dtype=f64))

    def state(m):
        return (0.3 * torch.randn(B, DK, DV, generator=g, dtype=f64), 0.3 * torch.randn(B, DK, generator=g, dtype=f64),
                torch.full((B,), float(m), dtype=f64))

    zero = (torch.zeros(B, DK, DV, dtype=f64), torch.zeros(B, DK, dtype=f64), torch.zeros(B, dtype=f64))
    cases = [
        ("a step from the zero state (m = 0)", qkv() + gates(), zero, 1e-6),
        ("a step from a random state, eps = 0", qkv() + gates(), state(0.5), 0.0),
        ("a state whose stabilizer dominates (m = 20)", qkv() + gates(1.0, -3.0), state(20.0), 1e-6),
        ("closed gates, m = -30: the bound exp(-m_t) decides the denominator", qkv() + (
            torch.full((B,), -30.0, dtype=f64), torch.full((B,), -3.0, dtype=f64)), state(-30.0), 1e-6),
    ]
    q, k, v = (t.float() for t in qkv())
    i32 = (100 * torch.sign(torch.randn(B, generator=g))).float()
    f32 = (100 * torch.sign(torch.randn(B, generator=g))).float()
    cases.append(("float32 with gate pre-activations of ±100 (no overflow)", (q, k, v, i32, f32),
                  tuple(s.float() for s in state(1.0)), 1e-6))
    return cases


@exercise("9.1")
def check_mlstm_step(fn, *, quiet: bool = False) -> Verdict:
    """``fn(q, k, v, i_pre, f_pre, C, n, m, eps=1e-6)`` -> ``(h, (C, n, m))`` against ``xlstm_edu.nn.mlstm_step``
    on five cases (zero state, random state with eps = 0, m = 20, m = -30, float32 with gates of ±100); the
    package's torch and numpy cells refuse to work while ``fn`` runs."""
    import xlstm_edu.nn as xnn

    title = "exercise 9.1 (one mLSTM step in PyTorch)"
    if is_unsolved(fn):
        return _emit(unsolved_verdict(title, HINT_91, f"got {fn!r}"), quiet)
    for what, (q, k, v, i, f), st, eps in _step_cases():
        h_ref, st_ref = xnn.mlstm_step(q, k, v, i, f, state=st, eps=eps)
        with forbid_package_calls():
            out, bad = run_learner(title, lambda: fn(q, k, v, i, f, *st, eps=eps), HINT_91)
        if bad is not None:
            return _emit(bad, quiet)
        try:
            h, (C, n, m) = out
        except (TypeError, ValueError):
            return _emit(raised_verdict(title, f"expected (h, (C, n, m)), got {type(out).__name__}", HINT_91), quiet)
        tol = dict(rtol=1e-4, atol=1e-6) if q.dtype.itemsize == 4 else dict(rtol=1e-10, atol=1e-12)
        parts = [compare(name, got, ref, **tol)
                 for name, got, ref in (("h_t", h, h_ref), ("C_t", C, st_ref[0]), ("n_t", n, st_ref[1]),
                                        ("m_t", m, st_ref[2]))]
        v_case = combine(f"{title}, {what}", parts, quiet=True)
        if not v_case.ok:
            return _emit(_wrong(title, v_case, _guess_91((h, C, n), _step_variants(q, k, v, i, f, *st, eps))), quiet)
    return _emit(Verdict(title, "close", 0.0, 0.0, f"✅ {title}: equals xlstm_edu.nn.mlstm_step in all 5 cases "
                                                  "(zero state, eps = 0, m = 20, m = -30, float32 at ±100)"), quiet)


# ------------------------------------------------------------------------------------------------------- 9.2
HINT_92 = "let autograd differentiate L = Σ h ⊙ w (see the hints above the exercise)"


def _guess_92(wrong: set) -> str:
    if wrong == {"i_pre", "f_pre"}:
        return "only the gate gradients are off: are ĩ and f̃ passed (and returned) in the order (i_pre, f_pre)?"
    if len(wrong) == 5:
        return "every gradient is off: does the loss weight h with w (L = Σ h ⊙ w, so that ∂L/∂h = w)?"
    return "compare the order of your five gradients with (q, k, v, i_pre, f_pre)"


def _uses_autograd(fn) -> str | None:
    """None if fn's source differentiates with autograd (or the source is not available); else the objection."""
    src = _source(fn)
    if src is None:
        return None
    if re.search(r"_backward\s*\(", src):
        return "this exercise asks for autograd: do not call a hand-written *_backward function"
    if not re.search(r"autograd\s*\.\s*grad\s*\(|\.backward\s*\(", src):
        return "this exercise asks for autograd: call torch.autograd.grad (or .backward())"
    return None


@exercise("9.2")
def check_autograd_gradients(fn, *, quiet: bool = False) -> Verdict:
    """``fn(q, k, v, i_pre, f_pre, w)`` -> (dq, dk, dv, di, df), the gradients of L = Σ h ⊙ w for the parallel
    mLSTM (``xlstm_edu.nn.mlstm_parallel``), computed with autograd; compared with the hand-written numpy
    backward ``xlstm_edu.np.mlstm_parallel_backward`` on two inputs."""
    import torch

    import xlstm_edu.np as xnp

    title = "exercise 9.2 (gradients by autograd)"
    if is_unsolved(fn):
        return _emit(unsolved_verdict(title, HINT_92, f"got {fn!r}"), quiet)
    g = torch.Generator().manual_seed(92)
    names = ("q", "k", "v", "i_pre", "f_pre")
    for lead, S in (((3,), 10), ((2, 2), 7)):
        q, k, v = (torch.randn(*lead, S, 4, generator=g, dtype=torch.float64) for _ in range(3))
        i = 3 * torch.randn(*lead, S, generator=g, dtype=torch.float64)
        f = 2 * torch.randn(*lead, S, generator=g, dtype=torch.float64) + 1
        w = torch.randn(*lead, S, 4, generator=g, dtype=torch.float64)
        ref = xnp.mlstm_parallel_backward(w.numpy(), *(t.numpy() for t in (q, k, v, i, f)))
        out, bad = run_learner(title, lambda: fn(q.clone(), k.clone(), v.clone(), i.clone(), f.clone(), w), HINT_92)
        if bad is not None:
            return _emit(bad, quiet)
        if not isinstance(out, (tuple, list)) or len(out) != 5:
            return _emit(raised_verdict(title, "expected a tuple of five gradients (dq, dk, dv, di, df)", HINT_92),
                         quiet)
        if not all(isinstance(t, torch.Tensor) for t in out):
            return _emit(raised_verdict(title, "expected torch tensors (autograd's gradients)", HINT_92), quiet)
        parts = [compare(n, t, ref[n], rtol=1e-9, atol=1e-11) for n, t in zip(names, out)]
        v_all = combine(f"{title}, dL/d", parts, quiet=True)
        if not v_all.ok:
            return _emit(_wrong(title, v_all, _guess_92({p.name for p in parts if not p.ok})), quiet)
    objection = _uses_autograd(fn)
    if objection:
        return _emit(raised_verdict(title, objection, HINT_92), quiet)
    return _emit(Verdict(title, "close", 0.0, 0.0, f"✅ {title}: all five gradients equal the hand-written numpy "
                                                  "backward (float64, two input shapes)"), quiet)


# ------------------------------------------------------------------------------------------------------- 9.3
HINT_93 = ("block j is the 4 consecutive features 4j .. 4j+3, and y_j = W[j] @ x_j (a matrix times a column): "
           "check which features form a block, which block's matrix each block uses, and which index of W[j] "
           "is summed over")


@exercise("9.3")
def check_blockdiag_projection(fn, *, quiet: bool = False) -> Verdict:
    """``fn(x, W)`` with x (N, D), W (D/4, 4, 4) -> y (N, D), y_j = W[j] @ x_j per block of 4 features; compared
    with the mLSTM block's ``HeadwiseLinear`` on two sizes."""
    import torch

    from xlstm_edu.nn.blocks import HeadwiseLinear

    title = "exercise 9.3 (block-diagonal projection)"
    if is_unsolved(fn):
        return _emit(unsolved_verdict(title, HINT_93, f"got {fn!r}"), quiet)
    g = torch.Generator().manual_seed(93)
    for N, D in ((7, 32), (1, 8)):
        proj = HeadwiseLinear(D, num_blocks=D // 4).double()
        with torch.no_grad():
            proj.weight.normal_(generator=g)
        x = torch.randn(N, D, generator=g, dtype=torch.float64)
        W = proj.weight[0].detach().clone()
        with torch.no_grad():
            ref = proj(x)[:, 0, :]
        out, bad = run_learner(title, lambda: fn(x.clone(), W), HINT_93)
        if bad is not None:
            return _emit(bad, quiet)
        v = compare(f"{title}, N = {N}, D = {D}", out, ref, rtol=1e-12, atol=1e-12)
        if not v.ok:
            return _emit(_wrong(title, v, HINT_93), quiet)
    return _emit(Verdict(title, "close", 0.0, 0.0, f"✅ {title}: equals the block's HeadwiseLinear (D = 32 and 8)"),
                 quiet)


# ------------------------------------------------------------------------------------------------------- 9.4
HINT_94 = "feed the prompt to model.step one token at a time (see the hints above the exercise)"


def _guess_94(out) -> str:
    import torch

    try:
        total = float(torch.as_tensor(out).sum())
    except Exception:  # noqa: BLE001
        total = float("nan")
    if not abs(total - 1.0) < 1e-6:
        return f"your values sum to {total:.3g}, not 1: probabilities are the softmax of the logits"
    return ("the probabilities differ from the full forward pass: is the state returned by each step passed to the "
            "next one, and is every token of the prompt fed, the last one included?")


class _UseStep(RuntimeError):
    pass


@exercise("9.4")
def check_next_token_probs(fn, *, quiet: bool = False) -> Verdict:
    """``fn(model, prompt)`` -> the probabilities of the token after ``prompt`` (1-D LongTensor), with
    ``model.step`` only (the full forward pass refuses while ``fn`` runs). A tiny xLSTM[1:1] in float64 of the
    checker's own; compared with softmax(model(prompt)[-1])."""
    import torch

    from xlstm_edu.nn import XLSTMConfig, XLSTMLM

    title = "exercise 9.4 (next-token probabilities with model.step)"
    if is_unsolved(fn):
        return _emit(unsolved_verdict(title, HINT_94, f"got {fn!r}"), quiet)
    torch.manual_seed(94)
    model = XLSTMLM(XLSTMConfig(vocab_size=11, context_length=32, embedding_dim=32, num_blocks=2, num_heads=2,
                                slstm_at=(1,))).double().eval()
    for length in (9, 1):
        prompt = torch.randint(0, 11, (length,))
        with torch.no_grad():
            want = torch.softmax(model(prompt[None])[0, -1], dim=-1)

        def refuse(*args, **kwargs):
            raise _UseStep("model(...) is off limits in this exercise: feed the tokens with model.step")

        model.forward = refuse  # the instance attribute wins over the class's forward: model(x) refuses
        try:
            out, bad = run_learner(title, lambda: fn(model, prompt.clone()), HINT_94)
        finally:
            del model.forward
        if bad is not None:
            return _emit(bad, quiet)
        v = compare(f"{title}, a prompt of {length} token{'s' if length > 1 else ''}", out, want, rtol=1e-9,
                    atol=1e-12)
        if not v.ok:
            return _emit(_wrong(title, v, _guess_94(out)), quiet)
    return _emit(Verdict(title, "close", 0.0, 0.0, f"✅ {title}: equals the full forward pass (prompts of 9 and 1 "
                                                  "tokens)"), quiet)

