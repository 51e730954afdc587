"""Chapter 15's ablation: do the 7B stability measures matter for a tiny model trained at a stressful learning rate?

    python -m xlstm_edu.large_ablation [--steps 400] [--seeds 3] [--lr 3e-2] [--json results/large_ablation.json]

The same tiny ``XLSTMLarge`` (Shakespeare characters) is trained four ways — the 7B recipe (gate pre-activations
soft-capped at 15, logits at 30, input-gate bias initialised to −10), without the soft caps, with the input-gate
bias initialised to 0 instead, and with neither — for a few seeds each, with the course's training function
(``xlstm_edu.train.train``) at a learning rate well above the comfortable one and no gradient clipping (clipping
would hide the gradient spikes this is about). Recorded per step: the training loss and the gradient norm
before any clipping; per run: the validation loss at the end, the step at which training diverged (if it did),
and the largest gate pre-activation (before the cap) on a validation batch. The JSON records the command, the
code version and the load average; the PNG shows loss and gradient norm per variant (median over seeds, the
range shaded; the gradient norm's largest value over seeds). ``--fast`` is a smoke-test size; ``--replot JSON``
redraws the plot of an earlier run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from xlstm_edu.nn.large import XLSTMLarge, XLSTMLargeConfig
from xlstm_edu.outfiles import check_output_file, code_version

VARIANTS = {  # name -> config overrides of the 7B recipe
    "7B recipe": {},
    "no soft caps": dict(gate_soft_cap=None, output_logit_soft_cap=None),
    "input-gate bias 0": dict(igate_bias_init=0.0),
    "neither": dict(gate_soft_cap=None, output_logit_soft_cap=None, igate_bias_init=0.0),
}
MODEL = dict(embedding_dim=64, num_heads=4, num_blocks=2, chunk_size=32)


class GradNormRecorder:
    """The global gradient norm of every backward pass, before any clipping: each parameter adds ‖g‖² when its
    gradient is ready (``register_post_accumulate_grad_hook``); ``flush()`` closes a step."""

    def __init__(self, model):
        self.params = [p for p in model.parameters() if p.requires_grad]
        self._sq, self._seen, self.norms = 0.0, 0, []
        self._handles = [p.register_post_accumulate_grad_hook(self._add) for p in self.params]

    def _add(self, p):
        self._sq += float(p.grad.detach().double().pow(2).sum())
        self._seen += 1

    def flush(self):
        if self._seen:
            self.norms.append(math.sqrt(self._sq) if math.isfinite(self._sq) else float("inf"))
        self._sq, self._seen = 0.0, 0

    def close(self):
        self.flush()
        for h in self._handles:
            h.remove()


@torch.no_grad()
def gate_preactivation_max(model: XLSTMLarge, idx: torch.Tensor) -> dict:
    """The largest |ĩ| and |f̃| over all blocks and positions, *before* the soft cap (what the cap has to bend)."""
    was = model.training
    model.eval()
    x = model.embedding(idx)
    top_i = top_f = 0.0
    for block in model.blocks:
        layer, xn = block.mlstm_layer, block.norm_mlstm(x)
        top_i = max(top_i, float(layer.igate_preact(xn).abs().max()))
        top_f = max(top_f, float(layer.fgate_preact(xn).abs().max()))
        x, _ = block(x)
    model.train(was)
    return {"igate": top_i, "fgate": top_f}


def run_one(variant: str, seed: int, *, corpus, steps: int, lr: float, batch_size: int, context_length: int,
            warmup: int, grad_clip: float) -> dict:
    """Train one model; returns its curves and end-of-run numbers (a diverged run keeps its curves up to there)."""
    from xlstm_edu.data import make_get_batch
    from xlstm_edu.train import TrainConfig, train

    torch.manual_seed(seed)
    cfg = XLSTMLargeConfig(vocab_size=corpus.vocab_size, context_length=context_length, **MODEL, **VARIANTS[variant])
    model = XLSTMLarge(cfg)
    get_batch = make_get_batch(corpus, context_length, batch_size, seed=seed)
    tcfg = TrainConfig(max_iters=steps, lr=lr, min_lr=lr / 10, warmup_iters=warmup, grad_clip=grad_clip,
                       eval_interval=steps, eval_iters=4, log_interval=max(1, steps // 10), seed=seed,
                       device="cpu", dtype="float32")
    rec, losses = GradNormRecorder(model), []

    def loss_fn(logits, y):  # the trainer's loss, also recording each training step's value
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        if model.training and torch.is_grad_enabled():
            rec.flush()  # the previous step's backward is complete
            losses.append(float(loss.detach()))
        return loss

    t0, diverged_at, val_loss = time.perf_counter(), None, None
    try:
        result = train(model, get_batch, tcfg, loss_fn=loss_fn, progress=False)
        val_loss = result["history"][-1]["val_loss"]
    except FloatingPointError:
        diverged_at = len(losses) - 1
    rec.close()
    x_val, _ = get_batch("val", -1)
    gates = gate_preactivation_max(model, x_val) if diverged_at is None else None
    return dict(variant=variant, seed=seed, loss=losses, grad_norm=rec.norms[:len(losses)], val_loss=val_loss,
                diverged_at=diverged_at, gate_preact_max=gates, time_s=round(time.perf_counter() - t0, 1),
                params=model.num_params())


def summarize(runs: list[dict]) -> dict:
    """Per variant: final validation loss (median, min, max over seeds), divergences, the largest gradient norm,
    gradient spikes (steps after the first 10% whose norm exceeds 5x the median of the run), gate maxima."""
    out = {}
    for variant in VARIANTS:
        rs = [r for r in runs if r["variant"] == variant]
        if not rs:
            continue
        vals = [r["val_loss"] for r in rs if r["val_loss"] is not None]
        spikes, peaks = [], []
        for r in rs:
            g = [x for x in r["grad_norm"] if math.isfinite(x)]
            if g:
                med = statistics.median(g)
                start = len(r["grad_norm"]) // 10
                spikes.append(sum(1 for x in r["grad_norm"][start:] if not math.isfinite(x) or x > 5 * med))
                peaks.append(max(r["grad_norm"]))
        gates = [r["gate_preact_max"] for r in rs if r["gate_preact_max"]]
        out[variant] = dict(
            seeds=len(rs), diverged=sum(r["diverged_at"] is not None for r in rs),
            val_loss_median=statistics.median(vals) if vals else None, val_loss_min=min(vals) if vals else None,
            val_loss_max=max(vals) if vals else None, grad_norm_max=max(peaks) if peaks else None,
            grad_spikes_total=sum(spikes), igate_preact_max=max((g["igate"] for g in gates), default=None),
            fgate_preact_max=max((g["fgate"] for g in gates), default=None))
    return out


def plot(result: dict, path) -> None:
    """Left: training loss per step, median over seeds with the range shaded. Right: gradient norm per step, the
    largest over seeds (spikes are the point; a median over three seeds would hide them)."""
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from xlstm_edu import style

    style.apply()
    colors = {"7B recipe": style.OKABE_ITO["blue"], "no soft caps": style.OKABE_ITO["vermillion"],
              "input-gate bias 0": style.OKABE_ITO["orange"], "neither": style.OKABE_ITO["black"]}
    fig, axes = style.figure(1, 2, width=12)
    for variant in VARIANTS:
        rs = [r for r in result["runs"] if r["variant"] == variant]
        if not rs:
            continue
        curves = {}
        for key in ("loss", "grad_norm"):
            n = max(len(r[key]) for r in rs)
            a = np.full((len(rs), n), np.nan)
            for j, r in enumerate(rs):
                vals = np.asarray(r[key], dtype=float)
                vals[~np.isfinite(vals)] = np.nan
                a[j, :len(vals)] = vals
            curves[key] = a
        div = sum(r["diverged_at"] is not None for r in rs)
        label = variant + (f" ({div}/{len(rs)} diverged)" if div else "")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns after a divergence
            loss = curves["loss"]
            steps = np.arange(loss.shape[1])
            axes[0].plot(steps, np.nanmedian(loss, 0), color=colors[variant], lw=1.2, label=label)
            axes[0].fill_between(steps, np.nanmin(loss, 0), np.nanmax(loss, 0), color=colors[variant], alpha=0.15,
                                 lw=0)
            g = curves["grad_norm"]
            axes[1].plot(np.arange(g.shape[1]), np.nanmax(g, 0), color=colors[variant], lw=0.9, alpha=0.85,
                         label=label)
    cfg = result["config"]
    axes[0].set(xlabel="step", ylabel="training loss (nats/char)", title="loss (median over seeds, range shaded)")
    axes[1].set(xlabel="step", ylabel="gradient norm before clipping", yscale="log",
                title="gradient norm (largest over seeds)")
    axes[0].legend(fontsize=9)
    fig.suptitle(f"tiny xLSTM-7B-style model, lr {cfg['lr']:g}, no clipping, {cfg['seeds']} seeds", fontsize=11)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse(argv):
    p = argparse.ArgumentParser(prog="python -m xlstm_edu.large_ablation", description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=400, help="training steps per run (default 400)")
    p.add_argument("--seeds", type=int, default=3, help="seeds per variant (default 3)")
    p.add_argument("--lr", type=float, default=3e-2, help="peak learning rate (default 3e-2: ten times a "
                                                            "comfortable one for this model)")
    p.add_argument("--warmup", type=int, default=10, help="warm-up steps (default 10)")
    p.add_argument("--grad-clip", type=float, default=0.0, help="gradient clipping (default 0: off)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--context-length", type=int, default=64)
    p.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset of: " + ", ".join(VARIANTS))
    p.add_argument("--json", default=None, help="output JSON (default: results/large_ablation.json in the course "
                                                "folder; --fast: build/large_ablation_fast.json)")
    p.add_argument("--png", default=None, help="output plot (default: the JSON path with .png)")
    p.add_argument("--fast", action="store_true", help="smoke-test size: 30 steps, 1 seed, context 32")
    p.add_argument("--replot", metavar="JSON", default=None,
                   help="only redraw the plot of an earlier run's JSON (to --png, default next to it); no training")
    a = p.parse_args(argv)
    if a.replot:
        if not Path(a.replot).is_file():
            p.error(f"--replot {a.replot}: no such file")
        a.png = a.png or str(Path(a.replot).with_suffix(".png"))
        return a
    if a.fast:
        a.steps, a.seeds, a.context_length = min(a.steps, 30), 1, min(a.context_length, 32)
    for name in ("steps", "seeds", "batch_size", "context_length"):
        if getattr(a, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(a, name)}")
    if not (a.lr > 0 and math.isfinite(a.lr)):
        p.error(f"--lr must be a finite number > 0, got {a.lr}")
    if a.warmup < 0 or not (a.grad_clip >= 0 and math.isfinite(a.grad_clip)):
        p.error("--warmup and --grad-clip must be >= 0")
    a.variants = [v.strip() for v in a.variants.split(",") if v.strip()]
    bad = [v for v in a.variants if v not in VARIANTS]
    if bad or not a.variants:
        p.error(f"--variants: unknown {bad}; choose from {list(VARIANTS)}")
    if a.json is None:
        from xlstm_edu.paths import home, results_dir

        a.json = str(home() / "build" / "large_ablation_fast.json") if a.fast else \
            str(results_dir() / "large_ablation.json")
    if a.png is None:
        a.png = str(Path(a.json).with_suffix(".png"))
    for path, option in ((a.json, "--json"), (a.png, "--png")):  # check the outputs before any work
        try:
            check_output_file(path, option)
        except ValueError as e:
            p.error(str(e))
    return a


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    a = parse(argv)
    if a.replot:
        with open(a.replot) as fh:
            plot(json.load(fh), a.png)
        print(f"wrote {a.png} (from {a.replot})")
        return 0
    commit = code_version()  # the code the runs use (taken before they start)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1") or 1))
    from xlstm_edu.data import load_corpus
    from xlstm_edu.paths import data_dir

    corpus = load_corpus("shakespeare", data_dir())
    load_start = os.getloadavg()
    t0 = time.perf_counter()
    runs = []
    for seed in range(a.seeds):
        for variant in a.variants:  # interleaved: machine noise hits every variant alike
            r = run_one(variant, seed, corpus=corpus, steps=a.steps, lr=a.lr, batch_size=a.batch_size,
                        context_length=a.context_length, warmup=a.warmup, grad_clip=a.grad_clip)
            runs.append(r)
            end = "diverged at step %d" % r["diverged_at"] if r["diverged_at"] is not None else \
                f"val loss {r['val_loss']:.3f}"
            print(f"{variant:18s} seed {seed}: {end}; max grad norm {max(r['grad_norm'] or [0]):.3g}; "
                  f"{r['time_s']:.0f} s", flush=True)
    result = dict(
        command="python -m xlstm_edu.large_ablation " + " ".join(argv), commit=commit,
        loadavg_start=[round(x, 2) for x in load_start], loadavg_end=[round(x, 2) for x in os.getloadavg()],
        wall_s=round(time.perf_counter() - t0, 1), torch=torch.__version__, threads=torch.get_num_threads(),
        config=dict(model=MODEL, variants={v: VARIANTS[v] for v in a.variants}, steps=a.steps, seeds=a.seeds,
                    lr=a.lr, min_lr=a.lr / 10, warmup=a.warmup, grad_clip=a.grad_clip, batch_size=a.batch_size,
                    context_length=a.context_length, corpus=corpus.name, vocab_size=corpus.vocab_size,
                    fast=a.fast),
        runs=runs)
    result["summary"] = summarize(runs)
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    with open(a.json, "w") as fh:
        json.dump(result, fh, indent=1)
    plot(result, a.png)
    print(f"\n{'variant':18s} {'diverged':>8s} {'val loss (median, range)':>26s} {'max grad norm':>14s} "
          f"{'spikes':>7s} {'max |ĩ|':>8s}")
    for v, s in result["summary"].items():
        vl = "-" if s["val_loss_median"] is None else \
            f"{s['val_loss_median']:.3f} ({s['val_loss_min']:.3f}-{s['val_loss_max']:.3f})"
        gi = "-" if s["igate_preact_max"] is None else f"{s['igate_preact_max']:.1f}"
        print(f"{v:18s} {s['diverged']:>4d}/{s['seeds']:<3d} {vl:>26s} {s['grad_norm_max']:>14.3g} "
              f"{s['grad_spikes_total']:>7d} {gi:>8s}")
    print(f"wrote {a.json} and {a.png} ({result['wall_s']:.0f} s; load average "
          f"{' '.join(map(str, result['loadavg_start']))} -> {' '.join(map(str, result['loadavg_end']))})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
