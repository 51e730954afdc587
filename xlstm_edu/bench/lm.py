"""Training speed of the course's language models and of the official xLSTM package, measured side by side.

    python -m xlstm_edu.bench lm [--json PATH] [--update-readme] [--repeats N] [--steps N] [--threads N]
                                 [--models a,b,...]

One training step = forward, cross-entropy, backward and an AdamW update on a batch of random tokens. Every
repeat runs ``--steps`` steps of every model in turn (interleaved, so machine noise hits all of them alike); the
table reports the median tokens per second over the repeats, the parameter count, and ratios against the
official package and against GPT.

How far from the machine's limit: each model's training FLOPs per token are counted by formula
(``xlstm_edu.bench.flops``: the matrix products of a forward pass, times 3 for forward + backward), and the
achieved FLOP/s (FLOPs per token × tokens/s) is given as a fraction of the machine's matrix-multiply peak,
measured in the same run with a large float32 matmul on the same number of threads (MFU, "model FLOPs
utilisation"). The load average (1, 5, 15 min) is recorded before and after: numbers taken while other jobs ran
are not comparable.

Models (embedding 128, 4 blocks, context 256, batch 16, vocabulary 65 unless overridden):

* ``xlstm`` (xLSTM[1:1], sLSTM at 1 and 3), ``mlstm`` (mLSTM only), ``slstm`` (sLSTM only), ``gpt``, ``lstm``:
  this course's models via ``xlstm_edu.models.build_model``;
* ``large``: the xLSTM 7B architecture (``xlstm_edu.nn.XLSTMLarge``) at the same embedding, blocks and heads;
* ``official-xlstm`` / ``official-mlstm``: ``xlstm.xLSTMLMModel`` (PyPI ``xlstm``, if installed) at the same
  configuration, sLSTM backend "vanilla" (its CUDA backend needs a GPU compiler). Its mLSTM layer always uses the
  package's own parallel stabilized backend (``xlstm.blocks.mlstm.backends.parallel_stabilized_simple``, plain
  torch, runs on CPU); it has no chunkwise option in this layer;
* ``official-large``: ``xlstm.xlstm_large.model.xLSTMLarge`` at the configuration of ``large``, with its native
  torch kernels (chunkwise ``chunkwise--native_autograd`` in mode "train", which needs a context length that
  is a multiple of the chunk size).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time

import torch
import torch.nn.functional as F

from xlstm_edu.bench.flops import train_flops_per_token
from xlstm_edu.models import KIND_NAMES
from xlstm_edu.outfiles import check_output_file, code_version, replace_marked_block

OURS = KIND_NAMES + ("large",)  # the registry's kinds, and the 7B-style model of xlstm_edu.nn.large
OFFICIAL = ("official-xlstm", "official-mlstm", "official-large")
TWIN = {"official-xlstm": "xlstm", "official-mlstm": "mlstm", "official-large": "large"}  # same architecture
README_BEGIN = "<!-- bench-lm:begin (python -m xlstm_edu.bench lm --json results/bench_lm.json --update-readme) -->"
README_END = "<!-- bench-lm:end -->"
OFFICIAL_BACKEND = {
    "official-xlstm": "sLSTM: vanilla (pure torch); mLSTM: parallel_stabilized_simple (pure torch)",
    "official-mlstm": "mLSTM: parallel_stabilized_simple (pure torch)",
    "official-large": "mlstm_kernels chunkwise--native_autograd (pure torch), mode train",
}


def large_config(a):
    from xlstm_edu.nn.large import XLSTMLargeConfig

    return XLSTMLargeConfig(vocab_size=a.vocab_size, embedding_dim=a.embedding_dim, num_heads=a.num_heads,
                            num_blocks=a.num_blocks, context_length=a.context_length, chunk_size=a.chunk_size)


def build_ours(kind: str, a):
    if kind == "large":
        from xlstm_edu.nn.large import XLSTMLarge

        return XLSTMLarge(large_config(a))
    from xlstm_edu.models import build_model

    overrides = dict(embedding_dim=a.embedding_dim, num_blocks=a.num_blocks)
    if kind in ("xlstm", "mlstm", "slstm", "gpt"):
        overrides["num_heads"] = a.num_heads
    if kind in ("xlstm", "mlstm", "slstm"):
        overrides["chunk_size"] = a.chunk_size
    return build_model(kind, vocab_size=a.vocab_size, context_length=a.context_length, **overrides)


def build_official(kind: str, a):
    """The official xLSTMLMModel with our block layout: sLSTM at the odd positions (xlstm) or none (mlstm); or
    the official xLSTMLarge (official-large)."""
    if kind == "official-large":
        from xlstm_edu.nn.large import build_official as build_official_large

        return build_official_large(large_config(a), mode="train")
    from xlstm import (FeedForwardConfig, mLSTMBlockConfig, mLSTMLayerConfig, sLSTMBlockConfig,
                       sLSTMLayerConfig, xLSTMLMModel, xLSTMLMModelConfig)

    slstm_at = list(range(1, a.num_blocks, 2)) if kind == "official-xlstm" else []
    cfg = xLSTMLMModelConfig(
        mlstm_block=mLSTMBlockConfig(mlstm=mLSTMLayerConfig(conv1d_kernel_size=4, qkv_proj_blocksize=4,
                                                            num_heads=a.num_heads)),
        slstm_block=sLSTMBlockConfig(
            slstm=sLSTMLayerConfig(backend="vanilla", num_heads=a.num_heads, conv1d_kernel_size=4,
                                   bias_init="powerlaw_blockdependent"),
            feedforward=FeedForwardConfig(proj_factor=1.3, act_fn="gelu")),
        context_length=a.context_length, num_blocks=a.num_blocks, embedding_dim=a.embedding_dim,
        slstm_at=slstm_at, vocab_size=a.vocab_size)
    model = xLSTMLMModel(cfg)
    model.reset_parameters()
    return model


def make_step(model, a, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, a.vocab_size, (a.batch_size, a.context_length), generator=g)
    y = torch.randint(0, a.vocab_size, (a.batch_size, a.context_length), generator=g)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
    model.train()

    def step():
        logits = model(x)
        if isinstance(logits, tuple):  # the official xLSTMLarge returns (logits, state)
            logits = logits[0]
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    return step


def parse(argv):
    p = argparse.ArgumentParser(prog="python -m xlstm_edu.bench lm", description=__doc__.split("\n\n")[0])
    p.add_argument("--json", metavar="PATH", help="also write the results as a JSON list to PATH")
    p.add_argument("--repeats", type=int, default=5, help="interleaved repeats (median reported; default 5)")
    p.add_argument("--steps", type=int, default=2, help="training steps per model per repeat (default 2)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--models", default=",".join(OURS + OFFICIAL), help="comma-separated subset")
    p.add_argument("--embedding-dim", type=int, default=128)
    p.add_argument("--num-blocks", type=int, default=4)
    p.add_argument("--num-heads", type=int, default=4)
    p.add_argument("--context-length", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--vocab-size", type=int, default=65)
    p.add_argument("--chunk-size", type=int, default=64)
    p.add_argument("--update-readme", action="store_true", help="rewrite the README's speed table from the result")
    p.add_argument("--peak-size", type=int, default=2048,
                   help="matrix size n of the n×n float32 matmul that measures the peak FLOP/s (default 2048)")
    a = p.parse_args(argv)
    for name in ("repeats", "steps", "threads", "embedding_dim", "num_blocks", "num_heads", "context_length",
                 "batch_size", "vocab_size", "chunk_size", "peak_size"):
        if getattr(a, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(a, name)}")
    a.models = [m.strip() for m in a.models.split(",") if m.strip()]
    bad = [m for m in a.models if m not in OURS + OFFICIAL]
    if bad:
        p.error(f"unknown model(s) {bad}; choose from {list(OURS + OFFICIAL)}")
    if not a.models:
        p.error("--models: expected at least one model")
    if "official-large" in a.models and a.context_length % a.chunk_size:
        p.error(f"official-large runs the official chunkwise kernel in train mode, which needs the context length "
                f"({a.context_length}) to be a multiple of the chunk size ({a.chunk_size})")
    if a.json:
        try:
            check_output_file(a.json, "--json")
        except ValueError as e:
            p.error(str(e))
    if a.update_readme:  # checked before any work, like every output
        from xlstm_edu.paths import home

        readme = home() / "README.md"
        if not readme.is_file() or README_BEGIN not in readme.read_text(encoding="utf-8"):
            p.error(f"--update-readme: {readme} has no bench-lm block")
        try:
            check_output_file(readme, "--update-readme")
        except ValueError as e:
            p.error(str(e))
    return a


def matmul_peak(n: int = 2048, repeats: int = 5) -> float:
    """The machine's matrix-multiply peak in FLOP/s on the current number of torch threads: the best of
    ``repeats`` float32 n×n products (2·n³ FLOPs each), after one warm-up."""
    g = torch.Generator().manual_seed(0)
    A, B = torch.randn(n, n, generator=g), torch.randn(n, n, generator=g)
    C = torch.empty(n, n)
    torch.mm(A, B, out=C)
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(A, B, out=C)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


def flops_config(name: str, model, a):
    """The course config whose FLOPs formula counts ``name`` (an official model: its course twin's)."""
    if name in OFFICIAL:
        return build_ours(TWIN[name], a).cfg
    return model.cfg


TARGETS = (("xlstm", "official-xlstm", 2.0, "our xLSTM[1:1] >= 2x official"),
           ("mlstm", "official-mlstm", 2.5, "our mLSTM-only >= 2.5x official mLSTM-only"),
           ("large", "official-large", 1.0, "our 7B-style model >= 1x official xLSTMLarge"))


def targets(rows) -> list[tuple]:
    """The speed targets this benchmark checks, as (text, wall ratio, CPU-time ratio, met on the wall clock)."""
    by = {r["model"]: r for r in rows}
    out = []
    for ours, ref, want, text in TARGETS:
        if ours in by and ref in by:
            wall = by[ours]["train_tokens_per_s"] / by[ref]["train_tokens_per_s"]
            cpu = by[ours]["train_tokens_per_cpu_s"] / by[ref]["train_tokens_per_cpu_s"]
            out.append((text, wall, cpu, wall >= want))
    if "mlstm" in by and "gpt" in by:  # how much faster GPT is: at most 1.5
        wall = by["gpt"]["train_tokens_per_s"] / by["mlstm"]["train_tokens_per_s"]
        cpu = by["gpt"]["train_tokens_per_cpu_s"] / by["mlstm"]["train_tokens_per_cpu_s"]
        out.append(("our mLSTM-only within 1.5x of GPT (GPT / mLSTM-only <= 1.5)", wall, cpu, wall <= 1.5))
    return out


def readme_block(rows) -> str:
    """The README's table of a ``--json`` result (None: the line that says there is none yet)."""
    if not rows:
        return ("*Not measured yet on a quiet machine: `python -m xlstm_edu.bench lm --json results/bench_lm.json "
                "--update-readme` writes this table.*")
    r0 = rows[0]
    load = lambda x: "/".join(f"{v:.2f}" for v in x)  # noqa: E731
    lines = [f"`{r0['command']}` (commit `{r0['commit']}`, torch {r0['torch']}, {r0['threads']} thread(s), "
             f"median of {len(r0['tokens_per_s_all'])} interleaved repeats; embedding {r0['embedding_dim']}, "
             f"{r0['num_blocks']} blocks, context {r0['context_length']}, batch {r0['batch_size']}; load average "
             f"{load(r0['loadavg_start'])} at the start, {load(r0['loadavg_end'])} at the end; float32 matmul peak "
             f"{r0['matmul_peak_flops'] / 1e9:.1f} GFLOP/s):", "",
             "| model | parameters | tokens/s | tokens per CPU-s | vs official | vs GPT | MFLOP/token | MFU |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        vo = f"{r['vs_official']:.2f}×" if "vs_official" in r else ""
        vg = f"{r['vs_gpt']:.2f}×" if "vs_gpt" in r else ""
        lines.append(f"| `{r['model']}` | {r['params']:,} | {r['train_tokens_per_s']:,.0f} | "
                     f"{r['train_tokens_per_cpu_s']:,.0f} | {vo} | {vg} | {r['train_flops_per_token'] / 1e6:.2f} | "
                     f"{100 * r['mfu']:.1f}% |")
    lines.append("")
    lines.append("Targets (wall clock; per CPU-second in brackets): " + "; ".join(
        f"{text}: {wall:.2f}× ({cpu:.2f}×), {'met' if ok else '**not met**'}" for text, wall, cpu, ok in
        targets(rows)) + ".")
    return "\n".join(lines)


def update_readme(readme, rows) -> bool:
    """Replace the text between the markers in ``readme``; False if the markers are missing."""
    return replace_marked_block(readme, README_BEGIN, README_END, readme_block(rows))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    a = parse(argv)
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    load_start = os.getloadavg()
    print(f"bench lm: torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"torch threads = {torch.get_num_threads()} (OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}), "
          f"{os.cpu_count()} CPUs visible; load average {' '.join(f'{x:.2f}' for x in load_start)}")
    print(f"config: embedding {a.embedding_dim}, {a.num_blocks} blocks, {a.num_heads} heads, context "
          f"{a.context_length}, batch {a.batch_size}, vocab {a.vocab_size}; {a.repeats} interleaved repeats x "
          f"{a.steps} steps (forward + backward + AdamW)")
    peak = matmul_peak(a.peak_size)
    print(f"matmul peak: {peak / 1e9:.1f} GFLOP/s (best of 5 float32 {a.peak_size}x{a.peak_size} products, "
          f"{torch.get_num_threads()} thread(s))")

    models, steps, skipped = {}, {}, {}
    for name in a.models:
        try:
            model = build_official(name, a) if name in OFFICIAL else build_ours(name, a)
        except ImportError as e:  # the official package is optional
            skipped[name] = f"not installed ({e})"
            continue
        models[name] = model
        steps[name] = make_step(model, a)
        steps[name]()  # warm-up (allocations, first-call overheads)
    for name, why in skipped.items():
        print(f"skipped {name}: {why}")

    tokens = a.batch_size * a.context_length * a.steps
    rates = {name: [] for name in models}
    cpu_rates = {name: [] for name in models}
    for r in range(a.repeats):
        for name in models:  # interleaved: every repeat runs every model once
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(a.steps):
                steps[name]()
            rates[name].append(tokens / (time.perf_counter() - t0))
            cpu_rates[name].append(tokens / max(time.process_time() - c0, 1e-9))
    load_end = os.getloadavg()

    med = {name: statistics.median(v) for name, v in rates.items()}
    cpu_med = {name: statistics.median(v) for name, v in cpu_rates.items()}
    meta = dict(command="python -m xlstm_edu.bench lm " + " ".join(argv), commit=code_version(),
                torch=torch.__version__, loadavg_start=[round(x, 2) for x in load_start],
                loadavg_end=[round(x, 2) for x in load_end], matmul_peak_flops=round(peak),
                peak_matmul_size=a.peak_size)
    rows = []
    for name, model in models.items():
        params = sum(p.numel() for p in model.parameters())
        flops = train_flops_per_token(flops_config(name, model, a), a.context_length)
        row = dict(model=name, params=params, train_tokens_per_s=round(med[name], 1),
                   tokens_per_s_all=[round(x, 1) for x in rates[name]],
                   train_tokens_per_cpu_s=round(cpu_med[name], 1), threads=torch.get_num_threads(),
                   train_flops_per_token=flops, achieved_flops=round(flops * med[name]),
                   mfu=round(flops * med[name] / peak, 4), embedding_dim=a.embedding_dim, num_blocks=a.num_blocks,
                   num_heads=a.num_heads, context_length=a.context_length, batch_size=a.batch_size,
                   vocab_size=a.vocab_size, chunk_size=a.chunk_size, **meta)
        if name in OFFICIAL:
            row["backend"] = OFFICIAL_BACKEND[name]
        off = {"xlstm": "official-xlstm", "mlstm": "official-mlstm", "large": "official-large"}.get(name)
        if off in med:
            row["vs_official"] = round(med[name] / med[off], 3)
            row["vs_official_cpu"] = round(cpu_med[name] / cpu_med[off], 3)
        if "gpt" in med:
            row["vs_gpt"] = round(med[name] / med["gpt"], 3)
            row["vs_gpt_cpu"] = round(cpu_med[name] / cpu_med["gpt"], 3)
        rows.append(row)

    print("\ntokens/s = wall clock; tokens/CPU-s = per second of this process's CPU time (less sensitive to other "
          "processes on a shared machine). Ratios: wall (CPU). FLOP/token: training (3 x forward matmul FLOPs, "
          "xlstm_edu.bench.flops); MFU: achieved FLOP/s (wall) / matmul peak.")
    print(f"{'model':16s} {'params':>10s} {'tokens/s':>10s} {'tokens/CPU-s':>13s} {'vs official':>15s} "
          f"{'vs gpt':>13s} {'FLOP/token':>11s} {'MFU':>6s}   all repeats (wall)")
    for row in rows:
        vo = f"{row['vs_official']:.2f}x ({row['vs_official_cpu']:.2f}x)" if "vs_official" in row else ""
        vg = f"{row['vs_gpt']:.2f}x ({row['vs_gpt_cpu']:.2f}x)" if "vs_gpt" in row else ""
        allr = " ".join(f"{x:.0f}" for x in row["tokens_per_s_all"])
        print(f"{row['model']:16s} {row['params']:>10,} {row['train_tokens_per_s']:>10,.0f} "
              f"{row['train_tokens_per_cpu_s']:>13,.0f} {vo:>15s} {vg:>13s} "
              f"{row['train_flops_per_token'] / 1e6:>9.2f} M {100 * row['mfu']:>5.1f}%   {allr}")
    for name in models:
        if name in OFFICIAL:
            print(f"{name} backend: {OFFICIAL_BACKEND[name]}")
    print(f"load average (1, 5, 15 min): {' '.join(f'{x:.2f}' for x in load_start)} at the start, "
          f"{' '.join(f'{x:.2f}' for x in load_end)} at the end"
          + ("  -- other jobs were running: the numbers are not reliable" if max(load_end[0], load_start[0])
             > max(1.0, a.threads) + 0.5 else ""))

    for text, wall, cpu, ok in targets(rows):
        print(f"target {text}: wall {wall:.2f}x -> {'met' if ok else 'NOT met'}; CPU time {cpu:.2f}x")

    if a.json:
        os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
        with open(a.json, "w") as fh:
            json.dump(rows, fh, indent=2)
        print(f"wrote {a.json}")
    if a.update_readme:
        from xlstm_edu.paths import home

        update_readme(home() / "README.md", rows)
        print(f"updated the speed table in {home() / 'README.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
