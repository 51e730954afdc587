"""Explorer 2, matrix memory: store key-value pairs in one mLSTM head and read them back.

Step j writes the pair (k_j, v_j) with gates ĩ, f̃ (eq. 19-20): C_j = f C_{j-1} + i k_j v_jᵀ, n_j = f n_{j-1} + i k_j.
Reading with query q = k_j afterwards is an mLSTM step that writes nothing (k = v = 0, f = 1) and returns
h = q̂ᵀC / (max(|q̂ᵀn|, 1) + eps) (eq. 21, q̂ = q/√DK). With orthogonal keys every stored value comes back exactly
(as long as its weight f^(age)·exp(ĩ) keeps the normalizer above the bound); at most DK keys can be orthogonal, so
beyond DK pairs (or with random keys) the other pairs leak into the answer ("crosstalk").

The numbers come from the package's mLSTM step (``xlstm_edu.np.mlstm_recurrent.mlstm_step``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xlstm_edu._validate import check_choice, check_positive_int
from xlstm_edu.viz._base import COLORS, DIVERGING, Explorer, figsize, figure_style

KEY_KINDS = ("orthogonal", "random")
DV = 8  # value dimension: small enough to show as bars


def make_keys(n_pairs: int, key_dim: int, kind: str, rng) -> np.ndarray:
    """(n_pairs, key_dim) keys with norm √key_dim. "orthogonal": the first min(n_pairs, key_dim) are mutually
    orthogonal (rows of a random orthogonal matrix); later ones cannot be, they are random. "random": all are
    random directions."""
    check_choice(kind, "keys", KEY_KINDS)
    keys = rng.standard_normal((n_pairs, key_dim))
    if kind == "orthogonal":
        q, _ = np.linalg.qr(rng.standard_normal((key_dim, key_dim)))
        m = min(n_pairs, key_dim)
        keys[:m] = q.T[:m]
    return keys / np.linalg.norm(keys, axis=1, keepdims=True) * np.sqrt(key_dim)


@dataclass
class MatrixMemoryData:
    keys: np.ndarray  # (N, DK)
    values: np.ndarray  # (N, DV)
    C: np.ndarray  # (DK, DV) the memory after all writes, unstabilized units: Σ_j w_j k_j v_jᵀ
    weights: np.ndarray  # (N,) w_j = f^(N-1-j) exp(ĩ): the weight of pair j in C at the end
    retrieved: np.ndarray  # (N, DV) read-out for every stored key after all writes
    query: int  # 0-based index of the chosen query
    error_after: np.ndarray  # (N,) mean relative error over the pairs stored so far, after storing n = 1..N pairs
    query_error_after: np.ndarray  # (N,) relative error of the chosen query after n pairs (NaN before it is stored)
    key_dim: int
    keys_kind: str
    n_orthogonal: int  # how many keys are mutually orthogonal

    @property
    def final_errors(self) -> np.ndarray:
        return np.linalg.norm(self.retrieved - self.values, axis=1) / np.linalg.norm(self.values, axis=1)


def _read(state, queries):
    """Read the memory ``state`` = (C, n, m) with each row of ``queries``: one mLSTM step that writes nothing
    (k = v = 0, so C and n do not change; f = exp(0) = 1 and ĩ = -1e30 keep m). Returns h (Nq, DV)."""
    from xlstm_edu.np.mlstm_recurrent import mlstm_step

    C, n, m = state
    nq, DK = queries.shape
    DVv = C.shape[-1]
    st = (np.broadcast_to(C, (nq,) + C.shape).copy(), np.broadcast_to(n, (nq,) + n.shape).copy(),
          np.full(nq, float(m)))
    h, _ = mlstm_step(queries, np.zeros((nq, DK)), np.zeros((nq, DVv)), np.full(nq, -1e30), np.zeros(nq),
                      state=st, forget_gate="exp")
    return h


def matrix_memory_data(n_pairs: int = 24, key_dim: int = 16, keys: str = "orthogonal", i_pre: float = 0.0,
                       f_pre: float = 8.0, query: int = 1, seed: int = 0) -> MatrixMemoryData:
    """Write ``n_pairs`` random pairs into one mLSTM memory and read each back; ``query`` is 1-based."""
    from xlstm_edu.np.mlstm_recurrent import mlstm_step

    N = check_positive_int(n_pairs, "n_pairs")
    DK = check_positive_int(key_dim, "key_dim")
    if not (1 <= int(query) <= N):
        raise ValueError(f"query: expected a pair number 1..{N}, got {query!r}")
    rng = np.random.default_rng(seed)
    K = make_keys(N, DK, keys, rng)
    V = rng.standard_normal((N, DV))
    errs, qerrs = np.empty(N), np.full(N, np.nan)
    state = None
    for j in range(N):
        # write pair j (eq. 19-20); the query of this write step does not matter, we read separately
        _, state = mlstm_step(K[j], K[j], V[j], np.float64(i_pre), np.float64(f_pre), state=state)
        h = _read(state, K[: j + 1])  # read every pair stored so far
        e = np.linalg.norm(h - V[: j + 1], axis=1) / np.linalg.norm(V[: j + 1], axis=1)
        errs[j] = e.mean()
        if j >= query - 1:
            qerrs[j] = e[query - 1]
    C, n, m = state
    log_f = -np.logaddexp(0.0, -float(f_pre))  # logσ(f̃), eq. 11
    w = np.exp((N - 1 - np.arange(N)) * log_f + float(i_pre))
    return MatrixMemoryData(keys=K, values=V, C=C * np.exp(m), weights=w, retrieved=h, query=int(query) - 1,
                            error_after=errs, query_error_after=qerrs, key_dim=DK, keys_kind=keys,
                            n_orthogonal=min(N, DK) if keys == "orthogonal" else 0)


def draw_matrix_memory(d: MatrixMemoryData, classroom: bool = False):
    import matplotlib.pyplot as plt

    N = len(d.values)
    with figure_style(classroom):
        fig, (ax_c, ax_v, ax_e) = plt.subplots(1, 3, figsize=figsize(13, 4.4, classroom), layout="constrained",
                                               gridspec_kw={"width_ratios": [0.8, 1.1, 1.3]})
        lim = float(np.abs(d.C).max()) or 1.0
        im = ax_c.imshow(d.C, cmap=DIVERGING, vmin=-lim, vmax=lim, aspect="auto", interpolation="nearest")
        fig.colorbar(im, ax=ax_c, shrink=0.85)
        ax_c.set_title(f"memory C = Σ w_j k_j v_jᵀ ({d.key_dim}×{DV})")
        ax_c.set_xlabel("value dimension")
        ax_c.set_ylabel("key dimension")
        ax_c.grid(False)

        j = d.query
        x = np.arange(DV)
        wbar = 0.4
        ax_v.bar(x - wbar / 2, d.values[j], wbar, color=COLORS["stored"], label=f"stored v_{j + 1}")
        ax_v.bar(x + wbar / 2, d.retrieved[j], wbar, color=COLORS["retrieved"], label=f"retrieved with q = k_{j + 1}",
                 hatch="//")
        ax_v.axhline(0, color="0.3", linewidth=0.8)
        ax_v.set_title(f"pair {j + 1} of {N}: relative error {d.final_errors[j]:.2g}")
        ax_v.set_xlabel("value component")
        ax_v.set_ylabel("value")
        ax_v.legend(loc="best", fontsize="small")

        n = np.arange(1, N + 1)
        ax_e.plot(n, d.error_after, color=COLORS["c"], marker="o", label="mean over stored pairs")
        ax_e.plot(n, d.query_error_after, color=COLORS["retrieved"], marker="s", linestyle="--",
                  label=f"pair {j + 1}")
        if d.keys_kind == "orthogonal" and N > d.key_dim:
            ax_e.axvline(d.key_dim + 0.5, color="0.4", linestyle=":", label=f"DK = {d.key_dim} orthogonal keys")
        ax_e.set_title("retrieval error as the memory fills")
        ax_e.set_xlabel("pairs stored")
        ax_e.set_ylabel("‖h − v‖ / ‖v‖")
        ax_e.set_ylim(bottom=0)
        ax_e.legend(loc="upper left", fontsize="small")
        fig.suptitle(f"mLSTM matrix memory: {N} pairs, DK = {d.key_dim}, {d.keys_kind} keys, "
                     f"weight of the oldest pair {d.weights[0]:.3g}, newest {d.weights[-1]:.3g}")
    return fig


class MatrixMemory(Explorer):
    title = "Matrix memory: store key-value pairs in C and read them back"
    what_to_look_for = [
        "With <b>orthogonal keys</b> every pair comes back exactly (error 0) until the memory holds more pairs "
        "than the key dimension DK: only DK directions can be orthogonal, after that pairs interfere.",
        "With <b>random keys</b> the error grows from the first pairs on, roughly like √(pairs/DK): larger DK, "
        "less crosstalk.",
        "Lower the <b>forget gate</b> f̃: old pairs fade (their weight is f^age·exp(ĩ)) and newer ones dominate the "
        "answer; the error of an old query grows while recent ones stay good.",
    ]
    css_class = "xlstm-matrix-memory"

    def __init__(self, n_pairs: int = 24, key_dim: int = 16, keys: str = "orthogonal", classroom: bool = False):
        import ipywidgets as w

        st = {"description_width": "initial"}
        lay = w.Layout(width="300px")
        controls = {
            "n_pairs": w.IntSlider(value=n_pairs, min=1, max=64, description="pairs stored", style=st, layout=lay),
            "key_dim": w.IntSlider(value=key_dim, min=2, max=64, description="key dim DK", style=st, layout=lay),
            "keys": w.Dropdown(options=list(KEY_KINDS), value=keys, description="keys", style=st,
                               layout=w.Layout(width="220px")),
            "i_pre": w.FloatSlider(value=0.0, min=-5, max=5, step=0.1, description="input gate ĩ", style=st,
                                   layout=lay),
            "f_pre": w.FloatSlider(value=8.0, min=-2, max=10, step=0.1, description="forget gate f̃", style=st,
                                   layout=lay),
            "query": w.IntSlider(value=1, min=1, max=n_pairs, description="query pair", style=st, layout=lay),
            "seed": w.IntSlider(value=0, min=0, max=20, description="seed", style=st, layout=lay),
        }
        controls["n_pairs"].observe(self._on_pairs, names="value")
        rows = [["n_pairs", "key_dim", "keys"], ["i_pre", "f_pre"], ["query", "seed"]]
        super().__init__(controls, rows, classroom=classroom)

    def _on_pairs(self, change):
        q = self.controls["query"]
        if q.value > change["new"]:
            q.value = change["new"]
        q.max = change["new"]

    def compute(self, **params) -> MatrixMemoryData:
        params["query"] = min(params["query"], params["n_pairs"])
        return matrix_memory_data(**params)

    def draw(self, data, classroom=False):
        return draw_matrix_memory(data, classroom=classroom)
