"""The two xLSTM blocks (paper Fig. 10 and 11; SPEC.md §3) and the pieces they are made of.

* ``MLSTMBlock`` (pre-up-projection, Fig. 11): LayerNorm → up-projection to 2 × (2·E), split into x_m and z →
  x_c = swish(causal conv4(x_m)) → q, k from x_c and v from x_m by block-diagonal projections (blocks of 4) →
  input/forget gate pre-activations (one scalar per head) from [q; k; v] → mLSTM (chunkwise) → head-wise
  GroupNorm → + learnable skip ⊙ x_c → ⊙ swish(z) (the output gate) → down-projection → residual.
* ``SLSTMBlock`` (post-up-projection, Fig. 10): LayerNorm → causal conv4 + swish feeding only the i and f gates →
  head-wise (block-diagonal) gate projections → sLSTM → head-wise GroupNorm → residual; then LayerNorm → gated
  MLP (GeLU, up-projection 1.3 rounded up to a multiple of 64) → residual.

Parameter shapes and initialisation follow the official ``xlstm`` package (2.0.6), so a model built here has
exactly the parameter count of the official ``xLSTMLMModel`` at the same configuration. Every block also has a
``step`` for generation: O(1) work per token (conv buffer + cell state), equal to the full forward pass.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from xlstm_edu.nn.mlstm import mlstm_chunkwise, mlstm_step
from xlstm_edu.nn.slstm import slstm_recurrent, slstm_step, slstm_zero_state

__all__ = ["CausalConv1d", "HeadwiseLinear", "MultiHeadNorm", "GateProjection", "GatedFFN", "MLSTMBlock",
           "SLSTMBlock", "round_up", "small_init_", "wang_init_"]


def _full(*ts):
    """Cells run in at least float32 (under bf16/fp16 autocast, too): their exp/log/cumsum gate arithmetic and
    recurrent states need the precision, like the official kernels' float32 casts."""
    return [t.float() if t.dtype in (torch.float16, torch.bfloat16) else t for t in ts]


def _no_autocast(x):
    return torch.autocast(device_type=x.device.type, enabled=False)


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
    """Depthwise causal convolution over time: y_t = Σ_{j<K} w_j ⊙ x_{t-K+1+j} + bias (zeros before t=0).

    x (B, S, D) → (B, S, D). ``step`` keeps the last K-1 inputs as its state."""

    def __init__(self, dim: int, kernel_size: int = 4):
        super().__init__()
        self.dim, self.kernel_size = dim, kernel_size
        self.conv = nn.Conv1d(dim, dim, kernel_size, padding=kernel_size - 1, groups=dim, bias=True)

    def forward(self, x):
        # (B, S, D) seen as a 2-D image (B, D, 1, S) in channels-last memory: no transposed copies of x or y
        K = self.kernel_size
        x4 = F.pad(x.transpose(1, 2).unsqueeze(2), (K - 1, 0))  # zeros before t = 0: causal
        w, b = self.conv.weight.to(x.dtype), self.conv.bias.to(x.dtype)  # (autocast does not cover CPU convs)
        y = F.conv2d(x4, w.unsqueeze(2), b, groups=self.dim)
        return y.squeeze(2).transpose(1, 2)

    def init_state(self, batch_size: int, device=None, dtype=None):
        w = self.conv.weight
        return torch.zeros(batch_size, self.kernel_size - 1, self.dim, device=device or w.device,
                           dtype=dtype or w.dtype)

    def step(self, x_t, buf):
        """x_t (B, D), buf (B, K-1, D) the previous inputs → (y_t (B, D), new buf)."""
        window = torch.cat([buf, x_t[:, None, :]], dim=1)  # (B, K, D), oldest first
        y = torch.einsum("bkd,dk->bd", window, self.conv.weight[:, 0, :]) + self.conv.bias
        return y, window[:, 1:]


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
        if x.dim() != 3:  # (..., D): one step of generation and the like -- plain einsum
            y = torch.einsum("nhd,ghod->gnho", x.reshape(-1, self.num_blocks, bs), self.weight.to(x.dtype))
            return [t.reshape(x.shape) for t in y]
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
    """The mLSTM input and forget gates, one scalar per head each, from [q; k; v] (SPEC.md §3): ``gates(qkv)``
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

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # checkpoints written before this layout kept one nn.Linear weight (2·NH, 3·inner): convert it
        w = state_dict.get(prefix + "weight")
        if w is not None and w.dim() == 2 and w.shape[1] == 3 * self.weight.shape[2]:
            state_dict[prefix + "weight"] = w.reshape(w.shape[0], 3, -1).permute(1, 0, 2).contiguous()
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def apply_split(self, q, k, v):
        """The same as ``forward(cat([q, k, v]))`` without the concatenation: W_q q + W_k k + W_v v + b."""
        Wq, Wk, Wv = self.weight
        return F.linear(q, Wq, self.bias) + F.linear(k, Wk) + F.linear(v, Wv)


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
class MLSTMBlock(nn.Module):
    """mLSTM block with pre-up-projection (Fig. 11). x (B, S, E) → (B, S, E) (residual included)."""

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
        # initialisation (official xlstm 2.0.6; SPEC.md §3)
        small_init_(self.proj_up.weight, E)
        small_init_(self.qk_proj.weight, E)
        small_init_(self.v_proj.weight, E)
        wang_init_(self.proj_down.weight, E, cfg.num_blocks)

    def _pre(self, x):
        xn = self.norm(x)
        W = self.proj_up.weight  # (2·inner, E): two products, so that x_m and z come out contiguous
        return F.linear(xn, W[: self.inner]), F.linear(xn, W[self.inner:])

    def _qkvif(self, x_m, x_c, step: bool = False):
        if step:  # one token: call the projections as modules (forward hooks, e.g. the gate explorer, see them)
            q, k = self.qk_proj(x_c).unbind(-2)
            v = self.v_proj(x_m)[..., 0, :]
        else:
            q, k = self.qk_proj.outputs(x_c)  # block-diagonal projections (blocks of 4) of the conv branch
            (v,) = self.v_proj.outputs(x_m)
        gi, gf = self.gates.apply_split(q, k, v).split(self.num_heads, dim=-1)  # one scalar per head
        return q, k, v, gi, gf

    def _post(self, x, h, x_c, z):
        # h (..., NH, DH) -> head-wise norm, learnable skip, output gate swish(z), down-projection, residual
        y = (self.outnorm(h) + self.skip * x_c) * F.silu(z)
        return x + self.dropout(self.proj_down(y))

    def forward(self, x):
        B, S, _ = x.shape
        NH, DH = self.num_heads, self.head_dim
        x_m, z = self._pre(x)
        x_c = F.silu(self.conv(x_m))  # swish(conv4(x_m))
        q, k, v, gi, gf = self._qkvif(x_m, x_c)
        heads = lambda t: t.view(B, S, NH, DH).transpose(1, 2)  # noqa: E731  (B, NH, S, DH)
        with _no_autocast(x):
            h, _ = mlstm_chunkwise(*_full(heads(q), heads(k), heads(v), gi.transpose(1, 2), gf.transpose(1, 2)),
                                   chunk_size=self.chunk_size, forget_gate=self.forget_gate)
        h = h.to(x_c.dtype)
        return self._post(x, h.transpose(1, 2), x_c, z)

    def init_state(self, batch_size: int, device=None, dtype=None):
        w = self.proj_up.weight
        device, dtype = device or w.device, dtype or w.dtype
        NH, DH = self.num_heads, self.head_dim
        return (self.conv.init_state(batch_size, device, dtype),
                torch.zeros(batch_size, NH, DH, DH, device=device, dtype=dtype),
                torch.zeros(batch_size, NH, DH, device=device, dtype=dtype),
                torch.zeros(batch_size, NH, device=device, dtype=dtype))

    def step(self, x_t, state):
        """x_t (B, E) → (B, E), O(1) per token: the conv buffer and the mLSTM state (C, n, m)."""
        B = x_t.shape[0]
        buf, C, n, m = state
        x_m, z = self._pre(x_t)
        x_c, buf = self.conv.step(x_m, buf)
        x_c = F.silu(x_c)
        q, k, v, gi, gf = self._qkvif(x_m, x_c, step=True)
        heads = lambda t: t.view(B, self.num_heads, self.head_dim)  # noqa: E731
        with _no_autocast(x_t):
            h, (C, n, m) = mlstm_step(*_full(heads(q), heads(k), heads(v), gi, gf), (C, n, m),
                                      forget_gate=self.forget_gate)
        h = h.to(x_c.dtype)
        return self._post(x_t, h, x_c, z), (buf, C, n, m)


# ----------------------------------------------------------------------------------------------------------------
class SLSTMBlock(nn.Module):
    """sLSTM block with post-up-projection (Fig. 10). x (B, S, E) → (B, S, E) (both residuals included)."""

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

    def _wx(self, x, x_c, step: bool = False):
        # (..., 4, E) in gate order (i, f, z, o): i, f from the conv branch, z, o from the block input
        if step:  # one token: call the projections as modules (forward hooks see them)
            return torch.cat([self.if_proj(x_c), self.zo_proj(x)], dim=-2)
        return torch.stack(self.if_proj.outputs(x_c) + self.zo_proj.outputs(x), dim=-2)

    def _post(self, x, h):
        x = x + self.dropout(self.outnorm(h.unflatten(-1, (self.num_heads, self.head_dim))))
        return x + self.ffn(self.ffn_norm(x))

    def forward(self, x):
        xn = self.norm(x)
        x_c = F.silu(self.conv(xn)) if self.conv is not None else xn
        with _no_autocast(x):
            h, _ = slstm_recurrent(*_full(self._wx(xn, x_c), self.R, self.b), forget_gate=self.forget_gate)
        h = h.to(xn.dtype)
        return self._post(x, h)

    def init_state(self, batch_size: int, device=None, dtype=None):
        w = self.b
        device, dtype = device or w.device, dtype or w.dtype
        buf = self.conv.init_state(batch_size, device, dtype) if self.conv is not None else None
        return (buf, *slstm_zero_state((batch_size,), self.b.shape[1], dtype=dtype, device=device))

    def step(self, x_t, state):
        """x_t (B, E) → (B, E), O(1) per token: the conv buffer and the sLSTM state (h, c, n, m)."""
        buf, *cell = state
        xn = self.norm(x_t)
        if self.conv is not None:
            x_c, buf = self.conv.step(xn, buf)
            x_c = F.silu(x_c)
        else:
            x_c = xn
        with _no_autocast(x_t):
            h, cell = slstm_step(*_full(self._wx(xn, x_c, step=True), self.R, self.b), tuple(cell),
                                 forget_gate=self.forget_gate)
        h = h.to(xn.dtype)
        return self._post(x_t, h), (buf, *cell)
