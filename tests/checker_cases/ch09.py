"""Chapter 9 (from numpy to PyTorch): the good answer and realistic wrong ones for every exercise."""

import torch
import torch.nn.functional as F

import xlstm_edu.nn as xnn
import xlstm_edu.np as xnp
from checker_cases import Case


# ------------------------------------------------------------------------------------------------------- 9.1
def _step(q, k, v, i_pre, f_pre, C, n, m, eps=1e-6, *, bound="exp", rescale_f=True, scale="q", absval=True):
    log_f = F.logsigmoid(f_pre)
    m_new = torch.maximum(log_f + m, i_pre)
    i_s = torch.exp(i_pre - m_new)[:, None]
    f_s = (torch.exp(log_f + m - m_new) if rescale_f else torch.exp(log_f))[:, None]
    if scale == "k":
        k = k / k.shape[-1] ** 0.5
    C = f_s[..., None] * C + i_s[..., None] * (k[:, :, None] * v[:, None, :])
    n = f_s * n + i_s * k
    q_hat = q / q.shape[-1] ** 0.5 if scale == "q" else q
    qn = (q_hat * n).sum(-1)
    qn = qn.abs() if absval else qn
    lower = torch.exp(-m_new) if bound == "exp" else torch.ones_like(m_new)
    h = (q_hat[:, None, :] @ C)[:, 0, :] / (torch.maximum(qn, lower)[:, None] + eps)
    return h, (C, n, m_new)


def step_good(q, k, v, i_pre, f_pre, C, n, m, eps=1e-6):
    return _step(q, k, v, i_pre, f_pre, C, n, m, eps)


def step_bound_one(q, k, v, i_pre, f_pre, C, n, m, eps=1e-6):
    return _step(q, k, v, i_pre, f_pre, C, n, m, eps, bound="one")


def step_f_not_rescaled(q, k, v, i_pre, f_pre, C, n, m, eps=1e-6):
    return _step(q, k, v, i_pre, f_pre, C, n, m, eps, rescale_f=False)


def step_scaled_k(q, k, v, i_pre, f_pre, C, n, m, eps=1e-6):
    return _step(q, k, v, i_pre, f_pre, C, n, m, eps, scale="k")


def step_no_abs(q, k, v, i_pre, f_pre, C, n, m, eps=1e-6):
    return _step(q, k, v, i_pre, f_pre, C, n, m, eps, absval=False)


def step_calls_the_package(q, k, v, i_pre, f_pre, C, n, m, eps=1e-6):
    return xnn.mlstm_step(q, k, v, i_pre, f_pre, state=(C, n, m), eps=eps)


def step_unsolved(q, k, v, i_pre, f_pre, C, n, m, eps=1e-6):
    raise NotImplementedError("exercise 9.1: your code here")


# ------------------------------------------------------------------------------------------------------- 9.2
def grads_good(q, k, v, i_pre, f_pre, w):
    xs = [t.clone().requires_grad_(True) for t in (q, k, v, i_pre, f_pre)]
    L = (xnn.mlstm_parallel(*xs) * w).sum()
    return torch.autograd.grad(L, xs)


def grads_ignore_w(q, k, v, i_pre, f_pre, w):
    xs = [t.clone().requires_grad_(True) for t in (q, k, v, i_pre, f_pre)]
    L = xnn.mlstm_parallel(*xs).sum()
    return torch.autograd.grad(L, xs)


def grads_gates_swapped(q, k, v, i_pre, f_pre, w):
    xs = [t.clone().requires_grad_(True) for t in (q, k, v, f_pre, i_pre)]  # i and f passed the wrong way round
    L = (xnn.mlstm_parallel(xs[0], xs[1], xs[2], xs[4], xs[3]) * w).sum()
    dq, dk, dv, df, di = torch.autograd.grad(L, xs)
    return dq, dk, dv, df, di


def grads_from_the_numpy_backward(q, k, v, i_pre, f_pre, w):
    g = xnp.mlstm_parallel_backward(w.numpy(), *(t.numpy() for t in (q, k, v, i_pre, f_pre)))
    return tuple(torch.from_numpy(g[name]) for name in ("q", "k", "v", "i_pre", "f_pre"))


# ------------------------------------------------------------------------------------------------------- 9.3
def proj_good(x, W):
    N, D = x.shape
    return torch.einsum("nhd,hod->nho", x.reshape(N, D // 4, 4), W).reshape(N, D)


def proj_transposed_blocks(x, W):
    N, D = x.shape
    return torch.einsum("nhd,hdo->nho", x.reshape(N, D // 4, 4), W).reshape(N, D)  # x_j @ W[j] = W[j]ᵀ x_j


def proj_interleaved_blocks(x, W):
    N, D = x.shape
    xb = x.reshape(N, 4, D // 4).transpose(1, 2)  # block j = features j, j + D/4, ... : not contiguous blocks
    return torch.einsum("nhd,hod->nho", xb, W).transpose(1, 2).reshape(N, D)


def proj_first_block_everywhere(x, W):
    N, D = x.shape
    return (x.reshape(N, D // 4, 4) @ W[0].T).reshape(N, D)


# ------------------------------------------------------------------------------------------------------- 9.4
def probs_good(model, prompt):
    state = model.init_state(batch_size=1)
    with torch.no_grad():
        for tok in prompt:
            logits, state = model.step(tok.view(1), state)
    return torch.softmax(logits[0], dim=-1)


def probs_full_forward(model, prompt):
    with torch.no_grad():
        return torch.softmax(model(prompt[None])[0, -1], dim=-1)


def probs_state_not_carried(model, prompt):
    with torch.no_grad():
        for tok in prompt:
            logits, _ = model.step(tok.view(1), model.init_state(batch_size=1))
    return torch.softmax(logits[0], dim=-1)


def probs_logits(model, prompt):
    state = model.init_state(batch_size=1)
    with torch.no_grad():
        for tok in prompt:
            logits, state = model.step(tok.view(1), state)
    return logits[0]  # no softmax


def probs_one_token_short(model, prompt):
    state = model.init_state(batch_size=1)
    with torch.no_grad():
        logits, state = model.step(prompt[:1], state)
        for tok in prompt[1:-1]:
            logits, state = model.step(tok.view(1), state)
    return torch.softmax(logits[0], dim=-1)


CASES = {
    "9.1": Case(good=(step_good,), wrong={
        "the bound 1 on stabilized states instead of exp(-m_t)": (step_bound_one,),
        "f' not rescaled by exp(m_{t-1} - m_t)": (step_f_not_rescaled,),
        "1/sqrt(DK) applied to k (the stored C differs from the official one)": (step_scaled_k,),
        "no absolute value in the denominator": (step_no_abs,),
        "calls xlstm_edu.nn.mlstm_step": (step_calls_the_package,),
        "not solved yet": (step_unsolved,),
    }),
    "9.2": Case(good=(grads_good,), wrong={
        "L = h.sum(): w ignored": (grads_ignore_w,),
        "input and forget gate swapped": (grads_gates_swapped,),
        "the numpy backward instead of autograd": (grads_from_the_numpy_backward,),
        "not solved yet": (None,),
    }),
    "9.3": Case(good=(proj_good,), wrong={
        "blocks transposed (x_j @ W[j])": (proj_transposed_blocks,),
        "interleaved blocks (reshape to (N, 4, D/4))": (proj_interleaved_blocks,),
        "the first block's matrix for every block": (proj_first_block_everywhere,),
    }),
    "9.4": Case(good=(probs_good,), wrong={
        "the full forward pass instead of model.step": (probs_full_forward,),
        "the state is not carried from token to token": (probs_state_not_carried,),
        "logits instead of probabilities": (probs_logits,),
        "the last prompt token never fed": (probs_one_token_short,),
    }),
}

