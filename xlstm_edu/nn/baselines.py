"""The two baselines the xLSTM is trained against: a GPT (nanoGPT-style) and an LSTM language model.

Both follow the course's model interface (see ``xlstm_edu/models.py``)::

    logits = model(idx)                                 # (B, S) -> (B, S, V)
    state = model.init_state(batch_size, device)        # generation state
    logits_t, state = model.step(idx_t, state)          # (B,) -> (B, V), equals model(idx)[:, t]
    model.num_params(non_embedding=False)

``GPT`` is Karpathy's nanoGPT in miniature: token + learned position embeddings, pre-LayerNorm blocks of causal
self-attention (``F.scaled_dot_product_attention(is_causal=True)``) and a GeLU MLP, a final LayerNorm and a head
tied to the token embedding. Its ``step`` keeps a key/value cache, so generating one token costs one token's
worth of work until the context is full; after that it recomputes a sliding window of ``context_length`` tokens
(the learned position embeddings only exist for ``context_length`` positions).

``LSTMLM`` is the classic recurrent baseline of the paper's Table 2 ("vanilla multi-layer LSTM"): an embedding,
``torch.nn.LSTM`` (the cuDNN-backed cell of eq. 2-7), dropout and a linear head.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


def _check_idx(idx: torch.Tensor, vocab_size: int, context_length: int | None, ndim: int, layout: str):
    if not isinstance(idx, torch.Tensor) or idx.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"idx: expected an integer (long) tensor {layout}, got {type(idx).__name__} "
                         f"{getattr(idx, 'dtype', '')}")
    if idx.ndim != ndim:
        raise ValueError(f"idx: expected shape {layout}, got {tuple(idx.shape)}")
    if context_length is not None and idx.shape[1] > context_length:
        raise ValueError(f"idx: sequence length {idx.shape[1]} is longer than context_length={context_length}")
    if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= vocab_size):
        raise ValueError(f"idx: token ids must lie in [0, {vocab_size}), got min {int(idx.min())}, "
                         f"max {int(idx.max())}")


# ----------------------------------------------------------------------------------------------------- GPT
@dataclass
class GPTConfig:
    vocab_size: int = 65
    context_length: int = 256
    embedding_dim: int = 128
    num_blocks: int = 4
    num_heads: int = 4
    dropout: float = 0.0
    bias: bool = False  # nanoGPT: no biases in Linear/LayerNorm is a little better and faster
    tie_weights: bool = True

    def __post_init__(self):
        for name in ("vocab_size", "context_length", "embedding_dim", "num_blocks", "num_heads"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"GPTConfig.{name}: expected an integer >= 1, got {v!r}")
        if self.embedding_dim % self.num_heads:
            raise ValueError(f"GPTConfig: embedding_dim={self.embedding_dim} must be divisible by "
                             f"num_heads={self.num_heads}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"GPTConfig.dropout: expected a value in [0, 1), got {self.dropout!r}")


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.n_head, self.d = cfg.num_heads, cfg.embedding_dim
        self.c_attn = nn.Linear(cfg.embedding_dim, 3 * cfg.embedding_dim, bias=cfg.bias)  # q, k, v at once
        self.c_proj = nn.Linear(cfg.embedding_dim, cfg.embedding_dim, bias=cfg.bias)
        self.dropout = cfg.dropout
        self.resid_dropout = nn.Dropout(cfg.dropout)

    def _qkv(self, x):
        B, S, _ = x.shape
        q, k, v = self.c_attn(x).split(self.d, dim=2)
        # (B, S, d) -> (B, nh, S, hs)
        return [t.view(B, S, self.n_head, self.d // self.n_head).transpose(1, 2) for t in (q, k, v)]

    def forward(self, x, cache=None):
        """Full causal attention; with ``cache`` (a dict holding k, v of earlier tokens) x is the newest token(s)."""
        B, S, _ = x.shape
        q, k, v = self._qkv(x)
        if cache is None:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0,
                                               is_causal=True)
        else:
            if cache.get("k") is not None:
                k = torch.cat([cache["k"], k], dim=2)
                v = torch.cat([cache["v"], v], dim=2)
            cache["k"], cache["v"] = k, v
            # one new query attends to every cached key: no mask needed (all keys are in its past)
            if S != 1:
                raise ValueError("CausalSelfAttention with a cache takes one new token at a time")
            y = F.scaled_dot_product_attention(q, k, v)
        y = y.transpose(1, 2).contiguous().view(B, S, self.d)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(cfg.embedding_dim, 4 * cfg.embedding_dim, bias=cfg.bias)
        self.c_proj = nn.Linear(4 * cfg.embedding_dim, cfg.embedding_dim, bias=cfg.bias)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x):
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x))))


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.embedding_dim, bias=cfg.bias)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.embedding_dim, bias=cfg.bias)
        self.mlp = MLP(cfg)

    def forward(self, x, cache=None):
        x = x + self.attn(self.ln_1(x), cache)
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """A small nanoGPT. ``cfg.context_length`` is the longest sequence ``forward`` accepts."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.embedding_dim)
        self.wpe = nn.Embedding(cfg.context_length, cfg.embedding_dim)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.num_blocks)])
        self.ln_f = nn.LayerNorm(cfg.embedding_dim, bias=cfg.bias)
        self.lm_head = nn.Linear(cfg.embedding_dim, cfg.vocab_size, bias=False)
        if cfg.tie_weights:
            self.lm_head.weight = self.wte.weight
        # nanoGPT's initialisation: N(0, 0.02), residual projections scaled by 1/sqrt(2 * num_blocks) (GPT-2)
        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.num_blocks))

    @staticmethod
    def _init_weights(module):
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_params(self, non_embedding: bool = False) -> int:
        """Parameters counted once (a tied head is not counted twice); ``non_embedding`` leaves out the token
        and position embeddings (and with them a tied head)."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= self.wte.weight.numel() + self.wpe.weight.numel()
        return n

    def _embed(self, idx, pos0: int = 0):
        S = idx.shape[1]
        pos = torch.arange(pos0, pos0 + S, device=idx.device)
        return self.drop(self.wte(idx) + self.wpe(pos))

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        _check_idx(idx, self.cfg.vocab_size, self.cfg.context_length, 2, "(B, S)")
        x = self._embed(idx)
        for block in self.blocks:
            x = block(x)
        return self.lm_head(self.ln_f(x))

    # -------------------------------------------------------------------------------------- generation
    def init_state(self, batch_size: int, device=None) -> dict:
        """An empty key/value cache (one per block) plus the tokens seen so far (for the sliding window)."""
        device = self.wte.weight.device if device is None else device
        return {"tokens": torch.zeros(batch_size, 0, dtype=torch.long, device=device),
                "caches": [{} for _ in self.blocks]}

    @torch.no_grad()
    def step(self, idx_t: torch.Tensor, state: dict | None = None):
        """Logits for the next token after feeding ``idx_t`` (B,). Uses the KV cache while fewer than
        ``context_length`` tokens have been seen, then recomputes the last ``context_length`` tokens."""
        _check_idx(idx_t, self.cfg.vocab_size, None, 1, "(B,)")
        if state is None:
            state = self.init_state(idx_t.shape[0], idx_t.device)
        tokens = torch.cat([state["tokens"], idx_t[:, None]], dim=1)
        T = tokens.shape[1]
        if T <= self.cfg.context_length:
            x = self._embed(idx_t[:, None], pos0=T - 1)
            for block, cache in zip(self.blocks, state["caches"]):
                x = block(x, cache)
            logits = self.lm_head(self.ln_f(x))[:, -1]
        else:  # the window slides: positions shift, so cached keys are stale -> recompute the window
            tokens = tokens[:, -self.cfg.context_length:]
            logits = self.forward(tokens)[:, -1]
        return logits, {"tokens": tokens, "caches": state["caches"]}


# ----------------------------------------------------------------------------------------------------- LSTM
@dataclass
class LSTMLMConfig:
    vocab_size: int = 65
    context_length: int = 256  # the training sequence length; the LSTM itself has no limit
    embedding_dim: int = 128
    hidden_size: int | None = None  # None: the same as embedding_dim (needed for tie_weights)
    num_blocks: int = 2  # stacked LSTM layers
    dropout: float = 0.0
    tie_weights: bool = True

    def __post_init__(self):
        if self.hidden_size is None:
            self.hidden_size = self.embedding_dim
        for name in ("vocab_size", "context_length", "embedding_dim", "hidden_size", "num_blocks"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"LSTMLMConfig.{name}: expected an integer >= 1, got {v!r}")
        if self.tie_weights and self.hidden_size != self.embedding_dim:
            raise ValueError(f"LSTMLMConfig: tie_weights needs hidden_size == embedding_dim, got "
                             f"{self.hidden_size} and {self.embedding_dim}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"LSTMLMConfig.dropout: expected a value in [0, 1), got {self.dropout!r}")


class LSTMLM(nn.Module):
    """Embedding -> multi-layer ``torch.nn.LSTM`` (eq. 2-7) -> dropout -> linear head."""

    def __init__(self, cfg: LSTMLMConfig):
        super().__init__()
        self.cfg = cfg
        self.embedding = nn.Embedding(cfg.vocab_size, cfg.embedding_dim)
        self.drop = nn.Dropout(cfg.dropout)
        self.lstm = nn.LSTM(cfg.embedding_dim, cfg.hidden_size, num_layers=cfg.num_blocks, batch_first=True,
                            dropout=cfg.dropout if cfg.num_blocks > 1 else 0.0)
        self.head = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        nn.init.normal_(self.embedding.weight, std=0.02)
        if cfg.tie_weights:
            self.head.weight = self.embedding.weight
        else:
            nn.init.normal_(self.head.weight, std=0.02)
        # a common LSTM trick (Jozefowicz et al., 2015): forget-gate bias 1 so that memory is kept at the start.
        # torch.nn.LSTM orders the gates (i, f, g, o) in its bias vectors.
        H = cfg.hidden_size
        with torch.no_grad():
            for name, p in self.lstm.named_parameters():
                if name.startswith("bias_ih"):
                    p.zero_()
                    p[H:2 * H] = 1.0
                elif name.startswith("bias_hh"):
                    p.zero_()

    def num_params(self, non_embedding: bool = False) -> int:
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= self.embedding.weight.numel()
        return n

    def forward(self, idx: torch.Tensor, state=None) -> torch.Tensor:
        # context_length is only the training length: an LSTM accepts any S, so it is not enforced here
        _check_idx(idx, self.cfg.vocab_size, None, 2, "(B, S)")
        y, _ = self.lstm(self.drop(self.embedding(idx)), state)
        return self.head(self.drop(y))

    def init_state(self, batch_size: int, device=None):
        w = self.embedding.weight
        z = torch.zeros(self.cfg.num_blocks, batch_size, self.cfg.hidden_size, dtype=w.dtype,
                        device=w.device if device is None else device)
        return (z, z.clone())

    @torch.no_grad()
    def step(self, idx_t: torch.Tensor, state=None):
        """One token through the recurrence: O(1) work per token."""
        _check_idx(idx_t, self.cfg.vocab_size, None, 1, "(B,)")
        if state is None:
            state = self.init_state(idx_t.shape[0], idx_t.device)
        y, state = self.lstm(self.drop(self.embedding(idx_t[:, None])), state)
        return self.head(self.drop(y[:, -1])), state
