"""Training FLOPs per token of the course's language models, counted by formula (for ``bench lm``'s MFU column).

What is counted: the matrix products (2 FLOPs per multiply-add) of one forward pass, per token; element-wise work
(norms, gates, exp, activations, the optimizer) is left out — a few percent of the total for these models, but
on a CPU it can take a large share of the *time*, which is what a low MFU shows. Training is counted as
3 × forward: the backward pass computes two matrix products (input gradient and weight gradient) for each one
of the forward pass. The tests check every formula below against torch's own FLOP counter
(``torch.utils.flop_counter.FlopCounterMode``) on a forward pass of the course's implementation.

Conventions, so that the numbers compare across models:

* the mLSTM cell is counted in its chunkwise form at the configured chunk length L (the form the course and the
  official 7B kernels train with): per head and token, inside the chunk q kᵀ (2·L·DK) and (q kᵀ ⊙ D)[v | 1]
  (2·L·(DV+1): the normalizer rides along as a column of ones), the incoming state q [C | n] (2·DK·(DV+1)) and
  the state update kᵀ [v | 1] (2·DK·(DV+1)); full L×L squares, as ``mlstm_chunkwise`` computes them;
* causal attention in the GPT is counted as the full S×S square (4·S·E per token and layer: q kᵀ and the
  weighted sum of v), the usual convention (PaLM's and nanoGPT's MFU);
* an official model is given the count of the course's model of the same architecture: the same useful work.
  The official 2024 mLSTM layer computes the cell in its quadratic parallel form on a CPU, i.e. more products
  than counted here; that extra work shows as a lower MFU, which is the point of the column.
"""

from __future__ import annotations

import math

__all__ = ["mlstm_cell_flops", "forward_flops", "train_flops_per_token"]


def mlstm_cell_flops(L: int, DK: int, DV: int) -> int:
    """Matrix-product FLOPs per token and head of ``mlstm_chunkwise`` with chunk length L (see the module)."""
    return 2 * L * DK + 2 * L * (DV + 1) + 4 * DK * (DV + 1)


def _xlstm(cfg, S: int) -> dict:
    from xlstm_edu.nn.blocks import round_up

    E, V = cfg.embedding_dim, cfg.vocab_size
    out = dict(mlstm_blocks=0, mlstm_cell=0, slstm_blocks=0)
    n_m = cfg.num_blocks - len(cfg.slstm_at)
    if n_m:  # one mLSTM block (pre-up-projection, paper Fig. 11)
        I, NH, K, bs = round_up(cfg.mlstm_proj_factor * E), cfg.num_heads, cfg.conv1d_kernel_size, cfg.qkv_proj_blocksize
        DH, L = I // NH, min(cfg.chunk_size, S)
        m = (2 * E * 2 * I  # up-projection to x_m and z
             + 2 * I * K  # depthwise causal conv
             + 3 * 2 * I * bs  # block-diagonal q, k, v (blocks of bs)
             + 3 * 2 * I * 2 * NH  # gates from [q; k; v]
             + 2 * I * E)  # down-projection
        out["mlstm_blocks"] = n_m * m  # everything but the cell
        out["mlstm_cell"] = n_m * NH * mlstm_cell_flops(L, DH, DH)  # the cell at the inner width I
    if cfg.slstm_at:  # one sLSTM block (post-up-projection, paper Fig. 10)
        NH = cfg.slstm_num_heads or cfg.num_heads
        DH, K, H = E // NH, cfg.conv1d_kernel_size, round_up(cfg.ffn_proj_factor * E)
        s = (2 * E * K  # conv (feeds i, f)
             + 4 * 2 * E * DH  # head-wise input projections of the four gates
             + 4 * 2 * E * DH  # head-wise recurrent products R h_{t-1}
             + 2 * E * 2 * H + 2 * H * E)  # gated MLP
        out["slstm_blocks"] = len(cfg.slstm_at) * s
    out["head"] = 2 * E * V
    return out


def _gpt(cfg, S: int) -> dict:
    E, V = cfg.embedding_dim, cfg.vocab_size
    return dict(projections=cfg.num_blocks * (2 * E * 3 * E + 2 * E * E + 2 * 2 * E * 4 * E),
                attention=cfg.num_blocks * 4 * S * E, head=2 * E * V)


def _lstm(cfg, S: int) -> dict:
    E, H, V = cfg.embedding_dim, cfg.hidden_size, cfg.vocab_size
    layers = sum(2 * 4 * H * ((E if j == 0 else H) + H) for j in range(cfg.num_blocks))
    return dict(lstm=layers, head=2 * H * V)


def _large(cfg, S: int) -> dict:
    from xlstm_edu.nn.large import count_flops

    c = count_flops(cfg, S)
    return {k: c[k] for k in ("projections", "ffn", "cell", "head")}


def forward_flops(cfg, seq_len: int) -> dict:
    """Forward matrix-product FLOPs per token, part by part plus ``"total"``, of the course's model with config
    ``cfg`` (``XLSTMConfig``, ``GPTConfig``, ``LSTMLMConfig`` or ``XLSTMLargeConfig``) at sequence length
    ``seq_len`` (a multiple of the chunk size, or shorter than one chunk)."""
    name = type(cfg).__name__
    fn = {"XLSTMConfig": _xlstm, "GPTConfig": _gpt, "LSTMLMConfig": _lstm, "XLSTMLargeConfig": _large}.get(name)
    if fn is None:
        raise ValueError(f"cfg: expected the config of a course model (XLSTMConfig, GPTConfig, LSTMLMConfig, "
                         f"XLSTMLargeConfig), got {name}")
    if isinstance(seq_len, bool) or not isinstance(seq_len, int) or seq_len < 1:
        raise ValueError(f"seq_len: expected an integer >= 1, got {seq_len!r}")
    parts = fn(cfg, seq_len)
    parts["total"] = sum(parts.values())
    return parts


def train_flops_per_token(cfg, seq_len: int) -> int:
    """≈ 3 × the forward matrix-product FLOPs per token (forward + backward)."""
    return 3 * forward_flops(cfg, seq_len)["total"]


def describe(flops: float) -> str:
    """1.23 GFLOP and the like."""
    if flops <= 0 or not math.isfinite(flops):
        return str(flops)
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if flops >= scale:
            return f"{flops / scale:.3g} {unit}FLOP"
    return f"{flops:.3g} FLOP"
