"""One entry point for every language model of the course: ``build_model(kind, vocab_size, context_length, ...)``.

Every model is an ``nn.Module`` with the same interface (the trainer and the sampler rely on nothing else)::

    model = Cls(cfg)                                   # cfg: a dataclass, kept as model.cfg
    logits = model(idx)                                # idx (B, S) long, S <= cfg.context_length -> (B, S, V)
    state = model.init_state(batch_size, device=None)  # recurrent / generation state
    logits_t, state = model.step(idx_t, state)         # idx_t (B,) -> (B, V); equals model(idx)[:, t]
    model.num_params(non_embedding=False) -> int

Kinds: ``xlstm`` = xLSTM[1:1] (sLSTM blocks at the odd positions 1, 3, ...), ``mlstm`` = mLSTM blocks only
(xLSTM[1:0]), ``slstm`` = sLSTM blocks only (xLSTM[0:1]), ``gpt`` (nanoGPT-style) and ``lstm`` (torch.nn.LSTM).
"""

from __future__ import annotations

import dataclasses

from xlstm_edu._validate import check_choice

KINDS = ("xlstm", "mlstm", "slstm", "gpt", "lstm")


def cfg_from_dict(cls, values: dict):
    """``cls(**values)`` for a config dataclass, with a clear error for unknown keys (naming the valid ones)."""
    valid = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(valid))
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown key(s) {unknown}; valid keys are {valid}")
    return cls(**values)


def config_class(kind: str):
    """The config dataclass and model class of ``kind``."""
    check_choice(kind, "kind", KINDS)
    if kind in ("gpt", "lstm"):
        from xlstm_edu.nn.baselines import GPT, LSTMLM, GPTConfig, LSTMLMConfig

        return (GPTConfig, GPT) if kind == "gpt" else (LSTMLMConfig, LSTMLM)
    from xlstm_edu.nn.xlstm_lm import XLSTMConfig, XLSTMLM

    return XLSTMConfig, XLSTMLM


def model_config(kind: str, vocab_size: int, context_length: int, **overrides):
    """The config of a ``kind`` model. For the xLSTM kinds ``slstm_at`` follows from the kind unless given."""
    cfg_cls, _ = config_class(kind)
    values = dict(vocab_size=vocab_size, context_length=context_length, **overrides)
    if kind in ("xlstm", "mlstm", "slstm") and "slstm_at" not in overrides:
        n = values.get("num_blocks", next(f.default for f in dataclasses.fields(cfg_cls) if f.name == "num_blocks"))
        values["slstm_at"] = {"xlstm": tuple(range(1, n, 2)), "mlstm": (), "slstm": tuple(range(n))}[kind]
    return cfg_from_dict(cfg_cls, values)


def build_model(kind: str, vocab_size: int, context_length: int, **overrides):
    """A fresh model of ``kind`` (one of ``KINDS``); ``overrides`` set fields of its config dataclass."""
    cfg = model_config(kind, vocab_size, context_length, **overrides)
    return config_class(kind)[1](cfg)


def model_from_config(kind: str, cfg_dict: dict):
    """Rebuild a model from ``dataclasses.asdict(model.cfg)`` (as stored in checkpoints)."""
    cfg_cls, model_cls = config_class(kind)
    values = dict(cfg_dict)
    for f in dataclasses.fields(cfg_cls):  # JSON/pickle round trips turn tuples into lists
        if isinstance(values.get(f.name), list) and isinstance(f.default, tuple):
            values[f.name] = tuple(values[f.name])
    return model_cls(cfg_from_dict(cfg_cls, values))
