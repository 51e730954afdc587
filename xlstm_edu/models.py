"""The one registry of the course's language models: which kinds exist, what they are called, and how big each is
in every preset. Every command line takes its ``--model`` and ``--preset`` choices from here.

Kinds (``KINDS``, in the course's order, from the classic LSTM to attention, which tables and plots follow)::

    lstm    LSTM         torch.nn.LSTM, the classic multi-layer LSTM
    slstm   xLSTM[0:1]   sLSTM blocks only
    mlstm   xLSTM[1:0]   mLSTM blocks only
    xlstm   xLSTM[1:1]   mLSTM and sLSTM blocks alternating, sLSTM at the odd positions 1, 3, ... (paper Fig. 10-11)
    gpt     GPT          nanoGPT-style Transformer (causal self-attention, learned positions)

Sizes (``SIZES[preset][kind]``): every kind gets its own width so that within a preset all kinds have about the
same number of parameters (a test keeps them within 15% of the xLSTM[1:1]); ``python -m xlstm_edu.models``
prints the counts. The presets' data shape and trainer settings live in ``xlstm_edu.presets``.

Every model is an ``nn.Module`` with the same interface (the trainer and the sampler rely on nothing else)::

    model = build_model(kind, vocab_size, context_length, **sizes)
    logits = model(idx)                                # idx (B, S) long, S <= cfg.context_length -> (B, S, V)
    state = model.init_state(batch_size, device=None)  # recurrent / generation state
    logits, state = model.prefill(idx, state)          # a whole prompt at once -> (B, S, V) and the state after it
    logits_t, state = model.step(idx_t, state)         # idx_t (B,) -> (B, V); equals model(idx)[:, t]
    model.num_params(non_embedding=False) -> int
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from xlstm_edu._validate import check_choice


@dataclass(frozen=True)
class Kind:
    name: str  # the command-line name
    label: str  # how tables and legends call it
    description: str
    family: str  # which model class builds it: "xlstm", "gpt" or "lstm"


KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("lstm", "LSTM", "torch.nn.LSTM", "lstm"),
    Kind("slstm", "xLSTM[0:1]", "sLSTM blocks only", "xlstm"),
    Kind("mlstm", "xLSTM[1:0]", "mLSTM blocks only", "xlstm"),
    Kind("xlstm", "xLSTM[1:1]", "mLSTM and sLSTM blocks alternating (sLSTM at 1, 3, ...)", "xlstm"),
    Kind("gpt", "GPT", "nanoGPT-style Transformer", "gpt"),
)}
KIND_NAMES: tuple[str, ...] = tuple(KINDS)
XLSTM_KINDS: tuple[str, ...] = tuple(k for k, v in KINDS.items() if v.family == "xlstm")

# embedding widths chosen so that every kind of a preset has about the xLSTM[1:1]'s parameter count
SIZES: dict[str, dict[str, dict]] = {
    "cpu-tiny": {  # ~0.1M parameters
        "lstm": dict(embedding_dim=64, num_blocks=2),
        "slstm": dict(embedding_dim=64, num_blocks=2, num_heads=4),
        "mlstm": dict(embedding_dim=64, num_blocks=2, num_heads=4),
        "xlstm": dict(embedding_dim=64, num_blocks=2, num_heads=4),
        "gpt": dict(embedding_dim=52, num_blocks=2, num_heads=4),
    },
    "cpu-small": {  # ~1M parameters
        "lstm": dict(embedding_dim=240, num_blocks=2),
        "slstm": dict(embedding_dim=192, num_blocks=4, num_heads=4),
        "mlstm": dict(embedding_dim=192, num_blocks=4, num_heads=4),
        "xlstm": dict(embedding_dim=192, num_blocks=4, num_heads=4),
        "gpt": dict(embedding_dim=144, num_blocks=4, num_heads=4),
    },
    "gpu-small": {  # ~10M parameters
        "lstm": dict(embedding_dim=640, num_blocks=3, dropout=0.1),
        "slstm": dict(embedding_dim=512, num_blocks=6, num_heads=4, dropout=0.1),
        "mlstm": dict(embedding_dim=512, num_blocks=6, num_heads=4, dropout=0.1),
        "xlstm": dict(embedding_dim=512, num_blocks=6, num_heads=4, dropout=0.1),
        "gpt": dict(embedding_dim=384, num_blocks=6, num_heads=6, dropout=0.1),
    },
}
PRESET_NAMES: tuple[str, ...] = tuple(SIZES)


def check_kind(kind: str) -> str:
    check_choice(kind, "model kind", KIND_NAMES)
    return kind


def label(kind: str) -> str:
    """``"xlstm"`` -> ``"xLSTM[1:1]"``."""
    return KINDS[check_kind(kind)].label


def sizes(preset: str, kind: str) -> dict:
    """The config overrides (width, depth, heads, dropout) of ``kind`` in ``preset`` (a copy)."""
    check_choice(preset, "preset", PRESET_NAMES)
    return dict(SIZES[preset][check_kind(kind)])


def cfg_from_dict(cls, values: dict):
    """``cls(**values)`` for a config dataclass, with a clear error for unknown keys (naming the valid ones)."""
    valid = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(valid))
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown key(s) {unknown}; valid keys are {valid}")
    return cls(**values)


def config_class(kind: str):
    """The config dataclass and model class of ``kind``."""
    family = KINDS[check_kind(kind)].family
    if family == "gpt":
        from xlstm_edu.nn.baselines import GPT, GPTConfig

        return GPTConfig, GPT
    if family == "lstm":
        from xlstm_edu.nn.baselines import LSTMLM, LSTMLMConfig

        return LSTMLMConfig, LSTMLM
    from xlstm_edu.nn.xlstm_lm import XLSTMLM, XLSTMConfig

    return XLSTMConfig, XLSTMLM


def model_config(kind: str, vocab_size: int, context_length: int, **overrides):
    """The config of a ``kind`` model. For the xLSTM kinds ``slstm_at`` follows from the kind unless given."""
    cfg_cls, _ = config_class(kind)
    values = dict(vocab_size=vocab_size, context_length=context_length, **overrides)
    if kind in XLSTM_KINDS and "slstm_at" not in overrides:
        n = values.get("num_blocks", next(f.default for f in dataclasses.fields(cfg_cls) if f.name == "num_blocks"))
        values["slstm_at"] = {"xlstm": tuple(range(1, n, 2)), "mlstm": (), "slstm": tuple(range(n))}[kind]
    return cfg_from_dict(cfg_cls, values)


def build_model(kind: str, vocab_size: int, context_length: int, **overrides):
    """A fresh model of ``kind`` (one of ``KIND_NAMES``); ``overrides`` set fields of its config dataclass."""
    cfg = model_config(kind, vocab_size, context_length, **overrides)
    return config_class(kind)[1](cfg)


def model_from_config(kind: str, cfg_dict: dict):
    """Rebuild a model from ``dataclasses.asdict(model.cfg)`` (as stored in checkpoints)."""
    cfg_cls, model_cls = config_class(kind)
    values = dict(cfg_dict)
    for f in dataclasses.fields(cfg_cls):  # JSON round trips turn tuples into lists
        if isinstance(values.get(f.name), list) and isinstance(f.default, tuple):
            values[f.name] = tuple(values[f.name])
    return model_cls(cfg_from_dict(cfg_cls, values))


def param_counts(preset: str, vocab_size: int = 75, context_length: int | None = None) -> dict[str, int]:
    """Parameter count of every kind in ``preset`` (``vocab_size`` ~75 for the Shakespeare corpus)."""
    if context_length is None:
        from xlstm_edu.presets import get_preset

        context_length = get_preset(preset)["context_length"]
    return {kind: build_model(kind, vocab_size, context_length, **sizes(preset, kind)).num_params()
            for kind in KIND_NAMES}


if __name__ == "__main__":
    for name in PRESET_NAMES:
        print(f"{name}: " + ", ".join(f"{label(k)} {n:,}" for k, n in param_counts(name).items()))
