"""Chapter 10's comparison: xLSTM[1:1] vs GPT vs LSTM at about equal size, on equal training tokens, each model at
its own best learning rate, three seeds.

::

    python -m xlstm_edu.compare --preset cpu-small --jobs 2 --update-readme     # about 3 hours on 2 cores
    python -m xlstm_edu.compare --preset cpu-tiny --steps 40 --sweep-steps 20   # a few minutes: try it out

The protocol (``PROTOCOLS[preset]``; every number can be changed on the command line):

1. **Learning-rate sweep.** Every model trains a short run (``sweep_steps``, seed 0) at every rate of the grid
   (``lrs``); the rate with the lowest loss on the whole validation split wins. When the winner sits at an edge of
   the grid, the grid grows by a factor 2 past that edge (at most ``max_extra_lrs`` times), so that a best rate is
   never just the largest or smallest one tried.
2. **Seeds.** Every model then trains ``len(seeds)`` full runs (``steps``) at its best rate, one per seed (the
   seed sets the initial weights, the batches and dropout).
3. **Evaluation.** The final loss of every run is the mean cross-entropy over **every character of the validation
   split** (the four held-out plays), read in non-overlapping windows of the context length. The curves
   (``eval_iters`` fixed batches every ``eval_interval`` steps) are for the picture only.

**Equal tokens, not equal time.** Every run of a preset sees the same number of training characters (same batch,
context and steps), the paper's protocol. Time is recorded beside it (training seconds, CPU seconds, tokens per
second, the load average) but is not the budget: on a shared machine it depends on what else runs, and not equally
for every model.

Everything else is the same for every model: sizes from ``xlstm_edu.models.SIZES`` (about equal parameter
counts), AdamW (betas 0.9/0.99, weight decay 0.1 on weight matrices only), warm-up then cosine decay to lr/10,
gradient clipping at 1, no dropout.

**Outputs.** ``results/compare_<preset>.json`` (a header with the exact command, the commit, the machine, the
threads and the load average; then one row per run: ``model``, ``phase`` (sweep or final), ``seed``, ``lr``,
``params``, ``final_val_loss`` (whole validation split), ``train_tokens``, ``train_time_s``, ``cpu_time_s``, the
curve, ...) and ``results/compare_<preset>.png`` (the curves against tokens and against time, and the sweep).
``--update-readme`` rewrites the README's table from the JSON (a test checks that they agree).

**Resumable.** Every run trains in its own folder under ``runs/compare_<preset>/`` and leaves ``row.json`` when it
is done. Run the same command again after an interruption: finished runs are read back, an interrupted one
resumes from its last checkpoint (bit-exactly), and the sweep makes the same decisions. ``--jobs 2`` trains two
runs at a time in separate processes of one thread each.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import math
import os
import platform
import sys
import time
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

import torch

from xlstm_edu.models import KIND_NAMES, PRESET_NAMES, label
from xlstm_edu.outfiles import check_output_file, code_version, replace_marked_block

MODELS = ("xlstm", "gpt", "lstm")
README_BEGIN = "<!-- compare:{preset}:begin (written by python -m xlstm_edu.compare --update-readme) -->"
README_END = "<!-- compare:{preset}:end -->"


@dataclass(frozen=True)
class Protocol:
    steps: int  # training steps of every final run (equal tokens: same batch and context for all models)
    sweep_steps: int  # steps of every sweep run
    lrs: tuple  # the learning-rate grid
    seeds: tuple  # one final run per seed
    warmup_iters: int
    eval_interval: int  # a point of the curves every this many steps
    eval_iters: int  # fixed batches per split per curve point
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    max_extra_lrs: int = 2  # how often the grid may grow past an edge

    def __post_init__(self):
        for name in ("steps", "sweep_steps", "eval_interval", "eval_iters"):
            if type(getattr(self, name)) is not int or getattr(self, name) < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {getattr(self, name)!r}")
        if type(self.warmup_iters) is not int or not 0 <= self.warmup_iters < self.sweep_steps:
            raise ValueError(f"warmup_iters: expected 0 <= warmup < sweep_steps={self.sweep_steps}, got "
                             f"{self.warmup_iters!r}")
        if len(self.lrs) < 1 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                                        and v > 0 for v in self.lrs):
            raise ValueError(f"lrs: expected positive finite learning rates, got {self.lrs!r}")
        if len(set(self.seeds)) != len(self.seeds) or not all(type(s) is int and s >= 0 for s in self.seeds) \
                or not self.seeds:
            raise ValueError(f"seeds: expected distinct integers >= 0, got {self.seeds!r}")
        if type(self.max_extra_lrs) is not int or self.max_extra_lrs < 0:
            raise ValueError(f"max_extra_lrs: expected an integer >= 0, got {self.max_extra_lrs!r}")


PROTOCOLS = {
    "cpu-tiny": Protocol(steps=300, sweep_steps=100, lrs=(1e-3, 3e-3, 1e-2), seeds=(1, 2, 3), warmup_iters=30,
                         eval_interval=25, eval_iters=4),
    # an estimated 1.5 to 2 hours on 2 quiet cores with --jobs 2: one thread takes ~0.7 s per step for the xLSTM,
    # ~0.35 s for GPT, ~0.25 s for the LSTM, and ~70 / 20 / 15 s per whole-validation evaluation; 7,500 steps and
    # 9 evaluations per model, plus up to 2 sweep runs more where a best rate sits at the edge of the grid
    "cpu-small": Protocol(steps=2000, sweep_steps=500, lrs=(1e-3, 2e-3, 4e-3), seeds=(1, 2, 3), warmup_iters=100,
                          eval_interval=100, eval_iters=4),
    "gpu-small": Protocol(steps=3000, sweep_steps=750, lrs=(5e-4, 1e-3, 2e-3), seeds=(1, 2, 3), warmup_iters=200,
                          eval_interval=250, eval_iters=20),
}


def protocol(preset: str, **changes) -> Protocol:
    """``PROTOCOLS[preset]`` with ``changes`` (None: keep). Shorter runs than the preset's get a warm-up of at
    most a quarter and curve points at most every half of a sweep run, unless those are given too."""
    base = PROTOCOLS[preset]
    changes = {k: (tuple(v) if isinstance(v, list) else v) for k, v in changes.items() if v is not None}
    sweep = changes.get("sweep_steps", base.sweep_steps)
    if "steps" in changes and "sweep_steps" not in changes:
        sweep = changes["sweep_steps"] = max(1, changes["steps"] // 4)
    changes.setdefault("warmup_iters", min(base.warmup_iters, sweep // 4))
    changes.setdefault("eval_interval", max(1, min(base.eval_interval, sweep // 2)))
    return dataclasses.replace(base, **changes)


# ------------------------------------------------------------------------------------------ evaluation
@torch.no_grad()
def evaluate_split(model, data: torch.Tensor, context_length: int, batch_size: int = 64) -> tuple[float, int]:
    """Mean cross-entropy (nats) of predicting every character of ``data`` after the first, and how many that
    is: ``data`` is cut into non-overlapping windows of ``context_length`` (the last one shorter), each read from
    an empty state. Eval mode; the model's mode is restored."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    n = len(data) - 1
    full = n // context_length
    total, count = 0.0, 0
    spans = [(i * context_length, context_length) for i in range(full)]
    spans = [spans[i:i + batch_size] for i in range(0, len(spans), batch_size)]
    if n % context_length:
        spans.append([(full * context_length, n % context_length)])
    for batch in spans:
        length = batch[0][1]
        idx = torch.stack([data[s:s + length + 1] for s, _ in batch]).to(device)
        logits = model(idx[:, :-1]).float()
        total += float(torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                         idx[:, 1:].reshape(-1), reduction="sum"))
        count += idx[:, 1:].numel()
    model.train(was_training)
    return total / count, count


# ------------------------------------------------------------------------------------------ one run
def job_spec(model: str, preset: str, phase: str, lr: float, seed: int, steps: int, proto: Protocol,
             corpus: str, device: str) -> dict:
    """Everything that decides a run's numbers (a finished run is reused only when this is equal)."""
    from xlstm_edu.runs import corpus_key

    return {"model": model, "preset": preset, "phase": phase, "lr": lr, "seed": seed, "corpus": corpus_key(corpus),
            "device": device, "train": dict(max_iters=steps, lr=lr, min_lr=lr / 10, warmup_iters=proto.warmup_iters,
                                            lr_decay_iters=steps, eval_interval=proto.eval_interval,
                                            eval_iters=proto.eval_iters, weight_decay=proto.weight_decay,
                                            grad_clip=proto.grad_clip, seed=seed, device=device)}


def run_dir_of(out: Path, spec: dict) -> Path:
    steps = spec["train"]["max_iters"]
    return out / spec["model"] / f"{spec['phase']}-lr{spec['lr']:g}-seed{spec['seed']}-steps{steps}"


def run_job(spec: dict, run_dir: str, data_dir=None, progress: bool = False, threads: int | None = 1) -> dict:
    """Train one run of the comparison (or read it back when finished; resume it when interrupted) -> its row."""
    from xlstm_edu.checkpoint import CKPT_NAME
    from xlstm_edu.runs import new_run
    from xlstm_edu.train import train

    if threads:
        torch.set_num_threads(threads)
    run_dir = Path(run_dir)
    done, started = run_dir / "row.json", run_dir / "spec.json"
    if done.exists():
        row = json.loads(done.read_text(encoding="utf-8"))
        if row["spec"] == spec:
            return row
    if started.exists() and json.loads(started.read_text(encoding="utf-8")) != spec:
        raise ValueError(f"{run_dir} holds a run with other settings; use another --out or delete that folder")
    run_dir.mkdir(parents=True, exist_ok=True)
    started.write_text(json.dumps(spec, indent=1), encoding="utf-8")
    load_start = _loadavg()
    run = new_run(spec["model"], spec["preset"], corpus=spec["corpus"], data_dir=data_dir,
                  train_overrides=spec["train"], model_overrides={"dropout": 0.0})
    result = train(run.model, run.get_batch, run.cfg, run_dir, meta=run.meta, progress=progress,
                   resume=(run_dir / CKPT_NAME).exists())
    val_loss, val_tokens = evaluate_split(result["model"], run.corpus.tensors()[1], run.meta["context_length"])
    last = result["history"][-1]
    row = {"model": spec["model"], "label": label(spec["model"]), "phase": spec["phase"], "seed": spec["seed"],
           "lr": spec["lr"], "params": run.model.num_params(), "final_val_loss": val_loss, "val_tokens": val_tokens,
           "final_train_loss": last["train_loss"], "steps": last["step"], "train_tokens": last["tokens"],
           "train_time_s": last["train_time_s"], "cpu_time_s": last["cpu_time_s"],
           "tokens_per_s": last["tokens"] / last["train_time_s"] if last["train_time_s"] else None,
           "threads": torch.get_num_threads(), "load_avg_start": load_start, "load_avg_end": _loadavg(),
           "curve": [{k: r[k] for k in ("step", "tokens", "train_time_s", "train_loss", "val_loss", "grad_norm")}
                     for r in result["history"]], "spec": spec}
    tmp = done.with_name("row.json.tmp")
    tmp.write_text(json.dumps(row, indent=1), encoding="utf-8")
    os.replace(tmp, done)
    return row


def _loadavg():
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


def _run_all(jobs: list[tuple[dict, Path]], n_jobs: int, data_dir, progress: bool) -> list[dict]:
    """Run the jobs (``n_jobs`` at a time in separate one-thread processes, or here when 1); rows in job order."""
    if n_jobs == 1 or len(jobs) <= 1:  # here; with --jobs > 1 one thread, as in the worker processes
        return [run_job(spec, str(d), data_dir, progress, threads=None if n_jobs == 1 else 1) for spec, d in jobs]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=n_jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(run_job, spec, str(d), data_dir, False, 1) for spec, d in jobs]
        return [f.result() for f in futures]


# ------------------------------------------------------------------------------------------ the protocol
def best_lr(rows: list[dict], model: str) -> float:
    """The sweep's winner for ``model``: the lowest whole-validation loss (ties: the smaller rate)."""
    sweep = [r for r in rows if r["model"] == model and r["phase"] == "sweep"]
    return min(sweep, key=lambda r: (r["final_val_loss"], r["lr"]))["lr"]


def next_lr(grid: list[float], best: float, extra_used: int, max_extra: int) -> float | None:
    """The rate to add when ``best`` is at an edge of ``grid`` (a factor 2 further), else None."""
    if extra_used >= max_extra or len(grid) < 2:
        return None
    if best == max(grid):
        return float(f"{best * 2:.3g}")
    if best == min(grid):
        return float(f"{best / 2:.3g}")
    return None


def run_protocol(preset: str, proto: Protocol, models, out: Path, *, corpus="shakespeare", data_dir=None,
                 device="cpu", n_jobs: int = 1, progress: bool = False, log=print) -> list[dict]:
    """The sweep (growing the grid at its edges), then the seeds at each model's best rate -> every row."""
    grids = {m: [float(v) for v in proto.lrs] for m in models}
    extra = {m: 0 for m in models}
    rows: list[dict] = []
    pending = [(m, lr) for m in models for lr in grids[m]]
    while pending:
        jobs = [(s, run_dir_of(out, s)) for s in (job_spec(m, preset, "sweep", lr, 0, proto.sweep_steps, proto,
                                                           corpus, device) for m, lr in pending)]
        log(f"sweep: {len(jobs)} run(s) of {proto.sweep_steps} steps: "
            + ", ".join(f"{m} lr {lr:g}" for m, lr in pending))
        rows += _run_all(jobs, n_jobs, data_dir, progress)
        pending = []
        for m in models:
            best = best_lr(rows, m)
            new = next_lr(grids[m], best, extra[m], proto.max_extra_lrs)
            if new is not None:
                grids[m].append(new)
                extra[m] += 1
                pending.append((m, new))
                log(f"  {m}: the best rate {best:g} is at the edge of {sorted(grids[m][:-1])}: trying {new:g}")
    for m in models:
        log(f"  {m}: best learning rate {best_lr(rows, m):g} of {sorted(grids[m])}")
    jobs = [(s, run_dir_of(out, s)) for m in models for seed in proto.seeds
            for s in [job_spec(m, preset, "final", best_lr(rows, m), seed, proto.steps, proto, corpus, device)]]
    log(f"final: {len(jobs)} run(s) of {proto.steps} steps ({len(proto.seeds)} seeds per model)")
    rows += _run_all(jobs, n_jobs, data_dir, progress)
    return rows


# ------------------------------------------------------------------------------------------ results
def summary(results: dict) -> list[dict]:
    """Per model (in registry order): params, the chosen lr and the grid, the final runs' validation losses
    (mean, min, max, n) and their mean training time."""
    rows = results["rows"]
    out = []
    for m in [k for k in KIND_NAMES if any(r["model"] == k for r in rows)]:
        final = [r for r in rows if r["model"] == m and r["phase"] == "final"]
        if not final:
            continue
        losses = [r["final_val_loss"] for r in final]
        out.append({"model": m, "label": label(m), "params": final[0]["params"], "lr": final[0]["lr"],
                    "grid": sorted({r["lr"] for r in rows if r["model"] == m and r["phase"] == "sweep"}),
                    "val_loss_mean": sum(losses) / len(losses), "val_loss_min": min(losses),
                    "val_loss_max": max(losses), "seeds": len(final), "train_tokens": final[0]["train_tokens"],
                    "train_time_s": sum(r["train_time_s"] for r in final) / len(final)})
    return out


def table(results: dict) -> str:
    """The markdown table of ``summary`` (the README's and the notebook's)."""
    lines = ["| model | parameters | learning rate (swept) | validation loss: mean (min–max) | seeds "
             "| training tokens | training time per run |",
             "| --- | ---: | --- | ---: | ---: | ---: | ---: |"]
    for s in summary(results):
        grid = ", ".join(f"{v:g}" for v in s["grid"])
        lines.append(f"| {s['label']} | {s['params']:,} | **{s['lr']:g}** ({grid}) | {s['val_loss_mean']:.4f} "
                     f"({s['val_loss_min']:.4f}–{s['val_loss_max']:.4f}) | {s['seeds']} | {s['train_tokens']:,} "
                     f"| {s['train_time_s']:.0f} s |")
    edge = [s for s in summary(results) if len(s["grid"]) > 1 and s["lr"] in (min(s["grid"]), max(s["grid"]))]
    if edge:  # the grid stopped growing (max_extra_lrs) with the winner still at an edge: say so
        lines += ["", "The best rate sits at the edge of the swept grid for "
                  + ", ".join(f"{s['label']} ({s['lr']:g})" for s in edge)
                  + ": a rate beyond it might do better, so that model's figure may understate it."]
    return "\n".join(lines)


def readme_block(results: dict | None, preset: str) -> str:
    """The README's comparison paragraph, table and figure, made from the result file only."""
    if results is None:
        return (f"No comparison has been committed yet (`results/compare_{preset}.json`). Run\n"
                f"`python -m xlstm_edu.compare --preset {preset} --jobs 2 --update-readme` on a quiet machine.")
    h = results["header"]
    load = h.get("load_avg_start"), h.get("load_avg_end")
    return "\n".join([
        f"`{h['command']}` (commit `{h['commit']}`, {h['date']}; {h['jobs']} job(s) of {h['threads_per_job']} "
        f"thread(s) on {h['machine']}; load average {_fmt_load(load[0])} at the start, {_fmt_load(load[1])} at "
        f"the end; {len(results['rows'])} runs, {sum(r['train_time_s'] for r in results['rows']) / 3600:.1f} h of "
        f"training in all). Every final run: {h['protocol']['steps']:,} steps of "
        f"{h['batch_size']} × {h['context_length']} characters; validation loss in nats per character on the "
        f"whole validation split ({h['val_tokens']:,} characters; uniform guess ln {h['vocab_size']} = "
        f"{math.log(h['vocab_size']):.3f}).",
        "",
        table(results),
        "",
        f"![validation loss against training tokens and time](results/compare_{preset}.png)",
    ])


def _fmt_load(x):
    return "/".join(f"{v:.1f}" for v in x) if x else "unknown"


def update_readme(readme: Path, preset: str, results: dict | None) -> bool:
    """Replace the text between the preset's markers in ``readme``; False if the markers are missing."""
    return replace_marked_block(readme, README_BEGIN.format(preset=preset), README_END.format(preset=preset),
                                readme_block(results, preset))


def results_path(preset: str) -> Path:
    from xlstm_edu.paths import results_dir

    return results_dir() / f"compare_{preset}.json"


def load_results(path) -> dict | None:
    """A result file of this module, or None when it does not exist (yet)."""
    path = Path(path)
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def plot(results: dict, path=None):
    """Validation loss against training tokens and against training time (every seed a thin line, the mean
    bold), and the sweep (whole-split loss against the learning rate). Saved to ``path`` when given."""
    import matplotlib.pyplot as plt

    from xlstm_edu.style import MODEL_COLORS

    rows = results["rows"]
    models = [m for m in KIND_NAMES if any(r["model"] == m for r in rows)]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.3))
    for m in models:
        colour = MODEL_COLORS.get(m)
        final = [r for r in rows if r["model"] == m and r["phase"] == "final"]
        for r in final:
            c = r["curve"]
            axes[0].plot([p["tokens"] for p in c], [p["val_loss"] for p in c], color=colour, alpha=0.35, lw=1)
            axes[1].plot([p["train_time_s"] for p in c], [p["val_loss"] for p in c], color=colour, alpha=0.6, lw=1)
        if final:
            c = final[0]["curve"]
            mean = [sum(r["curve"][i]["val_loss"] for r in final) / len(final) for i in range(len(c))]
            axes[0].plot([p["tokens"] for p in c], mean, color=colour, lw=2,
                         label=f"{label(m)}, {final[0]['params'] / 1e6:.2f}M, lr {final[0]['lr']:g}")
        sweep = sorted((r["lr"], r["final_val_loss"]) for r in rows if r["model"] == m and r["phase"] == "sweep")
        axes[2].plot([s[0] for s in sweep], [s[1] for s in sweep], "o-", color=colour, label=label(m))
        for r in final:
            axes[2].plot([r["lr"]], [r["final_val_loss"]], "*", color=colour, ms=9)
    axes[0].set(xlabel="training tokens (characters)", ylabel="validation loss (nats / char, fixed batches)",
                title="equal tokens: loss against tokens")
    axes[1].set(xlabel="training time (s, evaluations excluded)", title="the same runs against time")
    h = results["header"]
    axes[2].set(xscale="log", xlabel="peak learning rate", ylabel="loss on the whole validation split",
                title=f"sweep ({h['protocol']['sweep_steps']} steps, dots) and final runs (stars)")
    axes[0].legend(fontsize=8)
    axes[2].legend(fontsize=8)
    fig.suptitle(f"{h['preset']}: {', '.join(label(m) for m in models)}, {len(h['protocol']['seeds'])} seeds each")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig


# ------------------------------------------------------------------------------------------ command line
def _floats(text: str) -> tuple:
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _ints(text: str) -> tuple:
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def main(argv=None) -> int:
    from xlstm_edu.data import load_corpus
    from xlstm_edu.paths import home, runs_dir
    from xlstm_edu.presets import get_preset

    p = argparse.ArgumentParser(prog="python -m xlstm_edu.compare", description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="cpu-small", choices=PRESET_NAMES)
    p.add_argument("--models", type=lambda s: tuple(v for v in s.split(",") if v), default=MODELS,
                   help=f"comma-separated, from {','.join(KIND_NAMES)} (default {','.join(MODELS)})")
    p.add_argument("--steps", type=int, help="steps of every final run (default: the preset's protocol)")
    p.add_argument("--sweep-steps", type=int, help="steps of every sweep run")
    p.add_argument("--lrs", type=_floats, help="the learning-rate grid, e.g. 1e-3,2e-3,4e-3")
    p.add_argument("--seeds", type=_ints, help="seeds of the final runs, e.g. 1,2,3")
    p.add_argument("--max-extra-lrs", type=int, help="how often the grid may grow past an edge (default 2)")
    p.add_argument("--warmup", type=int, help="warm-up steps of every run")
    p.add_argument("--eval-interval", type=int, help="steps between the points of the curves")
    p.add_argument("--jobs", type=int, default=1, help="runs at a time, each a process of one thread (default 1)")
    p.add_argument("--corpus", default="shakespeare", help="shakespeare (default), tinyshakespeare or a file")
    p.add_argument("--data-dir", default=None, help="cache folder for converted corpora (default: data/)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default=None, help="folder of the runs (default runs/compare_<preset>)")
    p.add_argument("--json", default=None, help="result file (default results/compare_<preset>.json); the "
                                                  "figure goes next to it as .png")
    p.add_argument("--update-readme", action="store_true", help="rewrite the README's table from the result")
    p.add_argument("--progress", action="store_true", help="progress bars (with --jobs 1)")
    args = p.parse_args(argv)
    try:  # everything is checked before the first step is trained
        proto = protocol(args.preset, steps=args.steps, sweep_steps=args.sweep_steps, lrs=args.lrs, seeds=args.seeds,
                         max_extra_lrs=args.max_extra_lrs, warmup_iters=args.warmup,
                         eval_interval=args.eval_interval)
        if not args.models or any(m not in KIND_NAMES for m in args.models) or len(set(args.models)) != len(
                args.models):
            raise ValueError(f"--models: expected distinct names from {list(KIND_NAMES)}, got {list(args.models)}")
        if args.jobs < 1:
            raise ValueError(f"--jobs: expected >= 1, got {args.jobs}")
        from xlstm_edu.devices import pick_device

        pick_device(args.device)
        corpus = load_corpus(args.corpus, args.data_dir)
        out = Path(args.out) if args.out else runs_dir() / f"compare_{args.preset}"
        if out.exists() and not out.is_dir():
            raise ValueError(f"--out {out} is a file; expected a folder for the runs")
        check_output_file(out / "probe", "--out")
        json_path = Path(args.json) if args.json else results_path(args.preset)
        check_output_file(json_path, "--json")
        check_output_file(json_path.with_suffix(".png"), "the figure")
        readme = home() / "README.md"
        if args.update_readme:
            if not readme.is_file() or README_BEGIN.format(preset=args.preset) not in readme.read_text("utf-8"):
                raise ValueError(f"--update-readme: {readme} has no comparison block for {args.preset}")
            check_output_file(readme, "--update-readme")
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    shape = get_preset(args.preset)
    command = "python -m xlstm_edu.compare " + " ".join(argv if argv is not None else sys.argv[1:])
    print(f"{command}\nprotocol: {proto}\nruns in {out}; results to {json_path}", flush=True)
    t0, load_start = time.time(), _loadavg()
    try:
        rows = run_protocol(args.preset, proto, list(args.models), out, corpus=args.corpus, data_dir=args.data_dir,
                            device=args.device, n_jobs=args.jobs, progress=args.progress,
                            log=lambda s: print(s, flush=True))
    except (KeyboardInterrupt, BrokenProcessPool):
        print(f"\nerror: interrupted. Finished runs are kept in {out}; the same command continues where this one "
              "stopped.", file=sys.stderr)
        return 130
    header = {"command": command.strip(), "commit": code_version(), "date": datetime.date.today().isoformat(),
              "preset": args.preset, "models": list(args.models), "protocol": dataclasses.asdict(proto),
              "budget": "equal training tokens", "corpus": corpus.name, "corpus_note": corpus.note,
              "vocab_size": corpus.vocab_size, "val_tokens": rows[-1]["val_tokens"],
              "batch_size": shape["batch_size"], "context_length": shape["context_length"], "jobs": args.jobs,
              "threads_per_job": rows[-1]["threads"], "device": args.device,
              "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
              "load_avg_start": load_start, "load_avg_end": _loadavg(), "wall_time_s": time.time() - t0}
    # wall_time_s is this invocation's: a command that resumed an interrupted comparison counts only its own part
    # (every row keeps its own train_time_s)
    results = {"header": header, "rows": rows}
    json_path.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.close(plot(results, json_path.with_suffix(".png")))
    print(table(results))
    print(f"wrote {json_path} and {json_path.with_suffix('.png')}")
    if args.update_readme and update_readme(readme, args.preset, results):
        print(f"updated the comparison table in {readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
