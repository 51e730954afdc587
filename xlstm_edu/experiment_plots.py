"""Plots of the chapter-12 results (``xlstm_edu.experiments`` rows): every seed as a dot beside the mean.

* ``plot_formal(rows, key)`` — one group of bars per task (and supervision), one bar per model: the mean over
  seeds, each seed a dot; the paper's statement (``experiments.PAPER_SAYS``) marked above the bars where it
  makes one (▲ solves, ▼ fails).
* ``plot_formal_lengths(rows)`` — accuracy against the string length, inside and beyond the training range.
* ``plot_mqar_capacity(rows)`` — accuracy against the number of key-value pairs and against the width, at each
  model's best learning rate; the levels 1/V (chance) and 1/pairs (guessing a stored value) drawn in.
* ``plot_mqar_curves(rows, context_length, num_pairs, width)`` — validation accuracy during training, against
  the step and against the training time: how far each model is at which budget.

Every function takes an optional ``axes`` and returns the figure.
"""

from __future__ import annotations

import numpy as np

from xlstm_edu.experiments import MODEL_KINDS, PAPER_SAYS, _models_in, _row_name, best_lr_rows

LABEL = {"lstm": "LSTM", "slstm": "sLSTM only (xLSTM[0:1])", "mlstm": "mLSTM only (xLSTM[1:0])",
         "xlstm": "xLSTM[1:1]", "gpt": "GPT (attention)"}


def _colors():
    from xlstm_edu import style

    return style.MODEL_COLORS


def _new(nrows, ncols, width, height):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(nrows, ncols, figsize=(width, height), squeeze=False)
    return fig, axes


def _legend(fig, axes_row, ncol=5):
    handles, labels = axes_row[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=ncol, fontsize=9, frameon=False)


def plot_formal(rows: list[dict], key: str = "scaled_accuracy", *, ax=None, title: str | None = None):
    """Bars (mean over seeds) with one dot per seed, grouped by task; ▲/▼ where the paper says solves/fails."""
    colors = _colors()
    fig = None
    if ax is None:
        fig, axes = _new(1, 1, 12, 4.2)
        ax = axes[0][0]
    groups = list(dict.fromkeys(_row_name(r) for r in rows))
    models = _models_in(rows)
    width = 0.8 / max(1, len(models))
    rng = np.random.default_rng(0)  # a little horizontal jitter, so that equal seeds do not hide each other
    for j, m in enumerate(models):
        xs = np.arange(len(groups)) + (j - (len(models) - 1) / 2) * width
        vals = [[r[key] for r in rows if _row_name(r) == g and r["model"] == m] for g in groups]
        means = [np.mean(v) if v else np.nan for v in vals]
        ax.bar(xs, means, width, color=colors[m], alpha=0.55, label=LABEL.get(m, m))
        for x, v in zip(xs, vals):
            ax.plot(x + rng.uniform(-0.2, 0.2, len(v)) * width, v, "o", color=colors[m], ms=4, mec="black", mew=0.4)
        for x, g in zip(xs, groups):
            says = PAPER_SAYS.get(g.split(" ")[0], {}).get(m)
            if says:
                ax.text(x, 1.07, "▲" if says == "solves" else "▼", ha="center", va="bottom", fontsize=8,
                        color=colors[m])
    ax.set_xticks(np.arange(len(groups)), [g.replace("_", "\n").replace(" (", "\n(") for g in groups])
    ax.axhline(0, color="black", lw=0.8)
    ax.set_ylim(-0.3, 1.2)
    ax.set_ylabel({"scaled_accuracy": "scaled accuracy, lengths 41–256",
                   "train_range_scaled": "scaled accuracy, lengths 10–40"}.get(key, key))
    ax.set_title(title or "bars: mean over seeds; dots: seeds; ▲/▼: the paper says the model solves / fails it")
    if fig is not None:
        _legend(fig, [ax])
        fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig or ax.figure


def plot_formal_lengths(rows: list[dict], *, supervision: str = "all"):
    """Accuracy against the string length, one panel per task: the training range (10-40, left of the dotted
    line) and the test lengths 41-256; mean over seeds (line) and each seed (dots)."""
    from xlstm_edu.tasks import get_task

    colors = _colors()
    rows = [r for r in rows if r.get("supervision", "all") == supervision]
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    fig, axes = _new(1, len(tasks), 3.3 * len(tasks), 3.4)
    for ax, t in zip(axes[0], tasks):
        for m in _models_in(rows):
            rs = [r for r in rows if r["task"] == t and r["model"] == m]
            if not rs:
                continue
            per = {}
            for r in rs:
                for d in (r.get("train_range_per_length", {}), r["per_length"]):
                    for n, a in d.items():
                        per.setdefault(int(n), []).append(a)
            ns = sorted(per)
            ax.plot(ns, [np.mean(per[n]) for n in ns], "-", color=colors[m], label=LABEL.get(m, m), lw=1.5)
            for n in ns:
                ax.plot([n] * len(per[n]), per[n], "o", color=colors[m], ms=2.5)
        ax.axhline(get_task(t).chance, color="black", ls="--", lw=1)
        ax.axvline(40.5, color="gray", ls=":", lw=1)
        ax.set_title(t)
        ax.set_xlabel("string length")
        ax.set_ylim(0, 1.05)
    axes[0][0].set_ylabel("accuracy (dashed: chance)")
    _legend(fig, axes[0])
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return fig


def _mqar_panels(best):
    """Panels of the capacity sweep: accuracy against the pairs at each (context, width) with several pair
    counts, and against the width at each (context, pairs) with several widths."""
    cells = {(r["context_length"], r["num_pairs"], r["width"]) for r in best}
    panels = []
    for L, w in sorted({(L, w) for L, _, w in cells}):
        xs = sorted(N for L2, N, w2 in cells if (L2, w2) == (L, w))
        if len(xs) > 1:
            panels.append(("num_pairs", xs, {"context_length": L, "width": w}, f"context {L}, width {w}"))
    for L, N in sorted({(L, N) for L, N, _ in cells}):
        xs = sorted(w for L2, N2, w in cells if (L2, N2) == (L, N))
        if len(xs) > 1:
            panels.append(("width", xs, {"context_length": L, "num_pairs": N}, f"context {L}, {N} pairs"))
    if not panels:  # a single setting
        L, N, w = sorted(cells)[0]
        panels.append(("num_pairs", [N], {"context_length": L, "width": w}, f"context {L}, width {w}"))
    return panels


def plot_mqar_capacity(rows: list[dict], key: str = "accuracy"):
    """Test accuracy against the number of key-value pairs (at a fixed width) and against the width (at a fixed
    number of pairs), each model at its best learning rate: mean over seeds (line) and each seed (dots);
    dashed: 1/pairs (guessing one of the stored values), dotted: 1/V (chance); the legend gives what the paper
    says of each model (Fig. 14)."""
    colors = _colors()
    best = best_lr_rows(rows)
    panels = _mqar_panels(best)
    fig, axes = _new(1, len(panels), 4.6 * len(panels), 3.7)
    for ax, (xkey, xs, fixed, title) in zip(axes[0], panels):
        rs = [r for r in best if all(r[k] == v for k, v in fixed.items())]
        for j, m in enumerate(_models_in(rs)):
            means = []
            for x in xs:
                v = [r[key] for r in rs if r["model"] == m and r[xkey] == x]
                means.append(np.mean(v) if v else np.nan)
                dx = 1 + (j - 2) * 0.04  # side by side on the log axis
                ax.plot([x * dx] * len(v), v, "o", color=colors[m], ms=4, mec="black", mew=0.4)
            says = PAPER_SAYS["mqar"].get(m)
            ax.plot(xs, means, "-", color=colors[m], lw=1.5,
                    label=LABEL.get(m, m) + (f" — paper: {says}" if says else ""))
        levels = [1 / (x if xkey == "num_pairs" else fixed["num_pairs"]) for x in xs]
        ax.plot(xs, levels, "k--", lw=1, label="1/pairs: guessing a stored value")
        V = rs[0]["vocab_size"]
        ax.axhline(1 / V, color="black", ls=":", lw=1, label=f"1/V = 1/{V}: chance")
        ax.set_xscale("log", base=2)
        ax.set_xticks(xs, [str(x) for x in xs])
        ax.minorticks_off()
        ax.set_ylim(0, 1.05)
        ax.set_xlabel("key-value pairs" if xkey == "num_pairs" else "embedding width")
        ax.set_title(title)
    axes[0][0].set_ylabel({"accuracy": "test accuracy", "in_context": "answers that are stored values"}.get(key, key))
    _legend(fig, axes[0], ncol=4)
    fig.tight_layout(rect=(0, 0.14, 1, 1))
    return fig


def plot_mqar_curves(rows: list[dict], context_length: int, num_pairs: int, width: int):
    """Validation accuracy during training at one setting, each model at its best learning rate: against the
    training step (left) and the training time in seconds (right); thin lines: seeds, thick: mean."""
    colors = _colors()
    best = [r for r in best_lr_rows(rows) if (r["context_length"], r["num_pairs"], r["width"])
            == (context_length, num_pairs, width)]
    fig, axes = _new(1, 2, 12, 3.6)
    for m in [k for k in MODEL_KINDS if any(r["model"] == k for r in best)]:
        rs = [r for r in best if r["model"] == m]
        steps = [c[0] for c in rs[0]["curve"]]
        accs = np.array([[c[2] for c in r["curve"]] for r in rs if len(r["curve"]) == len(steps)])
        for r in rs:
            c = np.array(r["curve"])
            axes[0][0].plot(c[:, 0], c[:, 2], color=colors[m], lw=0.7, alpha=0.6)
            axes[0][1].plot(c[:, 1], c[:, 2], color=colors[m], lw=0.7, alpha=0.6)
        axes[0][0].plot(steps, accs.mean(0), color=colors[m], lw=2.2, label=f"{LABEL.get(m, m)} (lr {rs[0]['lr']:.0e})")
    for ax, xl in zip(axes[0], ("training step", "training time [s] (one thread, as recorded by the run)")):
        ax.axhline(1 / num_pairs, color="black", ls="--", lw=1)
        ax.set_xlabel(xl)
        ax.set_ylim(0, 1.05)
    axes[0][0].set_ylabel("validation accuracy")
    axes[0][0].set_title(f"MQAR ({context_length}, {num_pairs}), width {width}; dashed: 1/pairs")
    _legend(fig, axes[0], ncol=3)
    fig.tight_layout(rect=(0, 0.14, 1, 1))
    return fig
