"""Sequence-length extrapolation on a CPU: train at one context, evaluate at longer ones (the paper's Fig. 7, small).

    python -m xlstm_edu.longctx [--preset cpu-small] [--models xlstm,mlstm,gpt] [--seeds 2]
                                [--contexts 128,256,512,1024,2048] [--max-tokens 65536] [--json PATH]
    python -m xlstm_edu.longctx --from-compare [--models xlstm,gpt,lstm] ...   # no training: chapter 10's runs
    (either with --update-readme: the README's table is rewritten from the result)

1. **Train** every model of ``--models`` with the course's trainer (``python -m xlstm_edu.train --preset ...``) at
   the preset's context length (``cpu-small``: 128), one run per seed, into ``runs/long_context/`` of the course
   folder. A run already there is reused (``--retrain`` trains it again). With ``--from-compare`` nothing is
   trained: the final runs of chapter 10's comparison (``python -m xlstm_edu.compare --preset <preset>``, every
   seed at each model's best learning rate, under ``runs/compare_<preset>/``) are evaluated instead.
2. **Evaluate** each run on the validation plays at every context C of ``--contexts``. The same characters are
   scored at every C: ``--max-tokens`` characters taken as evenly spaced windows of max(C) characters (or the
   whole validation split with ``--max-tokens 0``); at context C each window is cut into pieces of C characters
   and each piece is read from an empty state. So the only thing that changes with C is how much text a model
   has read before each character: at C = 2048 most characters have hundreds of characters of context, 16x
   more than any training sequence had.
   - the xLSTM models (and the LSTM) read a piece in one ``forward``: they have no positional table;
   - GPT cannot place a token past its positional table (``context_length`` = the training length). Past it we
     evaluate it with a **sliding window**, the standard way: windows of ``context_length`` characters moved
     ``context_length / 2`` at a time, each scoring its last half, so every character is predicted from between
     ``context_length / 2`` and ``context_length`` characters of context, never more.
3. **Write** ``results/long_context.json`` (the losses, a loss-by-position curve inside the longest window, the
   command, code version, load average, threads) and a PNG beside it (``--png``; default: the JSON's name with
   ``.png``).

Loss = mean cross-entropy in nats per character (the trainer's ``val_loss`` unit).
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

from xlstm_edu.models import KIND_NAMES as KINDS  # the model registry
from xlstm_edu.outfiles import check_output_file, replace_marked_block

README_BEGIN = "<!-- long-context:begin (python -m xlstm_edu.longctx ... --update-readme) -->"
README_END = "<!-- long-context:end -->"


# ------------------------------------------------------------------------------------------------- training
def run_dir(preset: str, kind: str, seed: int) -> Path:
    from xlstm_edu.paths import runs_dir

    return runs_dir() / "long_context" / f"{preset}-{kind}-s{seed}"


def train_run(kind: str, preset: str, seed: int, out: Path, *, corpus: str, max_iters: int | None,
              extra: list[str]) -> None:
    """One training run through the trainer's command line (its documented entry point)."""
    from xlstm_edu.train import main as train_main

    argv = ["--model", kind, "--preset", preset, "--out", str(out), "--seed", str(seed), "--corpus", corpus,
            "--no-progress", "--overwrite", *extra]
    if max_iters is not None:
        argv += ["--max-iters", str(max_iters)]
    rc = train_main(argv)
    if rc != 0:
        raise RuntimeError(f"training {kind} (seed {seed}) into {out} failed with exit code {rc}")


def compare_runs(preset: str, kind: str) -> dict[int, Path]:
    """{seed: run folder} of the comparison's finished final runs of ``kind`` (``row.json`` written)."""
    from xlstm_edu.paths import runs_dir

    found = {}
    for row_file in sorted((runs_dir() / f"compare_{preset}" / kind).glob("final-*/row.json")):
        row = json.loads(row_file.read_text())
        found[int(row["seed"])] = row_file.parent
    return found


# ------------------------------------------------------------------------------------------------- evaluation
def eval_windows(val: torch.Tensor, length: int, max_tokens: int) -> torch.Tensor:
    """(W, length + 1) non-overlapping windows of the validation tokens, evenly spaced over the split; W =
    max_tokens // length (all that fit when max_tokens is 0)."""
    fit = len(val) // (length + 1)
    if fit < 1:
        raise ValueError(f"the validation split ({len(val)} characters) is shorter than one window of "
                         f"{length + 1} characters; use shorter --contexts")
    W = fit if max_tokens == 0 else max(1, min(fit, max_tokens // length))
    starts = torch.linspace(0, len(val) - (length + 1), W).round().long() if W > 1 else torch.zeros(1).long()
    return val[starts[:, None] + torch.arange(length + 1)]


@torch.no_grad()
def token_losses(model, x: torch.Tensor, y: torch.Tensor, *, batch: int = 16) -> torch.Tensor:
    """Per-character loss (N, C) of pieces x, y (N, C), each read from an empty state. A GPT whose table is
    shorter than C is evaluated with the sliding window of the module docstring."""
    out = []
    for i in range(0, x.shape[0], batch):
        xb, yb = x[i:i + batch], y[i:i + batch]
        ctx = getattr(model.cfg, "context_length", None)
        if hasattr(model, "wpe") and xb.shape[1] > ctx:
            logits = gpt_sliding_logits(model, xb)
        else:
            logits = model(xb)
        out.append(F.cross_entropy(logits.float().transpose(1, 2), yb, reduction="none"))
    return torch.cat(out)


@torch.no_grad()
def gpt_sliding_logits(model, x: torch.Tensor) -> torch.Tensor:
    """Logits (B, S, V) of a GPT on a sequence longer than its positional table: windows of ``context_length``
    moved by half of it; each scores its last half (the first window scores all of its positions)."""
    ctx = model.cfg.context_length
    stride = max(ctx // 2, 1)
    S = x.shape[1]
    parts = [model(x[:, :ctx])]
    end = ctx
    while end < S:
        new_end = min(end + stride, S)
        parts.append(model(x[:, new_end - ctx:new_end])[:, ctx - (new_end - end):])
        end = new_end
    return torch.cat(parts, dim=1)


def evaluate(model, windows: torch.Tensor, contexts: list[int]) -> tuple[dict, torch.Tensor]:
    """Mean loss at every context on the same characters, and the per-position loss (L,) at the longest."""
    L = windows.shape[1] - 1
    x, y = windows[:, :-1], windows[:, 1:]
    losses, longest = {}, None
    for C in contexts:
        tl = token_losses(model, x.reshape(-1, C), y.reshape(-1, C))
        losses[C] = float(tl.mean())
        if C == L:
            longest = tl.reshape(-1, L).mean(0)
    return losses, longest


def position_buckets(per_position: torch.Tensor) -> tuple[list[int], list[float]]:
    """Mean loss over positions [0, 1), [1, 2), [2, 4), ..., [2^k, L): position = characters read before."""
    L = per_position.shape[0]
    edges = [0] + [2 ** j for j in range(int(math.log2(L)) + 1) if 2 ** j < L] + [L]
    return edges, [float(per_position[a:b].mean()) for a, b in zip(edges[:-1], edges[1:])]


# ------------------------------------------------------------------------------------------------- figure
def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    try:  # the course's plotting style (colours per model kind), when the package has it
        from xlstm_edu import style

        style.apply()
        colors = dict(getattr(style, "MODEL_COLORS", {}))
    except ImportError:
        colors = {}
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.2), layout="constrained")
    trained = result["header"]["trained_context"]
    for kind in result["header"]["models"]:
        rows = [r for r in result["rows"] if r["model"] == kind]
        Cs = sorted({r["context"] for r in rows})
        ref_C = trained if trained in Cs else Cs[0]
        base = {r["seed"]: r["loss"] for r in rows if r["context"] == ref_C}
        # the change against the loss at the training context, seed by seed (models differ by much more)
        per_seed = [[r["loss"] - base[r["seed"]] for r in rows if r["context"] == C] for C in Cs]
        mean = [statistics.fmean(v) for v in per_seed]
        label = kind + (" (sliding window)" if kind == "gpt" else "")
        ax1.plot(Cs, mean, "o-", color=colors.get(kind), label=label)
        ax1.fill_between(Cs, [min(v) for v in per_seed], [max(v) for v in per_seed], color=colors.get(kind),
                         alpha=0.2, lw=0)
        curves = [c for c in result["per_position"] if c["model"] == kind]
        if curves:
            edges = curves[0]["edges"]
            mids = [max(a, 0.5) * (b / max(a, 0.5)) ** 0.5 for a, b in zip(edges[:-1], edges[1:])]
            ax2.plot(mids, [statistics.fmean(c["loss"][j] for c in curves) for j in range(len(mids))], "o-",
                     color=colors.get(kind), label=label)
    for ax in (ax1, ax2):
        ax.axvline(trained, color="0.4", ls="--", lw=1)
        ax.set_xscale("log", base=2)
        ax.legend()
    ax1.axhline(0, color="0.6", lw=0.8)
    ax1.set(xlabel="evaluation context C (characters)", ylabel="loss(C) - loss at the training context",
            title=f"trained at {trained}; same characters at every C (mean, range over seeds)")
    ax2.set(xlabel="position in a window (characters read before)", ylabel="loss (nats/char)",
            title=f"loss by position inside a {max(r['context'] for r in result['rows'])}-character window")
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ------------------------------------------------------------------------------------------------- CLI
def parse(argv):
    p = argparse.ArgumentParser(prog="python -m xlstm_edu.longctx", description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="cpu-small")
    p.add_argument("--models", default="xlstm,mlstm,gpt", help=f"comma-separated subset of {','.join(KINDS)}")
    p.add_argument("--seeds", type=int, default=2, help="training seeds per model (default 2)")
    p.add_argument("--contexts", default="128,256,512,1024,2048", help="evaluation contexts; each divides the largest")
    p.add_argument("--max-tokens", type=int, default=65536,
                   help="validation characters scored at every context (0: the whole split; default 65536)")
    p.add_argument("--max-iters", type=int, default=None, help="training steps (default: the preset's)")
    p.add_argument("--corpus", default="shakespeare")
    p.add_argument("--retrain", action="store_true", help="train again even if runs/long_context/ holds the run")
    p.add_argument("--from-compare", action="store_true",
                   help="train nothing: evaluate the final runs of `python -m xlstm_edu.compare --preset PRESET`")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--json", default=None, help="default: results/long_context.json of the course folder")
    p.add_argument("--png", default=None, help="default: the JSON's path with .png")
    p.add_argument("--update-readme", action="store_true", help="rewrite the README's table from the result")
    a, extra = p.parse_known_args(argv)
    if a.from_compare and (a.retrain or a.max_iters is not None or extra):
        p.error("--from-compare evaluates the comparison's runs as they are: no --retrain, --max-iters or trainer flags")
    if a.seeds < 1 or a.threads < 1 or a.max_tokens < 0:
        p.error("--seeds and --threads must be >= 1 and --max-tokens >= 0")
    a.models = [m.strip() for m in a.models.split(",") if m.strip()]
    if not a.models or any(m not in KINDS for m in a.models):
        p.error(f"--models: expected a comma-separated subset of {list(KINDS)}, got {a.models}")
    try:
        a.contexts = sorted({int(c) for c in a.contexts.split(",") if c.strip()})
    except ValueError:
        p.error(f"--contexts: expected comma-separated integers, got {a.contexts!r}")
    if not a.contexts or a.contexts[0] < 1 or any(a.contexts[-1] % c for c in a.contexts):
        p.error(f"--contexts: expected positive integers that each divide the largest, got {a.contexts}")
    from xlstm_edu.presets import PRESETS

    if a.preset not in PRESETS:
        p.error(f"--preset: expected one of {list(PRESETS)}, got {a.preset!r}")
    return a, extra


def readme_block(result) -> str:
    """The README's table of a result file (None: the line that says there is none yet): per model the mean loss
    over seeds at every context, [min, max] over seeds, and the change from the shortest to the longest context."""
    if not result:
        return "*Not run yet: `results/long_context.json` (see the commands above).*"
    h, rows = result["header"], result["rows"]
    Cs = sorted({r["context"] for r in rows})
    lines = [f"`{h['command']}` (commit `{h['commit']}`; {h.get('source', 'runs trained for it')}; trained at "
             f"{h['trained_context']} characters; {h['scored_characters']:,} validation characters scored at every "
             f"context; loss in nats per character, mean [min, max] over seeds):", "",
             "| model | seeds | " + " | ".join(f"C = {C:,}" for C in Cs) + f" | C = {Cs[-1]:,} − C = {Cs[0]:,} |",
             "|---|---:|" + "---:|" * (len(Cs) + 1)]
    for kind in h["models"]:
        at = {C: [r["loss"] for r in rows if r["model"] == kind and r["context"] == C] for C in Cs}
        if not at[Cs[0]]:
            continue
        mean = {C: sum(v) / len(v) for C, v in at.items()}
        label = kind + (" (sliding window)" if kind == "gpt" else "")
        lines.append(f"| {label} | {len(at[Cs[0]])} | "
                     + " | ".join(f"{mean[C]:.4f} [{min(at[C]):.4f}, {max(at[C]):.4f}]" for C in Cs)
                     + f" | {mean[Cs[-1]] - mean[Cs[0]]:+.4f} |")
    lines += ["", "![loss against the evaluation context, and by position in the longest window]"
                  "(results/long_context.png)"]
    return "\n".join(lines)


def update_readme(readme, result) -> bool:
    """Replace the text between the markers in ``readme``; False if the markers are missing."""
    return replace_marked_block(readme, README_BEGIN, README_END, readme_block(result))


def main(argv=None) -> int:
    from xlstm_edu.outfiles import code_version
    from xlstm_edu.paths import results_dir
    from xlstm_edu.presets import get_preset
    from xlstm_edu.sample import load_run

    argv = sys.argv[1:] if argv is None else list(argv)
    a, extra = parse(argv)
    try:  # every output path is checked before any work
        out = check_output_file(a.json or results_dir() / "long_context.json", "--json")
        png = check_output_file(a.png or out.with_suffix(".png"), "--png")
        if a.update_readme:
            from xlstm_edu.paths import home

            readme = home() / "README.md"
            if not readme.is_file() or README_BEGIN not in readme.read_text(encoding="utf-8"):
                raise ValueError(f"--update-readme: {readme} has no long-context block")
            check_output_file(readme, "--update-readme")
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    torch.set_num_threads(a.threads)
    trained = get_preset(a.preset)["context_length"]
    header = {"command": "python -m xlstm_edu.longctx " + " ".join(argv), "commit": code_version(),
              "load_average_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
              "threads": torch.get_num_threads(), "torch": torch.__version__, "preset": a.preset,
              "trained_context": trained, "models": a.models, "seeds": a.seeds, "contexts": a.contexts,
              "corpus": a.corpus, "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
              "gpt_evaluation": "sliding window past its positional table: windows of context_length characters, "
                                "stride context_length/2, each scoring its last half"}
    t0 = time.time()
    runs = {}
    if a.from_compare:  # the comparison's final runs, every seed it has; nothing is trained
        for kind in a.models:
            found = compare_runs(a.preset, kind)
            if not found:
                print(f"error: no finished final runs of {kind!r} under runs/compare_{a.preset}/: run "
                      f"`python -m xlstm_edu.compare --preset {a.preset}` first", file=sys.stderr)
                return 2
            for seed, d in found.items():
                print(f"using {d}", flush=True)
                runs[kind, seed] = d
        header["source"] = f"the final runs of python -m xlstm_edu.compare --preset {a.preset}"
        header["seeds"] = sorted({seed for _, seed in runs})
    for kind in ([] if a.from_compare else a.models):
        for seed in range(a.seeds):
            d = run_dir(a.preset, kind, seed)
            if a.retrain or not (d / "ckpt.pt").exists():
                print(f"training {kind} seed {seed} -> {d}", flush=True)
                train_run(kind, a.preset, seed, d, corpus=a.corpus, max_iters=a.max_iters, extra=extra)
            else:
                print(f"reusing {d}", flush=True)
            runs[kind, seed] = d
    header["train_minutes"] = round((time.time() - t0) / 60, 1)

    from xlstm_edu.data import load_corpus

    corpus = load_corpus(a.corpus)
    windows = eval_windows(corpus.tensors()[1], a.contexts[-1], a.max_tokens)
    header["scored_characters"] = int(windows.shape[0] * a.contexts[-1])
    rows, curves = [], []
    for (kind, seed), d in runs.items():
        model, chars, meta = load_run(d)
        if chars != corpus.chars:
            raise ValueError(f"{d}: trained on another vocabulary than corpus {a.corpus!r}")
        t1 = time.time()
        losses, per_pos = evaluate(model, windows, a.contexts)
        for C, loss in losses.items():
            rows.append({"model": kind, "seed": seed, "context": C, "loss": round(loss, 5),
                         "trained_context": model.cfg.context_length, "params": model.num_params(), "run": d.name})
        edges, bl = position_buckets(per_pos)
        curves.append({"model": kind, "seed": seed, "edges": edges, "loss": [round(v, 5) for v in bl]})
        print(f"{kind} seed {seed} ({time.time() - t1:.0f} s): "
              + ", ".join(f"C={C}: {v:.4f}" for C, v in losses.items()), flush=True)
    header["load_average_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    header["minutes"] = round((time.time() - t0) / 60, 1)
    result = {"header": header, "rows": rows, "per_position": curves}
    out.write_text(json.dumps(result, indent=1))
    plot(result, png)
    print(f"wrote {out} and {png}")
    if a.update_readme:
        update_readme(readme, result)
        print(f"updated the long-context table in {readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
