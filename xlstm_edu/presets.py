"""Training presets: the data shape (context, batch) and the trainer's settings of each size of run.

===========  ========================================================================================
preset       what it is for
===========  ========================================================================================
cpu-tiny     tests and the notebook: ~0.1M parameters, context 64, trains in about a minute on one core
cpu-small    the comparison: ~1M parameters, context 128, ~10 minutes for the xLSTM on one core
gpu-small    one modern GPU for a few minutes: ~10M parameters, context 256 (nanoGPT's Shakespeare size)
===========  ========================================================================================

The model sizes of every preset live with the model kinds in ``xlstm_edu.models`` (``SIZES``); ``get_preset``
returns both together.
"""

from __future__ import annotations

from xlstm_edu._validate import check_choice
from xlstm_edu.models import PRESET_NAMES, SIZES, param_counts

TRAINING: dict[str, dict] = {
    "cpu-tiny": {
        "context_length": 64,
        "batch_size": 16,
        "train": dict(max_iters=300, lr=3e-3, min_lr=3e-4, warmup_iters=30, eval_interval=100, eval_iters=8,
                      weight_decay=0.1, grad_clip=1.0),
    },
    "cpu-small": {
        "context_length": 128,
        "batch_size": 16,
        "train": dict(max_iters=600, lr=2e-3, min_lr=2e-4, warmup_iters=50, eval_interval=50, eval_iters=5,
                      weight_decay=0.1, grad_clip=1.0),
    },
    "gpu-small": {
        "context_length": 256,
        "batch_size": 64,
        "train": dict(max_iters=3000, lr=1e-3, min_lr=1e-4, warmup_iters=200, eval_interval=250, eval_iters=20,
                      weight_decay=0.1, grad_clip=1.0),
    },
}
assert tuple(TRAINING) == PRESET_NAMES, "xlstm_edu.models.SIZES and presets.TRAINING must name the same presets"


def get_preset(name: str) -> dict:
    """``{"context_length", "batch_size", "train": TrainConfig fields, "models": {kind: sizes}}`` (copies)."""
    check_choice(name, "preset", PRESET_NAMES)
    t = TRAINING[name]
    return {"context_length": t["context_length"], "batch_size": t["batch_size"], "train": dict(t["train"]),
            "models": {k: dict(v) for k, v in SIZES[name].items()}}


#: every preset assembled (``get_preset`` of each name), for callers that look presets up by name
PRESETS: dict[str, dict] = {name: get_preset(name) for name in PRESET_NAMES}


def preset_param_counts(name: str, vocab_size: int = 75) -> dict[str, int]:
    """Parameter count of every model kind in preset ``name`` (``vocab_size`` ~75 for the Shakespeare corpus)."""
    return param_counts(name, vocab_size)


if __name__ == "__main__":
    for name in PRESET_NAMES:
        print(f"{name}: " + ", ".join(f"{k} {v:,}" for k, v in preset_param_counts(name).items()))
