"""The trainer: one loop for every model of the course (xLSTM, GPT, LSTM), from the command line or from Python.

Command line
------------
::

    python -m xlstm_edu.train --model xlstm --preset cpu-tiny --out runs/tiny
    python -m xlstm_edu.train --model gpt --preset cpu-small --out runs/gpt --max-iters 500 --lr 1e-3
    python -m xlstm_edu.train --out runs/tiny --resume --max-iters 600     # continue a run
    torchrun --nproc_per_node=2 -m xlstm_edu.train --model xlstm --preset cpu-tiny --out runs/ddp

``--model`` is one of xlstm (xLSTM[1:1]), mlstm, slstm, gpt, lstm; ``--preset`` one of ``xlstm_edu.presets``.
Any field of ``TrainConfig`` or of the model's config can be set with ``--key value`` (``--lr 1e-3``,
``--embedding_dim 96``); an unknown key is an error that lists the valid ones. ``--corpus`` is ``shakespeare``
(default, offline), ``tinyshakespeare`` (downloaded once) or a path to a UTF-8 text file.

A run writes into ``--out``:

- ``metrics.jsonl``: one JSON object per evaluation: ``step``, ``train_loss``, ``val_loss`` (mean
  cross-entropy in nats per character over ``eval_iters`` fixed batches of each split), ``lr``,
  ``tokens_per_s`` (training tokens per second since the previous evaluation, all processes together),
  ``train_time_s`` (training time so far, evaluations excluded) and ``elapsed_s`` (wall-clock time so far);
- ``ckpt.pt``: model, optimizer, scheduler, RNG states, step, both configs, the vocabulary (rewritten at every
  evaluation, atomically);
- ``config.json``: what was run, for people.

``--resume`` continues from ``ckpt.pt`` **bit-exactly on CPU**: 2N steps in one go and N steps plus N resumed
steps give identical losses (``tests/test_train.py``). Batches are a pure function of the step
(``xlstm_edu.data.make_get_batch``) and the checkpoint restores torch's RNG (dropout). To extend a run past its
planned length keep the learning-rate schedule fixed by setting ``lr_decay_iters`` explicitly.

Python: ``train(model, get_batch, cfg, ...)``
---------------------------------------------
The loop itself is a function that knows nothing about text, so other chapters (formal languages, associative
recall) reuse it with their own data::

    from xlstm_edu.train import TrainConfig, train
    result = train(model, get_batch, TrainConfig(max_iters=500, lr=1e-3), out_dir="runs/parity",
                   eval_fn=None, loss_fn=None)
    result["history"]   # the metrics.jsonl records; result["losses"]: the training loss of every step

- ``get_batch(split, step) -> (x, y)`` for split in {"train", "val"}: training calls it with the step number
  (0, 1, ...), evaluation with ``-1, -2, ..., -eval_iters`` (fixed batches). Under DDP each process should return
  its own share (``make_get_batch(..., rank=rank)`` does).
- ``loss_fn(logits, y) -> scalar`` (default: cross-entropy over every position, targets ``-100`` ignored, so a
  task that is scored on some positions only sets the others to -100).
- ``eval_fn(model, step) -> dict`` (optional): extra metrics merged into each evaluation record (e.g. accuracy
  on longer sequences); called in eval mode under ``torch.no_grad()``.
- ``out_dir=None`` writes nothing; ``resume=True`` loads ``out_dir/ckpt.pt`` first.
- ``meta``: a JSON-able dict stored in the checkpoint (the command line keeps model kind, model config and
  vocabulary there).

The model is moved to ``cfg.device`` ("auto": CUDA, then Apple's MPS, then CPU). On CUDA the forward pass runs
under bf16 autocast (``cfg.dtype="auto"``) with float32 weights and optimizer states. AdamW (weight decay on
matrices only, as nanoGPT), linear warm-up then cosine decay to ``min_lr`` (``lr_at``), gradient-norm clipping.
If ``torch.distributed`` is initialised (``torchrun``), the model is wrapped in DistributedDataParallel (gloo on
CPU, nccl on CUDA); only rank 0 writes files and shows the progress bar.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import random
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

CKPT_NAME = "ckpt.pt"
METRICS_NAME = "metrics.jsonl"


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
    grad_clip: float = 1.0  # clip the global gradient norm (0: off)
    eval_interval: int = 100  # evaluate (and checkpoint) every this many steps, at step 0 and at the end
    eval_iters: int = 10  # batches per split per evaluation
    log_interval: int = 10  # progress-bar update
    seed: int = 1337
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    dtype: str = "auto"  # auto (bf16 autocast on CUDA, float32 elsewhere) | float32 | bfloat16
    time_budget_s: float | None = None  # stop when training time (evaluations excluded) reaches this; the
    # schedule then runs on max(step, max_iters * time / budget), so it ends with the budget (not bit-exact)
    # used by the command line to build the data (train() takes whatever get_batch returns)
    batch_size: int = 32
    context_length: int = 128

    def __post_init__(self):
        for name in ("max_iters", "eval_interval", "eval_iters", "log_interval", "batch_size", "context_length"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"TrainConfig.{name}: expected an integer >= 1, got {v!r}")
        if self.warmup_iters < 0:
            raise ValueError(f"TrainConfig.warmup_iters: expected >= 0, got {self.warmup_iters}")
        if not (self.lr > 0 and 0 <= self.min_lr <= self.lr):
            raise ValueError(f"TrainConfig: expected lr > 0 and 0 <= min_lr <= lr, got lr={self.lr}, "
                             f"min_lr={self.min_lr}")
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


def pick_device(name: str = "auto") -> torch.device:
    """"auto": CUDA if present, then Apple's MPS, then CPU; anything else is passed to ``torch.device``."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available")
    return dev


def default_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy (nats) over all positions; targets -100 are ignored."""
    return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1), ignore_index=-100)


def configure_optimizer(model: torch.nn.Module, cfg: TrainConfig, device: torch.device):
    """AdamW; weight decay only on tensors with >= 2 dims (matrices, embeddings), as in nanoGPT."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    extra = {"fused": True} if device.type == "cuda" else {}
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), **extra)


def _rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "python": random.getstate(), "numpy": np.random.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _dist():
    """(is_distributed, rank, world_size)"""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return True, torch.distributed.get_rank(), torch.distributed.get_world_size()
    return False, 0, 1


def load_checkpoint(out_dir) -> dict:
    path = Path(out_dir) / CKPT_NAME
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    return torch.load(path, map_location="cpu", weights_only=False)


def read_metrics(out_dir) -> list[dict]:
    """The evaluation records of a run (``metrics.jsonl``)."""
    path = Path(out_dir) / METRICS_NAME
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@torch.no_grad()
def evaluate(model, get_batch, cfg: TrainConfig, device, autocast, loss_fn) -> dict:
    """Mean loss over ``eval_iters`` fixed batches (steps -1 ... -eval_iters) of each split."""
    was_training = model.training
    model.eval()
    out = {}
    for split in ("train", "val"):
        total = 0.0
        for i in range(cfg.eval_iters):
            x, y = get_batch(split, -(i + 1))
            x, y = x.to(device), y.to(device)
            with autocast:
                total += float(loss_fn(model(x), y))
        out[f"{split}_loss"] = total / cfg.eval_iters
    model.train(was_training)
    return out


def train(model: torch.nn.Module, get_batch, cfg: TrainConfig, out_dir=None, *, eval_fn=None, loss_fn=None,
          resume: bool = False, meta: dict | None = None, progress: bool = True) -> dict:
    """Train ``model`` with batches from ``get_batch(split, step)``; see the module docstring.

    Returns ``{"history": [eval records], "losses": [training loss per step run here], "step": last step,
    "model": the (unwrapped) model}``.
    """
    loss_fn = loss_fn or default_loss
    distributed, rank, world = _dist()
    master = rank == 0
    device = pick_device(cfg.device)
    if distributed and device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)))
        torch.cuda.set_device(device)
    use_bf16 = cfg.dtype == "bfloat16" or (cfg.dtype == "auto" and device.type == "cuda")
    autocast = (torch.autocast(device_type=device.type, dtype=torch.bfloat16) if use_bf16 else nullcontext())
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    model.to(device)
    optimizer = configure_optimizer(model, cfg, device)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_at(s, cfg) / cfg.lr)
    out_dir = Path(out_dir) if out_dir is not None else None
    step, train_time, elapsed0 = 0, 0.0, 0.0
    history: list[dict] = []

    if resume:
        if out_dir is None:
            raise ValueError("resume=True needs out_dir (where ckpt.pt is)")
        ckpt = load_checkpoint(out_dir)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        step, train_time, elapsed0 = ckpt["step"], ckpt["train_time_s"], ckpt["elapsed_s"]
        rng = ckpt["rng"]
        _set_rng_state(rng[rank] if len(rng) == world else rng[0])
        history = [r for r in read_metrics(out_dir) if r["step"] <= step]
    else:
        torch.manual_seed(cfg.seed + rank)  # dropout differs per process; the weights are DDP-broadcast
        random.seed(cfg.seed + rank)
        np.random.seed((cfg.seed + rank) % 2**32)

    raw_model = model
    if distributed:
        from torch.nn.parallel import DistributedDataParallel as DDP

        model = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)

    def save(record):
        if out_dir is None:
            return
        rngs = [_rng_state()]
        if distributed:
            rngs = [None] * world
            torch.distributed.all_gather_object(rngs, _rng_state())
        if not master:
            return
        out_dir.mkdir(parents=True, exist_ok=True)
        ckpt = {"model": raw_model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "step": step, "train_time_s": train_time,
                "elapsed_s": record["elapsed_s"], "rng": rngs, "train_config": dataclasses.asdict(cfg),
                "meta": meta or {}}
        tmp = out_dir / (CKPT_NAME + ".tmp")
        torch.save(ckpt, tmp)
        tmp.replace(out_dir / CKPT_NAME)
        with open(out_dir / METRICS_NAME, "w") as f:  # rewritten whole: after a resume it stays consistent
            f.write("".join(json.dumps(r) + "\n" for r in history))

    t_start = time.perf_counter()
    window_tokens, window_time = 0, 0.0
    last_lr = lr_at(max(step - 1, 0), cfg)  # the learning rate of the last step taken (for the records)

    def do_eval():
        nonlocal window_tokens, window_time
        rec = {"step": step}
        rec.update(evaluate(raw_model, get_batch, cfg, device, autocast, loss_fn))
        if distributed:  # every process evaluated its own batches: average them
            t = torch.tensor([rec["train_loss"], rec["val_loss"]], dtype=torch.float64, device=device)
            torch.distributed.all_reduce(t)
            rec["train_loss"], rec["val_loss"] = (t / world).tolist()
        if eval_fn is not None:
            raw_model.eval()
            with torch.no_grad(), autocast:
                rec.update(eval_fn(raw_model, step))
            raw_model.train()
        rec["lr"] = last_lr
        rec["tokens_per_s"] = window_tokens * world / window_time if window_time > 0 else None
        rec["train_time_s"] = train_time
        rec["elapsed_s"] = elapsed0 + time.perf_counter() - t_start
        history.append(rec)
        save(rec)
        window_tokens, window_time = 0, 0.0
        return rec

    model.train()
    if step == 0 or not history or history[-1]["step"] != step:
        do_eval()
    bar = None
    if progress and master:
        from tqdm.auto import tqdm

        bar = tqdm(total=cfg.max_iters, initial=step, desc="train", dynamic_ncols=True)
    losses: list[float] = []
    while step < cfg.max_iters:
        if cfg.time_budget_s is not None:
            stop = torch.tensor([float(train_time >= cfg.time_budget_s)], device=device)
            if distributed:  # rank 0's clock decides, so that all processes stop at the same step
                torch.distributed.broadcast(stop, 0)
            if stop.item():
                break
        t0 = time.perf_counter()
        x, y = get_batch("train", step)
        x, y = x.to(device), y.to(device)
        with autocast:
            loss = loss_fn(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        if cfg.time_budget_s is not None:
            # a wall-clock budget: the schedule follows steps or time, whichever is further along, so that the
            # cosine ends when the budget does even if the machine runs slower than planned
            s_eff = max(step, int(cfg.max_iters * train_time / cfg.time_budget_s))
            for group in optimizer.param_groups:
                group["lr"] = lr_at(s_eff, cfg)
        last_lr = optimizer.param_groups[0]["lr"]
        optimizer.step()
        scheduler.step()
        loss_value = loss.item()  # also synchronises CUDA, so the timing below is honest
        if not math.isfinite(loss_value):
            raise FloatingPointError(f"the training loss is {loss_value} at step {step}; try a lower lr")
        dt = time.perf_counter() - t0
        train_time += dt
        window_time += dt
        window_tokens += x.numel()
        losses.append(loss_value)
        step += 1
        if bar is not None:
            bar.update(1)
            if step % cfg.log_interval == 0:
                bar.set_postfix(loss=f"{loss_value:.3f}", tok_s=f"{window_tokens * world / window_time:,.0f}")
        if step % cfg.eval_interval == 0 or step == cfg.max_iters:
            rec = do_eval()
            if bar is not None:
                bar.write(f"step {step}: train {rec['train_loss']:.4f}, val {rec['val_loss']:.4f}")
    if history[-1]["step"] != step:  # stopped by the time budget between evaluations
        do_eval()
    if bar is not None:
        bar.close()
    return {"history": history, "losses": losses, "step": step, "model": raw_model}


# ------------------------------------------------------------------------------------------ command line
def _convert(value: str, default, name: str):
    """Parse a command-line string like the field's default value."""
    try:
        if isinstance(default, bool):
            if value.lower() in ("1", "true", "yes"):
                return True
            if value.lower() in ("0", "false", "no"):
                return False
            raise ValueError(value)
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float) or (default is None and name == "time_budget_s"):
            return float(value)
        if isinstance(default, tuple):
            return tuple(int(v) for v in value.replace("(", "").replace(")", "").split(",") if v.strip())
        if default is None:  # e.g. hidden_size: an int if it looks like one
            return int(value) if value.lstrip("-").isdigit() else value
        return value
    except ValueError:
        raise ValueError(f"--{name}: could not read {value!r} as {type(default).__name__}") from None


def parse_overrides(extra: list[str], train_fields: dict, model_fields: dict) -> tuple[dict, dict]:
    """``["--lr", "1e-3", "--embedding_dim", "96"]`` -> (train overrides, model overrides)."""
    if len(extra) % 2:
        raise ValueError(f"expected --key value pairs after the known options, got {extra}")
    train_o, model_o = {}, {}
    for k, v in zip(extra[::2], extra[1::2]):
        if not k.startswith("--"):
            raise ValueError(f"expected --key value pairs, got {k!r}")
        key = k[2:].replace("-", "_")
        if key in train_fields:
            train_o[key] = _convert(v, train_fields[key], key)
        elif key in model_fields:
            model_o[key] = _convert(v, model_fields[key], key)
        else:
            raise ValueError(f"unknown option --{key}. Valid trainer keys: {sorted(train_fields)}; valid model "
                             f"keys: {sorted(model_fields)}")
    return train_o, model_o


def _fields(cls) -> dict:
    out = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            out[f.name] = f.default_factory()  # type: ignore[misc]
        else:
            out[f.name] = None
    return out


def build_run(args, extra: list[str]):
    """Everything a run needs, resolved and checked before any training: (model, get_batch, cfg, meta, corpus)."""
    from xlstm_edu.data import load_corpus, make_get_batch
    from xlstm_edu.models import config_class, model_config, model_from_config
    from xlstm_edu.presets import get_preset

    _, rank, _ = _dist()
    out = Path(args.out)
    if args.resume:
        ckpt = load_checkpoint(out)
        meta = ckpt["meta"]
        kind = meta["kind"]
        if args.model is not None and args.model != kind:
            raise ValueError(f"--model {args.model} but the checkpoint in {out} is a {kind} model")
        cfg_cls, _ = config_class(kind)
        train_o, model_o = parse_overrides(extra, _fields(TrainConfig), _fields(cfg_cls))
        if model_o:
            raise ValueError(f"cannot change the model when resuming: {sorted(model_o)}")
        tvals = dict(ckpt["train_config"])
        tvals.update(train_o)
        cfg = TrainConfig(**_with_cli_flags(tvals, args))
        corpus = load_corpus(meta["corpus"], args.data_dir)
        if corpus.chars != meta["chars"]:
            raise ValueError(
                f"vocabulary mismatch: the checkpoint in {out} was trained on {len(meta['chars'])} characters "
                f"{meta['chars']!r}, corpus '{meta['corpus']}' now has {corpus.vocab_size} {corpus.chars!r}")
        model = model_from_config(kind, meta["model_config"])
    else:
        if args.model is None or args.preset is None:
            raise ValueError("--model and --preset are required (unless --resume)")
        if (out / CKPT_NAME).exists() and not args.overwrite:
            raise ValueError(f"{out} already holds a run: pass --resume to continue it or --overwrite to start "
                             "again")
        preset = get_preset(args.preset)
        cfg_cls, _ = config_class(args.model)
        train_o, model_o = parse_overrides(extra, _fields(TrainConfig), _fields(cfg_cls))
        tvals = dict(preset["train"], batch_size=preset["batch_size"], context_length=preset["context_length"])
        tvals.update(train_o)
        cfg = TrainConfig(**_with_cli_flags(tvals, args))
        corpus = load_corpus(args.corpus, args.data_dir)
        mvals = dict(preset["models"][args.model])
        mvals.update(model_o)
        mvals.pop("context_length", None)
        torch.manual_seed(cfg.seed)  # the same initial weights on every process
        mcfg = model_config(args.model, corpus.vocab_size, cfg.context_length, **mvals)
        model = model_from_config(args.model, dataclasses.asdict(mcfg))
        meta = {"kind": args.model, "preset": args.preset, "model_config": dataclasses.asdict(mcfg),
                "corpus": str(args.corpus), "chars": corpus.chars}
    device = pick_device(cfg.device)
    if torch.distributed.is_initialized() and device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)))
    # checks the context against both splits before training starts
    get_batch = make_get_batch(corpus, cfg.context_length, cfg.batch_size, seed=cfg.seed, rank=rank, device=device)
    return model, get_batch, cfg, meta, corpus


def _with_cli_flags(tvals: dict, args) -> dict:
    """The --max-iters and --device flags override the preset's or the checkpoint's training config."""
    if args.max_iters is not None:
        tvals["max_iters"] = args.max_iters
    if args.device is not None:
        tvals["device"] = args.device
    return tvals


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m xlstm_edu.train", description=__doc__.split("\n\n")[0],
                                epilog="Any other --key value sets a TrainConfig or model config field.")
    p.add_argument("--model", choices=["xlstm", "mlstm", "slstm", "gpt", "lstm"])
    p.add_argument("--preset", choices=["cpu-tiny", "cpu-small", "gpu-small"])
    p.add_argument("--out", required=True, help="run folder, e.g. runs/tiny")
    p.add_argument("--max-iters", type=int, default=None)
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p.add_argument("--overwrite", action="store_true", help="start again even if --out holds a run")
    p.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:N or mps")
    p.add_argument("--corpus", default="shakespeare", help="shakespeare (default), tinyshakespeare or a file path")
    p.add_argument("--data-dir", default=None, help="cache folder for converted corpora (default: data/)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    args, extra = p.parse_known_args(argv)
    if args.data_dir is None:
        from xlstm_edu.data import DATA_DIR

        args.data_dir = DATA_DIR

    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if distributed and not torch.distributed.is_initialized():
        dev = args.device or "auto"
        want_cuda = dev.startswith("cuda") or (dev == "auto" and torch.cuda.is_available())
        torch.distributed.init_process_group(backend="nccl" if want_cuda else "gloo")
    try:
        try:
            model, get_batch, cfg, meta, corpus = build_run(args, extra)
        except (ValueError, FileNotFoundError, RuntimeError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        _, rank, world = _dist()
        if rank == 0:
            print(f"{meta['kind']}: {model.num_params():,} parameters; corpus {corpus.name} "
                  f"({len(corpus.text):,} characters, vocabulary {corpus.vocab_size}; {corpus.note}); "
                  f"device {pick_device(cfg.device)}, {world} process(es)")
            out = Path(args.out)
            out.mkdir(parents=True, exist_ok=True)
            (out / "config.json").write_text(json.dumps(
                {"train_config": dataclasses.asdict(cfg), **meta, "params": model.num_params()}, indent=1))
        result = train(model, get_batch, cfg, args.out, resume=args.resume, meta=meta,
                       progress=not args.no_progress)
        if rank == 0:
            last = result["history"][-1]
            print(f"done: step {last['step']}, train loss {last['train_loss']:.4f}, val loss "
                  f"{last['val_loss']:.4f}, {last['train_time_s']:.0f} s training")
    finally:
        if distributed and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
