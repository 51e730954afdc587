"""Training presets: data shape, trainer settings and per-model sizes chosen so parameter counts are comparable.

===========  ========================================================================================
preset       what it is for
===========  ========================================================================================
cpu-tiny     tests and the notebook: ~0.1M parameters, context 64, trains in about a minute on one core
cpu-small    the comparison run: ~1M parameters, context 128, ~10 minutes for the xLSTM on 2 cores
gpu-small    one modern GPU for a few minutes: ~10M parameters, context 256 (nanoGPT's Shakespeare size)
===========  ========================================================================================

Within a preset every model gets its own width (``embedding_dim``) so that xLSTM[1:1], mLSTM-only, sLSTM-only,
GPT and LSTM have about the same number of parameters (``python -m xlstm_edu.presets`` prints them; a test keeps
them within 15% of the xLSTM's). The vocabulary (~75 characters) adds a few thousand parameters on top.
"""

from __future__ import annotations

from xlstm_edu._validate import check_choice

PRESETS: dict[str, dict] = {
    "cpu-tiny": {
        "context_length": 64,
        "batch_size": 16,
        "train": dict(max_iters=300, lr=3e-3, min_lr=3e-4, warmup_iters=30, eval_interval=100, eval_iters=8,
                      weight_decay=0.1, grad_clip=1.0),
        "models": {
            "xlstm": dict(embedding_dim=64, num_blocks=2, num_heads=4),
            "mlstm": dict(embedding_dim=64, num_blocks=2, num_heads=4),
            "slstm": dict(embedding_dim=64, num_blocks=2, num_heads=4),
            "gpt": dict(embedding_dim=52, num_blocks=2, num_heads=4),
            "lstm": dict(embedding_dim=64, num_blocks=2),
        },
    },
    "cpu-small": {
        "context_length": 128,
        "batch_size": 16,
        "train": dict(max_iters=600, lr=2e-3, min_lr=2e-4, warmup_iters=50, eval_interval=50, eval_iters=5,
                      weight_decay=0.1, grad_clip=1.0),
        "models": {
            "xlstm": dict(embedding_dim=192, num_blocks=4, num_heads=4),
            "mlstm": dict(embedding_dim=192, num_blocks=4, num_heads=4),
            "slstm": dict(embedding_dim=192, num_blocks=4, num_heads=4),
            "gpt": dict(embedding_dim=144, num_blocks=4, num_heads=4),
            "lstm": dict(embedding_dim=240, num_blocks=2),
        },
    },
    "gpu-small": {
        "context_length": 256,
        "batch_size": 64,
        "train": dict(max_iters=3000, lr=1e-3, min_lr=1e-4, warmup_iters=200, eval_interval=250, eval_iters=20,
                      weight_decay=0.1, grad_clip=1.0),
        "models": {
            "xlstm": dict(embedding_dim=512, num_blocks=6, num_heads=4, dropout=0.1),
            "mlstm": dict(embedding_dim=512, num_blocks=6, num_heads=4, dropout=0.1),
            "slstm": dict(embedding_dim=512, num_blocks=6, num_heads=4, dropout=0.1),
            "gpt": dict(embedding_dim=384, num_blocks=6, num_heads=6, dropout=0.1),
            "lstm": dict(embedding_dim=640, num_blocks=3, dropout=0.1),
        },
    },
}


def get_preset(name: str) -> dict:
    check_choice(name, "preset", PRESETS)
    return PRESETS[name]


def preset_param_counts(name: str, vocab_size: int = 75) -> dict[str, int]:
    """Parameter count of every model kind in preset ``name`` (``vocab_size`` ~75 for the Shakespeare corpus)."""
    from xlstm_edu.models import build_model

    p = get_preset(name)
    return {kind: build_model(kind, vocab_size, p["context_length"], **over).num_params()
            for kind, over in p["models"].items()}


if __name__ == "__main__":
    for name in PRESETS:
        counts = preset_param_counts(name)
        print(f"{name}: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
