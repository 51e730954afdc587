"""The training command line, and building a run (model, batches, config) from a preset or from a checkpoint.

::

    python -m xlstm_edu.train --model xlstm --preset cpu-tiny --out runs/tiny
    python -m xlstm_edu.train --model gpt --preset cpu-small --out runs/gpt --max-iters 500 --lr 1e-3
    python -m xlstm_edu.train --out runs/tiny --resume                       # continue an interrupted run
    python -m xlstm_edu.train --out runs/tiny --resume --max-iters 600       # extend a finished one
    torchrun --standalone --nproc_per_node=2 -m xlstm_edu.train --model xlstm --preset cpu-tiny --out runs/ddp

``--model`` and ``--preset`` come from the registry in ``xlstm_edu.models``. Any field of ``TrainConfig``, of the
model's config, or ``batch_size`` / ``context_length`` can be set with ``--key value`` (``--lr 1e-3``,
``--embedding_dim 96``); an unknown key is an error that lists the valid ones. ``--corpus`` is ``shakespeare``
(default, offline), ``tinyshakespeare`` (downloaded once) or a path to a UTF-8 text file (stored as an absolute
path, so a run resumes from any folder).

**The schedule of an extended run.** A new run stores its cosine length (``lr_decay_iters``, by default the
planned ``max_iters``). ``--resume --max-iters M`` past that length keeps the schedule: the extra steps run at
``min_lr``, and the result equals a run planned for M steps with the same ``lr_decay_iters``, bit for bit. To
decay over the longer run instead, pass ``--lr_decay_iters M`` as well (then the earlier steps no longer match the
new schedule: not bit-exact with any single run).

Errors (a bad option, a corpus too short for the context, an unsafe or broken checkpoint, ``--out`` that is a
file, ...) print one ``error:`` line before anything is trained and exit with code 2; Ctrl-C says which checkpoint
step is safe to resume from and exits with 130.

Python: ``new_run(kind, preset, ...)`` and ``resume_run(out_dir, ...)`` return a ``Run`` whose parts go straight
into ``xlstm_edu.train.train`` (``xlstm_edu.compare`` and the gate explorer train this way).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from xlstm_edu.checkpoint import CKPT_NAME, CONFIG_NAME, load_checkpoint
from xlstm_edu.models import KIND_NAMES, PRESET_NAMES, config_class, model_config, model_from_config, sizes
from xlstm_edu.checkpoint import load_weights
from xlstm_edu.devices import dist_info, pick_device, process_device
from xlstm_edu.train import TrainConfig, train

BUILT_IN_CORPORA = ("shakespeare", "tinyshakespeare")
DATA_FIELDS = {"batch_size": "int", "context_length": "int"}  # shape of the batches, not the loop's business


@dataclass
class Run:
    """Everything ``train(model, get_batch, cfg, out_dir, meta=meta)`` needs, checked before any training."""

    model: torch.nn.Module
    get_batch: object
    cfg: TrainConfig
    meta: dict  # kind, preset, model_config, corpus, chars, batch_size, context_length
    corpus: object


def corpus_key(corpus) -> str:
    """What a run stores for its corpus: a built-in name, or the file's absolute path."""
    return str(corpus) if str(corpus) in BUILT_IN_CORPORA else str(Path(corpus).expanduser().resolve())


def new_run(kind: str, preset: str, *, corpus="shakespeare", data_dir=None, train_overrides: dict | None = None,
            model_overrides: dict | None = None, data_overrides: dict | None = None, rank: int = 0) -> Run:
    """A fresh ``kind`` model of ``preset``'s size, its batches and its config (overrides applied)."""
    from xlstm_edu.data import load_corpus
    from xlstm_edu.presets import get_preset

    p = get_preset(preset)
    shape = {"batch_size": p["batch_size"], "context_length": p["context_length"], **(data_overrides or {})}
    for key, v in shape.items():
        if type(v) is not int or v < 1:
            raise ValueError(f"{key}: expected an integer >= 1, got {v!r}")
    cfg = TrainConfig(**{**p["train"], **(train_overrides or {})})
    if cfg.lr_decay_iters is None:  # stored explicitly, so that extending the run keeps its schedule
        cfg = dataclasses.replace(cfg, lr_decay_iters=cfg.max_iters)
    text = load_corpus(corpus, data_dir)
    torch.manual_seed(cfg.seed)  # the same initial weights on every process
    mcfg = model_config(kind, text.vocab_size, shape["context_length"], **{**sizes(preset, kind),
                                                                         **(model_overrides or {})})
    model = model_from_config(kind, dataclasses.asdict(mcfg))
    meta = {"kind": kind, "preset": preset, "model_config": dataclasses.asdict(mcfg), "corpus": corpus_key(corpus),
            "chars": text.chars, **shape}
    return Run(model, _batches(text, shape, cfg, rank), cfg, meta, text)


def resume_run(out_dir, *, data_dir=None, train_overrides: dict | None = None, rank: int = 0) -> Run:
    """The run in ``out_dir`` rebuilt from its checkpoint, its weights loaded (``train(..., resume=True)`` then
    restores the optimizer, the random-number states and the history)."""
    from xlstm_edu.data import load_corpus

    ckpt = load_checkpoint(out_dir)
    meta, step = ckpt["meta"], ckpt["step"]
    missing = [k for k in ("kind", "model_config", "corpus", "chars", "batch_size", "context_length") if k not in meta]
    if missing:
        raise ValueError(f"{Path(out_dir) / CKPT_NAME} was not written by this command line (no {missing} in it)")
    cfg = TrainConfig(**{**ckpt["train_config"], **(train_overrides or {})})
    if cfg.max_iters <= step:
        raise ValueError(f"{out_dir} has already trained {step} steps (its max_iters is "
                         f"{ckpt['train_config']['max_iters']}): nothing to do. Pass --max-iters N with N > {step} "
                         "to train further")
    text = load_corpus(meta["corpus"], data_dir)
    if text.chars != meta["chars"]:
        raise ValueError(f"vocabulary mismatch: the checkpoint in {out_dir} was trained on {len(meta['chars'])} "
                         f"characters {meta['chars']!r}; corpus '{meta['corpus']}' now has {text.vocab_size} "
                         f"{text.chars!r}")
    try:
        model = model_from_config(meta["kind"], meta["model_config"])
    except (TypeError, ValueError) as e:
        raise ValueError(f"{out_dir}: the model config in the checkpoint cannot build a model: {e}") from None
    load_weights(model, ckpt["model"], Path(out_dir) / CKPT_NAME)  # a mismatch is reported before any training
    return Run(model, _batches(text, meta, cfg, rank), cfg, meta, text)


def write_config(out_dir, run: Run) -> None:
    """``out_dir/config.json``: what was run, for people (and for finding runs by kind)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / CONFIG_NAME).write_text(json.dumps({"train_config": dataclasses.asdict(run.cfg), **run.meta,
                                                   "params": run.model.num_params()}, indent=1))


def _batches(text, shape: dict, cfg: TrainConfig, rank: int):
    from xlstm_edu.data import make_get_batch

    device = process_device(cfg.device, torch.distributed.is_initialized(), rank)
    # checks the context against both splits before anything is trained
    return make_get_batch(text, shape["context_length"], shape["batch_size"], seed=cfg.seed, rank=rank,
                          device=device)


# ------------------------------------------------------------------------------------------ --key value options
def field_types(cls, skip=()) -> dict[str, str]:
    return {f.name: str(f.type) for f in dataclasses.fields(cls) if f.name not in skip}


def _convert(value: str, type_name: str, name: str):
    """Parse a command-line string as the field's type (``"int"``, ``"float | None"``, ``"tuple"``, ...)."""
    base = type_name.replace(" | None", "").replace("Optional[", "").rstrip("]")
    try:
        if value.lower() == "none" and "None" in type_name:
            return None
        if base == "bool":
            if value.lower() in ("1", "true", "yes", "0", "false", "no"):
                return value.lower() in ("1", "true", "yes")
            raise ValueError(value)
        if base == "int":
            return int(value)
        if base == "float":
            return float(value)
        if base == "tuple":
            return tuple(int(v) for v in value.replace("(", "").replace(")", "").split(",") if v.strip())
        return value
    except ValueError:
        raise ValueError(f"--{name}: could not read {value!r} as {type_name}") from None


def parse_overrides(extra: list[str], kind: str) -> tuple[dict, dict, dict]:
    """``["--lr", "1e-3", "--embedding_dim", "96"]`` -> (trainer, model, data) overrides of a ``kind`` run."""
    if len(extra) % 2:
        raise ValueError(f"expected --key value pairs after the known options, got {extra}")
    groups = {"trainer": field_types(TrainConfig), "model": field_types(config_class(kind)[0],
                                                                        skip=("vocab_size", "context_length")),
              "data": DATA_FIELDS}
    out = {g: {} for g in groups}
    for k, v in zip(extra[::2], extra[1::2]):
        key = k[2:].replace("-", "_")
        group = next((g for g, fields in groups.items() if key in fields), None)
        if not k.startswith("--") or group is None:
            raise ValueError(f"unknown option {k}. Valid trainer keys: {sorted(groups['trainer'])}; model keys: "
                             f"{sorted(groups['model'])}; data keys: {sorted(DATA_FIELDS)}")
        out[group][key] = _convert(v, groups[group][key], key)
    return out["trainer"], out["model"], out["data"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m xlstm_edu.train",
                                description="Train one of the course's language models on a character corpus, or "
                                            "resume / extend a run (details: the docstring of xlstm_edu/runs.py).",
                                epilog="Any other --key value sets a TrainConfig, model config or data field.")
    p.add_argument("--model", choices=KIND_NAMES)
    p.add_argument("--preset", choices=PRESET_NAMES)
    p.add_argument("--out", required=True, help="run folder, e.g. runs/tiny")
    p.add_argument("--max-iters", type=int, default=None)
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p.add_argument("--overwrite", action="store_true", help="start again even if --out holds a run")
    p.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:N or mps")
    p.add_argument("--corpus", default=None, help="shakespeare (default), tinyshakespeare or a file path")
    p.add_argument("--data-dir", default=None, help="cache folder for converted corpora (default: data/)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def check_out_dir(out: Path, resume: bool = False) -> None:
    """``out`` must be (or become) a writable folder (an existing one to resume); checked before any work."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; expected a folder for the run")
    if resume and not out.is_dir():
        raise ValueError(f"--out {out}: no such run folder to resume")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write_test.{os.getpid()}"  # one per process: torchrun checks from every rank
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise ValueError(f"--out {out}: cannot write there ({e.strerror or e})") from None


def build_from_args(args, extra: list[str], rank: int = 0) -> Run:
    out = Path(args.out)
    check_out_dir(out, args.resume)
    flags = {k: v for k, v in (("max_iters", args.max_iters), ("device", args.device)) if v is not None}
    if args.resume:
        meta = load_checkpoint(out)["meta"]
        kind = meta.get("kind")
        for flag, given, stored in (("--model", args.model, kind), ("--preset", args.preset, meta.get("preset")),
                                    ("--corpus", args.corpus and corpus_key(args.corpus), meta.get("corpus"))):
            if given is not None and given != stored:
                raise ValueError(f"{flag} {given} but the run in {out} was made with {stored}; a resumed run keeps "
                                 f"its {flag[2:]} (leave {flag} out, or start a new run)")
        train_o, model_o, data_o = parse_overrides(extra, kind)
        if model_o or data_o:
            raise ValueError(f"cannot change the model or the batches of a run when resuming: "
                             f"{sorted({**model_o, **data_o})}")
        return resume_run(out, data_dir=args.data_dir, train_overrides={**train_o, **flags}, rank=rank)
    if args.model is None or args.preset is None:
        raise ValueError("--model and --preset are required (unless --resume)")
    if (out / CKPT_NAME).exists() and not args.overwrite:
        raise ValueError(f"{out} already holds a run: pass --resume to continue it or --overwrite to start again")
    train_o, model_o, data_o = parse_overrides(extra, args.model)
    return new_run(args.model, args.preset, corpus=args.corpus or "shakespeare", data_dir=args.data_dir,
                   train_overrides={**train_o, **flags}, model_overrides=model_o, data_overrides=data_o, rank=rank)


def main(argv=None) -> int:
    args, extra = build_parser().parse_known_args(argv)
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if distributed and not torch.distributed.is_initialized():
        dev = args.device or "auto"
        cuda = dev.startswith("cuda") or (dev == "auto" and torch.cuda.is_available())
        torch.distributed.init_process_group(backend="nccl" if cuda else "gloo")
    out = Path(args.out)
    try:
        _, rank, world = dist_info()
        try:
            run = build_from_args(args, extra, rank)
            device = pick_device(run.cfg.device)
        except (ValueError, FileNotFoundError, RuntimeError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        if rank == 0:
            print(f"{run.meta['kind']}: {run.model.num_params():,} parameters; corpus {run.corpus.name} "
                  f"({len(run.corpus.text):,} characters, vocabulary {run.corpus.vocab_size}; {run.corpus.note}); "
                  f"device {device}, {world} process(es)")
            write_config(out, run)
        try:
            result = train(run.model, run.get_batch, run.cfg, out, resume=args.resume, meta=run.meta,
                           progress=not args.no_progress)
        except KeyboardInterrupt:
            print(f"\nerror: interrupted. {_resume_hint(out)}", file=sys.stderr)
            return 130
        except FloatingPointError as e:
            print(f"error: {e}. {_resume_hint(out)}", file=sys.stderr)
            return 1
        if rank == 0:
            last = result["history"][-1]
            print(f"done: step {last['step']}, train loss {last['train_loss']:.4f}, val loss "
                  f"{last['val_loss']:.4f}, {last['train_time_s']:.0f} s training")
    finally:
        if distributed and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
    return 0


def _resume_hint(out: Path) -> str:
    try:
        step = load_checkpoint(out)["step"]
    except (FileNotFoundError, ValueError):
        return f"No checkpoint was written in {out}: start again."
    return (f"The checkpoint {out / CKPT_NAME} is at step {step}, safe to resume from: "
            f"python -m xlstm_edu.train --out {out} --resume")


if __name__ == "__main__":
    sys.exit(main())
