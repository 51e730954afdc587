"""A small linear-RNN language model in PyTorch, for chapter 14's parity experiment.

Two cells of the family in ``xlstm_edu.np.linear_rnn`` (same orientation, same formulas, tested against it):

* ``"deltanet"``: S_t = (I - β_t k_t k_tᵀ) S_{t-1} + β_t k_t v_tᵀ with L2-normalized keys, so the transition
  has eigenvalues 1 (DK - 1 times) and 1 - β_t;
* ``"decay"``: S_t = a_t S_{t-1} + k_t v_tᵀ, one scalar decay a_t per head (GLA / Mamba 2 style), eigenvalue a_t.

``eigenvalues`` chooses the range of the transition's data-dependent eigenvalue, the one thing chapter 14 varies:

* ``"[0,1]"``: β = σ(w_β·x) ∈ (0, 1) (the original DeltaNet), a = σ(w_a·x) ∈ (0, 1) (Mamba, GLA, the mLSTM's f);
* ``"[-1,1]"``: β = 2σ(w_β·x) ∈ (0, 2), a = 2σ(w_a·x) - 1 ∈ (-1, 1) (Grazzi et al., ICLR 2025).

The model has the shape of the course's other language models (``xlstm_edu/models.py``): token embedding →
``num_blocks`` pre-LayerNorm residual blocks, each a linear-RNN layer followed by a small GeLU MLP → final
LayerNorm → head; no positional encoding. A layer projects x to q, k, v (per head; q and k L2-normalized) and to
one gate per head, runs the cell, normalizes each head's output (LayerNorm without weights, like the mLSTM
block's GroupNorm), and projects back. ``forward`` runs the cell's parallel form (O(S²), fast for the short
sequences here), ``step`` the recurrent one; they agree (tested).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from xlstm_edu.nn._checks import check_ndim, check_tensors

CELLS = ("deltanet", "decay")
EIGENVALUES = ("[0,1]", "[-1,1]")


# ----------------------------------------------------------------------------------------------- the cells
def _check_cell_inputs(q, k, v, g, gname):
    named = {"q": q, "k": k, "v": v, gname: g}
    check_tensors(named)  # floating-point tensors on one device
    for (name, t), (nd, layout) in zip(named.items(), ((2, "(..., S, DK)"), (2, "(..., S, DK)"), (2, "(..., S, DV)"),
                                                        (1, "(..., S)"))):
        check_ndim(t, name, nd, layout)
        if t.dtype != q.dtype:
            raise ValueError(f"{name}: expected the dtype and device of q ({q.dtype}, {q.device}), got ({t.dtype}, {t.device})")
    if k.shape != q.shape:
        raise ValueError(f"k: expected shape (..., S, DK) = {tuple(q.shape)} as q, got {tuple(k.shape)}")
    if v.shape[:-1] != q.shape[:-1]:
        raise ValueError(f"v: expected shape (..., S, DV) with (..., S) = {tuple(q.shape[:-1])}, got {tuple(v.shape)}")
    if g.shape != q.shape[:-1]:
        raise ValueError(f"{gname}: expected shape (..., S) = {tuple(q.shape[:-1])}, got {tuple(g.shape)}")


def deltanet_parallel(q, k, v, beta):
    """DeltaNet from a zero state, all steps at once through the UT transform (``xlstm_edu.np.deltanet_parallel``):
    solve (I + diag(β) tril(KKᵀ, -1)) U = diag(β) V for the pseudo-values U, then H = tril(QKᵀ) U.
    q, k (..., S, DK), v (..., S, DV), beta (..., S) → h (..., S, DV)."""
    _check_cell_inputs(q, k, v, beta, "beta")
    S = q.shape[-2]
    eye = torch.eye(S, dtype=q.dtype, device=q.device)
    T = eye + beta[..., :, None] * torch.tril(k @ k.transpose(-1, -2), -1)
    U = torch.linalg.solve_triangular(T, beta[..., :, None] * v, upper=False, unitriangular=True)
    return torch.tril(q @ k.transpose(-1, -2)) @ U


def deltanet_step(q, k, v, beta, S):
    """One DeltaNet step: q, k (..., DK), v (..., DV), beta (...), S (..., DK, DV) → (h (..., DV), S_t)."""
    v_old = (k[..., None, :] @ S)[..., 0, :]  # Sᵀk
    S = S + beta[..., None, None] * (k[..., :, None] * (v - v_old)[..., None, :])  # (I - βkkᵀ)S + βkvᵀ
    return (q[..., None, :] @ S)[..., 0, :], S


def decay_parallel(q, k, v, a):
    """S_t = a_t S_{t-1} + k_t v_tᵀ from a zero state, all at once: H = (QKᵀ ⊙ D) V with D_ts = a_{s+1}⋯a_t
    (a running product down each column, so negative decays are fine; ``xlstm_edu.np.gated_parallel``)."""
    _check_cell_inputs(q, k, v, a, "a")
    S = q.shape[-2]
    later = torch.ones(S, S, dtype=torch.bool, device=q.device).tril(-1)
    M = torch.where(later, a[..., :, None], torch.ones((), dtype=a.dtype, device=a.device))
    D = torch.cumprod(M, dim=-2).tril()
    return ((q @ k.transpose(-1, -2)) * D) @ v


def decay_step(q, k, v, a, S):
    """One step of S_t = a_t S_{t-1} + k_t v_tᵀ: → (h (..., DV), S_t)."""
    S = a[..., None, None] * S + k[..., :, None] * v[..., None, :]
    return (q[..., None, :] @ S)[..., 0, :], S


# ----------------------------------------------------------------------------------------------- the model
@dataclass
class LinearRNNConfig:
    vocab_size: int = 4
    context_length: int = 256
    embedding_dim: int = 32
    num_blocks: int = 2
    num_heads: int = 1
    cell: str = "deltanet"  # "deltanet" or "decay"
    eigenvalues: str = "[-1,1]"  # "[0,1]" or "[-1,1]": the range of the transition's data-dependent eigenvalue
    mlp_factor: int = 2
    dropout: float = 0.0

    def __post_init__(self):
        for name in ("vocab_size", "context_length", "embedding_dim", "num_blocks", "num_heads", "mlp_factor"):
            val = getattr(self, name)
            if isinstance(val, bool) or not isinstance(val, int) or val < 1:
                raise ValueError(f"LinearRNNConfig.{name}: expected an integer >= 1, got {val!r}")
        if self.cell not in CELLS:
            raise ValueError(f"LinearRNNConfig.cell: expected one of {list(CELLS)}, got {self.cell!r}")
        if self.eigenvalues not in EIGENVALUES:
            raise ValueError(f"LinearRNNConfig.eigenvalues: expected one of {list(EIGENVALUES)}, "
                             f"got {self.eigenvalues!r}")
        if self.embedding_dim % self.num_heads:
            raise ValueError(f"LinearRNNConfig: embedding_dim={self.embedding_dim} must be divisible by "
                             f"num_heads={self.num_heads}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"LinearRNNConfig.dropout: expected a value in [0, 1), got {self.dropout!r}")


class LinearRNNLayer(nn.Module):
    """x (B, S, E) → q, k, v (B, NH, S, DH) and a gate (B, NH, S) → the cell → per-head norm → projection."""

    def __init__(self, cfg: LinearRNNConfig):
        super().__init__()
        self.cfg = cfg
        E, NH = cfg.embedding_dim, cfg.num_heads
        self.NH, self.DH = NH, E // NH
        self.qkv = nn.Linear(E, 3 * E, bias=False)
        self.gate = nn.Linear(E, NH)  # β (deltanet) or a (decay), one per head
        self.out = nn.Linear(E, E, bias=False)

    def gate_values(self, x):
        """β ∈ (0, 1) or (0, 2) for DeltaNet, a ∈ (0, 1) or (-1, 1) for the decay cell: (B, NH, S)."""
        g = torch.sigmoid(self.gate(x)).transpose(-1, -2)
        if self.cfg.eigenvalues == "[-1,1]":
            g = 2 * g if self.cfg.cell == "deltanet" else 2 * g - 1
        return g

    def eigenvalue(self, x):
        """The data-dependent eigenvalue of each step's transition (B, NH, S): 1 - β (‖k‖ = 1) or a."""
        g = self.gate_values(x)
        return 1 - g if self.cfg.cell == "deltanet" else g

    def _qkv(self, x):
        B, S, _ = x.shape
        q, k, v = self.qkv(x).view(B, S, 3, self.NH, self.DH).permute(2, 0, 3, 1, 4)  # 3 × (B, NH, S, DH)
        return F.normalize(q, dim=-1), F.normalize(k, dim=-1), v

    def _finish(self, h):  # h (B, NH, S, DH) → (B, S, E)
        h = F.layer_norm(h, (self.DH,))
        return self.out(h.transpose(1, 2).reshape(h.shape[0], h.shape[2], -1))

    def forward(self, x):
        q, k, v = self._qkv(x)
        g = self.gate_values(x)
        h = deltanet_parallel(q, k, v, g) if self.cfg.cell == "deltanet" else decay_parallel(q, k, v, g)
        return self._finish(h)

    def step(self, x, S):
        """x (B, 1, E), S (B, NH, DH, DH) → (y (B, 1, E), new S)."""
        q, k, v = (t[:, :, 0] for t in self._qkv(x))
        g = self.gate_values(x)[:, :, 0]
        h, S = (deltanet_step if self.cfg.cell == "deltanet" else decay_step)(q, k, v, g, S)
        return self._finish(h[:, :, None]), S


class LinearRNNBlock(nn.Module):
    def __init__(self, cfg: LinearRNNConfig):
        super().__init__()
        E = cfg.embedding_dim
        self.norm1 = nn.LayerNorm(E)
        self.rnn = LinearRNNLayer(cfg)
        self.norm2 = nn.LayerNorm(E)
        self.mlp = nn.Sequential(nn.Linear(E, cfg.mlp_factor * E), nn.GELU(), nn.Linear(cfg.mlp_factor * E, E))
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x):
        x = x + self.drop(self.rnn(self.norm1(x)))
        return x + self.drop(self.mlp(self.norm2(x)))

    def step(self, x, S):
        y, S = self.rnn.step(self.norm1(x), S)
        x = x + y
        return x + self.mlp(self.norm2(x)), S


class LinearRNNLM(nn.Module):
    """The course's model interface (``xlstm_edu/models.py``): ``model(idx)``, ``init_state``, ``step``,
    ``num_params``."""

    def __init__(self, cfg: LinearRNNConfig):
        super().__init__()
        if not isinstance(cfg, LinearRNNConfig):
            raise ValueError(f"cfg: expected a LinearRNNConfig, got {type(cfg).__name__}")
        self.cfg = cfg
        E = cfg.embedding_dim
        self.embedding = nn.Embedding(cfg.vocab_size, E)
        self.blocks = nn.ModuleList([LinearRNNBlock(cfg) for _ in range(cfg.num_blocks)])
        self.norm = nn.LayerNorm(E)
        self.head = nn.Linear(E, cfg.vocab_size, bias=False)

    def num_params(self, non_embedding: bool = False) -> int:
        n = sum(p.numel() for p in self.parameters())
        return n - self.embedding.weight.numel() if non_embedding else n

    def _check_idx(self, idx, ndim, layout):
        if not isinstance(idx, torch.Tensor) or idx.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"idx: expected an integer (long) tensor {layout}, got {type(idx).__name__} "
                             f"{getattr(idx, 'dtype', '')}")
        if idx.ndim != ndim or (ndim == 2 and idx.shape[1] < 1):
            raise ValueError(f"idx: expected shape {layout}, got {tuple(idx.shape)}")
        if ndim == 2 and idx.shape[1] > self.cfg.context_length:
            raise ValueError(f"idx: sequence length {idx.shape[1]} is longer than context_length="
                             f"{self.cfg.context_length}")
        if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= self.cfg.vocab_size):
            raise ValueError(f"idx: token ids must lie in [0, {self.cfg.vocab_size}), got min {int(idx.min())}, "
                             f"max {int(idx.max())}")

    def forward(self, idx):
        """idx (B, S) → logits (B, S, V)."""
        self._check_idx(idx, 2, "(B, S)")
        x = self.embedding(idx)
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))

    @torch.no_grad()
    def eigenvalues(self, idx) -> list:
        """The data-dependent eigenvalue of every step's transition, per block: a list of (B, NH, S) tensors
        (1 - β for DeltaNet with ‖k‖ = 1, a for the decay cell). In block 0 it depends on the current token only."""
        self._check_idx(idx, 2, "(B, S)")
        x, out = self.embedding(idx), []
        for block in self.blocks:
            out.append(block.rnn.eigenvalue(block.norm1(x)))
            x = block(x)
        return out

    def init_state(self, batch_size: int, device=None):
        """One zero matrix state (B, NH, DH, DH) per block."""
        c = self.cfg
        DH = c.embedding_dim // c.num_heads
        w = self.embedding.weight
        return [torch.zeros(batch_size, c.num_heads, DH, DH, dtype=w.dtype, device=device or w.device)
                for _ in self.blocks]

    def step(self, idx_t, state=None):
        """idx_t (B,) → (logits (B, V), new state); equals ``model(idx)[:, t]``."""
        self._check_idx(idx_t, 1, "(B,)")
        if state is None:
            state = self.init_state(idx_t.shape[0], idx_t.device)
        if len(state) != len(self.blocks):
            raise ValueError(f"state: expected a list of {len(self.blocks)} block states, got {len(state)}")
        x = self.embedding(idx_t)[:, None]
        new = []
        for block, S in zip(self.blocks, state):
            x, S = block.step(x, S)
            new.append(S)
        return self.head(self.norm(x))[:, 0], new
