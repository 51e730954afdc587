"""Explorer 1, the gate lab: one LSTM unit and one sLSTM unit fed the same gate pre-activations.

The sliders shape four pre-activation sequences over T steps (a "write" of z = +0.96 at t = 3, an optional
"overwrite" with z = -0.96 later, an optional "forget" step where f̃ = -10, and resting values elsewhere).
Both cells get them with no recurrent weights (R = 0, b = 0), so the gates are exactly the sliders' values:

* LSTM (eq. 2-7):  i = σ(ĩ), f = σ(f̃), c_t = f c_{t-1} + i z, h = o tanh(c)
* sLSTM (eq. 8-14): i = exp(ĩ), f = σ(f̃) or exp(f̃), c_t = f c_{t-1} + i z, n_t = f n_{t-1} + i, h = o c/n,
  run stabilized (eq. 15-17: m, i', f') and, for comparison, unstabilized in the chosen dtype, where it overflows
  as soon as exp(ĩ) (or c, n) exceeds the dtype's largest number: ĩ > log(finfo(dtype).max).

All numbers come from the package's cells (``xlstm_edu.np.lstm.lstm_step``, ``xlstm_edu.np.slstm.slstm_step``,
``slstm_recurrent_unstabilized``) and gates (``xlstm_edu.np.gating``); this module only arranges and draws them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from xlstm_edu._validate import check_choice, check_positive_int
from xlstm_edu.np.gating import FORGET_GATES, log_forget_gate, sigmoid, stabilizer_step, unstabilized_gates
from xlstm_edu.viz._base import COLORS, Explorer, figsize, figure_style

DTYPES = ("float16", "float32", "float64")
T_WRITE = 3  # the first write always happens here
Z_WRITE, Z_OVERWRITE, O_PRE, F_FORGET = 2.0, -2.0, 2.0, -10.0  # z = tanh(±2) = ±0.96, o = σ(2) = 0.88

PRESETS = {
    # remember: one write, forget gate wide open (f = σ(6) = 0.9975), input gate shut otherwise
    "remember": dict(i_write=1.0, i_overwrite=1.0, t_overwrite=0, t_forget=0, i_rest=-6.0, f_rest=6.0,
                     dtype="float32", stabilized=True),
    # overwrite: a second, stronger write of the opposite sign; the exponential gate lets sLSTM replace the memory
    "overwrite": dict(i_write=1.0, i_overwrite=4.0, t_overwrite=20, t_forget=0, i_rest=-6.0, f_rest=6.0,
                      dtype="float32", stabilized=True),
    # forget everything: one step with f̃ = -10 (f = 4.5e-5) wipes both memories
    "forget everything": dict(i_write=1.0, i_overwrite=1.0, t_overwrite=0, t_forget=20, i_rest=-6.0,
                              f_rest=6.0, dtype="float32", stabilized=True),
    # overflow: ĩ = 12 > log(65504) = 11.09, unstabilized in float16: exp(ĩ) = inf, then h = inf/inf = NaN
    "overflow": dict(i_write=12.0, i_overwrite=1.0, t_overwrite=0, t_forget=0, i_rest=-6.0, f_rest=6.0,
                     dtype="float16", stabilized=False),
}


def overflow_threshold(dtype) -> float:
    """The largest ĩ with finite exp(ĩ) in ``dtype``, about log(finfo(dtype).max): 11.09 (float16),
    88.72 (float32), 709.78 (float64)."""
    return float(np.log(float(np.finfo(np.dtype(dtype)).max)))


def gate_inputs(T: int = 40, i_write: float = 1.0, i_overwrite: float = 4.0, t_overwrite: int = 20,
                t_forget: int = 0, i_rest: float = -6.0, f_rest: float = 6.0) -> dict:
    """The four pre-activation sequences (float64, length T) the sliders describe.

    ĩ = i_rest except i_write at t = 3 and i_overwrite at t_overwrite; z̃ = +2 at the write, -2 at the overwrite,
    0 elsewhere; f̃ = f_rest except -10 at t_forget; õ = 2. t_overwrite = 0 or t_forget = 0 means "never".
    """
    T = check_positive_int(T, "T")
    if T <= T_WRITE:
        raise ValueError(f"T: expected more than {T_WRITE} steps (the first write is at t = {T_WRITE}), got {T}")
    for name, t in (("t_overwrite", t_overwrite), ("t_forget", t_forget)):
        if not (0 <= int(t) < T):
            raise ValueError(f"{name}: expected 0 (never) or a step 1..{T - 1}, got {t!r}")
    i_pre = np.full(T, float(i_rest))
    f_pre = np.full(T, float(f_rest))
    z_pre = np.zeros(T)
    o_pre = np.full(T, O_PRE)
    i_pre[T_WRITE], z_pre[T_WRITE] = i_write, Z_WRITE
    if t_overwrite:
        i_pre[t_overwrite], z_pre[t_overwrite] = i_overwrite, Z_OVERWRITE
    if t_forget:
        f_pre[t_forget] = F_FORGET
    return {"i": i_pre, "f": f_pre, "z": z_pre, "o": o_pre}


@dataclass
class GateLabData:
    """Everything the gate-lab figure shows; each array has length T. ``pre`` holds ĩ, f̃, z̃, õ as used (in
    ``dtype``). lstm: i, f, o, z, c, h. slstm (stabilized): i_prime, f_prime, m, c, n, h. raw (unstabilized, in
    ``dtype``): i, f, c, n, h. ``overflow_step`` is the first t where the unstabilized cell has an inf or NaN
    (None if it never does); ``i_overflow_step`` the first t where exp(ĩ) alone is inf."""

    dtype: str
    forget_gate: str
    stabilized: bool
    threshold: float
    pre: dict
    lstm: dict
    slstm: dict
    raw: dict
    overflow_step: int | None
    i_overflow_step: int | None
    overflow_what: str = ""
    t: np.ndarray = field(default=None)


def _first(mask) -> int | None:
    idx = np.flatnonzero(mask)
    return int(idx[0]) if idx.size else None


def gate_lab_data(i_write: float = 1.0, i_overwrite: float = 4.0, t_overwrite: int = 20, t_forget: int = 0,
                  i_rest: float = -6.0, f_rest: float = 6.0, dtype: str = "float32", stabilized: bool = True,
                  forget_gate: str = "sigmoid", T: int = 40) -> GateLabData:
    """Run both cells on the slider sequences (see :func:`gate_inputs`) in ``dtype``; pure, no widgets."""
    from xlstm_edu.np.lstm import lstm_step
    from xlstm_edu.np.slstm import slstm_recurrent_unstabilized, slstm_step

    check_choice(dtype, "dtype", DTYPES)
    check_choice(forget_gate, "forget_gate", FORGET_GATES)
    pre64 = gate_inputs(T, i_write, i_overwrite, t_overwrite, t_forget, i_rest, f_rest)
    dt = np.dtype(dtype)
    pre = {k: v.astype(dt) for k, v in pre64.items()}
    wx = np.stack([pre["i"], pre["f"], pre["z"], pre["o"]], axis=-1)[:, :, None]  # (T, 4, H=1), gate order i,f,z,o
    R_lstm, R_slstm, b = np.zeros((4, 1, 1), dt), np.zeros((4, 1, 1, 1), dt), np.zeros((4, 1), dt)

    # LSTM, step by step (eq. 2-7); with R = 0 its gates are σ of the sliders' values
    lstm = {k: np.empty(T, dt) for k in ("c", "h")}
    state = None
    for t in range(T):
        h, state = lstm_step(wx[t], R_lstm, b, state)
        lstm["h"][t], lstm["c"][t] = h[0], state[1][0]
    lstm.update(i=sigmoid(pre["i"]), f=sigmoid(pre["f"]), o=sigmoid(pre["o"]), z=np.tanh(pre["z"]))

    # sLSTM stabilized, step by step (eq. 8-17); i', f' from the package's stabilizer step (eq. 15-17)
    sl = {k: np.empty(T, dt) for k in ("c", "n", "m", "h")}
    state = None
    with np.errstate(over="ignore"):
        for t in range(T):
            h, state = slstm_step(wx[t], R_slstm, b, state, forget_gate=forget_gate)
            sl["h"][t], sl["c"][t], sl["n"][t], sl["m"][t] = h[0], state[1][0], state[2][0], state[3][0]
    log_f = log_forget_gate(pre["f"], forget_gate)
    m_prev = np.concatenate([[-np.inf], sl["m"][:-1]]).astype(dt)  # empty memory before t = 0 (official m_1 = ĩ_1)
    m_check, sl["i_prime"], sl["f_prime"] = stabilizer_step(log_f, pre["i"], m_prev)

    # sLSTM unstabilized in dtype (eq. 8-14): h from one run, c and n per step from the runs over each prefix
    # (the unstabilized state may hold inf, which a state argument would reject)
    raw = {}
    raw["i"], raw["f"] = unstabilized_gates(log_f, pre["i"])
    raw["h"] = slstm_recurrent_unstabilized(wx, R_slstm, b, forget_gate=forget_gate)[0][:, 0]
    raw["c"], raw["n"] = np.empty(T, dt), np.empty(T, dt)
    for t in range(T):
        _, (_, c_t, n_t) = slstm_recurrent_unstabilized(wx[: t + 1], R_slstm, b, forget_gate=forget_gate)
        raw["c"][t], raw["n"][t] = c_t[0], n_t[0]

    bad = {k: ~np.isfinite(raw[k]) for k in ("i", "f", "c", "n", "h")}
    overflow_step = _first(np.logical_or.reduce(list(bad.values())))
    what = ""
    if overflow_step is not None:
        names = [k for k in ("i", "f", "c", "n", "h") if bad[k][overflow_step]]
        what = ", ".join(f"{k} = {raw[k][overflow_step]}" for k in names)
    return GateLabData(dtype=dtype, forget_gate=forget_gate, stabilized=bool(stabilized),
                       threshold=overflow_threshold(dt), pre=pre, lstm=lstm, slstm=sl, raw=raw,
                       overflow_step=overflow_step, i_overflow_step=_first(bad["i"]), overflow_what=what,
                       t=np.arange(T))


def draw_gate_lab(d: GateLabData, classroom: bool = False):
    """Four rows: the pre-activations, then LSTM (left) and sLSTM (right) gates, states and outputs."""
    import matplotlib.pyplot as plt

    t = d.t
    step = dict(marker="o", markersize=3 if not classroom else 5)
    with figure_style(classroom):
        fig = plt.figure(figsize=figsize(11, 9.5, classroom), layout="constrained")
        gs = fig.add_gridspec(4, 2)
        ax_in = fig.add_subplot(gs[0, :])
        axes = [[fig.add_subplot(gs[r, c], sharex=ax_in) for c in range(2)] for r in (1, 2, 3)]
        (ax_lg, ax_sg), (ax_lc, ax_sc), (ax_lh, ax_sh) = axes

        # row 0: what the sliders feed both cells
        for k, lab in (("i", "ĩ (input gate)"), ("f", "f̃ (forget gate)"), ("z", "z̃ (cell input)")):
            ax_in.plot(t, d.pre[k].astype(float), color=COLORS[k], label=lab, **step)
        thr = d.threshold
        note = f"exp(ĩ) overflows in {d.dtype} for ĩ > {thr:.2f}"
        if np.max(d.pre["i"]) > 0.5 * thr:
            ax_in.axhline(thr, color=COLORS["overflow"], linestyle="--", label=f"log(max {d.dtype}) = {thr:.2f}")
        ax_in.set_title(f"Gate pre-activations fed to both cells (no recurrent weights); {note}")
        ax_in.set_ylabel("pre-activation")
        ax_in.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")

        # LSTM column
        ax_lg.plot(t, d.lstm["i"], color=COLORS["i"], label="i = σ(ĩ)", **step)
        ax_lg.plot(t, d.lstm["f"], color=COLORS["f"], label="f = σ(f̃)", **step)
        ax_lg.plot(t, d.lstm["o"], color=COLORS["o"], label="o = σ(õ)", linestyle=":")
        ax_lg.set_ylim(-0.05, 1.05)
        ax_lg.set_title("LSTM gates (sigmoid, at most 1)")
        ax_lc.plot(t, d.lstm["c"], color=COLORS["c"], label="c (cell state)", **step)
        ax_lc.set_title("LSTM cell state: each write adds at most |z| ≤ 1")
        ax_lh.plot(t, d.lstm["h"], color=COLORS["h"], label="h = o·tanh(c)", **step)
        ax_lh.set_title("LSTM output")
        ax_lh.set_ylim(-1.05, 1.05)

        # sLSTM column
        over = d.overflow_step
        if d.stabilized:
            ax_sg.plot(t, d.slstm["i_prime"], color=COLORS["i"], label="i′ = exp(ĩ − m)", **step)
            ax_sg.plot(t, d.slstm["f_prime"], color=COLORS["f"], label="f′ = exp(log f + m₋₁ − m)", **step)
            ax_sg.set_ylim(-0.05, 1.05)
            ax_sg.set_title("sLSTM stabilized gates i′, f′ (eq. 16-17)")
            ax_sc.plot(t, d.slstm["c"], color=COLORS["c"], label="c·e^(−m)", **step)
            ax_sc.plot(t, d.slstm["n"], color=COLORS["n"], label="n·e^(−m)", **step)
            tw = ax_sc.twinx()
            tw.plot(t, d.slstm["m"], color=COLORS["m"], linestyle="--", label="m (right axis)")
            tw.set_ylabel("stabilizer m")
            tw.grid(False)
            h1, l1 = ax_sc.get_legend_handles_labels()
            h2, l2 = tw.get_legend_handles_labels()
            ax_sc.legend(h1 + h2, l1 + l2, loc="center right", fontsize="small")
            ax_sc.set_title("sLSTM stabilized states and the stabilizer m (eq. 15)")
            ax_sh.plot(t, d.slstm["h"], color=COLORS["h"], label="h = o·c/n", **step)
            ax_sh.set_title("sLSTM output (stabilized; the same h as without m)")
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                ax_sg.plot(t, d.raw["i"].astype(float), color=COLORS["i"], label="i = exp(ĩ)", **step)
                ax_sg.plot(t, d.raw["f"].astype(float), color=COLORS["f"], label="f", **step)
            ax_sg.set_yscale("log")
            ax_sg.set_title(f"sLSTM raw gates in {d.dtype} (log scale)")
            ax_sc.plot(t, d.raw["c"].astype(float), color=COLORS["c"], label="c", **step)
            ax_sc.plot(t, d.raw["n"].astype(float), color=COLORS["n"], label="n", **step)
            finite = np.concatenate([d.raw["c"], d.raw["n"]]).astype(float)
            finite = finite[np.isfinite(finite)]
            top = max(float(np.abs(finite).max()) if finite.size else 1.0, 1e-3)
            ax_sc.set_yscale("symlog", linthresh=max(top * 1e-3, 1e-6))
            ax_sc.set_ylim(-2 * top if finite.size and finite.min() < 0 else 0, 2 * top)
            ax_sc.set_title(f"sLSTM unstabilized states in {d.dtype} (symlog scale)")
            ax_sc.legend(loc="upper left", fontsize="small")
            ax_sh.plot(t, d.slstm["h"].astype(float), color="0.6", linestyle=":", linewidth=3,
                       label="stabilized h (reference)")
            ax_sh.plot(t, d.raw["h"].astype(float), color=COLORS["h"], label="unstabilized h", **step)
            ax_sh.set_title(f"sLSTM output, unstabilized in {d.dtype}")
            if over is not None:
                for ax in (ax_sg, ax_sc, ax_sh):
                    ax.axvspan(over - 0.5, t[-1] + 0.5, color=COLORS["overflow"], alpha=0.15, hatch="//",
                               label="inf / NaN" if ax is ax_sh else None)
                ax_sg.annotate(f"overflow at t = {over}:\n{d.overflow_what}", xy=(over, 0.5),
                               xycoords=("data", "axes fraction"), color=COLORS["overflow"], fontsize="small",
                               xytext=(6, 0), textcoords="offset points",
                               bbox=dict(boxstyle="round", facecolor="white", alpha=0.9))
        ax_sh.set_ylim(-1.05, 1.05)

        for ax in (ax_lg, ax_sg, ax_lc, ax_lh, ax_sh):
            ax.legend(loc="best", fontsize="small")
        for ax in (ax_lh, ax_sh):
            ax.set_xlabel("time step t")
        for ax in (ax_lg, ax_sg):
            ax.set_ylabel("gate value")
        for ax in (ax_lc, ax_sc):
            ax.set_ylabel("state")
        for ax in (ax_lh, ax_sh):
            ax.set_ylabel("h")
        status = "no overflow" if over is None else f"overflow at t = {over}"
        fig.suptitle(f"LSTM vs sLSTM, same inputs · sLSTM {'stabilized' if d.stabilized else 'unstabilized'} · "
                     f"{d.dtype} · {d.forget_gate} forget gate · unstabilized cell: {status}")
    return fig


class GateLab(Explorer):
    """Sliders for ĩ, f̃ and the event times, presets, stabilized/unstabilized, dtype, forget-gate kind."""

    title = "Gate lab: an LSTM and an sLSTM unit on the same gate inputs"
    what_to_look_for = [
        "<b>overwrite</b> (the default): the second write has ĩ = 4. The sLSTM output h = o·c/n flips to the new "
        "value almost at once (exp(4)/exp(1) = 20 times the weight), the LSTM only moves part of the way: its "
        "sigmoid gate cannot give the new value more weight than 1.",
        "<b>stabilized</b>: c·e^(−m) and n·e^(−m) stay small while m (dashed) carries the scale; i′ and f′ never "
        "exceed 1. h is the same with and without m.",
        "<b>overflow</b>: switch to <i>unstabilized</i>; in float16 exp(ĩ) is inf once ĩ > 11.09 (float32: 88.72, "
        "float64: 709.78). Move <i>ĩ at write</i> across that line and watch the hatched inf/NaN region appear.",
        "<b>forget everything</b>: a single step with f̃ = −10 wipes both memories.",
    ]
    css_class = "xlstm-gate-lab"
    passive = ("preset",)

    def __init__(self, preset: str = "overwrite", classroom: bool = False, T: int = 40):
        import ipywidgets as w

        check_choice(preset, "preset", list(PRESETS))
        self.T = check_positive_int(T, "T")
        p = PRESETS[preset]
        st = {"description_width": "initial"}
        lay = w.Layout(width="330px")
        cap = self._slider_max(p["dtype"])
        controls = {
            "preset": w.Dropdown(options=list(PRESETS), value=preset, description="preset", style=st,
                                 layout=w.Layout(width="260px")),
            "i_write": w.FloatSlider(value=p["i_write"], min=-10, max=cap, step=0.1,
                                     description=f"ĩ at write (t={T_WRITE})", style=st, layout=lay),
            "i_overwrite": w.FloatSlider(value=p["i_overwrite"], min=-10, max=cap, step=0.1,
                                         description="ĩ at overwrite", style=st, layout=lay),
            "t_overwrite": w.IntSlider(value=p["t_overwrite"], min=0, max=self.T - 1,
                                       description="overwrite at t (0 = never)", style=st, layout=lay),
            "t_forget": w.IntSlider(value=p["t_forget"], min=0, max=self.T - 1,
                                    description="forget (f̃ = −10) at t (0 = never)", style=st, layout=lay),
            "i_rest": w.FloatSlider(value=p["i_rest"], min=-10, max=10, step=0.1, description="ĩ elsewhere",
                                    style=st, layout=lay),
            "f_rest": w.FloatSlider(value=p["f_rest"], min=-10, max=10, step=0.1, description="f̃ elsewhere",
                                    style=st, layout=lay),
            "stabilized": w.Dropdown(options=[("stabilized", True), ("unstabilized", False)],
                                     value=p["stabilized"], description="sLSTM", style=st,
                                     layout=w.Layout(width="220px")),
            "dtype": w.Dropdown(options=list(DTYPES), value=p["dtype"], description="dtype", style=st,
                                layout=w.Layout(width="180px")),
            "forget_gate": w.Dropdown(options=list(FORGET_GATES), value="sigmoid", description="forget gate",
                                      style=st, layout=w.Layout(width="220px")),
        }
        controls["preset"].observe(self._on_preset, names="value")
        controls["dtype"].observe(self._on_dtype, names="value")
        rows = [["preset", "stabilized", "dtype", "forget_gate"], ["i_write", "i_overwrite", "t_overwrite"],
                ["i_rest", "f_rest", "t_forget"]]
        super().__init__(controls, rows, classroom=classroom)

    @staticmethod
    def _slider_max(dtype: str) -> float:
        """Let ĩ reach a little past the dtype's overflow threshold (16 for float16, 107 for float32, ...)."""
        return float(np.ceil(overflow_threshold(dtype) * 1.2 + 2))

    def compute(self, **params) -> GateLabData:
        return gate_lab_data(T=self.T, **params)

    def draw(self, data, classroom=False):
        return draw_gate_lab(data, classroom=classroom)

    def _on_dtype(self, change):
        cap = self._slider_max(change["new"])
        for name in ("i_write", "i_overwrite"):
            s = self.controls[name]
            if s.value > cap:
                s.value = cap
            s.max = cap

    def _on_preset(self, change):
        p = PRESETS[change["new"]]
        # widen the ĩ sliders first so that the preset's value is not clipped
        self._hold = True
        try:
            self.controls["dtype"].value = p["dtype"]
        finally:
            self._hold = False
        self.set(**p)
