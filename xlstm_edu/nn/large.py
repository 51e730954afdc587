"""The xLSTM 7B architecture ("xLSTM at scale", chapter 15), built from the course's own mLSTM cell.

Beck et al. 2025, "xLSTM 7B: A Recurrent LLM for Fast and Efficient Inference", simplified the 2024 mLSTM block
for speed and stability at scale. Its model code is the official package's ``xlstm.xlstm_large.model``
(``xLSTMLarge``, ``xLSTMLargeConfig``; package ``xlstm`` 2.0.6); its training code, which holds the
initialisation, is ``xlstm-jax`` (``mLSTMLayerV1``). This module rebuilds that model from
``xlstm_edu.nn.mlstm_chunkwise`` (training, prefill) and ``xlstm_edu.nn.mlstm_step`` (generation)::

    cfg = XLSTMLargeConfig(vocab_size=65, embedding_dim=128, num_heads=4, num_blocks=4)
    model = XLSTMLarge(cfg)
    logits = model(idx)                               # (B, S) long -> (B, S, V), chunkwise mLSTM
    state = model.init_state(batch_size)              # per block: the cell state (C, n, m)
    logits_t, state = model.step(idx_t, state)        # (B,) -> (B, V), O(1) per token, equals model(idx)[:, t]
    logits, state = model.prefill(idx, state)         # a whole prompt at once, chunkwise, then keep stepping
    ours = XLSTMLarge.from_official(official_model)   # an official xLSTMLarge's weights in our model

One block (``LargeBlock``, official ``mLSTMBlock``), with E the embedding width, NH heads::

    x = x + mLSTMLayer(RMSNorm(x))           # the mLSTM runs at width E: no up-projection before it
    x = x + SwiGLU(RMSNorm(x))               # then a feed-forward, like a Transformer block ("post-up-projection")

    mLSTMLayer(x):  q, k = W_q x, W_k x       (E -> E/2 each: qk_dim_factor 0.5)
                    v, o = W_v x, W_o x       (E -> E)
                    ĩ, f̃ = cap15(W_i x + b_i), cap15(W_f x + b_f)   (E -> NH each: one gate per head)
                    h = mLSTM(q, k, v, ĩ, f̃) per head;  y = W_out (σ(o) ⊙ HeadNorm(h))
    logits = cap30(W_head RMSNorm(x_L))      with cap_a(x) = a·tanh(x/a)

What changed from the 2024 mLSTM block (``xlstm_edu.nn.blocks.MLSTMBlock``, paper Fig. 11) and why is the
subject of chapter 15: no causal convolution, no learnable skip, no block-diagonal q/k/v projections, gates
computed from the block input (not from q, k, v), RMSNorm, soft-capped gates and logits, input-gate bias −10.

Sequence lengths. Our ``mlstm_chunkwise`` takes any length (the last chunk may be shorter). The official
chunkwise kernel does not: in mode "train" it asserts ``S % chunk_size == 0``; in mode "inference" it pads the
sequence on the right to a multiple of ``chunk_size`` with forget gate +25 and input gate −25 (official
``mlstm_kernels.torch.kernel_wrappers.wrap_chunkwise__arbitrary_sequence_length_with_padding``). Padding at the
end leaves the outputs of the real tokens exact, but the state it returns has passed through the padded steps:
C and n are unchanged (stabilized), the stabilizer m has moved by ``pad · log σ(25)`` ≈ −1.4e-11 per padded step,
so the official state after a prompt of awkward length is off by a relative ~1e-10 (ours is exact). The oracle
tests compare logits at every length (the official model in "train" mode for multiples of the chunk size, in
"inference" mode otherwise) and check that offset in m exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch
import torch.nn as nn
import torch.nn.functional as F

from xlstm_edu.nn.blocks import MultiHeadNorm, small_init_, wang_init_
from xlstm_edu.nn.mlstm import block_chunkwise, block_step

__all__ = ["XLSTMLargeConfig", "XLSTMLarge", "LargeBlock", "LargeMLSTMLayer", "SwiGLU", "RMSNorm", "soft_cap",
           "ffn_hidden_size", "count_params", "count_flops", "build_official", "XLSTM_7B"]


# ----------------------------------------------------------------------------------------------------------------
def soft_cap(x: torch.Tensor, cap: float | None) -> torch.Tensor:
    """``cap · tanh(x / cap)``: the identity near 0 (slope 1), smoothly bounded to (−cap, cap).

    Official ``xlstm.xlstm_large.components.soft_cap`` (as in Gemma 2); ``cap=None`` leaves x unchanged."""
    if cap is None:
        return x
    return cap * torch.tanh(x / cap)


def ffn_hidden_size(embedding_dim: int, proj_factor: float, multiple_of: int) -> int:
    """The SwiGLU width: ``proj_factor · E`` rounded up to a multiple, exactly as the official code rounds it
    (``xlstm.xlstm_large.utils.round_up_to_next_multiple_of``: ``int(((x + m − 1) // m) · m)``; for a
    non-integer x this is ``floor((x + m − 1)/m)·m``, which can differ from ``ceil(x/m)·m``)."""
    x = embedding_dim * proj_factor
    return int(((x + multiple_of - 1) // multiple_of) * multiple_of)


@dataclass
class XLSTMLargeConfig:
    """The configuration of ``XLSTMLarge``; the defaults of the architecture fields are those of the official
    ``xLSTMLargeConfig`` (and of xLSTM 7B), the sizes are the course's small CPU model. ``XLSTM_7B`` is the
    real 7B configuration."""

    vocab_size: int = 65
    embedding_dim: int = 128
    num_heads: int = 4
    num_blocks: int = 4
    context_length: int = 256  # the training length (samplers crop to it); the recurrence itself has no limit
    qk_dim_factor: float = 0.5  # q, k width = int(E · 0.5)
    v_dim_factor: float = 1.0  # v width = int(E · 1.0)
    ffn_proj_factor: float = 2.6667  # SwiGLU width ≈ 8/3 · E ...
    ffn_round_up_to_multiple_of: int = 64  # ... rounded up to a multiple of 64
    gate_soft_cap: float | None = 15.0  # ĩ, f̃ ← 15·tanh(·/15); None: no cap
    output_logit_soft_cap: float | None = 30.0  # logits ← 30·tanh(·/30); None: no cap
    igate_bias_init: float = -10.0  # input-gate bias at initialisation (xlstm-jax: igate_bias_init_range)
    fgate_bias_init: tuple = (3.0, 6.0)  # forget-gate bias linspace over heads (xlstm-jax: fgate_bias_init_range)
    norm_eps: float = 1e-6  # RMSNorm and head norm
    eps: float = 1e-6  # the mLSTM cell's denominator eps
    chunk_size: int = 64  # chunkwise mLSTM chunk length
    add_out_norm: bool = True  # RMSNorm before the head

    def __post_init__(self):
        for name in ("vocab_size", "embedding_dim", "num_heads", "num_blocks", "context_length",
                     "ffn_round_up_to_multiple_of", "chunk_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"XLSTMLargeConfig.{name}: expected an integer >= 1, got {v!r}")
        for name in ("qk_dim_factor", "v_dim_factor", "ffn_proj_factor"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not (v > 0 and math.isfinite(v)):
                raise ValueError(f"XLSTMLargeConfig.{name}: expected a finite number > 0, got {v!r}")
        for name in ("gate_soft_cap", "output_logit_soft_cap"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not (v > 0 and
                                                                                                  math.isfinite(v))):
                raise ValueError(f"XLSTMLargeConfig.{name}: expected a finite number > 0 or None (no cap), "
                                 f"got {v!r}")
        for name in ("norm_eps", "eps"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not (0 <= v < 1):
                raise ValueError(f"XLSTMLargeConfig.{name}: expected a number in [0, 1), got {v!r}")
        if isinstance(self.igate_bias_init, bool) or not isinstance(self.igate_bias_init, (int, float)) \
                or not math.isfinite(self.igate_bias_init):
            raise ValueError(f"XLSTMLargeConfig.igate_bias_init: expected a finite number, "
                             f"got {self.igate_bias_init!r}")
        fb = self.fgate_bias_init
        if not (isinstance(fb, (tuple, list)) and len(fb) == 2 and all(isinstance(b, (int, float))
                                                                       and math.isfinite(b) for b in fb)):
            raise ValueError(f"XLSTMLargeConfig.fgate_bias_init: expected a pair (low, high) of finite numbers, "
                             f"got {fb!r}")
        self.fgate_bias_init = (float(fb[0]), float(fb[1]))
        E, NH = self.embedding_dim, self.num_heads
        for what, width in (("qk", self.qk_dim), ("v", self.v_dim)):
            if width < NH or width % NH:
                raise ValueError(f"XLSTMLargeConfig: the {what} width {width} (= int({E} · {what}_dim_factor)) "
                                 f"must be a positive multiple of num_heads={NH}")

    @property
    def qk_dim(self) -> int:
        """q and k width (official ``mLSTMLayer.qk_dim = int(E · qk_dim_factor)``)."""
        return int(self.embedding_dim * self.qk_dim_factor)

    @property
    def v_dim(self) -> int:
        """v (and output gate) width (official ``mLSTMLayer.v_dim = int(E · v_dim_factor)``)."""
        return int(self.embedding_dim * self.v_dim_factor)

    @property
    def ffn_dim(self) -> int:
        """SwiGLU hidden width (official ``FeedForward.up_proj_dim``)."""
        return ffn_hidden_size(self.embedding_dim, self.ffn_proj_factor, self.ffn_round_up_to_multiple_of)

    @classmethod
    def from_dict(cls, values: dict) -> "XLSTMLargeConfig":
        """``XLSTMLargeConfig(**values)`` with a ValueError naming the valid keys when a key is unknown."""
        valid = [f.name for f in fields(cls)]
        unknown = sorted(set(values) - set(valid))
        if unknown:
            raise ValueError(f"XLSTMLargeConfig: unknown key(s) {unknown}; valid keys are {valid}")
        values = dict(values)
        if isinstance(values.get("fgate_bias_init"), list):  # JSON round trips turn tuples into lists
            values["fgate_bias_init"] = tuple(values["fgate_bias_init"])
        return cls(**values)


#: The real xLSTM 7B (the configuration published with the weights, NX-AI/xLSTM-7b ``config.json``):
#: 32 blocks, width 4096, 8 heads (q/k head dim 256, v head dim 512), vocabulary 50304 (GPT-NeoX tokenizer).
XLSTM_7B = XLSTMLargeConfig(vocab_size=50304, embedding_dim=4096, num_heads=8, num_blocks=32, context_length=8192,
                            ffn_proj_factor=2.667)


# ----------------------------------------------------------------------------------------------------------------
def _upcast(*ts):
    """The cell runs in at least float32 (gate exp/log/cumsum and the states need it), like the official kernels."""
    return [t.float() if t.dtype in (torch.float16, torch.bfloat16) else t for t in ts]


class RMSNorm(nn.Module):
    """``x / sqrt(mean(x²) + eps) · w`` over the last axis (official ``components.RMSNorm``, weight, no bias).

    Unlike LayerNorm it does not subtract the mean: one reduction instead of two, and no bias to learn. The
    reduction runs in float32 for half-precision inputs (official ``norm_reduction_force_float32``); float32
    and float64 inputs keep their precision."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        (xf,) = _upcast(x)
        y = xf * torch.rsqrt(xf.pow(2).mean(dim=-1, keepdim=True) + self.eps)
        return y.to(x.dtype) * self.weight


class SwiGLU(nn.Module):
    """The feed-forward of the block: ``W_down (silu(W_gate x) ⊙ W_up x)`` (official ``FeedForward``, no biases).

    Three matrices instead of a GeLU MLP's two, so the width is 8/3·E (not 4·E) for the same parameter count."""

    def __init__(self, dim: int, hidden: int, num_blocks: int):
        super().__init__()
        self.proj_up_gate = nn.Linear(dim, hidden, bias=False)
        self.proj_up = nn.Linear(dim, hidden, bias=False)
        self.proj_down = nn.Linear(hidden, dim, bias=False)
        # xlstm-jax FeedForward: small init for the up-projections, "wang" (depth-scaled) for the down-projection
        small_init_(self.proj_up_gate.weight, dim)
        small_init_(self.proj_up.weight, dim)
        wang_init_(self.proj_down.weight, dim, num_blocks)

    def forward(self, x):
        return self.proj_down(F.silu(self.proj_up_gate(x)) * self.proj_up(x))


class LargeMLSTMLayer(nn.Module):
    """The mLSTM layer of xLSTM 7B at the embedding width (official ``mLSTMLayer``, weight mode "single").

    x (B, S, E) → y (B, S, E). Parameter names are the official ones, so ``from_official`` is a renaming."""

    def __init__(self, cfg: XLSTMLargeConfig):
        super().__init__()
        E, NH = cfg.embedding_dim, cfg.num_heads
        self.num_heads, self.qk_dim, self.v_dim = NH, cfg.qk_dim, cfg.v_dim
        self.gate_soft_cap, self.eps, self.chunk_size = cfg.gate_soft_cap, cfg.eps, cfg.chunk_size
        self.q = nn.Linear(E, self.qk_dim, bias=False)
        self.k = nn.Linear(E, self.qk_dim, bias=False)
        self.v = nn.Linear(E, self.v_dim, bias=False)
        self.ogate_preact = nn.Linear(E, self.v_dim, bias=False)  # output gate σ(W_o x), per unit
        self.igate_preact = nn.Linear(E, NH, bias=True)  # the gates are the only projections with a bias
        self.fgate_preact = nn.Linear(E, NH, bias=True)
        self.multihead_norm = MultiHeadNorm(NH, self.v_dim // NH, eps=cfg.norm_eps)  # LayerNorm per head
        self.out_proj = nn.Linear(self.v_dim, E, bias=False)
        # initialisation of the 7B training code (xlstm-jax mLSTMLayerV1): small init for q, k, v; zeros for the
        # output-gate and gate weights; input-gate bias −10 (igate_bias_init_range), forget-gate bias
        # linspace(3, 6) over heads (fgate_bias_init_range); depth-scaled ("wang") init for out_proj.
        for lin in (self.q, self.k, self.v):
            small_init_(lin.weight, E)
        nn.init.zeros_(self.ogate_preact.weight)
        nn.init.zeros_(self.igate_preact.weight)
        nn.init.zeros_(self.fgate_preact.weight)
        with torch.no_grad():
            self.igate_preact.bias.fill_(cfg.igate_bias_init)
            self.fgate_preact.bias.copy_(torch.linspace(*cfg.fgate_bias_init, NH))
        wang_init_(self.out_proj.weight, E, cfg.num_blocks)

    def _project(self, x):
        """q, k, v, the output-gate pre-activation and the soft-capped gate pre-activations (one per head).

        The same as ``self.q(x), self.k(x), ...`` (six small products), computed as one product with the six
        weights stacked (what the official "fused" weight mode stores): one big matrix product instead of six
        small ones is about 1.4x faster for this layer on a CPU, forward and backward."""
        lins = (self.q, self.k, self.v, self.ogate_preact, self.igate_preact, self.fgate_preact)
        W = torch.cat([lin.weight for lin in lins])
        zeros = W.new_zeros(2 * self.qk_dim + 2 * self.v_dim)
        b = torch.cat([zeros, self.igate_preact.bias, self.fgate_preact.bias])
        q, k, v, o, i_pre, f_pre = F.linear(x, W, b).split([lin.out_features for lin in lins], dim=-1)
        i_pre = soft_cap(i_pre, self.gate_soft_cap)  # 7B paper: cap the gate pre-activations at ±15
        f_pre = soft_cap(f_pre, self.gate_soft_cap)
        return q, k, v, o, i_pre, f_pre

    def _out(self, h, o):
        # h (..., NH, DHV): LayerNorm per head, output gate σ(o), projection back to E
        return self.out_proj(torch.sigmoid(o) * self.multihead_norm(h.to(o.dtype)))

    def forward(self, x, state=None):
        """x (B, S, E), state (C, n, m) or None → (y (B, S, E), state after the last token)."""
        B, S, _ = x.shape
        NH = self.num_heads
        q, k, v, o, i_pre, f_pre = self._project(x)
        heads = lambda t: t.view(B, S, NH, -1).transpose(1, 2)  # noqa: E731  (B, NH, S, DH)
        with torch.autocast(device_type=x.device.type, enabled=False):
            # the model's own activations are not scanned for NaN/inf (a diverging run shows a NaN loss, which the
            # trainer reports); a state passed in from outside is checked
            h, state = block_chunkwise(*_upcast(heads(q), heads(k), heads(v), i_pre.transpose(1, 2),
                                                f_pre.transpose(1, 2)),
                                       self.chunk_size, state, "sigmoid", eps=self.eps)
        return self._out(h.transpose(1, 2), o), state

    def step(self, x_t, state=None):
        """x_t (B, E), state (C, n, m) or None → (y_t (B, E), new state): one token, O(1) work."""
        B = x_t.shape[0]
        q, k, v, o, i_pre, f_pre = self._project(x_t)
        heads = lambda t: t.view(B, self.num_heads, -1)  # noqa: E731  (B, NH, DH)
        with torch.autocast(device_type=x_t.device.type, enabled=False):
            h, state = block_step(*_upcast(heads(q), heads(k), heads(v), i_pre, f_pre), state, "sigmoid", eps=self.eps)
        return self._out(h, o), state


class LargeBlock(nn.Module):
    """One xLSTM 7B block (official ``mLSTMBlock``): pre-norm mLSTM layer, then pre-norm SwiGLU, two residuals."""

    def __init__(self, cfg: XLSTMLargeConfig):
        super().__init__()
        E = cfg.embedding_dim
        self.norm_mlstm = RMSNorm(E, cfg.norm_eps)
        self.mlstm_layer = LargeMLSTMLayer(cfg)
        self.norm_ffn = RMSNorm(E, cfg.norm_eps)
        self.ffn = SwiGLU(E, cfg.ffn_dim, cfg.num_blocks)

    def forward(self, x, state=None):
        y, state = self.mlstm_layer(self.norm_mlstm(x), state)
        x = x + y
        return x + self.ffn(self.norm_ffn(x)), state

    def step(self, x_t, state=None):
        y, state = self.mlstm_layer.step(self.norm_mlstm(x_t), state)
        x_t = x_t + y
        return x_t + self.ffn(self.norm_ffn(x_t)), state


# ----------------------------------------------------------------------------------------------------------------
class XLSTMLarge(nn.Module):
    """The xLSTM 7B architecture at any size: embedding → blocks → RMSNorm → head → soft cap 30."""

    def __init__(self, cfg: XLSTMLargeConfig):
        super().__init__()
        if not isinstance(cfg, XLSTMLargeConfig):
            raise ValueError(f"cfg: expected an XLSTMLargeConfig, got {type(cfg).__name__}")
        self.cfg = cfg
        E = cfg.embedding_dim
        self.embedding = nn.Embedding(cfg.vocab_size, E)
        self.blocks = nn.ModuleList([LargeBlock(cfg) for _ in range(cfg.num_blocks)])
        self.out_norm = RMSNorm(E, cfg.norm_eps) if cfg.add_out_norm else nn.Identity()
        self.head = nn.Linear(E, cfg.vocab_size, bias=False)  # not tied to the embedding (7B: tie_weights False)
        small_init_(self.embedding.weight, E)
        small_init_(self.head.weight, E)

    # -- the course's model interface ---------------------------------------------------------------------------
    def num_params(self, non_embedding: bool = False) -> int:
        n = sum(p.numel() for p in self.parameters())
        return n - self.embedding.weight.numel() if non_embedding else n

    def summary(self) -> str:
        """A table of the parts and their parameter counts."""
        c = self.cfg
        lines = [f"xLSTM-7B-style model: {c.num_blocks} blocks, embedding {c.embedding_dim}, {c.num_heads} heads "
                 f"(q/k {c.qk_dim // c.num_heads}, v {c.v_dim // c.num_heads} per head), SwiGLU {c.ffn_dim}, "
                 f"vocab {c.vocab_size}"]
        lines.append(f"  embedding            {self.embedding.weight.numel():>12,}")
        for i, b in enumerate(self.blocks):
            lines.append(f"  block {i:<3d}            {sum(p.numel() for p in b.parameters()):>12,}")
        lines.append(f"  out norm             {sum(p.numel() for p in self.out_norm.parameters()):>12,}")
        lines.append(f"  head                 {self.head.weight.numel():>12,}")
        lines.append(f"  total                {self.num_params():>12,}")
        return "\n".join(lines)

    def _check_idx(self, idx, ndim: int, layout: str):
        if not isinstance(idx, torch.Tensor) or idx.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"idx: expected an integer (long) tensor {layout}, got {type(idx).__name__} "
                             f"{getattr(idx, 'dtype', '')}")
        if idx.ndim != ndim or idx.shape[0] < 1 or (ndim == 2 and idx.shape[1] < 1):
            raise ValueError(f"idx: expected shape {layout} with B >= 1{' and S >= 1' if ndim == 2 else ''}, "
                             f"got {tuple(idx.shape)}")
        lo, hi = torch.aminmax(idx)
        if int(lo) < 0 or int(hi) >= self.cfg.vocab_size:
            raise ValueError(f"idx: token ids must lie in [0, {self.cfg.vocab_size}), got min {int(lo)}, "
                             f"max {int(hi)}")

    def _check_state(self, state, batch_size: int):
        if state is None:
            return None
        if not isinstance(state, (list, tuple)) or len(state) != len(self.blocks):
            raise ValueError(f"state: expected a list of {len(self.blocks)} block states (C, n, m) or None, "
                             f"got {type(state).__name__} of length {len(state) if hasattr(state, '__len__') else '?'}")
        c = self.cfg
        NH, DK, DV = c.num_heads, c.qk_dim // c.num_heads, c.v_dim // c.num_heads
        for j, s in enumerate(state):
            if not (isinstance(s, (list, tuple)) and len(s) == 3 and all(isinstance(t, torch.Tensor) for t in s)):
                raise ValueError(f"state[{j}]: expected a tuple of three tensors (C, n, m)")
            want = ((batch_size, NH, DK, DV), (batch_size, NH, DK), (batch_size, NH))
            for name, t, w in zip("Cnm", s, want):
                if tuple(t.shape) != w:
                    raise ValueError(f"state[{j}] {name}: expected shape {w} (B={batch_size}, NH={NH}, DK={DK}, "
                                     f"DV={DV}), got {tuple(t.shape)}")
        return state

    def _head(self, x):
        return soft_cap(self.head(self.out_norm(x)), self.cfg.output_logit_soft_cap)  # cap the logits at ±30

    def prefill(self, idx: torch.Tensor, state=None):
        """idx (B, S), state (from ``init_state``/``step``/``prefill``) or None → (logits (B, S, V), state after
        the last token). Chunkwise over the whole prompt; continue with ``step``."""
        self._check_idx(idx, 2, "(B, S)")
        state = self._check_state(state, idx.shape[0])
        x = self.embedding(idx)
        new = []
        for j, block in enumerate(self.blocks):
            x, s = block(x, None if state is None else state[j])
            new.append(s)
        return self._head(x), new

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """idx (B, S) → logits (B, S, V) (from the zero state)."""
        return self.prefill(idx)[0]

    def init_state(self, batch_size: int, device=None, dtype=None):
        """The zero state: per block (C (B, NH, DK, DV), n (B, NH, DK), m (B, NH)), float32 at least."""
        c, w = self.cfg, self.head.weight
        dtype = dtype or (w.dtype if w.dtype in (torch.float32, torch.float64) else torch.float32)
        NH, DK, DV = c.num_heads, c.qk_dim // c.num_heads, c.v_dim // c.num_heads
        kw = dict(device=device or w.device, dtype=dtype)
        return [(torch.zeros(batch_size, NH, DK, DV, **kw), torch.zeros(batch_size, NH, DK, **kw),
                 torch.zeros(batch_size, NH, **kw)) for _ in self.blocks]

    def step(self, idx_t: torch.Tensor, state=None):
        """idx_t (B,) → (logits (B, V), new state). O(1) work per token; equals ``model(idx)[:, t]``."""
        self._check_idx(idx_t, 1, "(B,)")
        state = self._check_state(state, idx_t.shape[0])
        x = self.embedding(idx_t)
        new = []
        for j, block in enumerate(self.blocks):
            x, s = block.step(x, None if state is None else state[j])
            new.append(s)
        return self._head(x), new

    # -- the official model's weights ---------------------------------------------------------------------------
    @classmethod
    def from_official(cls, official, **overrides) -> "XLSTMLarge":
        """Our model with the weights (dtype, device) of an official ``xlstm.xlstm_large.model.xLSTMLarge``.

        The configuration is read from ``official.config``; ``overrides`` set other fields of ours (e.g.
        ``context_length``). Weight mode "single" is a renaming of the state dict (minus the ``backbone.``
        prefix); "fused" weights are split into the single ones (official ``utils`` fuses them by
        concatenation in the order q, k, v, o and i, f). Models with biases (``use_bias``) are not this
        architecture and are refused."""
        oc = getattr(official, "config", None)
        if oc is None or not all(hasattr(oc, a) for a in ("embedding_dim", "num_heads", "num_blocks",
                                                            "vocab_size", "gate_soft_cap")):
            raise ValueError(f"official: expected an xlstm.xlstm_large xLSTMLarge model, got {type(official).__name__}")
        if oc.use_bias:
            raise ValueError("official: use_bias=True is not the xLSTM 7B architecture (no biases); not supported")
        values = dict(vocab_size=oc.vocab_size, embedding_dim=oc.embedding_dim, num_heads=oc.num_heads,
                      num_blocks=oc.num_blocks, qk_dim_factor=oc.qk_dim_factor, v_dim_factor=oc.v_dim_factor,
                      ffn_proj_factor=oc.ffn_proj_factor, ffn_round_up_to_multiple_of=oc.ffn_round_up_to_multiple_of,
                      gate_soft_cap=oc.gate_soft_cap, output_logit_soft_cap=oc.output_logit_soft_cap,
                      norm_eps=oc.norm_eps, eps=oc.eps, chunk_size=oc.chunk_size, add_out_norm=oc.add_out_norm)
        values.update(overrides)
        sd = {k: v.detach().clone() for k, v in official.state_dict().items()}
        if oc.weight_mode == "fused":
            sd = _split_fused(sd, XLSTMLargeConfig.from_dict(values))
        ours = {}
        for key, val in sd.items():
            key = key.removeprefix("backbone.")
            key = {"lm_head.weight": "head.weight"}.get(key, key)
            ours[key] = val
        any_w = next(iter(sd.values()))
        model = cls(XLSTMLargeConfig.from_dict(values)).to(device=any_w.device, dtype=any_w.dtype)
        missing, unexpected = model.load_state_dict(ours, strict=False)
        if missing or unexpected:
            raise ValueError(f"official: weights do not match this architecture (missing {missing}, "
                             f"unexpected {unexpected})")
        return model


def build_official(cfg: XLSTMLargeConfig, *, mode: str = "train", dtype=torch.float32, weight_mode: str = "single"):
    """An official ``xlstm.xlstm_large.model.xLSTMLarge`` of the same configuration, runnable on a CPU.

    Its native torch kernels (chunkwise ``chunkwise--native_autograd``, sequence ``native_sequence__native``,
    step ``native``); ``return_last_states=True`` (xlstm 2.0.6 fails a shape assertion in train mode without it,
    and the forward then returns ``(logits, state)``). ``norm_reduction_force_float32=False`` and the state dtype
    follow ``dtype``, so that a float64 model computes in float64 throughout (the official default casts norm
    reductions to float32). Mode ``"train"``: the chunkwise kernel, which asserts that the sequence length is a
    multiple of ``chunk_size``; mode ``"inference"``: any length (one token: the step kernel; more: the chunkwise
    kernel on the sequence padded to a multiple of ``chunk_size`` with forget gate +25 and input gate −25).
    The official model does not initialise its weights the 7B way (nn.Linear defaults). Needs ``xlstm``."""
    from xlstm.xlstm_large.model import xLSTMLarge, xLSTMLargeConfig

    if not isinstance(cfg, XLSTMLargeConfig):
        raise ValueError(f"cfg: expected an XLSTMLargeConfig, got {type(cfg).__name__}")
    if mode not in ("train", "inference"):
        raise ValueError(f"mode: expected 'train' or 'inference', got {mode!r}")
    state_dtype = {torch.float64: "float64", torch.float32: "float32"}.get(dtype, "float32")
    oc = xLSTMLargeConfig(
        embedding_dim=cfg.embedding_dim, num_heads=cfg.num_heads, num_blocks=cfg.num_blocks,
        vocab_size=cfg.vocab_size, use_bias=False, norm_eps=cfg.norm_eps, norm_reduction_force_float32=False,
        add_out_norm=cfg.add_out_norm, qk_dim_factor=cfg.qk_dim_factor, v_dim_factor=cfg.v_dim_factor,
        chunkwise_kernel="chunkwise--native_autograd", sequence_kernel="native_sequence__native",
        step_kernel="native", mode=mode, chunk_size=cfg.chunk_size, return_last_states=True, eps=cfg.eps,
        inference_state_dtype=state_dtype, ffn_proj_factor=cfg.ffn_proj_factor,
        ffn_round_up_to_multiple_of=cfg.ffn_round_up_to_multiple_of, gate_soft_cap=cfg.gate_soft_cap,
        output_logit_soft_cap=cfg.output_logit_soft_cap, weight_mode=weight_mode)
    return xLSTMLarge(oc).to(dtype)


def _split_fused(sd: dict, cfg: XLSTMLargeConfig) -> dict:
    """Undo the official ``convert_single_weights_to_fused_weights``: one (2·qk + 2·v, E) matrix for q, k, v, o
    and one (2·NH, E) for the gates; one (2·F, E) for the two SwiGLU up-projections."""
    out = {}
    for key, val in sd.items():
        if key.endswith(".qkv_opreact.weight"):
            base = key.removesuffix("qkv_opreact.weight")
            for name, part in zip(("q", "k", "v", "ogate_preact"),
                                  val.split([cfg.qk_dim, cfg.qk_dim, cfg.v_dim, cfg.v_dim])):
                out[f"{base}{name}.weight"] = part.contiguous()
        elif key.endswith(".ifgate_preact.weight") or key.endswith(".ifgate_preact.bias"):
            base, kind = key.rsplit(".ifgate_preact.", 1)
            i_part, f_part = val.split(cfg.num_heads)
            out[f"{base}.igate_preact.{kind}"] = i_part.contiguous()
            out[f"{base}.fgate_preact.{kind}"] = f_part.contiguous()
        elif key.endswith(".proj_up_gate_z.weight"):
            base = key.removesuffix("proj_up_gate_z.weight")
            gate, up = val.split(cfg.ffn_dim)
            out[f"{base}proj_up_gate.weight"], out[f"{base}proj_up.weight"] = gate.contiguous(), up.contiguous()
        else:
            out[key] = val
    return out


# ----------------------------------------------------------------------------------------------------------------
def count_params(cfg: XLSTMLargeConfig) -> dict:
    """The parameter count of ``XLSTMLarge(cfg)`` by formula (no model built), part by part.

    Per block: 2 RMSNorm weights (2E); q, k (2·E·Dqk), v and the output gate (2·E·Dv), the two gates with bias
    (2·(E·NH + NH)), the head norm (Dv), out_proj (Dv·E); SwiGLU 3·E·F."""
    E, NH, V = cfg.embedding_dim, cfg.num_heads, cfg.vocab_size
    Dqk, Dv, Fd = cfg.qk_dim, cfg.v_dim, cfg.ffn_dim
    mlstm = 2 * E * Dqk + 2 * E * Dv + 2 * (E * NH + NH) + Dv + Dv * E
    ffn = 3 * E * Fd
    block = 2 * E + mlstm + ffn
    parts = dict(embedding=V * E, mlstm_layer=mlstm, ffn=ffn, norms=2 * E, block=block,
                 blocks=cfg.num_blocks * block, out_norm=E if cfg.add_out_norm else 0, head=E * V)
    parts["total"] = parts["embedding"] + parts["blocks"] + parts["out_norm"] + parts["head"]
    return parts


def count_flops(cfg: XLSTMLargeConfig, seq_len: int | None = None) -> dict:
    """Matrix-multiply FLOPs per token of ``XLSTMLarge(cfg)``'s forward pass, by formula (2 FLOPs per
    multiply-add; element-wise work — norms, gates, exp, soft caps — is left out: a few percent at most).

    * projections: 2 · (weights of every projection) per token, i.e. 2·(params − embedding − norms − biases);
    * the chunkwise mLSTM cell, per head with chunk length L = min(chunk_size, seq_len), DK = Dqk/NH,
      DV = Dv/NH, counted as ``mlstm_chunkwise`` computes it (full L×L squares; the normalizer rides along as
      one more column of v): inside the chunk q kᵀ (2·L·DK) and (q kᵀ ⊙ D)[v|1] (2·L·(DV+1)); from the
      chunk's incoming state q [C|n] (2·DK·(DV+1)); the state update kᵀ [v|1] (2·DK·(DV+1)).

    Training ≈ 3 × forward (the backward pass computes two matrix products per forward one)."""
    E, NH, V = cfg.embedding_dim, cfg.num_heads, cfg.vocab_size
    Dqk, Dv, Fd = cfg.qk_dim, cfg.v_dim, cfg.ffn_dim
    L = cfg.chunk_size if seq_len is None else min(cfg.chunk_size, int(seq_len))
    DK, DV = Dqk // NH, Dv // NH
    proj = 2 * (2 * E * Dqk + 2 * E * Dv + 2 * E * NH + Dv * E)
    ffn = 2 * 3 * E * Fd
    cell = NH * (2 * L * DK + 2 * L * (DV + 1) + 4 * DK * (DV + 1))
    head = 2 * E * V
    fwd = cfg.num_blocks * (proj + ffn + cell) + head
    return dict(projections=cfg.num_blocks * proj, ffn=cfg.num_blocks * ffn, cell=cfg.num_blocks * cell,
                head=head, forward=fwd, train=3 * fwd, chunk_len=L)
