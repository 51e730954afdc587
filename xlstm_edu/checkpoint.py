"""Reading and writing a run folder: the checkpoint, the metrics, and a trained model ready to use.

A run folder (written by ``xlstm_edu.train.train`` with ``out_dir``) holds

- ``ckpt.pt``: the model's and the optimizer's state, the step, the random-number states of every process, the
  training config, the evaluation history (whose last record, of this step, holds the tokens and the training
  time so far) and ``meta`` (the command line keeps the model
  kind, its config, the corpus and the vocabulary there);
- ``metrics.jsonl``: the evaluation history, one JSON object per line, for people and plots. A record holds
  ``step``, ``tokens`` (training tokens so far, all processes), ``train_loss`` and ``val_loss`` (mean cross-entropy
  in nats over the fixed evaluation batches of each split), ``lr`` (of the last step), ``grad_norm`` (the mean
  gradient norm before clipping since the previous evaluation), ``tokens_per_s``, ``train_time_s`` and
  ``cpu_time_s`` (this process's wall-clock and CPU seconds of training, evaluations excluded) and ``elapsed_s``
  (wall-clock, evaluations included), plus whatever a caller's ``eval_fn`` adds;
- ``config.json`` (command line only): what was run.

Both files are replaced atomically (written to a temporary file, then renamed), so a run killed at any moment
leaves the previous version or the new one, never half a file. The checkpoint holds the history too: it is the
one source of truth when a run resumes.

**Loading is safe.** ``torch.load`` unpickles, and a pickle can run any code. We load with
``weights_only=True``, which accepts only tensors and plain data (dicts, lists, tuples, numbers, strings), and
store everything in those forms (the random-number states as tensors and tuples). A checkpoint holding anything
else is refused with a ``ValueError`` before any of it runs.
"""

from __future__ import annotations

import json
import os
import pickle
import random
import zipfile
from pathlib import Path

import numpy as np
import torch

CKPT_NAME = "ckpt.pt"
METRICS_NAME = "metrics.jsonl"
CONFIG_NAME = "config.json"
REQUIRED = ("model", "optimizer", "step", "rng", "train_config", "history", "meta")


def _atomic_write(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def save_checkpoint(out_dir, state: dict) -> Path:
    """Write ``state`` to ``out_dir/ckpt.pt`` atomically."""
    path = Path(out_dir) / CKPT_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(path, lambda tmp: torch.save(state, tmp))
    return path


def load_checkpoint(run) -> dict:
    """The checkpoint of a run folder (or of a ``.pt`` file), loaded safely; ``ValueError`` if it is not one."""
    path = Path(run)
    if path.is_dir() or not path.suffix:
        path = path / CKPT_NAME
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    if path.stat().st_size == 0:
        raise ValueError(f"{path} is empty (0 bytes): the file was truncated; it is not a checkpoint")
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive; garbage or a cut-off file is not one
        raise ValueError(f"{path} is not a readable checkpoint (corrupted, truncated or not written by torch.save): "
                         "it is not the zip archive torch.save writes")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
        raise ValueError(
            f"refusing to load {path}: it holds objects other than tensors and plain data, and unpickling them "
            f"could run arbitrary code (torch.load with weights_only=True said: {first}). Only checkpoints written "
            "by this version of xlstm_edu.train load; do not open files you do not trust.") from None
    except Exception as e:  # a truncated or foreign file: zip errors, EOF, ...
        raise ValueError(f"{path} is not a readable checkpoint (corrupted, truncated or not written by "
                         f"torch.save): {type(e).__name__}: {e}") from None
    if not isinstance(ckpt, dict) or not set(REQUIRED) <= set(ckpt):
        have = sorted(ckpt) if isinstance(ckpt, dict) else type(ckpt).__name__
        raise ValueError(f"{path} is not a checkpoint of xlstm_edu.train: expected the keys {list(REQUIRED)}, "
                         f"got {have}")
    return ckpt


def plain_data(obj, what: str):
    """``obj`` as plain JSON data (a deep copy), or a ``ValueError``: only such data may go into a checkpoint."""
    try:
        return json.loads(json.dumps(obj))
    except (TypeError, ValueError) as e:
        raise ValueError(f"{what}: expected JSON-able data (numbers, strings, lists, dicts), got {e}") from None


def write_metrics(out_dir, history: list[dict]) -> None:
    """``out_dir/metrics.jsonl``: one record per line, replaced atomically."""
    text = "".join(json.dumps(r) + "\n" for r in history)
    _atomic_write(Path(out_dir) / METRICS_NAME, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def read_metrics(run) -> list[dict]:
    """The evaluation records of a run (``metrics.jsonl``); a partial last line (a file written by another
    program, or copied while written) is skipped, a broken line elsewhere is an error."""
    path = Path(run) / METRICS_NAME
    if not path.exists():
        return []
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    out = []
    for i, line in enumerate(lines):
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                break
            raise ValueError(f"{path}, line {i + 1}: not a JSON record: {line[:80]!r}") from None
    return out


# ------------------------------------------------------------------------- random-number states, as plain data
def rng_state() -> dict:
    """The torch (CPU and CUDA), Python and numpy random states in forms ``weights_only`` loading accepts."""
    np_state = np.random.get_state(legacy=False)
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": {"key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
                       "pos": int(np_state["state"]["pos"]), "has_gauss": int(np_state["has_gauss"]),
                       "gauss": float(np_state["gauss"])}}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state({"bit_generator": "MT19937", "state": {"key": n["key"].numpy().astype(np.uint32),
                                                               "pos": n["pos"]},
                         "has_gauss": n["has_gauss"], "gauss": n["gauss"]})
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ------------------------------------------------------------------------------------------ a trained model
def load_run(run_dir, device="cpu"):
    """``(model, chars, meta)`` from a run folder written by the command line; the model is in eval mode."""
    from xlstm_edu.models import KIND_NAMES, model_from_config

    path = Path(run_dir) / CKPT_NAME
    ckpt = load_checkpoint(run_dir)
    meta = ckpt["meta"]
    missing = [k for k in ("kind", "model_config", "chars") if k not in meta]
    if missing:
        raise ValueError(f"{path} was not written by xlstm_edu.train's command line (its meta has no {missing})")
    if meta["kind"] not in KIND_NAMES:
        raise ValueError(f"{path}: unknown model kind {meta['kind']!r}; expected one of {list(KIND_NAMES)}")
    try:
        model = model_from_config(meta["kind"], meta["model_config"])
    except (TypeError, ValueError) as e:
        raise ValueError(f"{path}: its model config cannot build a {meta['kind']} model: {e}") from None
    if meta["model_config"].get("vocab_size") != len(meta["chars"]):
        raise ValueError(f"{path}: the model's vocabulary size {meta['model_config'].get('vocab_size')} does not "
                         f"match the {len(meta['chars'])} characters stored with it")
    load_weights(model, ckpt["model"], path)
    return model.to(device).eval(), meta["chars"], meta


def load_weights(model, weights: dict, path) -> None:
    """``model.load_state_dict(weights)`` with a clear error when the stored config does not fit the weights."""
    try:
        model.load_state_dict(weights)
    except RuntimeError as e:
        lines = [ln.strip() for ln in str(e).splitlines()[1:] if ln.strip()][:4]
        raise ValueError(f"{path}: the weights do not match the model config stored with them "
                         f"({'; '.join(lines) or e})") from None
