"""Training speed of the course's language models and of the official xLSTM package, measured side by side.

    python -m xlstm_edu.bench lm [--json PATH] [--repeats N] [--steps N] [--threads N] [--models a,b,...]

One training step = forward, cross-entropy, backward and an AdamW update on a batch of random tokens. Every
repeat runs ``--steps`` steps of every model in turn (interleaved, so machine noise hits all of them alike); the
table reports the median tokens per second over the repeats, the parameter count, and ratios against the
official package and against GPT.

Models (embedding 128, 4 blocks, context 256, batch 16, vocabulary 65 unless overridden):

* ``xlstm`` (xLSTM[1:1], sLSTM at 1 and 3), ``mlstm`` (mLSTM only), ``slstm`` (sLSTM only), ``gpt``, ``lstm``:
  this course's models via ``xlstm_edu.models.build_model``;
* ``official-xlstm`` / ``official-mlstm``: ``xlstm.xLSTMLMModel`` (PyPI ``xlstm``, if installed) at the same
  configuration, sLSTM backend "vanilla" (its CUDA backend needs a GPU compiler). Its mLSTM layer always uses the
  package's own parallel stabilized backend (``xlstm.blocks.mlstm.backends.parallel_stabilized_simple``, plain
  torch, runs on CPU); it has no chunkwise option in this layer.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import torch
import torch.nn.functional as F

OURS = ("xlstm", "mlstm", "slstm", "gpt", "lstm")
OFFICIAL = ("official-xlstm", "official-mlstm")
OFFICIAL_BACKEND = "sLSTM: vanilla (pure torch); mLSTM: parallel_stabilized_simple (pure torch)"


def build_ours(kind: str, a):
    from xlstm_edu.models import build_model

    overrides = dict(embedding_dim=a.embedding_dim, num_blocks=a.num_blocks)
    if kind in ("xlstm", "mlstm", "slstm", "gpt"):
        overrides["num_heads"] = a.num_heads
    if kind in ("xlstm", "mlstm", "slstm"):
        overrides["chunk_size"] = a.chunk_size
    return build_model(kind, vocab_size=a.vocab_size, context_length=a.context_length, **overrides)


def build_official(kind: str, a):
    """The official xLSTMLMModel with our block layout: sLSTM at the odd positions (xlstm) or none (mlstm)."""
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
    a = p.parse_args(argv)
    for name in ("repeats", "steps", "threads", "embedding_dim", "num_blocks", "num_heads", "context_length",
                 "batch_size", "vocab_size", "chunk_size"):
        if getattr(a, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(a, name)}")
    a.models = [m.strip() for m in a.models.split(",") if m.strip()]
    bad = [m for m in a.models if m not in OURS + OFFICIAL]
    if bad:
        p.error(f"unknown model(s) {bad}; choose from {list(OURS + OFFICIAL)}")
    return a


def main(argv=None):
    a = parse(sys.argv[1:] if argv is None else argv)
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    print(f"bench lm: torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"torch threads = {torch.get_num_threads()} (OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}), "
          f"{os.cpu_count()} CPUs visible")
    print(f"config: embedding {a.embedding_dim}, {a.num_blocks} blocks, {a.num_heads} heads, context "
          f"{a.context_length}, batch {a.batch_size}, vocab {a.vocab_size}; {a.repeats} interleaved repeats x "
          f"{a.steps} steps (forward + backward + AdamW)")

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
            cpu_rates[name].append(tokens / (time.process_time() - c0))

    med = {name: statistics.median(v) for name, v in rates.items()}
    cpu_med = {name: statistics.median(v) for name, v in cpu_rates.items()}
    rows = []
    for name, model in models.items():
        params = sum(p.numel() for p in model.parameters())
        row = dict(model=name, params=params, train_tokens_per_s=round(med[name], 1),
                   tokens_per_s_all=[round(x, 1) for x in rates[name]],
                   train_tokens_per_cpu_s=round(cpu_med[name], 1), threads=torch.get_num_threads(),
                   embedding_dim=a.embedding_dim, num_blocks=a.num_blocks, context_length=a.context_length,
                   batch_size=a.batch_size, vocab_size=a.vocab_size)
        if name in OFFICIAL:
            row["backend"] = OFFICIAL_BACKEND
        off = {"xlstm": "official-xlstm", "mlstm": "official-mlstm"}.get(name)
        if off in med:
            row["vs_official"] = round(med[name] / med[off], 3)
            row["vs_official_cpu"] = round(cpu_med[name] / cpu_med[off], 3)
        if "gpt" in med:
            row["vs_gpt"] = round(med[name] / med["gpt"], 3)
            row["vs_gpt_cpu"] = round(cpu_med[name] / cpu_med["gpt"], 3)
        rows.append(row)

    print("\ntokens/s = wall clock; tokens/CPU-s = per second of this process's CPU time (less sensitive to other "
          "processes on a shared machine). Ratios: wall (CPU).")
    print(f"{'model':16s} {'params':>10s} {'tokens/s':>10s} {'tokens/CPU-s':>13s} {'vs official':>15s} "
          f"{'vs gpt':>13s}   all repeats (wall)")
    for row in rows:
        vo = f"{row['vs_official']:.2f}x ({row['vs_official_cpu']:.2f}x)" if "vs_official" in row else ""
        vg = f"{row['vs_gpt']:.2f}x ({row['vs_gpt_cpu']:.2f}x)" if "vs_gpt" in row else ""
        allr = " ".join(f"{x:.0f}" for x in row["tokens_per_s_all"])
        print(f"{row['model']:16s} {row['params']:>10,} {row['train_tokens_per_s']:>10,.0f} "
              f"{row['train_tokens_per_cpu_s']:>13,.0f} {vo:>15s} {vg:>13s}   {allr}")
    if any(n in models for n in OFFICIAL):
        print(f"\nofficial backend: {OFFICIAL_BACKEND}")

    targets = [("xlstm", "official-xlstm", 2.0, "our xLSTM[1:1] >= 2x official"),
               ("mlstm", "official-mlstm", 2.5, "our mLSTM-only >= 2.5x official mLSTM-only")]
    verdict = lambda ok: "met" if ok else "NOT met"  # noqa: E731
    for ours, ref, want, text in targets:
        if ours in med and ref in med:
            got, got_cpu = med[ours] / med[ref], cpu_med[ours] / cpu_med[ref]
            print(f"target {text}: wall {got:.2f}x -> {verdict(got >= want)}; "
                  f"CPU time {got_cpu:.2f}x -> {verdict(got_cpu >= want)}")
    if "mlstm" in med and "gpt" in med:
        slower, slower_cpu = med["gpt"] / med["mlstm"], cpu_med["gpt"] / cpu_med["mlstm"]
        print(f"target our mLSTM-only within 1.5x of GPT: GPT/mLSTM wall {slower:.2f} -> {verdict(slower <= 1.5)}; "
              f"CPU time {slower_cpu:.2f} -> {verdict(slower_cpu <= 1.5)}")

    if a.json:
        os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
        with open(a.json, "w") as fh:
            json.dump(rows, fh, indent=2)
        print(f"wrote {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
