"""Explorer 3, the parallel form: the gate matrix D of the mLSTM, like an attention mask with decay.

With b_t = Σ_{s≤t} log f_s: log D_ts = b_t - b_s + ĩ_s for s ≤ t (-∞ above the diagonal), m_t = max_s log D_ts
row by row, D' = exp(log D - m), S̃ = (Q Kᵀ/√DK) ⊙ D', and H = (S̃/(max(|Σ_s S̃_ts|, e^(-m_t)) + eps)) V
(App. A.3, eq. 71-86). Every array comes from ``xlstm_edu.np.mlstm_parallel.mlstm_parallel_parts``; the check
against the recurrent form uses ``xlstm_edu.np.mlstm_recurrent.mlstm_recurrent``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xlstm_edu._validate import check_choice, check_positive_int
from xlstm_edu.np.gating import FORGET_GATES
from xlstm_edu.viz._base import COLORS, DIVERGING, SEQUENTIAL, Explorer, figsize, figure_style

DK_DEFAULT = 8
F_DIP = -4.0  # f̃ at the "forget" step: σ(-4) = 0.018


def parallel_inputs(S: int = 16, i_level: float = -1.0, i_spike: float = 3.0, t_spike: int = 5,
                    f_level: float = 3.0, t_forget: int = 10, seed: int = 0, head_dim: int = DK_DEFAULT) -> dict:
    """q, k, v (S, DK) random normal (seed); ĩ = i_level except i_spike at t_spike; f̃ = f_level except -4 at
    t_forget (t_forget = -1: never). Returns a dict with q, k, v, i_pre, f_pre (float64)."""
    S = check_positive_int(S, "S")
    DK = check_positive_int(head_dim, "head_dim")
    for name, t in (("t_spike", t_spike), ("t_forget", t_forget)):
        if not (-1 <= int(t) < S):
            raise ValueError(f"{name}: expected -1 (never) or a step 0..{S - 1}, got {t!r}")
    rng = np.random.default_rng(seed)
    q, k, v = (rng.standard_normal((S, DK)) for _ in range(3))
    i_pre = np.full(S, float(i_level))
    f_pre = np.full(S, float(f_level))
    if t_spike >= 0:
        i_pre[t_spike] = i_spike
    if t_forget >= 0:
        f_pre[t_forget] = F_DIP
    return dict(q=q, k=k, v=v, i_pre=i_pre, f_pre=f_pre)


@dataclass
class ParallelFormData:
    inputs: dict
    parts: dict  # from mlstm_parallel_parts: log_f, b, log_D, m, D_prime, qk, S_tilde, n, C_norm, h
    h_recurrent: np.ndarray  # (S, DK) the recurrent form's output, same eps
    max_diff: float  # max |h_parallel - h_recurrent| with the chosen eps
    max_diff_eps0: float  # the same with eps = 0: round-off only
    m_recurrent: np.ndarray  # (S,) the recurrent stabilizer (starts at m_0 = 0)
    eps: float
    forget_gate: str


def parallel_form_data(S: int = 16, i_level: float = -1.0, i_spike: float = 3.0, t_spike: int = 5,
                       f_level: float = 3.0, t_forget: int = 10, forget_gate: str = "sigmoid", seed: int = 0,
                       eps: float = 1e-6, head_dim: int = DK_DEFAULT) -> ParallelFormData:
    """All intermediates of the parallel form for the chosen gates, and the check against the recurrent form."""
    from xlstm_edu.np.mlstm_parallel import mlstm_parallel_parts
    from xlstm_edu.np.mlstm_recurrent import mlstm_recurrent, mlstm_step

    check_choice(forget_gate, "forget_gate", FORGET_GATES)
    x = parallel_inputs(S, i_level, i_spike, t_spike, f_level, t_forget, seed, head_dim)
    args = (x["q"], x["k"], x["v"], x["i_pre"], x["f_pre"])
    parts = mlstm_parallel_parts(*args, eps=eps, forget_gate=forget_gate)
    h_rec, _ = mlstm_recurrent(*args, eps=eps, forget_gate=forget_gate)
    h_par0 = mlstm_parallel_parts(*args, eps=0.0, forget_gate=forget_gate)["h"]
    h_rec0, _ = mlstm_recurrent(*args, eps=0.0, forget_gate=forget_gate)
    m_rec, state = np.empty(S), None  # the recurrent m_t, step by step
    for t in range(S):
        _, state = mlstm_step(x["q"][t], x["k"][t], x["v"][t], x["i_pre"][t], x["f_pre"][t], state=state,
                              eps=eps, forget_gate=forget_gate)
        m_rec[t] = state[2]
    return ParallelFormData(inputs=x, parts=parts, h_recurrent=h_rec,
                            max_diff=float(np.max(np.abs(parts["h"] - h_rec))),
                            max_diff_eps0=float(np.max(np.abs(h_par0 - h_rec0))), m_recurrent=m_rec,
                            eps=float(eps), forget_gate=forget_gate)


def draw_parallel_form(d: ParallelFormData, classroom: bool = False):
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    p = d.parts
    S = len(p["m"])
    with figure_style(classroom):
        fig, axes = plt.subplots(1, 4, figsize=figsize(14, 4.3, classroom), layout="constrained",
                                 gridspec_kw={"width_ratios": [1, 0.45, 1, 1]})
        ax_ld, ax_m, ax_dp, ax_st = axes
        cmap = plt.get_cmap(SEQUENTIAL).with_extremes(bad="0.85")  # the masked future (-∞) in light grey
        logD = np.ma.masked_invalid(p["log_D"])
        im = ax_ld.imshow(logD, cmap=cmap, interpolation="nearest")
        fig.colorbar(im, ax=ax_ld, shrink=0.8)
        ax_ld.set_title("log D_ts = b_t − b_s + ĩ_s  (grey: −∞)")

        rows = np.arange(S)
        ax_m.plot(p["m"], rows, color=COLORS["m"], marker="o", label="m_t = max_s log D_ts")
        ax_m.plot(d.m_recurrent, rows, color=COLORS["f"], marker="x", linestyle="--", label="recurrent m_t (m₀ = 0)")
        ax_m.set_ylim(S - 0.5, -0.5)
        ax_m.set_title("row-wise stabilizer")
        ax_m.set_xlabel("m")
        ax_m.legend(loc="lower left", fontsize="x-small")

        im = ax_dp.imshow(p["D_prime"], cmap=SEQUENTIAL, vmin=0, vmax=1, interpolation="nearest")
        fig.colorbar(im, ax=ax_dp, shrink=0.8)
        ax_dp.set_title("D′ = exp(log D − m)  (max 1 per row)")
        lim = float(np.abs(p["S_tilde"]).max()) or 1.0
        im = ax_st.imshow(p["S_tilde"], cmap=DIVERGING, vmin=-lim, vmax=lim, interpolation="nearest")
        fig.colorbar(im, ax=ax_st, shrink=0.8)
        ax_st.set_title("S̃ = (Q Kᵀ/√DK) ⊙ D′")
        for ax in (ax_ld, ax_dp, ax_st):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_xlabel("s (key / source step)")
            ax.grid(False)
        for ax in (ax_ld, ax_m):
            ax.set_ylabel("t (query / output step)")
        same = d.max_diff_eps0 < 1e-10
        fig.suptitle(f"parallel vs recurrent (float64): max |Δh| = {d.max_diff:.1e} with eps = {d.eps:g}, "
                     f"{d.max_diff_eps0:.1e} with eps = 0 ({'the same function up to round-off' if same else 'DIFFERENT'})")
    return fig


class ParallelForm(Explorer):
    title = "Parallel form: the gate matrix D, its stabilizer m and the attention-like S̃"
    what_to_look_for = [
        "Each <b>row t</b> of log D is how much step t remembers of each earlier step s: the input gate ĩ_s of "
        "that step plus the log forget gates in between. The <b>spike</b> in ĩ makes a bright column; the "
        "<b>forget step</b> darkens everything left of it in all later rows.",
        "m_t is the row maximum, so every row of D′ has its largest entry exactly 1 and nothing overflows.",
        "The readout compares with the recurrent form: with eps = 0 they agree to round-off; with eps > 0 they "
        "differ at the eps·e^m level, because the recurrent m starts at m₀ = 0 and the parallel one at −∞.",
    ]
    css_class = "xlstm-parallel-form"

    def __init__(self, S: int = 16, classroom: bool = False):
        import ipywidgets as w

        st = {"description_width": "initial"}
        lay = w.Layout(width="300px")
        self._S = check_positive_int(S, "S")
        controls = {
            "S": w.IntSlider(value=S, min=4, max=32, description="sequence length S", style=st, layout=lay),
            "i_level": w.FloatSlider(value=-1.0, min=-5, max=5, step=0.1, description="ĩ (all steps)", style=st,
                                     layout=lay),
            "i_spike": w.FloatSlider(value=3.0, min=-5, max=10, step=0.1, description="ĩ at spike", style=st,
                                     layout=lay),
            "t_spike": w.IntSlider(value=min(5, S - 1), min=-1, max=S - 1, description="spike at t (−1 = none)",
                                   style=st, layout=lay),
            "f_level": w.FloatSlider(value=3.0, min=-3, max=10, step=0.1, description="f̃ (all steps)", style=st,
                                     layout=lay),
            "t_forget": w.IntSlider(value=min(10, S - 1), min=-1, max=S - 1,
                                    description="forget (f̃ = −4) at t (−1 = none)", style=st, layout=lay),
            "forget_gate": w.Dropdown(options=list(FORGET_GATES), value="sigmoid", description="forget gate",
                                      style=st, layout=w.Layout(width="220px")),
            "eps": w.Dropdown(options=[("1e-6 (official)", 1e-6), ("0", 0.0)], value=1e-6, description="eps",
                              style=st, layout=w.Layout(width="220px")),
            "seed": w.IntSlider(value=0, min=0, max=20, description="seed (q, k, v)", style=st, layout=lay),
        }
        controls["S"].observe(self._on_S, names="value")
        rows = [["S", "i_level", "f_level"], ["i_spike", "t_spike", "t_forget"], ["forget_gate", "eps", "seed"]]
        super().__init__(controls, rows, classroom=classroom)

    def _on_S(self, change):
        for name in ("t_spike", "t_forget"):
            s = self.controls[name]
            if s.value > change["new"] - 1:
                s.value = change["new"] - 1
            s.max = change["new"] - 1

    def compute(self, **params) -> ParallelFormData:
        for name in ("t_spike", "t_forget"):
            params[name] = min(params[name], params["S"] - 1)
        return parallel_form_data(**params)

    def draw(self, data, classroom=False):
        return draw_parallel_form(data, classroom=classroom)
