"""xLSTM[1:1] vs GPT vs LSTM at about equal parameter count and an equal wall-clock training budget.

::

    OMP_NUM_THREADS=1 python -m xlstm_edu.compare --preset cpu-small --budget-s 600 --out runs/compare

For each model (sizes from ``xlstm_edu.presets``, same data, same seed, same trainer):

1. a short calibration (a few training steps) estimates seconds per step; the run may take up to
   ``max_iters = 1.5 * budget / seconds_per_step`` steps;
2. the run trains until the budget of *training* time is spent (evaluations are not counted), evaluating every
   ``eval_interval`` steps on the held-out plays. With a budget the trainer runs the learning-rate schedule
   (warm-up + cosine) on ``max(step, max_iters * time / budget)``: it ends with the budget even when the shared
   machine runs slower than the calibration said, so no model is cut off at a high learning rate;
3. a sample of 300 characters after the prompt ``ROMEO:`` is drawn with the recurrent ``step``.

Outputs in ``--out``: ``results.md`` (the table, the command, the samples), ``results.json``, ``loss_curves.png``
(validation loss against training seconds) and one run folder per model (``metrics.jsonl``, ``ckpt.pt``).
Wall-clock budgets make the result depend on the machine and on its load: the table states both.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import torch

MODELS = ("xlstm", "gpt", "lstm")
LABELS = {"xlstm": "xLSTM[1:1]", "mlstm": "xLSTM[1:0] (mLSTM only)", "slstm": "xLSTM[0:1] (sLSTM only)",
          "gpt": "GPT (nanoGPT-style)", "lstm": "LSTM (torch.nn.LSTM)"}
# Okabe-Ito: colour-blind-safe
COLOURS = {"xlstm": "#0072B2", "gpt": "#E69F00", "lstm": "#009E73", "mlstm": "#CC79A7", "slstm": "#D55E00"}


def _calibrate(kind, preset, corpus, cfg, steps: int = 3) -> float:
    """Median seconds per training step (forward, backward, AdamW) of a fresh model, after one warm-up step."""
    from xlstm_edu.data import make_get_batch
    from xlstm_edu.models import build_model
    from xlstm_edu.train import configure_optimizer, default_loss, pick_device

    device = pick_device(cfg.device)
    torch.manual_seed(cfg.seed)
    model = build_model(kind, corpus.vocab_size, cfg.context_length, **preset["models"][kind]).to(device)
    opt = configure_optimizer(model, cfg, device)
    x, y = make_get_batch(corpus, cfg.context_length, cfg.batch_size, seed=cfg.seed, device=device)("train", 0)
    times = []
    for i in range(steps + 1):
        t0 = time.perf_counter()
        loss = default_loss(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss.item()
        if i:
            times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def plot_curves(results: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for kind, r in results.items():
        h = r["history"]
        ax.plot([m["train_time_s"] for m in h], [m["val_loss"] for m in h], marker="o", ms=3,
                color=COLOURS.get(kind), label=f"{LABELS.get(kind, kind)}, {r['params'] / 1e6:.2f}M params")
    ax.set_xlabel("training time (s, evaluations excluded)")
    ax.set_ylabel("validation loss (nats / character)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def results_table(results: dict) -> str:
    rows = ["| model | parameters | steps done | tokens/s (median of evals) | training s | final train loss "
            "| final val loss | best val loss |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for kind, r in results.items():
        h = r["history"]
        tps = sorted(m["tokens_per_s"] for m in h if m["tokens_per_s"])
        med = tps[len(tps) // 2] if tps else float("nan")
        rows.append(f"| {LABELS.get(kind, kind)} | {r['params']:,} | {h[-1]['step']} | {med:,.0f} | "
                    f"{h[-1]['train_time_s']:.0f} | {h[-1]['train_loss']:.4f} | {h[-1]['val_loss']:.4f} | "
                    f"{min(m['val_loss'] for m in h):.4f} |")
    return "\n".join(rows)


def main(argv=None) -> int:
    from xlstm_edu.data import load_corpus, make_get_batch
    from xlstm_edu.models import build_model
    from xlstm_edu.presets import get_preset
    from xlstm_edu.sample import sample_text
    from xlstm_edu.train import TrainConfig, train

    p = argparse.ArgumentParser(prog="python -m xlstm_edu.compare", description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="cpu-small", choices=["cpu-tiny", "cpu-small", "gpu-small"])
    p.add_argument("--budget-s", type=float, default=600.0, help="training seconds per model")
    p.add_argument("--out", default="runs/compare")
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=["xlstm", "mlstm", "slstm", "gpt", "lstm"])
    p.add_argument("--corpus", default="shakespeare")
    p.add_argument("--device", default="auto")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    if args.budget_s <= 0:
        print("error: --budget-s must be > 0", file=sys.stderr)
        return 2

    preset = get_preset(args.preset)
    corpus = load_corpus(args.corpus)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    base = dict(preset["train"], batch_size=preset["batch_size"], context_length=preset["context_length"],
                device=args.device)
    results = {}
    load_start = os.getloadavg() if hasattr(os, "getloadavg") else None
    for kind in args.models:
        cfg0 = TrainConfig(**base)
        spt = _calibrate(kind, preset, corpus, cfg0)
        max_iters = max(cfg0.warmup_iters + 10, int(1.5 * args.budget_s / spt))
        cfg = TrainConfig(**{**base, "max_iters": max_iters, "time_budget_s": args.budget_s,
                             "eval_interval": max(10, max_iters // 12)})
        torch.manual_seed(cfg.seed)
        model = build_model(kind, corpus.vocab_size, cfg.context_length, **preset["models"][kind])
        gb = make_get_batch(corpus, cfg.context_length, cfg.batch_size, seed=cfg.seed)
        print(f"== {LABELS[kind]}: {model.num_params():,} parameters, ~{spt:.3f} s/step -> at most {max_iters} "
              f"steps in {args.budget_s:.0f} s", flush=True)
        meta = {"kind": kind, "preset": args.preset, "model_config": dataclasses.asdict(model.cfg),
                "corpus": args.corpus, "chars": corpus.chars}
        res = train(model, gb, cfg, out / kind, meta=meta, progress=not args.no_progress)
        sample = sample_text(res["model"].cpu(), corpus.chars, "ROMEO:", 300, temperature=0.8, seed=0)
        results[kind] = {"params": model.num_params(), "history": res["history"], "planned_iters": max_iters,
                         "sample": sample}
        print(f"   final val loss {res['history'][-1]['val_loss']:.4f} after {res['step']} steps", flush=True)

    threads = os.environ.get("OMP_NUM_THREADS", "unset")
    machine = (f"{platform.machine()} {os.cpu_count()} cores, torch {torch.__version__}, torch threads "
               f"{torch.get_num_threads()} (OMP_NUM_THREADS={threads}), device {args.device}")
    if load_start is not None:  # a shared machine: other jobs slow every model down, not equally over time
        machine += (f"; load average (1/5/15 min) {'/'.join(f'{x:.1f}' for x in load_start)} at the start, "
                    f"{'/'.join(f'{x:.1f}' for x in os.getloadavg())} at the end")
    title = f"{args.preset}: validation loss vs training time ({args.budget_s:.0f} s each)"
    plot_curves(results, out / "loss_curves.png", title)
    table = results_table(results)
    cmd = "python -m xlstm_edu.compare " + " ".join(argv if argv is not None else sys.argv[1:])
    md = [f"# {title}", "", f"Command: `{cmd}`", "", f"Machine: {machine}.", "",
          f"Corpus: {corpus.name} ({corpus.note}); vocabulary {corpus.vocab_size}; context "
          f"{base['context_length']}, batch {base['batch_size']}. The uniform model's loss is "
          f"ln({corpus.vocab_size}) = {math.log(corpus.vocab_size):.3f}.", "", table, "",
          "![validation loss vs training time](loss_curves.png)", "", "## Samples (prompt `ROMEO:`, temperature 0.8)"]
    for kind, r in results.items():
        md += ["", f"### {LABELS[kind]}", "", "```", r["sample"], "```"]
    (out / "results.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    (out / "results.json").write_text(json.dumps({"preset": args.preset, "budget_s": args.budget_s,
                                                  "machine": machine, "results": results}, indent=1))
    print(table)
    print(f"wrote {out / 'results.md'}, {out / 'loss_curves.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
