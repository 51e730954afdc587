"""Parity and the eigenvalues of a linear RNN (chapter 14): a hand-set solution, the best a [0, 1] model can do,
and a small training experiment with the chapter-12 harness.

Usage::

    OMP_NUM_THREADS=1 python -m xlstm_edu.linear_rnn_parity --preset cpu --seeds 3 \\
        --json results/linear_rnn_parity.json --png results/linear_rnn_parity.png
    python -m xlstm_edu.linear_rnn_parity --preset smoke          # seconds: shows that the pipeline runs

Three parts:

* :func:`handset_logits`: a one-unit DeltaNet (``xlstm_edu.np.deltanet_recurrent`` with q = k = 1, v = 1/2,
  β_t = 2·x_t) whose state is the running parity exactly: on a 0 nothing changes (β = 0, eigenvalue 1), on a 1
  S ← (1 - 2) S + 2·1/2 = 1 - S (eigenvalue -1). It scores 1 at every length. The same model with β limited to
  [0, 1] (``beta_one=1``: eigenvalue 0, the state is reset to 1/2 by every 1) forgets everything before the last 1.
* :func:`best_one_unit_accuracy`: the best accuracy that *any* one-unit linear RNN s_t = a(x_t) s_{t-1} + b(x_t)
  with a(0), a(1) ∈ [0, 1] and a threshold read-out reaches on random strings of a given length, found by a grid
  search (exactly, over all 2^n strings, for short lengths). It falls towards chance as the strings get longer;
  :func:`count_rule_accuracy` is the accuracy of the best threshold on the number of ones, which is what the
  search ends up finding.
* :func:`run`: train small models on parity as in chapter 12 (``xlstm_edu.experiments``: 2 blocks, strings of
  length 1-40 with the answer of every prefix as target, tested on fresh strings): the linear-RNN language model
  of ``xlstm_edu.nn.linear_rnn`` with DeltaNet and with a scalar-decay cell, each with its transition's
  eigenvalue in [0, 1] and in [-1, 1], next to the mLSTM-only and sLSTM-only models of chapter 12. Accuracy is
  reported at training lengths (5-40) and at test lengths (41-256). The JSON records the command, the code
  version, the machine's load average, every run, the learned eigenvalues and the two parts above.

Presets: ``smoke`` (seconds, what the tests run) and ``cpu`` (800 steps of 32 strings per run, as chapter 12's
``cpu`` preset; six models × 3 seeds plus the two theory parts take about 10 minutes on one free core with
``OMP_NUM_THREADS=1``). Training on one thread is deterministic: the same code version gives the same accuracies.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from xlstm_edu._validate import check_choice, check_positive_int
from xlstm_edu.np.linear_rnn import deltanet_recurrent

# ----------------------------------------------------------------------------------------------- hand-set model
PARITY_VOCAB = 4  # tokens 0, 1 (the bits), 2 = answer "even", 3 = answer "odd" (xlstm_edu.tasks.Parity)


def _check_bits(bits) -> np.ndarray:
    arr = np.asarray(bits)
    if arr.ndim < 1 or arr.size == 0:
        raise ValueError(f"bits: expected a non-empty array of shape (..., S) with values 0/1, got shape {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.bool_)
            or np.issubdtype(arr.dtype, np.floating)):
        raise ValueError(f"bits: expected an array of 0s and 1s, got dtype {arr.dtype}")
    if not np.all((arr == 0) | (arr == 1)):
        raise ValueError(f"bits: expected values 0 or 1, got values in [{arr.min()}, {arr.max()}]")
    return arr.astype(np.int64)


def handset_inputs(bits, beta_one: float = 2.0):
    """q, k (..., S, 1), v (..., S, 1), beta (..., S) of the one-unit DeltaNet for a bit string (..., S):
    q = k = 1, v = 1/2, β_t = beta_one · x_t. Its transition on a 1 is 1 - beta_one (eigenvalue -1 for 2)."""
    bits = _check_bits(bits)
    if isinstance(beta_one, bool) or not isinstance(beta_one, (int, float, np.integer, np.floating)) \
            or not 0.0 <= float(beta_one) <= 2.0:
        raise ValueError(f"beta_one: expected a number in [0, 2] (β on a 1), got {beta_one!r}")
    ones = np.ones(bits.shape + (1,))
    return ones, ones, 0.5 * ones, float(beta_one) * bits


def handset_state(bits, beta_one: float = 2.0) -> np.ndarray:
    """The one-unit DeltaNet's output h_t = S_t (..., S) on ``bits``: the running parity (0/1) for beta_one = 2."""
    h, _ = deltanet_recurrent(*handset_inputs(bits, beta_one))
    return h[..., 0]


def handset_logits(beta_one: float = 2.0):
    """A ``tokens (B, S) -> logits (B, S, 4)`` callable for ``xlstm_edu.experiments.evaluate_formal``: the
    answer is "odd" when h_t > 1/2 (logit of "odd" h - 1/2, of "even" 1/2 - h)."""
    def logits(tokens):
        h = handset_state(tokens, beta_one)
        out = np.zeros(h.shape + (PARITY_VOCAB,))
        out[..., 2], out[..., 3] = 0.5 - h, h - 0.5
        return out

    return logits


def evaluate_handset(lengths, *, beta_one: float = 2.0, per_length: int = 64, seed: int = 0) -> dict:
    """Accuracy of the hand-set model on fresh random strings of each length, and on the all-ones string of each
    length (the hardest input for a [0, 1] model: it must flip at every step)."""
    from xlstm_edu.experiments import evaluate_formal

    ev = evaluate_formal(handset_logits(beta_one), "parity", lengths=lengths, per_length=per_length, seed=seed)
    ones_right = {}
    for n in lengths:
        pred = handset_state(np.ones((1, int(n)), np.int64), beta_one)[0, -1] > 0.5
        ones_right[str(int(n))] = bool(pred == (int(n) % 2 == 1))
    return {"beta_one": float(beta_one), "eigenvalue_on_one": 1.0 - float(beta_one),
            "per_length": {str(k): v for k, v in ev["per_length"].items()}, "accuracy": ev["accuracy"],
            "all_ones_right": ones_right}


# ----------------------------------------------------------------------------------------------- best [0, 1] model
def count_rule_accuracy(length: int) -> float:
    """Exact accuracy of the best rule "odd iff the number of ones is above (or below) a threshold" on uniformly
    random strings of ``length`` bits: max over thresholds θ of P(k ≤ θ, k even) + P(k > θ, k odd) (or the
    reverse), k ~ Binomial(length, 1/2). About 1/2 + 1/√(2π·length) for long strings."""
    from math import comb

    n = check_positive_int(length, "length")
    pmf = np.array([comb(n, k) for k in range(n + 1)], dtype=np.float64) / 2.0 ** n
    odd = np.arange(n + 1) % 2 == 1
    best = 0.0
    for theta in range(-1, n + 1):
        below = np.arange(n + 1) <= theta
        acc = pmf[below & ~odd].sum() + pmf[~below & odd].sum()  # even below, odd above
        best = max(best, acc, 1.0 - acc)  # 1 - acc: the reverse direction
    return float(best)


def _one_unit_states(bits, a0, a1, b0, b1):
    """Final states s_n (P, N) of s_t = a(x_t) s_{t-1} + b(x_t), s_0 = 0, for P parameter sets and N strings."""
    s = np.zeros((len(a0), bits.shape[0]))
    for t in range(bits.shape[1]):
        one = bits[None, :, t] == 1
        s = np.where(one, a1[:, None] * s + b1[:, None], a0[:, None] * s + b0[:, None])
    return s


def _best_thresholds(s, y):
    """For each row of states s (P, N) with labels y (N,): the best accuracy of "odd iff s > θ" or
    "odd iff s ≤ θ" over all θ, with the index of the split and the direction."""
    P, N = s.shape
    order = np.argsort(s, axis=1, kind="stable")
    ss, yy = np.take_along_axis(s, order, 1), y[order]
    even_below = np.concatenate([np.zeros((P, 1)), np.cumsum(1 - yy, 1)], 1)  # split j: the j smallest below
    odd_above = np.concatenate([np.cumsum(yy[:, ::-1], 1)[:, ::-1], np.zeros((P, 1))], 1)
    acc = (even_below + odd_above) / N
    valid = np.ones((P, N + 1), bool)
    valid[:, 1:N] = ss[:, 1:] > ss[:, :-1]  # a threshold can only fall between two different states
    up = np.where(valid, acc, -1.0)  # "odd above θ"
    down = np.where(valid, 1.0 - acc, -1.0)  # "odd below θ"
    best_up, best_down = up.max(1), down.max(1)
    j = np.where(best_up >= best_down, up.argmax(1), down.argmax(1))
    return np.maximum(best_up, best_down), j, best_up >= best_down, ss


def best_one_unit_accuracy(length: int, *, lowest: float = 0.0, grid: int = 11, angles: int = 16, num: int = 2048,
                           seed: int = 0, exact_up_to: int = 12, chunk: int = 256) -> dict:
    """The best accuracy on parity strings of ``length`` bits of a one-unit linear RNN whose transition lies in
    [lowest, 1] (default [0, 1]): s_t = a(x_t) s_{t-1} + b(x_t), s_0 = 0, answer "odd" iff s_n is above (or
    below) a threshold.

    Searched: a(0), a(1) on a grid of ``grid`` values in [lowest, 1] (both ends included), (b(0), b(1)) in ``angles``
    directions (its length does not matter: scaling s scales the threshold), the best threshold exactly.
    This family contains the one-unit DeltaNet with β ∈ [0, 1] (a = 1 - β, b = β v). For
    ``length <= exact_up_to`` every one of the 2^length strings is scored (exact for the grid); beyond, the
    parameters and threshold are chosen on ``num`` random strings and scored on ``num`` fresh ones.
    With ``lowest=-1`` the grid contains a(1) = -1 and the search finds accuracy 1 at every length.
    Returns dict(length, accuracy, a0, a1, b0, b1, exact, count_rule).
    """
    n = check_positive_int(length, "length")
    if isinstance(lowest, bool) or not isinstance(lowest, (int, float)) or not -1.0 <= lowest <= 1.0:
        raise ValueError(f"lowest: expected the smallest eigenvalue to search, a number in [-1, 1], got {lowest!r}")
    grid, angles, num = (check_positive_int(v, nm) for v, nm in ((grid, "grid"), (angles, "angles"), (num, "num")))
    av = np.linspace(float(lowest), 1.0, grid) if grid > 1 else np.array([1.0])
    th = np.linspace(0.0, np.pi, angles, endpoint=False)
    A0, A1, TH = (m.ravel() for m in np.meshgrid(av, av, th, indexing="ij"))
    B0, B1 = np.cos(TH), np.sin(TH)
    exact = n <= exact_up_to
    rng = np.random.default_rng(seed)
    if exact:
        bits = ((np.arange(2 ** n)[:, None] >> np.arange(n)) & 1).astype(np.int64)
    else:
        bits = rng.integers(0, 2, size=(num, n))
    y = bits.sum(1) % 2
    best, arg = -1.0, None
    for c0 in range(0, len(A0), chunk):
        sl = slice(c0, c0 + chunk)
        s = _one_unit_states(bits, A0[sl], A1[sl], B0[sl], B1[sl])
        acc, j, up, ss = _best_thresholds(s, y)
        p = int(acc.argmax())
        if acc[p] > best:
            jj = int(j[p])
            lo = ss[p, jj - 1] if jj > 0 else -np.inf
            hi = ss[p, jj] if jj < ss.shape[1] else np.inf
            theta = (lo + hi) / 2 if np.isfinite(lo) and np.isfinite(hi) else (hi - 1 if np.isfinite(hi) else lo + 1)
            best, arg = float(acc[p]), (c0 + p, float(theta), bool(up[p]))
    i, theta, up = arg
    if not exact:  # score the chosen model on fresh strings: an honest estimate, not the best of many on one sample
        bits = rng.integers(0, 2, size=(num, n))
        y = bits.sum(1) % 2
        s = _one_unit_states(bits, A0[i:i + 1], A1[i:i + 1], B0[i:i + 1], B1[i:i + 1])[0]
        pred = (s > theta) if up else (s <= theta)
        best = float(np.mean(pred == y))
    return {"length": n, "accuracy": best, "a0": float(A0[i]), "a1": float(A1[i]), "b0": float(B0[i]),
            "b1": float(B1[i]), "exact": exact, "count_rule": count_rule_accuracy(n)}


# ----------------------------------------------------------------------------------------------- the experiment
MODELS = {
    # name: (cell, eigenvalue range) for the linear-RNN LM; None for the course's xLSTM kinds
    "deltanet[0,1]": ("deltanet", "[0,1]"),
    "deltanet[-1,1]": ("deltanet", "[-1,1]"),
    "decay[0,1]": ("decay", "[0,1]"),
    "decay[-1,1]": ("decay", "[-1,1]"),
    "mlstm": None,
    "slstm": None,
}
LABELS = {"deltanet[0,1]": "DeltaNet [0, 1] (β ≤ 1)", "deltanet[-1,1]": "DeltaNet [-1, 1] (β ≤ 2)",
          "decay[0,1]": "scalar decay [0, 1]", "decay[-1,1]": "scalar decay [-1, 1]",
          "mlstm": "mLSTM only (xLSTM[1:0])", "slstm": "sLSTM only (xLSTM[0:1])"}


@dataclass(frozen=True)
class Settings:
    name: str
    steps: int = 800
    batch_size: int = 32
    lr: float = 3e-3
    linear_dim: int = 32  # embedding width of the linear-RNN LM (about 17k parameters with 2 blocks)
    supervision: str = "all"  # the answer of every prefix is a target (chapter 12's CPU setting)
    train_eval_lengths: tuple = (5, 10, 20, 30, 40)
    test_lengths: int = 8  # evenly spaced over 41-256, as in chapter 12
    per_length: int = 64
    xlstm_preset: str = "cpu"  # sizes and trainer settings of the mLSTM / sLSTM models (xlstm_edu.experiments)


PRESETS = {
    "smoke": Settings("smoke", steps=3, batch_size=8, linear_dim=8, train_eval_lengths=(5, 40), test_lengths=2,
                      per_length=8, xlstm_preset="smoke"),
    "cpu": Settings("cpu"),
}


def build_model(name: str, vocab_size: int, context_length: int, settings: Settings, seed: int):
    """A fresh, seeded model: the linear-RNN LM (2 blocks, 1 head) or the course's mLSTM / sLSTM model built by
    ``xlstm_edu.experiments.build`` with the sizes of chapter 12's preset."""
    import torch

    from xlstm_edu import experiments as ex

    check_choice(name, "model", MODELS)
    if MODELS[name] is None:
        return ex.build(name, vocab_size, context_length, ex.PRESETS[settings.xlstm_preset], seed)
    from xlstm_edu.nn.linear_rnn import LinearRNNConfig, LinearRNNLM

    cell, eig = MODELS[name]
    torch.manual_seed(seed)
    return LinearRNNLM(LinearRNNConfig(vocab_size=vocab_size, context_length=context_length,
                                       embedding_dim=settings.linear_dim, num_blocks=2, num_heads=1, cell=cell,
                                       eigenvalues=eig))


def _batches(task, batch_size: int, seed: int, supervision: str):
    """``get_batch(split, step)`` for the trainer: a pure function of (seed, split, step); lengths 1-40."""
    import torch

    from xlstm_edu.tasks import TRAIN_LENGTHS, lm_batch, sample_length

    def get_batch(split, step):
        rng = np.random.default_rng([int(seed), 0 if split == "train" else 1, abs(int(step)), int(step < 0)])
        x, y, _ = lm_batch(task, rng, batch_size, sample_length(rng, TRAIN_LENGTHS), supervision)
        return torch.from_numpy(x), torch.from_numpy(y)

    return get_batch


def _learned_eigenvalues(model) -> dict | None:
    """For the linear-RNN LM: the eigenvalue of block 0's transition on a '0' and on a '1' (it depends on the
    token only there), and the range over all blocks on 64 random strings of length 256."""
    import torch

    from xlstm_edu.nn.linear_rnn import LinearRNNLM

    if not isinstance(model, LinearRNNLM):
        return None
    model.eval()
    first = model.eigenvalues(torch.tensor([[0, 1]]))[0][0, 0]  # block 0, head 0: tokens 0 and 1
    x = torch.from_numpy(np.random.default_rng(0).integers(0, 2, size=(64, 256)))
    ev = model.eigenvalues(x)
    return {"block0_on_0": round(float(first[0]), 4), "block0_on_1": round(float(first[1]), 4),
            "min": round(float(min(e.min() for e in ev)), 4), "max": round(float(max(e.max() for e in ev)), 4)}


def run_one(name: str, seed: int, settings: Settings) -> dict:
    """Train one model on parity and evaluate it at training and test lengths."""
    from xlstm_edu import experiments as ex
    from xlstm_edu.tasks import TEST_LENGTHS, eval_lengths, get_task

    task = get_task("parity")
    model = build_model(name, task.vocab_size, TEST_LENGTHS[1], settings, seed)
    t0 = time.perf_counter()
    result = ex.fit(model, _batches(task, settings.batch_size, seed, settings.supervision), steps=settings.steps,
                    lr=settings.lr, preset=ex.PRESETS[settings.xlstm_preset], seed=seed)
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    ev_train = ex.evaluate_formal(model, task, lengths=list(settings.train_eval_lengths),
                                  per_length=settings.per_length, seed=20_000 + seed)
    ev_test = ex.evaluate_formal(model, task, lengths=eval_lengths(settings.test_lengths),
                                 per_length=settings.per_length, seed=10_000 + seed)
    return {"model": name, "seed": seed, "params": int(model.num_params()), "steps": int(result["step"]),
            "train_accuracy": ev_train["accuracy"], "test_accuracy": ev_test["accuracy"],
            "test_scaled_accuracy": ev_test["scaled_accuracy"],
            "per_length": {str(k): v for k, v in {**ev_train["per_length"], **ev_test["per_length"]}.items()},
            "final_train_loss": round(float(np.mean(result["losses"][-20:])), 4),
            "eigenvalues": _learned_eigenvalues(model), "train_s": round(train_s, 2),
            "eval_s": round(time.perf_counter() - t0, 2)}


HANDSET_LENGTHS = (1, 2, 3, 5, 8, 16, 40, 41, 100, 256, 512, 1024)
BEST_LENGTHS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 40, 64, 128, 256)


def run(models=tuple(MODELS), seeds: int = 3, preset: str = "cpu", json_path=None, png_path=None,
        command: str | None = None, verbose: bool = True, theory: bool = True, **overrides) -> dict:
    """Run the whole experiment (hand-set models, the best [0, 1] one-unit model, training); return the result
    object that ``--json`` writes. ``theory=False`` skips the first two parts (the training only).
    ``overrides`` replace fields of the preset's ``Settings`` (``steps=200``)."""
    from xlstm_edu.outfiles import code_version

    check_choice(preset, "preset", PRESETS)
    unknown = sorted(set(overrides) - set(Settings.__dataclass_fields__))
    if unknown:
        raise ValueError(f"unknown setting(s) {unknown}; valid ones are {sorted(Settings.__dataclass_fields__)}")
    settings = replace(PRESETS[preset], **overrides)
    seeds = check_positive_int(seeds, "seeds")
    models = list(models)
    for m in models:
        check_choice(m, "model", MODELS)
    t_start = time.perf_counter()
    out = {"experiment": "linear_rnn_parity", "command": command, "code_version": code_version(),
           "load_average_start": [round(x, 2) for x in os.getloadavg()], "preset": preset,
           "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(settings).items()},
           "seeds": seeds, "models": models, "labels": {m: LABELS[m] for m in models}, "runs": []}
    small = preset == "smoke"
    h_lengths = HANDSET_LENGTHS[:4] if small else HANDSET_LENGTHS
    b_lengths = BEST_LENGTHS[:4] if small else BEST_LENGTHS
    if theory:
        out["handset"] = [evaluate_handset(h_lengths, beta_one=b, per_length=settings.per_length)
                          for b in (2.0, 1.0)]
        out["best_nonnegative"] = [best_one_unit_accuracy(n) for n in b_lengths]
    if verbose and theory:
        for hs in out["handset"]:
            print(f"hand-set one-unit DeltaNet, β on a 1 = {hs['beta_one']:g} "
                  f"(eigenvalue {hs['eigenvalue_on_one']:+g}): accuracy {hs['accuracy']:.3f} over lengths "
                  f"{list(h_lengths)}")
        print("best one-unit model with eigenvalues in [0, 1], by length: "
              + ", ".join(f"{b['length']}: {b['accuracy']:.3f}" for b in out["best_nonnegative"]))
    path = Path(json_path) if json_path else None
    jobs = [(m, s) for s in range(seeds) for m in models]
    for i, (m, s) in enumerate(jobs, 1):
        r = run_one(m, s, settings)
        out["runs"].append(r)
        if verbose:
            print(f"[{i}/{len(jobs)}] {m:>15s} seed {s}: train lengths {r['train_accuracy']:.3f}, test lengths "
                  f"{r['test_accuracy']:.3f}  ({r['params']:,} params, train {r['train_s']:.0f} s, "
                  f"total {time.perf_counter() - t_start:.0f} s)", flush=True)
        out["elapsed_s"] = round(time.perf_counter() - t_start, 1)
        out["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n")
    if verbose:
        print()
        print(format_table(out))
    if png_path:
        fig = plot(out)
        Path(png_path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(png_path, dpi=120, bbox_inches="tight")
    return out


def summarize(results: dict) -> dict:
    """{model: {"train": (mean, min, max), "test": (mean, min, max), "params": n}} over seeds."""
    out = {}
    for m in results["models"]:
        rs = [r for r in results["runs"] if r["model"] == m]
        if rs:
            tr = [r["train_accuracy"] for r in rs]
            te = [r["test_accuracy"] for r in rs]
            out[m] = {"train": (float(np.mean(tr)), min(tr), max(tr)), "test": (float(np.mean(te)), min(te), max(te)),
                      "params": rs[0]["params"], "seeds": len(rs)}
    return out


def format_table(results: dict) -> str:
    """Accuracy at training lengths (5-40) and test lengths (41-256): mean [min, max] over seeds."""
    s = summarize(results)
    lines = [f"{'model':26s} {'params':>7s}  {'train lengths':>20s}  {'test lengths':>20s}"]
    for m, v in s.items():
        cell = [f"{x[0]:.2f} [{x[1]:.2f}, {x[2]:.2f}]" for x in (v["train"], v["test"])]
        lines.append(f"{LABELS[m]:26s} {v['params']:>7,}  {cell[0]:>20s}  {cell[1]:>20s}")
    lines.append("accuracy (chance 0.50); mean [min, max] over seeds")
    return "\n".join(lines)


# Okabe-Ito colours; mlstm / slstm as in xlstm_edu.style.MODEL_COLORS (sky, green)
_FALLBACK_COLORS = {"deltanet[0,1]": "#CC79A7", "deltanet[-1,1]": "#0072B2", "decay[0,1]": "#E69F00",
                    "decay[-1,1]": "#D55E00", "mlstm": "#56B4E9", "slstm": "#009E73"}


def colors() -> dict:
    """One colour per model (the course's style colours for mlstm/slstm when available)."""
    c = dict(_FALLBACK_COLORS)
    try:
        from xlstm_edu import style

        for kind in ("mlstm", "slstm"):
            c[kind] = style.MODEL_COLORS.get(kind, c[kind])
    except (ImportError, AttributeError):
        pass
    return c


def plot(results: dict):
    """Accuracy against string length, one panel per model: every seed a thin line, their mean a thick one; the
    training lengths shaded grey, chance dotted. Returns the figure."""
    import matplotlib.pyplot as plt

    models = [m for m in results["models"] if any(r["model"] == m for r in results["runs"])]
    ncols = min(3, len(models)) or 1
    nrows = -(-len(models) // ncols) or 1
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 2.7 * nrows), sharex=True, sharey=True,
                             squeeze=False)
    col = colors()
    for ax, m in zip(axes.flat, models):
        rs = [r for r in results["runs"] if r["model"] == m]
        lengths = sorted(int(k) for k in rs[0]["per_length"])
        acc = np.array([[r["per_length"][str(n)] for n in lengths] for r in rs])
        for row in acc:
            ax.plot(lengths, row, "-", color=col[m], lw=0.8, alpha=0.55)
        ax.plot(lengths, acc.mean(0), "o-", color=col[m], lw=2, ms=3)
        ax.axvspan(0, 40, color="grey", alpha=0.12, lw=0)
        ax.axhline(0.5, color="black", ls=":", lw=1)
        test = [r["test_accuracy"] for r in rs]
        ax.set_title(f"{LABELS[m]}\ntest {np.mean(test):.2f} [{min(test):.2f}, {max(test):.2f}]", fontsize=9)
    for ax in axes.flat[len(models):]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("string length")
    for ax in axes[:, 0]:
        ax.set_ylabel("accuracy")
    axes[0, 0].set_xlim(0, 260)
    axes[0, 0].set_ylim(0.3, 1.05)
    fig.suptitle(f"Parity, trained on lengths 1-40 (grey), tested up to 256: {results['seeds']} seed(s) (thin), "
                 f"mean (thick), {results['settings']['steps']} steps", fontsize=10)
    fig.tight_layout()
    return fig


def split_models(text: str) -> list:
    """'deltanet[0,1],mlstm' -> ['deltanet[0,1]', 'mlstm']: commas inside brackets belong to the name."""
    return [m.strip() for m in re.split(r",(?![^\[]*\])", text) if m.strip()]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m xlstm_edu.linear_rnn_parity", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="cpu", choices=sorted(PRESETS))
    ap.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 per model")
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated, from " + ",".join(MODELS))
    ap.add_argument("--steps", type=int, default=None, help="training steps per run (overrides the preset)")
    ap.add_argument("--json", default=None, help="write the results here")
    ap.add_argument("--png", default=None, help="save the accuracy-by-length plot here")
    ap.add_argument("--from-json", default=None, metavar="PATH",
                    help="train nothing: print the table of a saved result and (with --png) redraw its plot")
    args = ap.parse_args(argv)
    if args.from_json:
        saved = json.loads(Path(args.from_json).read_text())
        print(format_table(saved))
        if args.png:
            import matplotlib

            matplotlib.use("Agg")
            plot(saved).savefig(args.png, dpi=120, bbox_inches="tight")
        return 0
    raw = sys.argv[1:] if argv is None else list(argv)
    command = "python -m xlstm_edu.linear_rnn_parity " + " ".join(raw)
    overrides = {} if args.steps is None else {"steps": args.steps}
    if args.png:
        import matplotlib

        matplotlib.use("Agg")  # a file, no window
    try:
        run(split_models(args.models), seeds=args.seeds, preset=args.preset,
            json_path=args.json, png_path=args.png, command=command.strip(), **overrides)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
