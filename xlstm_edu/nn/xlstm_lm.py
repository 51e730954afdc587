"""An xLSTM language model: token embedding → a stack of mLSTM and sLSTM blocks → final LayerNorm → head.

``XLSTMConfig.slstm_at`` lists the 0-based positions of the sLSTM blocks; every other block is an mLSTM block.
xLSTM[a:b] in the paper is the ratio of mLSTM to sLSTM blocks: ``slstm_at=()`` is xLSTM[1:0] (mLSTM only),
``slstm_at=(1, 3)`` with 4 blocks is xLSTM[1:1], ``slstm_at="all"`` is xLSTM[0:1]. No positional encoding: the
recurrence knows the order, so the model takes sequences of any length (``context_length`` is only the length it
is trained on). The interface is the course's (``xlstm_edu/models.py``)::

    model = XLSTMLM(XLSTMConfig(vocab_size=65, slstm_at=(1,)))
    logits = model(idx)                                 # (B, S) -> (B, S, V), any S: chunkwise mLSTM, fused sLSTM
    logits, state = model.prefill(idx)                  # the same, plus the state after the last token
    logits_t, state = model.step(idx_t, state)          # (B,) -> (B, V), O(1) per token, continues the sequence
    logits, state = model.prefill(idx2, state)          # ... or continue with a whole chunk (streaming)
    logits, state, gates = model.prefill(idx, return_gates=True)   # what every gate did (see the blocks)

``state`` is a list with one tuple per block (``init_state`` gives zeros): an mLSTM block keeps its conv buffer
(the last K-1 inputs) and (C, n, m); an sLSTM block its conv buffer and (h, c, n, m). Its size is fixed
(``state_nbytes``). Feeding a text in pieces, each piece starting from the state the previous one returned, gives
the same logits as one pass (to round-off): this is how a long text is streamed and how generation works
(``xlstm_edu.sample.generate``: ``prefill`` on the prompt, then ``step`` per new token).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
import torch.nn as nn

from xlstm_edu.nn.blocks import MLSTMBlock, SLSTMBlock, small_init_

__all__ = ["XLSTMConfig", "XLSTMLM", "state_nbytes"]


@dataclass
class XLSTMConfig:
    vocab_size: int = 65
    context_length: int = 256  # the training sequence length; the model itself takes any length
    embedding_dim: int = 128
    num_blocks: int = 4
    dropout: float = 0.0
    tie_weights: bool = False  # the official xLSTMLMModel default
    slstm_at: tuple = ()  # 0-based positions of sLSTM blocks, or "all"
    num_heads: int = 4  # mLSTM heads (and sLSTM heads unless slstm_num_heads is set)
    slstm_num_heads: int | None = None
    chunk_size: int = 64  # chunkwise mLSTM chunk length (training path)
    conv1d_kernel_size: int = 4  # causal conv; 0 = none (sLSTM blocks only)
    qkv_proj_blocksize: int = 4
    mlstm_proj_factor: float = 2.0  # mLSTM block up-projection (rounded up to a multiple of 64)
    ffn_proj_factor: float = 1.3  # sLSTM block gated MLP (rounded up to a multiple of 64)
    forget_gate: str = "sigmoid"  # "sigmoid" (official) or "exp" (the paper's other option)

    def __post_init__(self):
        for name in ("vocab_size", "context_length", "embedding_dim", "num_blocks", "num_heads", "chunk_size",
                     "qkv_proj_blocksize"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"XLSTMConfig.{name}: expected an integer >= 1, got {v!r}")
        if isinstance(self.conv1d_kernel_size, bool) or not isinstance(self.conv1d_kernel_size, int) \
                or self.conv1d_kernel_size < 0:
            raise ValueError(f"XLSTMConfig.conv1d_kernel_size: expected an integer >= 0, "
                             f"got {self.conv1d_kernel_size!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"XLSTMConfig.dropout: expected a value in [0, 1), got {self.dropout!r}")
        if self.forget_gate not in ("sigmoid", "exp"):
            raise ValueError(f"XLSTMConfig.forget_gate: expected 'sigmoid' or 'exp', got {self.forget_gate!r}")
        if self.slstm_at == "all":
            self.slstm_at = tuple(range(self.num_blocks))
        try:
            at = tuple(int(i) for i in self.slstm_at)
        except (TypeError, ValueError):
            raise ValueError(f"XLSTMConfig.slstm_at: expected a tuple of block positions or 'all', "
                             f"got {self.slstm_at!r}") from None
        if any(i < 0 or i >= self.num_blocks for i in at) or len(set(at)) != len(at):
            raise ValueError(f"XLSTMConfig.slstm_at: expected distinct positions in [0, {self.num_blocks}), got {at}")
        self.slstm_at = tuple(sorted(at))
        from xlstm_edu.nn.blocks import round_up

        inner = round_up(self.mlstm_proj_factor * self.embedding_dim)
        if len(self.slstm_at) < self.num_blocks:
            if self.conv1d_kernel_size < 1:
                raise ValueError(f"XLSTMConfig.conv1d_kernel_size: the mLSTM block needs a causal conv (>= 1), "
                                 f"got {self.conv1d_kernel_size}")
            if inner % self.num_heads or inner % self.qkv_proj_blocksize:
                raise ValueError(f"XLSTMConfig: the mLSTM inner size {inner} (= round_up({self.mlstm_proj_factor}·"
                                 f"{self.embedding_dim}, 64)) must be a multiple of num_heads={self.num_heads} "
                                 f"and qkv_proj_blocksize={self.qkv_proj_blocksize}")
        sh = self.slstm_num_heads or self.num_heads
        if self.slstm_at and self.embedding_dim % sh:
            raise ValueError(f"XLSTMConfig: embedding_dim {self.embedding_dim} must be a multiple of the sLSTM "
                             f"heads ({sh})")

    @classmethod
    def from_dict(cls, values: dict) -> "XLSTMConfig":
        """``XLSTMConfig(**values)`` with a ValueError naming the valid keys when a key is unknown."""
        valid = [f.name for f in fields(cls)]
        unknown = sorted(set(values) - set(valid))
        if unknown:
            raise ValueError(f"XLSTMConfig: unknown key(s) {unknown}; valid keys are {valid}")
        return cls(**values)

    @property
    def ratio(self) -> str:
        """The paper's name xLSTM[a:b] (mLSTM:sLSTM blocks, reduced)."""
        from math import gcd

        s = len(self.slstm_at)
        m = self.num_blocks - s
        g = gcd(m, s) or 1
        return f"xLSTM[{m // g}:{s // g}]"


class XLSTMLM(nn.Module):
    def __init__(self, cfg: XLSTMConfig):
        super().__init__()
        if not isinstance(cfg, XLSTMConfig):
            raise ValueError(f"cfg: expected an XLSTMConfig, got {type(cfg).__name__}")
        self.cfg = cfg
        E = cfg.embedding_dim
        self.embedding = nn.Embedding(cfg.vocab_size, E)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(
            [SLSTMBlock(cfg, i) if i in cfg.slstm_at else MLSTMBlock(cfg, i) for i in range(cfg.num_blocks)])
        self.norm = nn.LayerNorm(E, bias=False)  # final LayerNorm before the head
        self.head = nn.Linear(E, cfg.vocab_size, bias=False)
        small_init_(self.embedding.weight, E)
        if cfg.tie_weights:
            self.head.weight = self.embedding.weight
        else:
            small_init_(self.head.weight, E)

    def num_params(self, non_embedding: bool = False) -> int:
        """Parameters counted once (a tied head is not counted twice); ``non_embedding`` leaves out the token
        embedding (and with it a tied head)."""
        n = sum(p.numel() for p in self.parameters())
        return n - self.embedding.weight.numel() if non_embedding else n

    def summary(self) -> str:
        """A table of the blocks and their parameter counts (what ``print(model.summary())`` shows)."""
        c = self.cfg
        lines = [f"{c.ratio} language model: {c.num_blocks} blocks, embedding {c.embedding_dim}, "
                 f"vocab {c.vocab_size}, sLSTM at {list(c.slstm_at)}"]
        lines.append(f"  embedding            {self.embedding.weight.numel():>10,}")
        for i, b in enumerate(self.blocks):
            kind = "sLSTM" if isinstance(b, SLSTMBlock) else "mLSTM"
            lines.append(f"  block {i} ({kind})      {sum(p.numel() for p in b.parameters()):>10,}")
        lines.append(f"  final norm           {self.norm.weight.numel():>10,}")
        lines.append(f"  head                 {0 if c.tie_weights else self.head.weight.numel():>10,}"
                     + ("  (tied to the embedding)" if c.tie_weights else ""))
        lines.append(f"  total                {self.num_params():>10,}")
        return "\n".join(lines)

    def _check_idx(self, idx, ndim, layout):
        if not isinstance(idx, torch.Tensor) or idx.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"idx: expected an integer (long) tensor {layout}, got {type(idx).__name__} "
                             f"{getattr(idx, 'dtype', '')}")
        if idx.ndim != ndim or (ndim == 2 and idx.shape[1] < 1):
            raise ValueError(f"idx: expected shape {layout}, got {tuple(idx.shape)}")

    def _check_state(self, state):
        if not isinstance(state, (list, tuple)) or len(state) != len(self.blocks):
            got = f"{type(state).__name__} of length {len(state)}" if isinstance(state, (list, tuple)) \
                else type(state).__name__
            raise ValueError(f"state: expected a list of {len(self.blocks)} block states (from init_state, prefill "
                             f"or step), got {got}")

    def forward(self, idx: torch.Tensor, state=None, *, return_state: bool = False, return_gates: bool = False):
        """idx (B, S) → logits (B, S, V), for any S (chunkwise mLSTM, fused sLSTM).

        ``state`` (from ``init_state``, ``prefill`` or ``step``) continues a sequence: the result equals the
        corresponding part of one pass over the whole text. ``return_state=True`` adds the state after the last
        token, ``return_gates=True`` a list with each block's gate records (see ``MLSTMBlock``/``SLSTMBlock``):
        ``logits``, ``(logits, state)``, ``(logits, gates)`` or ``(logits, state, gates)``."""
        self._check_idx(idx, 2, "(B, S)")
        if state is not None:
            self._check_state(state)
        x = self.drop(self.embedding(idx))
        new, gates = [], []
        for i, block in enumerate(self.blocks):
            out = block(x, None if state is None else state[i], return_state=return_state,
                        return_gates=return_gates)
            x, *rest = out if isinstance(out, tuple) else (out,)
            if return_state:
                new.append(rest.pop(0))
            if return_gates:
                gates.append(rest.pop(0))
        logits = self.head(self.norm(x))
        out = (logits,) + ((new,) if return_state else ()) + ((gates,) if return_gates else ())
        return out[0] if len(out) == 1 else out

    def prefill(self, idx: torch.Tensor, state=None, *, return_gates: bool = False):
        """A whole prompt (or the next chunk of a stream) at once: ``(logits (B, S, V), state)`` (plus the gate
        records with ``return_gates``). The same as ``forward(idx, state, return_state=True)``: chunkwise mLSTM,
        fused sLSTM, and the conv buffers' last K-1 inputs; ``step`` continues from the state."""
        return self.forward(idx, state, return_state=True, return_gates=return_gates)

    def init_state(self, batch_size: int, device=None, dtype=None):
        """The state before the first token (zeros): one tuple per block (conv buffer, then the cell state)."""
        return [b.init_state(batch_size, device, dtype) for b in self.blocks]

    @staticmethod
    def state_nbytes(state) -> int:
        """Bytes the state holds (the same at every position: the state does not grow)."""
        return state_nbytes(state)

    def step(self, idx_t: torch.Tensor, state=None, *, return_gates: bool = False):
        """idx_t (B,) → ``(logits (B, V), new state)`` (plus the gate records with ``return_gates``). O(1) work
        per token; equals ``model(idx)[:, t]`` when ``state`` holds the tokens before t."""
        self._check_idx(idx_t, 1, "(B,)")
        if state is None:
            state = self.init_state(idx_t.shape[0], idx_t.device)
        self._check_state(state)
        x = self.drop(self.embedding(idx_t))
        new, gates = [], []
        for block, s in zip(self.blocks, state):
            x, s, *g = block.step(x, s, return_gates=return_gates)
            new.append(s)
            gates.extend(g)
        logits = self.head(self.norm(x))
        return (logits, new, gates) if return_gates else (logits, new)


def state_nbytes(state) -> int:
    """Bytes held by the tensors of a (nested) state: lists, tuples and dicts of tensors (``None`` counts 0)."""
    if isinstance(state, torch.Tensor):
        return state.numel() * state.element_size()
    if isinstance(state, dict):
        return sum(state_nbytes(v) for v in state.values())
    if isinstance(state, (list, tuple)):
        return sum(state_nbytes(v) for v in state)
    return 0
