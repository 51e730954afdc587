"""The trainer: one loop for every model of the course, read top to bottom in ``train()``.

::

    from xlstm_edu.train import TrainConfig, train
    result = train(model, get_batch, TrainConfig(max_iters=500, lr=1e-3), out_dir="runs/parity")
    result["history"]   # the evaluation records; result["losses"], result["grad_norms"]: one per step

- ``get_batch(split, step) -> (x, y)`` for split in {"train", "val"}: training calls it with the step number
  (0, 1, ...), evaluation with ``-1, -2, ..., -eval_iters`` (the same batches at every evaluation). Under DDP each
  process returns its own share (``xlstm_edu.data.make_get_batch(..., rank=rank)`` does).
- ``loss_fn(logits, y)``: default cross-entropy over every position, targets ``-100`` ignored (a task scored on
  some positions only sets the others to -100). ``eval_fn(model, step) -> dict``: extra metrics merged into each
  evaluation record, called in eval mode under ``torch.no_grad()``.
- ``out_dir``: where the checkpoint and ``metrics.jsonl`` go (``xlstm_edu.checkpoint``), at every evaluation;
  ``None`` writes nothing. ``resume=True`` continues from ``out_dir``'s checkpoint **bit-exactly on CPU**: the
  learning rate is a pure function of the step, batches a pure function of the step, and the checkpoint holds the
  optimizer and every random-number state (a test compares 2N steps with N + N resumed).
- ``meta``: JSON-able data stored in the checkpoint (the command line keeps model kind, config and vocabulary).

The evaluation records (``result["history"]``, ``metrics.jsonl``) are described in ``xlstm_edu.checkpoint``.
AdamW with weight decay on the layers' weight matrices (``weight_decay_groups``), warm-up then cosine decay
(``lr_at``), gradient-norm clipping (``clipped_step``). Device "auto": CUDA, then MPS, then CPU; bf16 autocast on
CUDA. Under ``torchrun``, DistributedDataParallel; only rank 0 writes. The command line: ``xlstm_edu.runs``.
"""

from __future__ import annotations

import dataclasses
import math
import random
import time
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from xlstm_edu.checkpoint import (load_checkpoint, load_weights, plain_data, read_metrics, rng_state,  # noqa: F401
                                  save_checkpoint, set_rng_state, write_metrics)
from xlstm_edu.devices import dist_info, gather, mean_over_processes, out_of_time, pick_device, process_device  # noqa


@dataclass
class TrainConfig:
    max_iters: int = 1000  # optimizer steps of the whole run
    lr: float = 1e-3  # peak learning rate
    min_lr: float = 1e-4  # the cosine ends here
    warmup_iters: int = 100  # linear warm-up from lr/(warmup_iters+1) to lr
    lr_decay_iters: int | None = None  # cosine from warmup_iters to here (None: max_iters), then min_lr
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.99
    grad_clip: float = 1.0  # clip the global gradient norm to this (0: no clipping)
    eval_interval: int = 100  # evaluate (and checkpoint) every this many steps, at step 0 and at the end
    eval_iters: int = 10  # batches per split per evaluation
    log_interval: int = 10  # progress-bar update
    seed: int = 1337
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    dtype: str = "auto"  # auto (bf16 autocast on CUDA, float32 elsewhere) | float32 | bfloat16
    time_budget_s: float | None = None  # also stop when the training time reaches this (the schedule is unchanged)

    def __post_init__(self):  # nonsense is refused here, before any work
        ints = {"max_iters": 1, "eval_interval": 1, "eval_iters": 1, "log_interval": 1, "warmup_iters": 0, "seed": 0}
        if self.lr_decay_iters is not None:
            ints["lr_decay_iters"] = 1
        for name, low in ints.items():
            if type(getattr(self, name)) is not int or getattr(self, name) < low:
                raise ValueError(f"TrainConfig.{name}: expected an integer >= {low}, got {getattr(self, name)!r}")
        numbers = {"lr": (lambda v: v > 0, "> 0"), "min_lr": (lambda v: 0 <= v <= self.lr, "in [0, lr]"),
                   "weight_decay": (lambda v: v >= 0, ">= 0"), "beta1": (lambda v: 0 <= v < 1, "in [0, 1)"),
                   "beta2": (lambda v: 0 <= v < 1, "in [0, 1)"), "grad_clip": (lambda v: v >= 0, ">= 0 (0: off)"),
                   "time_budget_s": (lambda v: v > 0, "> 0 (or None: no budget)")}
        for name, (ok, expected) in numbers.items():
            v = getattr(self, name)
            if not (v is None and name == "time_budget_s") and (isinstance(v, bool) or not isinstance(
                    v, (int, float)) or not math.isfinite(v) or not ok(v)):
                raise ValueError(f"TrainConfig.{name}: expected a finite number {expected}, got {v!r}")
        if self.dtype not in ("auto", "float32", "bfloat16"):
            raise ValueError(f"TrainConfig.dtype: expected 'auto', 'float32' or 'bfloat16', got {self.dtype!r}")


def lr_at(step: int, cfg: TrainConfig) -> float:
    """The learning rate of optimizer step ``step`` (0-based): linear warm-up, cosine decay, then ``min_lr``."""
    decay_iters = cfg.lr_decay_iters or cfg.max_iters
    if step < cfg.warmup_iters:
        return cfg.lr * (step + 1) / (cfg.warmup_iters + 1)
    if step >= decay_iters:
        return cfg.min_lr
    progress = (step - cfg.warmup_iters) / max(1, decay_iters - cfg.warmup_iters)
    return cfg.min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (cfg.lr - cfg.min_lr)


def default_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy (nats) over all positions; targets -100 are ignored."""
    return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1), ignore_index=-100)


def weight_decay_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """AdamW parameter groups, the official xLSTM code's rule: weight decay on the ``weight`` tensors of the layers
    (linear maps, convolutions, the LSTM's ``weight_ih``/``weight_hh``); none on embedding tables (tokens, positions;
    a tied head is the embedding), normalisation layers, biases, and the sLSTM's ``R`` and ``b``."""
    embeddings = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)}
    decay, no_decay, seen = [], [], set()
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if p.requires_grad and id(p) not in seen:  # a tied tensor is listed once
                seen.add(id(p))
                is_weight = name.startswith("weight") and "Norm" not in type(module).__name__
                (decay if is_weight and id(p) not in embeddings else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def configure_optimizer(model: torch.nn.Module, cfg: TrainConfig, device: torch.device):
    extra = {"fused": True} if device.type == "cuda" else {}
    return torch.optim.AdamW(weight_decay_groups(model, cfg.weight_decay), lr=lr_at(0, cfg),
                             betas=(cfg.beta1, cfg.beta2), **extra)


@torch.no_grad()
def evaluate(model, get_batch, eval_iters: int, loss_fn=default_loss, device="cpu", autocast=None) -> dict:
    """Mean loss over ``eval_iters`` fixed batches (steps -1 ... -eval_iters) of each split, in eval mode
    (no dropout); the model's training mode is restored afterwards."""
    was_training = model.training
    model.eval()
    out = {}
    for split in ("train", "val"):
        total = 0.0
        for i in range(eval_iters):
            x, y = get_batch(split, -(i + 1))
            with autocast or nullcontext():
                total += float(loss_fn(model(x.to(device)), y.to(device)))
        out[f"{split}_loss"] = total / eval_iters
    model.train(was_training)
    return out


def clipped_step(model, optimizer, loss: torch.Tensor, max_norm: float) -> float:
    """Backward, clip the global gradient norm to ``max_norm`` (0: no clipping), AdamW step; returns the
    gradient norm *before* clipping (what tells you whether clipping was active)."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm if max_norm > 0 else math.inf)
    optimizer.step()
    return float(norm)


def train(model: torch.nn.Module, get_batch, cfg: TrainConfig, out_dir=None, *, loss_fn=default_loss,
          eval_fn=None, resume: bool = False, meta: dict | None = None, progress: bool = True) -> dict:
    """Train ``model`` on ``get_batch(split, step)`` (module docstring). Returns ``{"history", "losses",
    "grad_norms", "step", "model"}`` (``losses``/``grad_norms``: the steps run by this call)."""
    meta = plain_data(meta or {}, "meta")
    distributed, rank, world = dist_info()
    device = process_device(cfg.device, distributed, rank)
    use_bf16 = cfg.dtype == "bfloat16" or (cfg.dtype == "auto" and device.type == "cuda")
    autocast = torch.autocast(device_type=device.type, dtype=torch.bfloat16) if use_bf16 else nullcontext()
    model.to(device)
    optimizer = configure_optimizer(model, cfg, device)
    step, train_time, cpu_time, tokens, history = 0, 0.0, 0.0, 0, []
    if resume:
        if out_dir is None:
            raise ValueError("resume=True needs out_dir (the run folder holding ckpt.pt)")
        ckpt = load_checkpoint(out_dir)
        load_weights(model, ckpt["model"], out_dir)
        optimizer.load_state_dict(ckpt["optimizer"])
        step, history = ckpt["step"], ckpt["history"]  # the checkpoint is written right after history[-1]
        train_time, cpu_time, tokens = (history[-1][k] for k in ("train_time_s", "cpu_time_s", "tokens"))
        set_rng_state(ckpt["rng"][rank] if len(ckpt["rng"]) == world else ckpt["rng"][0])
    else:  # dropout differs per process; the weights are the same everywhere (DDP broadcasts rank 0's)
        torch.manual_seed(cfg.seed + rank)
        random.seed(cfg.seed + rank)
        np.random.seed((cfg.seed + rank) % 2**32)
    net = model
    if distributed:
        ids = [device.index] if device.type == "cuda" else None
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)
    bar = tqdm(total=cfg.max_iters, initial=step, desc="train", dynamic_ncols=True) if progress and not rank else None
    losses, grad_norms, window = [], [], {"tokens": 0, "time": 0.0, "norms": []}  # window: since the last eval
    t_start, elapsed0 = time.perf_counter(), (history[-1]["elapsed_s"] if history else 0.0)
    model.train()
    while True:
        done = step >= cfg.max_iters or out_of_time(train_time, cfg.time_budget_s, device, distributed)
        if (step % cfg.eval_interval == 0 or done) and not (history and history[-1]["step"] == step):
            rec = {"step": step, "tokens": tokens, **evaluate(model, get_batch, cfg.eval_iters, loss_fn, device,
                                                               autocast)}
            if distributed:  # every process evaluated its own batches: average them
                rec["train_loss"], rec["val_loss"] = mean_over_processes([rec["train_loss"], rec["val_loss"]],
                                                                          device)
            if eval_fn is not None:
                model.eval()
                with torch.no_grad(), autocast:
                    rec.update(eval_fn(model, step))
                model.train()
            rec.update(lr=lr_at(max(step - 1, 0), cfg),
                       grad_norm=sum(window["norms"]) / len(window["norms"]) if window["norms"] else None,
                       tokens_per_s=window["tokens"] / window["time"] if window["time"] > 0 else None,
                       train_time_s=train_time, cpu_time_s=cpu_time,
                       elapsed_s=elapsed0 + time.perf_counter() - t_start)
            history.append(rec)
            window = {"tokens": 0, "time": 0.0, "norms": []}
            if out_dir is not None:
                rngs = gather(rng_state(), distributed, world)
                if rank == 0:
                    save_checkpoint(out_dir, {
                        "model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
                        "rng": rngs, "train_config": dataclasses.asdict(cfg), "history": history, "meta": meta})
                    write_metrics(out_dir, history)
            if bar is not None and step > 0:
                bar.write(f"step {step}: train {rec['train_loss']:.4f}, val {rec['val_loss']:.4f}")
        if done:
            break

        lr = lr_at(step, cfg)  # a pure function of the step: nothing to checkpoint, nothing to override
        for group in optimizer.param_groups:
            group["lr"] = lr
        t0, c0 = time.perf_counter(), time.process_time()
        x, y = get_batch("train", step)
        x, y = x.to(device), y.to(device)
        with autocast:
            loss = loss_fn(net(x), y)
        norm = clipped_step(net, optimizer, loss, cfg.grad_clip)
        loss_value = loss.item()  # also waits for the GPU, so the timing below is honest
        if not math.isfinite(loss_value):
            raise FloatingPointError(f"the training loss is {loss_value} at step {step}; try a lower lr")
        dt = time.perf_counter() - t0
        train_time += dt
        cpu_time += time.process_time() - c0
        tokens += x.numel() * world
        window["time"] += dt
        window["tokens"] += x.numel() * world
        window["norms"].append(norm)
        losses.append(loss_value)
        grad_norms.append(norm)
        step += 1
        if bar is not None:
            bar.update(1)
            if step % cfg.log_interval == 0:
                bar.set_postfix(loss=f"{loss_value:.3f}", grad_norm=f"{norm:.2f}", lr=f"{lr:.2e}")
    if bar is not None:
        bar.close()
    return {"history": history, "losses": losses, "grad_norms": grad_norms, "step": step, "model": model}


def main(argv=None) -> int:
    """The command line (``python -m xlstm_edu.train --help``); it lives in ``xlstm_edu.runs``."""
    from xlstm_edu.runs import main as runs_main

    return runs_main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
