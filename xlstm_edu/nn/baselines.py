"""The two baselines the xLSTM is trained against: a GPT (nanoGPT-style) and an LSTM language model.

Both follow the course's model interface (see ``xlstm_edu/models.py``)::

    logits = model(idx)                                 # (B, S) -> (B, S, V)
    logits, state = model.prefill(idx)                  # a prompt at once, plus the generation state
    logits_t, state = model.step(idx_t, state)          # (B,) -> (B, V), continues the sequence
    state = model.init_state(batch_size, device)        # the empty state
    model.state_nbytes(state)                           # bytes the state holds
    model.num_params(non_embedding=False)

``GPT`` is Karpathy's nanoGPT in miniature: token + learned position embeddings, pre-LayerNorm blocks of causal
self-attention (``F.scaled_dot_product_attention``) and a GeLU MLP, a final LayerNorm and a head tied to the
token embedding. Its generation state is a **key/value cache**: ``prefill`` computes and stores the keys and
values of the prompt, each ``step`` appends one key and one value per block and attends over all of them, so a
token costs one token's projections and MLP plus attention over the T cached positions, and the cache holds
2 · num_blocks · T · embedding_dim numbers. **Once the positional table is full** (T = ``context_length``) the
GPT cannot place a new token at position ``context_length``: it then slides a window, recomputing the last
``context_length`` tokens from scratch at every step (positions shift, so cached keys would be stale). That
keeps generating at a fixed, much larger cost per token, and the model sees only the window.

``LSTMLM`` is the classic recurrent baseline of the paper's Table 2 ("vanilla multi-layer LSTM"): an embedding,
``torch.nn.LSTM`` (the cuDNN-backed cell of eq. 2-7), dropout and a linear head. Its state is (h, c) of every
layer; like the xLSTM it takes sequences of any length.
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
        """Causal attention over x (B, S, d). With ``cache`` (a dict with the keys and values of the T earlier
        tokens, see ``GPT.init_state``) x holds the next S tokens: their keys and values are appended and each new
        query attends to the cached positions and to the new ones up to itself."""
        B, S, _ = x.shape
        q, k, v = self._qkv(x)
        if cache is None or cache["len"] == 0:
            if cache is not None:
                _cache_append(cache, k, v)
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0,
                                               is_causal=True)
        else:
            T = cache["len"]
            k, v = _cache_append(cache, k, v)  # (B, nh, T + S, hs)
            # new token i sits at position T + i: it sees keys 0 .. T + i (one new token sees them all)
            mask = None if S == 1 else torch.ones(S, T + S, dtype=torch.bool, device=x.device).tril(T)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        y = y.transpose(1, 2).contiguous().view(B, S, self.d)
        return self.resid_dropout(self.c_proj(y))


def _cache_append(cache: dict, k, v):
    """Write k, v (B, nh, S, hs) after the ``cache["len"]`` cached positions; return all of them (views).

    The buffers grow by doubling, so appending one position is O(1) amortised (no copy of the whole cache per
    token, as ``torch.cat`` would make)."""
    T, S = cache["len"], k.shape[2]
    buf_k = cache["k"]
    if buf_k is None or T + S > buf_k.shape[2]:
        cap = max(T + S, 2 * (buf_k.shape[2] if buf_k is not None else 0), 16)
        if cache.get("max_len"):
            cap = max(min(cap, cache["max_len"]), T + S)
        new_k = k.new_empty(k.shape[0], k.shape[1], cap, k.shape[3])
        new_v = torch.empty_like(new_k)
        if T:
            new_k[:, :, :T] = buf_k[:, :, :T]
            new_v[:, :, :T] = cache["v"][:, :, :T]
        cache["k"], cache["v"] = new_k, new_v
    cache["k"][:, :, T:T + S] = k
    cache["v"][:, :, T:T + S] = v
    cache["len"] = T + S
    return cache["k"][:, :, :T + S], cache["v"][:, :, :T + S]


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
        """The empty generation state: ``{"seen": tokens so far, "tokens": the last ``context_length`` of them
        (B, ≤ context_length), "caches": one {"k", "v", "len"} key/value cache per block}``. The caches are
        written in place (their buffers are shared with the state they came from): to branch a generation,
        ``copy.deepcopy`` the state first."""
        device = self.wte.weight.device if device is None else device
        return {"seen": 0, "tokens": torch.zeros(batch_size, 0, dtype=torch.long, device=device),
                "caches": [{"k": None, "v": None, "len": 0, "max_len": self.cfg.context_length}
                           for _ in self.blocks]}

    def _check_state(self, state, batch_size):
        if not (isinstance(state, dict) and {"seen", "tokens", "caches"} <= set(state)
                and len(state["caches"]) == len(self.blocks)):
            raise ValueError("state: expected a GPT generation state (a dict from init_state, prefill or step), "
                             f"got {type(state).__name__}")
        if state["tokens"].shape[0] != batch_size:
            raise ValueError(f"state: it holds a batch of {state['tokens'].shape[0]}, the tokens a batch of "
                             f"{batch_size}")

    @torch.no_grad()
    def prefill(self, idx: torch.Tensor, state: dict | None = None):
        """``(logits (B, S, V), state)`` for the tokens ``idx`` (B, S), continuing ``state`` if given: their keys
        and values go into the cache in one pass. Tokens past the positional table are fed one by one with the
        sliding window (see ``step``)."""
        _check_idx(idx, self.cfg.vocab_size, None, 2, "(B, S)")
        B, S = idx.shape
        state = self.init_state(B, idx.device) if state is None else state
        self._check_state(state, B)
        n = min(S, max(self.cfg.context_length - state["seen"], 0))  # tokens that still get their own position
        parts = []
        if n:
            logits, state = self._extend(idx[:, :n], state)
            parts.append(logits)
        for t in range(n, S):
            logits, state = self._slide(idx[:, t], state)
            parts.append(logits[:, None])
        return torch.cat(parts, dim=1), state

    def _extend(self, idx, state):
        """The tokens idx (B, S) at positions seen .. seen+S-1 through the KV cache (they must fit the table)."""
        seen = state["seen"]
        caches = [dict(c) for c in state["caches"]]  # a new state object (the buffers are shared)
        x = self._embed(idx, pos0=seen)
        for block, cache in zip(self.blocks, caches):
            x = block(x, cache)
        tokens = torch.cat([state["tokens"], idx], dim=1)
        return self.lm_head(self.ln_f(x)), {"seen": seen + idx.shape[1], "tokens": tokens, "caches": caches}

    def _slide(self, idx_t, state):
        """Past the positional table: the window of the last context_length tokens, recomputed (cache dropped)."""
        tokens = torch.cat([state["tokens"], idx_t[:, None]], dim=1)[:, -self.cfg.context_length:]
        empty = [{"k": None, "v": None, "len": 0, "max_len": self.cfg.context_length} for _ in self.blocks]
        return self.forward(tokens)[:, -1], {"seen": state["seen"] + 1, "tokens": tokens, "caches": empty}

    @torch.no_grad()
    def step(self, idx_t: torch.Tensor, state: dict | None = None):
        """Logits (B, V) for the next token after feeding ``idx_t`` (B,), and the new state. While fewer than
        ``context_length`` tokens have been seen: one position through the KV cache. After that: the window of
        the last ``context_length`` tokens, recomputed from scratch (the cache is dropped)."""
        _check_idx(idx_t, self.cfg.vocab_size, None, 1, "(B,)")
        state = self.init_state(idx_t.shape[0], idx_t.device) if state is None else state
        self._check_state(state, idx_t.shape[0])
        if state["seen"] < self.cfg.context_length:
            logits, state = self._extend(idx_t[:, None], state)
            return logits[:, -1], state
        return self._slide(idx_t, state)  # positions shift, so the cached keys are stale: recompute the window

    @staticmethod
    def state_nbytes(state: dict) -> int:
        """Bytes the state holds: the filled part of every key/value cache (2 · blocks · B · T · d numbers) and
        the token window."""
        n = state["tokens"].numel() * state["tokens"].element_size()
        for c in state["caches"]:
            if c["k"] is not None:
                n += 2 * c["k"][:, :, :c["len"]].numel() * c["k"].element_size()
        return n


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

    def prefill(self, idx: torch.Tensor, state=None):
        """``(logits (B, S, V), (h, c))``: the tokens through the recurrence (continuing ``state`` if given)."""
        _check_idx(idx, self.cfg.vocab_size, None, 2, "(B, S)")
        y, state = self.lstm(self.drop(self.embedding(idx)), state)
        return self.head(self.drop(y)), state

    @staticmethod
    def state_nbytes(state) -> int:
        """Bytes of (h, c): 2 · layers · B · hidden numbers, whatever the position."""
        return sum(t.numel() * t.element_size() for t in state)

    @torch.no_grad()
    def step(self, idx_t: torch.Tensor, state=None):
        """One token through the recurrence: O(1) work per token."""
        _check_idx(idx_t, self.cfg.vocab_size, None, 1, "(B,)")
        if state is None:
            state = self.init_state(idx_t.shape[0], idx_t.device)
        y, state = self.lstm(self.drop(self.embedding(idx_t[:, None])), state)
        return self.head(self.drop(y[:, -1])), state
