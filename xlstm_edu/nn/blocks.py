"""The two xLSTM blocks (paper Fig. 10 and 11; the official `xlstm` 2.0.6 blocks) and the pieces they are made of.

* ``MLSTMBlock`` (pre-up-projection, Fig. 11): LayerNorm → up-projection to 2 × (2·E), split into x_m and z →
  x_c = swish(causal conv4(x_m)) → q, k from x_c and v from x_m by block-diagonal projections (blocks of 4) →
  input/forget gate pre-activations (one scalar per head) from [q; k; v] → mLSTM (chunkwise) → head-wise
  GroupNorm → + learnable skip ⊙ x_c → ⊙ swish(z) (the output gate) → down-projection → residual.
* ``SLSTMBlock`` (post-up-projection, Fig. 10): LayerNorm → causal conv4 + swish feeding only the i and f gates →
  head-wise (block-diagonal) gate projections → sLSTM → head-wise GroupNorm → residual; then LayerNorm → gated
  MLP (GeLU, up-projection 1.3 rounded up to a multiple of 64) → residual.

Parameter shapes and initialisation follow the official ``xlstm`` package (2.0.6), so a model built here has
exactly the parameter count of the official ``xLSTMLMModel`` at the same configuration.

Both blocks share one calling convention::

    y = block(x)                                            # (B, S, E) -> (B, S, E), any S
    y, state = block(x, state, return_state=True)           # continue from a state, return the new one
    y, state, gates = block(x, state, return_state=True, return_gates=True)
    y_t, state = block.step(x_t, state)                     # one token, O(1) work: conv buffer + cell state
    y_t, state, gates = block.step(x_t, state, return_gates=True)

``state`` starts as ``block.init_state(batch_size)`` (zeros). Continuing from a state is exact: the outputs of
two calls over x[:t] and x[t:] are those of one call over x (to round-off). ``gates`` is how a block reports
what its gates did (the documented way to look inside; the class docstrings list the keys): a dict of detached
tensors, one value per token (and per head or unit), taken from the computation itself.
"""

from __future__ import annotations

import contextlib
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from xlstm_edu.nn.gating import log_forget_gate
from xlstm_edu.nn.mlstm import block_chunkwise, block_step
from xlstm_edu.nn.slstm import block_recurrent, block_step as slstm_block_step, slstm_zero_state

__all__ = ["CausalConv1d", "HeadwiseLinear", "MultiHeadNorm", "GateProjection", "GatedFFN", "MLSTMBlock",
           "SLSTMBlock", "round_up", "small_init_", "wang_init_"]


def _full(*ts):
    """Cells run in at least float32 (under bf16/fp16 autocast, too): their exp/log/cumsum gate arithmetic and
    recurrent states need the precision, like the official kernels' float32 casts."""
    return [t.float() if t.dtype in (torch.float16, torch.bfloat16) else t for t in ts]


def _no_autocast(x):
    """Switch autocast off around the cells (when it is on: building the context costs more than a generation
    step's arithmetic in a small model)."""
    if torch.is_autocast_enabled(x.device.type):
        return torch.autocast(device_type=x.device.type, enabled=False)
    return contextlib.nullcontext()


def round_up(x: float, multiple: int = 64) -> int:
    """The official up-projection size: ``ceil(x / multiple) * multiple``."""
    return int(math.ceil(x / multiple) * multiple)


def small_init_(w: torch.Tensor, dim: int) -> torch.Tensor:
    """N(0, 2/(5·dim)) ("Transformers without Tears"), the official init of input projections."""
    return nn.init.normal_(w, 0.0, math.sqrt(2 / (5 * dim)))


def wang_init_(w: torch.Tensor, dim: int, num_blocks: int) -> torch.Tensor:
    """N(0, (2/num_blocks/√dim)²), the official init of output projections (scaled by depth)."""
    return nn.init.normal_(w, 0.0, 2 / num_blocks / math.sqrt(dim))


# ----------------------------------------------------------------------------------------------------------------
class CausalConv1d(nn.Module):
    """Depthwise causal convolution over time: y_t = Σ_{j<K} w_j ⊙ x_{t-K+1+j} + bias.

    x (B, S, D) → (B, S, D). Before t = 0 the inputs are zeros, or, when ``buf`` (B, K-1, D) is given, the last
    K-1 inputs of the previous call (oldest first): ``forward(x, buf)`` returns ``(y, new_buf)`` and continues a
    sequence exactly. ``step`` is the same for one token."""

    def __init__(self, dim: int, kernel_size: int = 4):
        super().__init__()
        self.dim, self.kernel_size = dim, kernel_size
        self.conv = nn.Conv1d(dim, dim, kernel_size, padding=kernel_size - 1, groups=dim, bias=True)

    def forward(self, x, buf=None):
        K, D = self.kernel_size, self.dim
        b = self.conv.bias.to(x.dtype)  # (autocast does not cover CPU convs)
        if buf is None:  # zeros before t = 0: K shifted multiply-adds (the training path)
            return _ShiftedConv.apply(x, self.conv.weight.to(x.dtype), b)
        # (B, S, D) seen as a 2-D image (B, D, 1, S) in channels-last memory: no transposed copies of x or y.
        # ``view``, not ``unsqueeze``: the weight's gradient then has the weight's own strides, which
        # DistributedDataParallel's gradient buckets require ("Grad strides do not match bucket view strides")
        w = self.conv.weight.to(x.dtype).view(D, 1, 1, K)
        _check_buf(buf, x.shape[0], K, D)
        xx = torch.cat([buf.to(x.dtype), x], dim=1)  # the previous K-1 inputs, then this call's
        y = F.conv2d(xx.transpose(1, 2).unsqueeze(2), w, b, groups=D)
        return y.squeeze(2).transpose(1, 2), xx[:, xx.shape[1] - (K - 1):]

    def init_state(self, batch_size: int, device=None, dtype=None):
        w = self.conv.weight
        return torch.zeros(batch_size, self.kernel_size - 1, self.dim, device=device or w.device,
                           dtype=dtype or w.dtype)

    def step(self, x_t, buf):
        """x_t (B, D), buf (B, K-1, D) the previous inputs → (y_t (B, D), new buf)."""
        window = torch.cat([buf.to(x_t.dtype), x_t[:, None, :]], dim=1)  # (B, K, D), oldest first
        w, b = self.conv.weight[:, 0, :].to(x_t.dtype), self.conv.bias.to(x_t.dtype)  # w (D, K)
        return (window * w.t()).sum(1) + b, window[:, 1:]


class _ShiftedConv(torch.autograd.Function):
    """The depthwise causal convolution from zeros, y_t = b + Σ_j w_j ⊙ x_{t-K+1+j}, on x (B, S, D) as it is laid
    out: one multiply-add per tap over x shifted in time (a row offset in memory). The backward pass is the same
    K shifted multiply-adds for x and one product-sum per tap for w, about half the time of the convolution
    kernels' forward and backward on a CPU (a depthwise convolution has too little arithmetic for them to pay).
    w (D, 1, K) is ``nn.Conv1d``'s weight; its gradient comes back in that shape and layout."""

    @staticmethod
    def forward(ctx, x, w, b):
        K = w.shape[-1]
        wt = w.reshape(w.shape[0], K).t()  # (K, D): the tap j weights, j = K-1 for x_t itself
        y = torch.addcmul(b, x, wt[K - 1])
        for lag in range(1, min(K, x.shape[1])):  # y_t += w_{K-1-lag} x_{t-lag}
            y[:, lag:].addcmul_(x[:, :-lag], wt[K - 1 - lag])
        ctx.save_for_backward(x, w)
        return y

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dy):
        x, w = ctx.saved_tensors
        K, S = w.shape[-1], x.shape[1]
        wt = w.reshape(w.shape[0], K).t()
        dx = dw = db = None
        if ctx.needs_input_grad[0]:
            dx = dy * wt[K - 1]
            for lag in range(1, min(K, S)):
                dx[:, :-lag].addcmul_(dy[:, lag:], wt[K - 1 - lag])
        if ctx.needs_input_grad[1]:
            dw = torch.zeros_like(w)  # (D, 1, K), contiguous like the weight
            for lag in range(min(K, S)):
                dw[:, 0, K - 1 - lag] = (dy[:, lag:] * x[:, :S - lag]).sum((0, 1))
        if ctx.needs_input_grad[2]:
            db = dy.sum((0, 1))
        return dx, dw, db


def _check_buf(buf, batch_size, K, D):
    if not isinstance(buf, torch.Tensor) or tuple(buf.shape) != (batch_size, K - 1, D):
        got = tuple(buf.shape) if isinstance(buf, torch.Tensor) else type(buf).__name__
        raise ValueError(f"state: expected a conv buffer of shape (B, K-1, D) = {(batch_size, K - 1, D)}, got {got}")


class HeadwiseLinear(nn.Module):
    """Block-diagonal linear map: the input is split into ``num_blocks`` blocks and each block is projected on
    its own (no bias). With ``num_outputs = G`` it computes G such maps at once (e.g. q and k) and returns
    (..., G, D). Weight (G, num_blocks, D/num_blocks, D/num_blocks), ``y[g, blk] = W[g, blk] @ x[blk]``."""

    def __init__(self, dim: int, num_blocks: int, num_outputs: int = 1):
        super().__init__()
        if dim % num_blocks:
            raise ValueError(f"HeadwiseLinear: dim {dim} is not a multiple of num_blocks {num_blocks}")
        self.dim, self.num_blocks, self.num_outputs = dim, num_blocks, num_outputs
        bs = dim // num_blocks
        self.weight = nn.Parameter(torch.empty(num_outputs, num_blocks, bs, bs))
        nn.init.normal_(self.weight, 0.0, math.sqrt(2 / (5 * bs)))  # the official default; blocks re-init it

    def outputs(self, x):
        """The G projections of x (..., D) as a list of G contiguous tensors (..., D).

        Computed as a grouped 1×1 convolution over the tokens seen in channels-last memory, which on a CPU is about
        twice as fast as ``torch.einsum("nhd,ghod->ngho", ...)`` (no permuted copies); the result is the same."""
        D, bs = x.shape[-1], x.shape[-1] // self.num_blocks
        if x.dim() != 3:  # (..., D): one step of generation and the like -- a batched matmul over the blocks
            y = x.reshape(-1, 1, self.num_blocks, 1, bs) @ self.weight.to(x.dtype).transpose(-1, -2)
            return [t.reshape(x.shape) for t in y.unbind(1)]  # (N, G, nb, 1, bs) -> G times (..., D)
        x4 = x.transpose(1, 2).unsqueeze(2)  # (B, S, D) as (B, D, 1, S) in channels-last memory
        return [F.conv2d(x4, w.to(x.dtype).reshape(D, bs, 1, 1), groups=self.num_blocks).squeeze(2).transpose(1, 2)
                for w in self.weight]

    def forward(self, x):
        """(..., D) → (..., G, D)."""
        return torch.stack(self.outputs(x), dim=-2)


class MultiHeadNorm(nn.Module):
    """Head-wise GroupNorm: normalise each head's DH features separately, then a learnable scale (no bias).

    x (..., NH, DH) → (..., NH·DH). Same as ``F.group_norm`` with NH groups and the official MultiHeadLayerNorm."""

    def __init__(self, num_heads: int, head_dim: int, eps: float = 1e-5):
        super().__init__()
        self.num_heads, self.head_dim, self.eps = num_heads, head_dim, eps
        self.weight = nn.Parameter(torch.ones(num_heads * head_dim))

    def forward(self, x):
        y = F.layer_norm(x, (self.head_dim,), eps=self.eps)
        return y.flatten(-2) * self.weight


class GateProjection(nn.Module):
    """The mLSTM input and forget gates, one scalar per head each, from [q; k; v]: ``gates(qkv)``
    maps (..., 3·inner) → (..., 2·NH) = [ĩ; f̃]. The weight is kept as three contiguous matrices (3, 2·NH, inner)
    for [q | k | v], so that the block can apply them without building the concatenation (slices of one
    (2·NH, 3·inner) matrix would make the backward pass about 3x slower on a CPU). Init: weights 0, input-gate
    bias N(0, 0.1), forget-gate bias linspace(3, 6) over heads (official)."""

    def __init__(self, inner: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.weight = nn.Parameter(torch.zeros(3, 2 * num_heads, inner))
        self.bias = nn.Parameter(torch.zeros(2 * num_heads))
        with torch.no_grad():
            nn.init.normal_(self.bias[:num_heads], 0.0, 0.1)
            self.bias[num_heads:] = torch.linspace(3.0, 6.0, num_heads)

    def forward(self, qkv):
        return F.linear(qkv, self.weight.permute(1, 0, 2).reshape(2 * self.num_heads, -1), self.bias)

    def apply_split(self, q, k, v):
        """The same as ``forward(cat([q, k, v]))`` without the concatenation: W_q q + W_k k + W_v v + b."""
        Wq, Wk, Wv = self.weight
        return F.linear(q, Wq, self.bias) + F.linear(k, Wk) + F.linear(v, Wv)

    def apply_folded(self, x_c, x_m, qk_proj, v_proj):
        """The same as ``apply_split(q, k, v)`` for q, k = qk_proj(x_c) and v = v_proj(x_m), from x_c and x_m.

        q, k and v are block-diagonal maps of x_c and x_m, so W_q q + W_k k = (W_q Q + W_k K) x_c and
        W_v v = (W_v V) x_m: the gates cost two thin products instead of three, and their backward pass adds its
        gradient to x_c and x_m instead of three (B, S, inner) gradients to q, k and v."""
        G, nb, bs, _ = qk_proj.weight.shape
        W = self.weight.view(3, 2 * self.num_heads, nb, bs)
        A_c = torch.einsum("gnbo,gboi->nbi", W[:2], qk_proj.weight.to(W.dtype)).flatten(1)  # W_q Q + W_k K
        A_m = torch.einsum("nbo,boi->nbi", W[2], v_proj.weight[0].to(W.dtype)).flatten(1)  # W_v V
        return F.linear(x_c, A_c.to(x_c.dtype), self.bias.to(x_c.dtype)) + F.linear(x_m, A_m.to(x_m.dtype))


class GatedFFN(nn.Module):
    """Gated MLP of the sLSTM block: down(GeLU(gate) ⊙ up), up-projection 1.3·E rounded up to 64 (no biases)."""

    def __init__(self, dim: int, proj_factor: float, num_blocks: int, dropout: float = 0.0):
        super().__init__()
        self.hidden = round_up(proj_factor * dim)
        self.proj_up = nn.Linear(dim, 2 * self.hidden, bias=False)
        self.proj_down = nn.Linear(self.hidden, dim, bias=False)
        self.dropout = nn.Dropout(dropout)
        small_init_(self.proj_up.weight, dim)
        wang_init_(self.proj_down.weight, dim, num_blocks)

    def forward(self, x):
        gate, up = self.proj_up(x).split(self.hidden, dim=-1)
        return self.dropout(self.proj_down(F.gelu(gate) * up))


# ----------------------------------------------------------------------------------------------------------------
# shared by both blocks: the calling convention and the gate records
def _returns(y, state, gates, return_state: bool, return_gates: bool):
    """``y``, ``(y, state)``, ``(y, gates)`` or ``(y, state, gates)``: what the caller asked for."""
    out = (y,) + ((state,) if return_state else ()) + ((gates,) if return_gates else ())
    return out[0] if len(out) == 1 else out


def _check_block_state(state, n: int, what: str):
    if not (isinstance(state, (tuple, list)) and len(state) == n):
        raise ValueError(f"state: expected the {what} block state, a tuple of {n} tensors (from init_state, "
                         f"prefill or step), got {type(state).__name__}"
                         + (f" of length {len(state)}" if isinstance(state, (tuple, list)) else ""))


def _expand(a, like):
    return a.reshape(a.shape + (1,) * (like.dim() - a.dim()))


def _stabilized_scan(log_f, i_pre, m, memories, empty_start: bool = False):
    """The stabilizer m_t (eq. 15) and the stabilized memories after every step, for the gate records of
    ``forward`` (the fused cells return only the last state).

    log_f, i_pre (B, S, X); m (B, X) the incoming stabilizer; ``memories`` a list of (M_0 (B, X, ...), w (B, S, X,
    ...)) updated as M_t = f'_t M_{t-1} + i'_t w_t (eq. 8, 9, 20 with eq. 16-17). ``empty_start``: the sLSTM rule
    that an entry whose normalizer (the last memory) is 0 is empty, m_0 = -inf. Returns m (B, S, X) and one
    (B, S, X, ...) per memory. A loop over time of a few element-wise ops, run only when gates are recorded."""
    if empty_start:
        m = torch.where(memories[-1][0] == 0, -math.inf, m)
    mems = [M for M, _ in memories]
    ms, outs = [], [[] for _ in memories]
    for t in range(log_f.shape[1]):
        m_new = torch.maximum(log_f[:, t] + m, i_pre[:, t])  # eq. 15
        f_s = torch.exp(log_f[:, t] + m - m_new)  # f' (eq. 17)
        i_s = torch.exp(i_pre[:, t] - m_new)  # i' (eq. 16)
        for j, (_, w) in enumerate(memories):
            mems[j] = _expand(f_s, mems[j]) * mems[j] + _expand(i_s, mems[j]) * w[:, t]
            outs[j].append(mems[j])
        ms.append(m_new)
        m = m_new
    return torch.stack(ms, 1), [torch.stack(o, 1) for o in outs]


# ----------------------------------------------------------------------------------------------------------------
class MLSTMBlock(nn.Module):
    """mLSTM block with pre-up-projection (Fig. 11). x (B, S, E) → (B, S, E) (residual included).

    State (``init_state``; returned by ``forward(..., return_state=True)`` and ``step``): a tuple
    ``(conv buffer (B, K-1, inner), C (B, NH, DH, DH), n (B, NH, DH), m (B, NH))``: the last K-1 inputs of the
    causal conv and the mLSTM cell's matrix memory, normalizer and stabilizer. Its size does not depend on how
    many tokens the block has read.

    Gate records (``return_gates=True``): a dict of detached tensors, (B, S, ...) from ``forward`` and (B, ...)
    from ``step``: ``"i_pre"`` ĩ, ``"f_pre"`` f̃, ``"log_f"`` log f (eq. 11) and ``"m"`` the stabilizer after the
    token (eq. 15), each (..., NH); ``"n"`` the stabilized normalizer vector (..., NH, DH) (the true one is
    n·e^m, eq. 20); ``"o"`` the output gate σ(z) of swish(z) = z·σ(z) (..., NH, DH); and the cell's inputs
    ``"q"``, ``"k"``, ``"v"`` (..., NH, DH). ``"kind"`` is ``"mLSTM"``."""

    def __init__(self, cfg, block_idx: int = 0):
        super().__init__()
        E = cfg.embedding_dim
        self.inner = inner = round_up(cfg.mlstm_proj_factor * E)
        self.num_heads = NH = cfg.num_heads
        self.head_dim = inner // NH
        self.chunk_size, self.forget_gate = cfg.chunk_size, cfg.forget_gate
        self.norm = nn.LayerNorm(E, bias=False)
        self.proj_up = nn.Linear(E, 2 * inner, bias=False)  # → [x_m, z]
        self.conv = CausalConv1d(inner, cfg.conv1d_kernel_size)
        nb = inner // cfg.qkv_proj_blocksize
        self.qk_proj = HeadwiseLinear(inner, nb, num_outputs=2)  # q, k from x_c (blocks of 4)
        self.v_proj = HeadwiseLinear(inner, nb, num_outputs=1)  # v from x_m
        self.gates = GateProjection(inner, NH)  # [ĩ; f̃], one scalar per head, from [q; k; v]
        self.outnorm = MultiHeadNorm(NH, self.head_dim)
        self.skip = nn.Parameter(torch.ones(inner))  # learnable skip s ⊙ x_c
        self.proj_down = nn.Linear(inner, E, bias=False)
        self.dropout = nn.Dropout(cfg.dropout)
        # initialisation (official xlstm 2.0.6, mLSTMLayer.reset_parameters)
        small_init_(self.proj_up.weight, E)
        small_init_(self.qk_proj.weight, E)
        small_init_(self.v_proj.weight, E)
        wang_init_(self.proj_down.weight, E, cfg.num_blocks)

    def _pre(self, x):
        xn = self.norm(x)
        W = self.proj_up.weight  # (2·inner, E): two products, so that x_m and z come out contiguous
        return F.linear(xn, W[: self.inner]), F.linear(xn, W[self.inner:])

    def _qkvif(self, x_m, x_c):
        if x_c.dim() == 3:  # a sequence: block-diagonal projections (blocks of 4) as grouped convolutions
            q, k = self.qk_proj.outputs(x_c)
            (v,) = self.v_proj.outputs(x_m)
            gates = self.gates.apply_folded(x_c, x_m, self.qk_proj, self.v_proj)
        else:  # one token
            q, k = self.qk_proj(x_c).unbind(-2)
            v = self.v_proj(x_m)[..., 0, :]
            gates = self.gates.apply_split(q, k, v)
        gi, gf = gates.split(self.num_heads, dim=-1)  # one scalar per head
        return q, k, v, gi, gf

    def _post(self, x, h, x_c, z):
        # h (..., NH, DH) -> head-wise norm, learnable skip, output gate swish(z), down-projection, residual
        y = torch.addcmul(self.outnorm(h), self.skip, x_c) * F.silu(z)  # (norm(h) + s ⊙ x_c) ⊙ swish(z)
        return x + self.dropout(self.proj_down(y))

    def _gates(self, q, k, v, gi, gf, z, m, n):
        split = lambda t: t.unflatten(-1, (self.num_heads, self.head_dim))  # noqa: E731
        rec = {"i_pre": gi, "f_pre": gf, "log_f": log_forget_gate(gf, self.forget_gate), "m": m, "n": n,
               "o": torch.sigmoid(split(z)), "q": split(q), "k": split(k), "v": split(v)}
        return {"kind": "mLSTM", **{key: t.detach() for key, t in rec.items()}}

    def forward(self, x, state=None, *, return_state: bool = False, return_gates: bool = False):
        """x (B, S, E) → (B, S, E), any S: the chunkwise mLSTM (the training path).

        With ``state`` (from ``init_state``, an earlier ``forward(..., return_state=True)`` or ``step``) the block
        continues that sequence: the conv sees the buffered inputs before t = 0 and the cell starts from (C, n, m).
        ``return_state`` / ``return_gates`` add the final state / the gate records to the result (in that order).
        """
        B, S, _ = x.shape
        NH, DH = self.num_heads, self.head_dim
        buf = cell = None
        if state is not None:
            _check_block_state(state, 4, "mLSTM")
            buf, *cell = state
        x_m, z = self._pre(x)
        if buf is None and return_state:  # start from zeros, so that the conv's last inputs come back
            buf = self.conv.init_state(B, x.device, x_m.dtype)
        x_c, buf = self.conv(x_m, buf) if buf is not None else (self.conv(x_m), None)
        x_c = F.silu(x_c)  # swish(conv4(x_m))
        q, k, v, gi, gf = self._qkvif(x_m, x_c)
        heads = lambda t: t.view(B, S, NH, DH).transpose(1, 2)  # noqa: E731  (B, NH, S, DH), a view
        with _no_autocast(x):
            # h comes back laid out like v: (B, S, NH, DH) in memory, so h.transpose(1, 2) below is contiguous
            h, (C, n, m) = block_chunkwise(heads(q), heads(k), heads(v), gi.transpose(1, 2), gf.transpose(1, 2),
                                           self.chunk_size, cell, self.forget_gate)
            gates = None
            if return_gates:  # m_t and n_t after every token (the chunkwise form keeps only the chunk borders')
                kf, gif, gff = _full(k.view(B, S, NH, DH), gi, gf)
                cell0 = None if cell is None else tuple(_full(*cell))
                m0 = cell0[2] if cell0 is not None else kf.new_zeros(B, NH)
                n0 = cell0[1] if cell0 is not None else kf.new_zeros(B, NH, DH)
                ms, (ns,) = _stabilized_scan(log_forget_gate(gff, self.forget_gate), gif, m0, [(n0, kf)])
                gates = self._gates(q, k, v, gi, gf, z, ms, ns)
        y = self._post(x, h.to(x_c.dtype).transpose(1, 2), x_c, z)
        return _returns(y, (buf, C, n, m) if return_state else None, gates, return_state, return_gates)

    def init_state(self, batch_size: int, device=None, dtype=None):
        """Zeros: (conv buffer (B, K-1, inner), C (B, NH, DH, DH), n (B, NH, DH), m (B, NH))."""
        w = self.proj_up.weight
        device, dtype = device or w.device, dtype or w.dtype
        cell = _full(torch.zeros(1, dtype=dtype))[0].dtype  # the cell state is kept in at least float32
        NH, DH = self.num_heads, self.head_dim
        return (self.conv.init_state(batch_size, device, dtype),
                torch.zeros(batch_size, NH, DH, DH, device=device, dtype=cell),
                torch.zeros(batch_size, NH, DH, device=device, dtype=cell),
                torch.zeros(batch_size, NH, device=device, dtype=cell))

    def step(self, x_t, state, *, return_gates: bool = False):
        """x_t (B, E) → ``(y_t (B, E), state)`` (plus the gate records with ``return_gates``). O(1) per token:
        the conv buffer and the mLSTM state (C, n, m), eq. 19-21."""
        B = x_t.shape[0]
        _check_block_state(state, 4, "mLSTM")
        buf, C, n, m = state
        x_m, z = self._pre(x_t)
        x_c, buf = self.conv.step(x_m, buf)
        x_c = F.silu(x_c)
        q, k, v, gi, gf = self._qkvif(x_m, x_c)
        heads = lambda t: t.view(B, self.num_heads, self.head_dim)  # noqa: E731
        with _no_autocast(x_t):
            h, (C, n, m) = block_step(heads(q), heads(k), heads(v), gi, gf, (C, n, m), self.forget_gate)
        y = self._post(x_t, h.to(x_c.dtype), x_c, z)
        return _returns(y, (buf, C, n, m), self._gates(q, k, v, gi, gf, z, m, n) if return_gates else None,
                        True, return_gates)


# ----------------------------------------------------------------------------------------------------------------
class SLSTMBlock(nn.Module):
    """sLSTM block with post-up-projection (Fig. 10). x (B, S, E) → (B, S, E) (both residuals included).

    State: a tuple ``(conv buffer (B, K-1, E) or None, h, c, n, m)``, the last four (B, E) each (the sLSTM
    cell's, eq. 8-17). Gate records (``return_gates=True``): a dict of detached tensors, (B, S, NH, DH) from
    ``forward`` and (B, NH, DH) from ``step``, one value per unit: the pre-activations ``"i_pre"``, ``"f_pre"``,
    ``"z_pre"``, ``"o_pre"`` (W x_t + R h_{t-1} + b, eq. 8-14), ``"log_f"`` (eq. 11), ``"o"`` = σ(õ), and the
    cell after the token: ``"m"`` (eq. 15), ``"c"``, ``"n"`` (stabilized; the true ones are c·e^m, n·e^m) and
    ``"h"``. ``"kind"`` is ``"sLSTM"``."""

    def __init__(self, cfg, block_idx: int = 0):
        super().__init__()
        E = cfg.embedding_dim
        self.num_heads = NH = cfg.slstm_num_heads or cfg.num_heads
        self.head_dim = DH = E // NH
        self.forget_gate = cfg.forget_gate
        self.norm = nn.LayerNorm(E, bias=False)
        self.conv = CausalConv1d(E, cfg.conv1d_kernel_size) if cfg.conv1d_kernel_size > 0 else None
        # head-wise gate projections, W x_t for (i, f) from the conv branch and (z, o) from the block input
        self.if_proj = HeadwiseLinear(E, NH, num_outputs=2)
        self.zo_proj = HeadwiseLinear(E, NH, num_outputs=2)
        self.R = nn.Parameter(torch.zeros(4, NH, DH, DH))  # block-diagonal recurrent weights, init 0
        self.b = nn.Parameter(torch.zeros(4, E))
        self.outnorm = MultiHeadNorm(NH, DH)
        self.dropout = nn.Dropout(cfg.dropout)
        self.ffn_norm = nn.LayerNorm(E, bias=False)
        self.ffn = GatedFFN(E, cfg.ffn_proj_factor, cfg.num_blocks, cfg.dropout)
        small_init_(self.if_proj.weight, E)
        small_init_(self.zo_proj.weight, E)
        with torch.no_grad():  # forget-gate bias: the official "powerlaw_blockdependent" init
            ratio = block_idx / (cfg.num_blocks - 1) if cfg.num_blocks > 1 else 0.0
            pos = torch.arange(DH) / max(DH - 1, 1)
            self.b[1] = (-(-5.0 + 12.0 * pos ** (0.3 + 1.3 * ratio))).repeat(NH)

    def _wx(self, x, x_c):
        # (..., 4, E) in gate order (i, f, z, o): i, f from the conv branch, z, o from the block input
        if x.dim() == 3:  # a sequence
            return torch.stack(self.if_proj.outputs(x_c) + self.zo_proj.outputs(x), dim=-2)
        return torch.cat([self.if_proj(x_c), self.zo_proj(x)], dim=-2)

    def _post(self, x, h):
        x = x + self.dropout(self.outnorm(h.unflatten(-1, (self.num_heads, self.head_dim))))
        return x + self.ffn(self.ffn_norm(x))

    def _pre_acts(self, wx, h_prev):
        """W x + b + R h_{t-1} (..., 4, H): the cell's pre-activations (eq. 8-14, R block-diagonal over heads)."""
        rec = torch.einsum("...jd,gjde->...gje", h_prev.unflatten(-1, (self.num_heads, self.head_dim)),
                           self.R.to(wx.dtype))
        return wx + self.b.to(wx.dtype) + rec.flatten(-2)

    def _gates(self, pre, m, c, n, h):
        split = lambda t: t.unflatten(-1, (self.num_heads, self.head_dim))  # noqa: E731
        i_pre, f_pre, z_pre, o_pre = pre.unbind(-2)
        rec = {"i_pre": i_pre, "f_pre": f_pre, "z_pre": z_pre, "o_pre": o_pre,
               "log_f": log_forget_gate(f_pre, self.forget_gate), "o": torch.sigmoid(o_pre),
               "m": m, "c": c, "n": n, "h": h}
        return {"kind": "sLSTM", **{key: split(t).detach() for key, t in rec.items()}}

    def forward(self, x, state=None, *, return_state: bool = False, return_gates: bool = False):
        """x (B, S, E) → (B, S, E), any S: the fused sLSTM over the sequence. ``state``, ``return_state`` and
        ``return_gates`` as in ``MLSTMBlock.forward``."""
        buf = cell = None
        if state is not None:
            _check_block_state(state, 5, "sLSTM")
            buf, *cell = state
            if (buf is None) != (self.conv is None):
                raise ValueError("state: the sLSTM block state's conv buffer does not match the block "
                                 f"(expected {'None' if self.conv is None else 'a (B, K-1, E) tensor'})")
        xn = self.norm(x)
        if self.conv is not None:
            if buf is None and return_state:  # start from zeros, so that the conv's last inputs come back
                buf = self.conv.init_state(x.shape[0], x.device, xn.dtype)
            x_c, buf = self.conv(xn, buf) if buf is not None else (self.conv(xn), None)
            x_c = F.silu(x_c)
        else:
            x_c = xn
        with _no_autocast(x):
            wx = self._wx(xn, x_c)
            h, (h_last, c, n, m) = block_recurrent(wx, self.R, self.b, cell, self.forget_gate)
            gates = None
            if return_gates:  # pre-activations and (m, c, n) after every token (the fused cell keeps the last)
                wx = _full(wx)[0]
                cell0 = None if cell is None else tuple(_full(*cell))
                B, S, _, H = wx.shape
                cell0 = cell0 or slstm_zero_state((B,), H, dtype=wx.dtype, device=wx.device)
                pre = self._pre_acts(wx, torch.cat([cell0[0][:, None], h[:, :-1]], dim=1))
                i_pre, f_pre, z_pre, _ = pre.unbind(-2)
                ms, (cs, ns) = _stabilized_scan(log_forget_gate(f_pre, self.forget_gate), i_pre, cell0[3],
                                                [(cell0[1], torch.tanh(z_pre)), (cell0[2], torch.ones_like(i_pre))],
                                                empty_start=True)
                gates = self._gates(pre, ms, cs, ns, h)
        y = self._post(x, h.to(xn.dtype))
        return _returns(y, (buf, h_last, c, n, m) if return_state else None, gates, return_state, return_gates)

    def init_state(self, batch_size: int, device=None, dtype=None):
        """Zeros: (conv buffer (B, K-1, E) or None, h, c, n, m (B, E) each)."""
        w = self.b
        device, dtype = device or w.device, dtype or w.dtype
        cell = _full(torch.zeros(1, dtype=dtype))[0].dtype  # the cell state is kept in at least float32
        buf = self.conv.init_state(batch_size, device, dtype) if self.conv is not None else None
        return (buf, *slstm_zero_state((batch_size,), self.b.shape[1], dtype=cell, device=device))

    def step(self, x_t, state, *, return_gates: bool = False):
        """x_t (B, E) → ``(y_t (B, E), state)`` (plus the gate records with ``return_gates``). O(1) per token:
        the conv buffer and the sLSTM state (h, c, n, m)."""
        _check_block_state(state, 5, "sLSTM")
        buf, *cell = state
        xn = self.norm(x_t)
        if self.conv is not None:
            x_c, buf = self.conv.step(xn, buf)
            x_c = F.silu(x_c)
        else:
            x_c = xn
        with _no_autocast(x_t):
            wx = self._wx(xn, x_c)
            h, (_, c, n, m) = slstm_block_step(wx, self.R, self.b, cell, self.forget_gate)
            gates = self._gates(self._pre_acts(_full(wx)[0], _full(cell[0])[0]), m, c, n, h) if return_gates else None
        y = self._post(x_t, h.to(xn.dtype))
        return _returns(y, (buf, h, c, n, m), gates, True, return_gates)
