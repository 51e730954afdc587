"""Checkers of chapter 13 (generation, state and long context). The references are the package's own model
(``XLSTMLM.state_nbytes``, ``XLSTMLM.forward`` over the whole text), run on small float64 models built here.

    from xlstm_edu.exercises import ch13
    ch13.check_state_size(state_size_bytes)          # 13.1
    ch13.check_prefill_then_step(prefill_then_step)  # 13.2
    ch13.check_streamed_loss(streamed_loss)          # 13.3
"""

from __future__ import annotations

import contextlib

from xlstm_edu.exercises.core import Verdict, check, combine, exercise


def _tiny_model(slstm_at=(1,), seed: int = 0, **kw):
    """A small float64 xLSTM with non-trivial weights everywhere (the official init zeroes some gates)."""
    import torch

    from xlstm_edu.nn.xlstm_lm import XLSTMConfig, XLSTMLM

    cfg = dict(vocab_size=17, context_length=32, embedding_dim=32, num_blocks=3, num_heads=2, chunk_size=8,
               slstm_at=slstm_at)
    cfg.update(kw)
    g = torch.Generator().manual_seed(seed)
    model = XLSTMLM(XLSTMConfig(**cfg)).double().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(0.2 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return model


@contextlib.contextmanager
def _spy(model):
    """Record the calls of ``model.forward`` / ``prefill`` / ``step`` (name, number of tokens) while inside."""
    calls = []
    orig = {}
    for name in ("forward", "prefill", "step"):
        fn = getattr(model, name)
        orig[name] = fn

        def spy(idx, *a, _fn=fn, _name=name, **k):
            calls.append((_name, int(idx.shape[1]) if idx.dim() == 2 else 1))
            return _fn(idx, *a, **k)

        setattr(model, name, spy)
    try:
        yield calls
    finally:
        for name in orig:
            delattr(model, name)  # back to the class's methods


# ------------------------------------------------------------------------------------------------- 13.1
STATE_CONFIGS = (
    dict(vocab_size=75, embedding_dim=192, num_blocks=4, num_heads=4, slstm_at=(1, 3)),  # cpu-small xLSTM[1:1]
    dict(vocab_size=75, embedding_dim=192, num_blocks=4, num_heads=4, slstm_at=()),  # mLSTM only
    dict(vocab_size=11, embedding_dim=80, num_blocks=3, num_heads=4, slstm_at=(0,), conv1d_kernel_size=2),
)


@exercise("13.1")
def check_state_size(state_size_bytes, *, quiet: bool = False):
    """``state_size_bytes(cfg)`` = the bytes of ``XLSTMLM(cfg)``'s float32 generation state, for a batch of one,
    on three configurations (xLSTM[1:1] and mLSTM-only of the chapter, and one with another kernel size and an
    inner size that has to be rounded up)."""
    from xlstm_edu.nn.xlstm_lm import XLSTMConfig, XLSTMLM

    hint = ("per mLSTM block: (K-1)·inner conv inputs + NH·DH² (C) + NH·DH (n) + NH (m), with "
            "inner = round_up(2·E, 64) and DH = inner/NH; per sLSTM block: (K-1)·E + 4·E (h, c, n, m); times 4 bytes")
    parts = []
    for values in STATE_CONFIGS:
        cfg = XLSTMConfig(**values)
        model = XLSTMLM(cfg)
        want = model.state_nbytes(model.init_state(1))
        parts.append(check(f"state bytes of {cfg.ratio}, E = {cfg.embedding_dim}, K = {cfg.conv1d_kernel_size}",
                           lambda cfg=cfg: state_size_bytes(cfg), want, rtol=0, atol=0, hint=hint, quiet=True))
    return combine("exercise 13.1: the size of the state", parts, quiet=quiet)


# ------------------------------------------------------------------------------------------------- 13.2
@exercise("13.2")
def check_prefill_then_step(prefill_then_step, *, quiet: bool = False):
    """``prefill_then_step(model, idx, t)`` → logits (B, S, V): ``model.prefill`` once over idx[:, :t], then one
    ``model.step`` per remaining token, equal (1e-10, float64) to ``model(idx)``; t at a chunk border and
    between borders."""
    import torch

    name = "exercise 13.2: prefill then step equals forward"
    hint = ("logits, state = model.prefill(idx[:, :t]); then for each s >= t: logits_s, state = "
            "model.step(idx[:, s], state); stack the step logits after the prefill's along dim 1")
    model = _tiny_model()
    idx = torch.randint(0, 17, (2, 21), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        full = model(idx)
    parts = []
    for t in (8, 13):
        with _spy(model) as calls:
            v = check(f"logits with a prompt of {t} tokens", lambda t=t: prefill_then_step(model, idx, t), full,
                      rtol=0, atol=1e-10, hint=hint, quiet=True)
        if v.ok:
            want = [("prefill", t)] + [("step", 1)] * (21 - t)
            got = [c for c in calls if c[0] != "forward"]  # prefill runs forward inside
            if got != want or any(c == ("forward", 21) for c in calls):
                v = Verdict(v.name, "wrong", message=f"❌ {v.name}: the rule is one prefill over the {t} prompt "
                            f"tokens, then one step per token; your code called {_calls_text(calls)} -- hint: {hint}")
        parts.append(v)
    return combine(name, parts, quiet=quiet)


def _calls_text(calls) -> str:
    out, last, n = [], None, 0
    for c in calls + [None]:
        if c == last:
            n += 1
            continue
        if last is not None:
            out.append(f"{last[0]}({last[1]} tokens)" + (f" x{n}" if n > 1 else ""))
        last, n = c, 1
    return ", ".join(out) or "nothing"


# ------------------------------------------------------------------------------------------------- 13.3
@exercise("13.3")
def check_streamed_loss(streamed_loss, *, quiet: bool = False):
    """``streamed_loss(model, ids, chunk=100)`` = the mean cross-entropy of predicting ids[:, 1:] from
    ids[:, :-1], computed with calls of at most ``chunk`` tokens that pass the state on; equal to one pass."""
    import torch
    import torch.nn.functional as F

    name = "exercise 13.3: streaming in chunks gives the loss of one pass"
    hint = ("x, y = ids[:, :-1], ids[:, 1:]; for each chunk x[:, a:a+chunk]: logits, state = "
            "model.prefill(x[:, a:a+chunk], state); add up the per-token losses (reduction='sum') and divide by "
            "the number of targets at the end (the last chunk is shorter)")
    model = _tiny_model(slstm_at=(1,))
    ids = torch.randint(0, 17, (1, 538), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        logits = model(ids[:, :-1])
        want = F.cross_entropy(logits.transpose(1, 2), ids[:, 1:]).item()
    with _spy(model) as calls:
        v = check("streamed loss of 537 targets in chunks of 100", lambda: streamed_loss(model, ids, chunk=100), want,
                  rtol=1e-10, atol=0, hint=hint, quiet=True)
    if v.ok and max(n for _, n in calls) > 100:
        v = Verdict(v.name, "wrong", message=f"❌ {v.name}: the rule is at most 100 tokens per call; your code "
                    f"called {_calls_text(calls)} -- hint: {hint}")
    return combine(name, [v], quiet=quiet)
