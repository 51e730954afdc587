"""Explorer 4, a trained model: colour every character of a text by what a gate did while reading it.

The text (and a generated continuation) is read by the model in one pass, and the blocks **report their gates**
(``model.prefill(idx, return_gates=True)``; ``XLSTMLM.step(..., return_gates=True)`` gives the same values token
by token, which a test holds equal). Nothing is recomputed outside the blocks and no hooks are attached:

* mLSTM block (one value per head): the input gate ĩ = log i, the forget gate f = σ(f̃), the output gate σ(z) of
  the block's swish(z) = z·σ(z) averaged over the head's units, and the normalizer in true units,
  log(‖n_t‖·e^{m_t}) (eq. 20).
* sLSTM block (one value per unit, averaged over the head's units): ĩ, σ(f̃), σ(õ) (pre-activations include
  the head's recurrent part R h_{t-1} and the bias, eq. 8-14) and the true normalizer log(n_t·e^{m_t}).
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xlstm_edu._validate import check_choice
from xlstm_edu.models import XLSTM_KINDS  # the registry's xLSTM kinds: slstm, mlstm, xlstm
from xlstm_edu.viz._base import Explorer, figsize, figure_style

GATES = {
    "input gate ĩ = log i": "input",
    "forget gate f = σ(f̃)": "forget",
    "output gate": "output",
    "normalizer log n (true units)": "normalizer",
}


# ------------------------------------------------------------------------------------------------- the model
def find_run(runs_dir: Path | str | None = None) -> Path | None:
    """The most recently written run folder under ``runs_dir`` (default ``xlstm_edu.paths.runs_dir()``) whose
    ``ckpt.pt`` holds an xLSTM-family model."""
    import json

    from xlstm_edu.paths import runs_dir as default_runs

    runs_dir = Path(runs_dir) if runs_dir is not None else default_runs()
    if not runs_dir.is_dir():
        return None
    found = []
    for ckpt in runs_dir.glob("*/ckpt.pt"):
        cfg = ckpt.parent / "config.json"
        try:
            kind = json.loads(cfg.read_text()).get("kind") if cfg.exists() else None
        except (OSError, ValueError):
            kind = None
        if kind in XLSTM_KINDS:
            found.append((ckpt.stat().st_mtime, ckpt.parent))
    return max(found)[1] if found else None


def train_tiny(out_dir: Path | str, max_iters: int = 300, kind: str = "xlstm") -> Path:
    """Train the ``cpu-tiny`` preset with the course's trainer (``xlstm_edu.train.train``) into ``out_dir``."""
    from xlstm_edu.runs import new_run, write_config
    from xlstm_edu.train import train

    check_choice(kind, "kind", XLSTM_KINDS)
    out_dir = Path(out_dir)
    run = new_run(kind, "cpu-tiny", train_overrides={"max_iters": int(max_iters)})
    write_config(out_dir, run)
    train(run.model, run.get_batch, run.cfg, out_dir, meta=run.meta, progress=False)
    return out_dir


def load_or_train(run_dir=None, *, fast: bool | None = None, max_iters: int | None = None):
    """(model, chars, run_dir, how): the run in ``run_dir``; else the newest xLSTM run in the course's runs/
    folder (``xlstm_edu.paths.runs_dir()``); else train ``cpu-tiny`` (300 steps, about a minute on one core, into
    runs/gate_explorer_tiny). In fast mode (XLSTM_EDU_FAST=1) a 10-step run goes into a temporary folder and
    runs/ is not searched, so the result does not depend on what is lying around."""
    from xlstm_edu.fastmode import fast_mode
    from xlstm_edu.paths import runs_dir as default_runs
    from xlstm_edu.sample import load_run

    fast = fast_mode() if fast is None else fast
    how = "loaded"
    if run_dir is None and not fast:
        run_dir = find_run()
    if run_dir is None:
        if fast:
            run_dir = Path(tempfile.mkdtemp(prefix="xlstm_edu_tiny_"))
            iters = max_iters or 10
        else:
            run_dir = default_runs() / "gate_explorer_tiny"
            iters = max_iters or 300
        train_tiny(run_dir, iters)
        how = f"trained {iters} steps"
    model, chars, meta = load_run(run_dir)
    if meta.get("kind") not in XLSTM_KINDS:
        raise ValueError(f"{run_dir}: expected an xLSTM-family run ({XLSTM_KINDS}), got {meta.get('kind')!r}")
    return model, chars, Path(run_dir), how


# ------------------------------------------------------------------------------------------------ the traces
@dataclass
class GateTraces:
    """Per block, per gate kind: an array (n_chars, NH). ``kinds[b]`` is "mLSTM" or "sLSTM"."""

    text: str
    n_prompt: int  # the first n_prompt characters were given, the rest generated
    kinds: list
    values: list  # values[b][gate] -> (n_chars, NH)
    num_heads: list
    raw: list  # raw[b]: mLSTM {"i_pre", "f_pre" (n_chars, NH), "q", "k", "v" (n_chars, NH, DH), "state" (C, n, m)
    #            after the last character}; sLSTM {"pre" (n_chars, 4, H), "h" (n_chars, H)}


def gate_traces(model, chars: str, prompt: str, n_generate: int = 0, *, temperature: float = 0.8,
                seed: int = 0) -> GateTraces:
    """Read ``prompt`` (then ``n_generate`` sampled characters) with the model and collect every block's gates
    (``model.prefill(idx, return_gates=True)``)."""
    import torch

    from xlstm_edu.sample import sample_text

    if not prompt:
        raise ValueError("text: expected at least one character")
    bad = sorted(set(prompt) - set(chars))
    if bad:
        raise ValueError(f"text: characters {bad!r} are not in the model's vocabulary")
    text = sample_text(model, chars, prompt, n_generate, temperature=temperature, seed=seed) if n_generate else prompt
    stoi = {c: i for i, c in enumerate(chars)}
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            _, state, gates = model.prefill(torch.tensor([[stoi[ch] for ch in text]]), return_gates=True)
    finally:
        model.train(was_training)
    values, raw = [], []
    for g, s in zip(gates, state):
        g = {k: (v[0].double().numpy() if k != "kind" else v) for k, v in g.items()}  # batch of one
        if g["kind"] == "mLSTM":
            values.append({"input": g["i_pre"], "forget": np.exp(g["log_f"]), "output": g["o"].mean(-1),
                           "normalizer": np.log(np.linalg.norm(g["n"], axis=-1)) + g["m"]})  # log(‖n‖·e^m)
            raw.append({**{k: g[k] for k in ("i_pre", "f_pre", "q", "k", "v")},
                        "state": tuple(t[0].double().numpy() for t in s[1:])})
        else:
            per_head = lambda x: x.mean(-1)  # noqa: E731  (S, NH, DH) -> (S, NH)
            values.append({"input": per_head(g["i_pre"]), "forget": per_head(np.exp(g["log_f"])),
                           "output": per_head(g["o"]), "normalizer": per_head(np.log(g["n"]) + g["m"])})
            S = len(text)
            pre = np.stack([g[k].reshape(S, -1) for k in ("i_pre", "f_pre", "z_pre", "o_pre")], axis=1)
            raw.append({"pre": pre, "h": g["h"].reshape(S, -1)})
    return GateTraces(text=text, n_prompt=len(prompt), kinds=[g["kind"] for g in gates], values=values,
                      num_heads=[blk.num_heads for blk in model.blocks], raw=raw)


# ------------------------------------------------------------------------------------------- data and figure
@dataclass
class TrainedModelData:
    text: str
    n_prompt: int
    values: np.ndarray  # (n_chars,) the chosen gate of the chosen layer and head, one value per character
    layer: int
    head: int
    gate: str
    kind: str
    vmin: float
    vmax: float


def trained_model_data(traces: GateTraces, layer: int = 0, head: int = 0,
                       gate: str = "forget gate f = σ(f̃)") -> TrainedModelData:
    """Pick one block, one head and one gate out of the traces (pure)."""
    if not (0 <= layer < len(traces.kinds)):
        raise ValueError(f"layer: expected 0..{len(traces.kinds) - 1}, got {layer!r}")
    if not (0 <= head < traces.num_heads[layer]):
        raise ValueError(f"head: expected 0..{traces.num_heads[layer] - 1}, got {head!r}")
    check_choice(gate, "gate", list(GATES))
    v = traces.values[layer][GATES[gate]][:, head].astype(np.float64)
    # the colour scale spans the values in this text (the colour bar shows it): forget gates, for example, live
    # between 0.9 and 1 and would all look the same on a 0..1 scale
    lo, hi = float(np.min(v)), float(np.max(v))
    if hi - lo < 1e-6:
        lo, hi = lo - 1e-3, hi + 1e-3
    return TrainedModelData(text=traces.text, n_prompt=traces.n_prompt, values=v, layer=layer, head=head,
                            gate=gate, kind=traces.kinds[layer], vmin=lo, vmax=hi)


def _show_char(c: str) -> str:
    return {"\n": "↵", " ": "·", "\t": "→"}.get(c, c)


def draw_trained_model(d: TrainedModelData, classroom: bool = False, width: int = 48):
    """The text in a grid, one cell per character, coloured by the gate; generated characters framed."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import Normalize

    n = len(d.text)
    rows = max(1, math.ceil(n / width))
    grid = np.full((rows, width), np.nan)
    grid.flat[:n] = d.values
    cmap = plt.get_cmap("viridis").with_extremes(bad="white")
    norm = Normalize(d.vmin, d.vmax)
    with figure_style(classroom):
        fig, ax = plt.subplots(figsize=figsize(12, 0.32 * rows + 1.2, classroom), layout="constrained")
        im = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, norm=norm, aspect="auto", interpolation="nearest")
        fs = 13 if classroom else 9
        for k, ch in enumerate(d.text):
            r, c = divmod(k, width)
            light = norm(d.values[k]) < 0.55  # white text on the dark end of viridis
            ax.text(c, r, _show_char(ch), ha="center", va="center", fontsize=fs, family="monospace",
                    color="white" if light else "black", fontstyle="italic" if k >= d.n_prompt else "normal")
            if k >= d.n_prompt:
                ax.add_patch(plt.Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, edgecolor="0.5", linewidth=0.6))
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
        fig.colorbar(im, ax=ax, shrink=0.9, label=d.gate)
        gen = len(d.text) - d.n_prompt
        ax.set_title(f"block {d.layer} ({d.kind}), head {d.head}: {d.gate}"
                     + (f" — the last {gen} characters (framed, italic) were generated by the model" if gen else ""))
    return fig


class TrainedModel(Explorer):
    title = "A trained model: what the gates do while it reads"
    what_to_look_for = [
        "<b>forget gate</b> (the default): where does the memory let go (darker cells)? Look at spaces, "
        "line ends (↵) and the start of a speaker's name; heads differ: some forget almost never. The colour "
        "scale spans the values in this text: read the colour bar.",
        "<b>input gate</b>: which characters get written strongly (bright) — often the first letter after a "
        "space.",
        "<b>normalizer</b> (sLSTM, and ‖n‖ for mLSTM): how much has been written, in true units; it grows, and drops "
        "where the forget gate closes.",
        "The framed, italic characters at the end are the model's own continuation of your text (a tiny model "
        "trained for a minute writes Shakespeare-shaped gibberish).",
    ]
    css_class = "xlstm-trained-model"

    def __init__(self, model=None, chars=None, text: str | None = None, n_generate: int = 120,
                 classroom: bool = False, run_dir=None, note: str = ""):
        import ipywidgets as w

        if model is None:
            model, chars, run_dir, how = load_or_train(run_dir)
            note = note or f"{how}: {run_dir}"
        self.model, self.chars, self.note = model, chars, note
        self.n_generate = int(n_generate)
        self._cache: dict = {}
        text = text if text is not None else "ROMEO:\nBut soft, what light through yonder window breaks?\n"
        blocks = list(model.blocks)
        st = {"description_width": "initial"}
        controls = {
            "text": w.Textarea(value=text, description="text", continuous_update=False, style=st,
                               layout=w.Layout(width="720px", height="70px")),
            "layer": w.Dropdown(options=[(f"{i} ({'sLSTM' if type(b).__name__ == 'SLSTMBlock' else 'mLSTM'})", i)
                                         for i, b in enumerate(blocks)], value=0, description="block", style=st),
            "head": w.Dropdown(options=list(range(blocks[0].num_heads)), value=0, description="head", style=st),
            "gate": w.Dropdown(options=list(GATES), value="forget gate f = σ(f̃)", description="colour by",
                               style=st),
        }
        controls["layer"].observe(self._on_layer, names="value")
        super().__init__(controls, [["text"], ["layer", "head", "gate"]], classroom=classroom)
        if note:
            self.widget.children = (self.help, w.HTML(f"<i>model: {note}</i>"), *self.widget.children[1:])

    def _on_layer(self, change):
        nh = list(self.model.blocks)[change["new"]].num_heads
        h = self.controls["head"]
        h.options = list(range(nh))
        h.value = min(h.value or 0, nh - 1)

    def traces(self, text: str) -> GateTraces:
        if text not in self._cache:
            self._cache[text] = gate_traces(self.model, self.chars, text, self.n_generate)
        return self._cache[text]

    def compute(self, text, layer, head, gate) -> TrainedModelData:
        return trained_model_data(self.traces(text), layer, head, gate)

    def draw(self, data, classroom=False):
        return draw_trained_model(data, classroom=classroom)
