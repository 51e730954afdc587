"""Checkers of chapter 10 (training a small xLSTM): the parts of the training loop a learner writes.

* 10.1 ``check_weight_decay_groups(fn)``: ``fn(model, weight_decay)`` -> AdamW parameter groups, compared with
  ``xlstm_edu.train.weight_decay_groups`` on an xLSTM[1:1], a GPT and an LSTM;
* 10.2 ``check_evaluate(fn)``: ``fn(model, get_batch, eval_iters)`` -> ``{"train_loss", "val_loss"}``, compared with
  ``xlstm_edu.train.evaluate`` (eval mode, no gradients, fixed batches, the training mode restored);
* 10.3 ``check_clipped_step(fn)``: ``fn(model, optimizer, loss, max_norm)`` -> the gradient norm before clipping,
  compared with ``xlstm_edu.train.clipped_step`` over two SGD steps, with the clip active and inactive;
* 10.4 ``check_top_k(fn)``: ``fn(logits, temperature, top_k)`` -> the next-token probabilities, compared with
  ``xlstm_edu.sample.next_token_probs``.

Every checker calls the learner's function itself; a stub raising ``NotImplementedError`` gives ❌ "not solved yet".
"""

from __future__ import annotations

import copy
import functools

import torch

from xlstm_edu.exercises.core import Verdict, check, exercise, is_unsolved, run_learner, unsolved_verdict

_V, _S = 13, 8


def _say(v: Verdict, quiet: bool) -> Verdict:
    if not quiet:
        print(v.message)
        v.printed = True
    return v


def _ok(name: str, what: str, quiet: bool) -> Verdict:
    return _say(Verdict(name, "exact", 0.0, 0.0, f"✅ {name}: {what}"), quiet)


def _wrong(name: str, what: str, hint: str | None, quiet: bool) -> Verdict:
    return _say(Verdict(name, "wrong", float("inf"), float("inf"),
                        f"❌ {name}: {what}" + (f" -- hint: {hint}" if hint else "")), quiet)


class _Stop(Exception):
    def __init__(self, verdict):
        self.verdict = verdict


def _call(fn, name, hint, *args):
    """``fn(*args)``; an unsolved stub or an error in the learner's code becomes a verdict (raised as _Stop)."""
    out, bad = run_learner(name, lambda: fn(*args), hint)
    if bad is not None:
        raise _Stop(bad)
    return out


def _guarded(name, hint):
    """Decorator: an unsolved / failing learner function gives its verdict instead of an exception."""
    def wrap(body):
        @functools.wraps(body)
        def checker(fn, quiet: bool = False):
            if is_unsolved(fn):
                return _say(unsolved_verdict(name, hint, f"got {fn!r}"), quiet)
            if not callable(fn):
                return _wrong(name, f"expected a function, got {type(fn).__name__}", hint, quiet)
            try:
                return body(fn, quiet)
            except _Stop as s:
                return _say(s.verdict, quiet)
        return checker
    return wrap


@functools.lru_cache(maxsize=None)
def _toy_batches(batch_size: int = 4):
    from xlstm_edu.data import Corpus, make_get_batch

    text = "ROMEO:\nBut soft, what light through yonder window breaks?\n\nJULIET:\nO Romeo!\n\n" * 6
    chars = "".join(sorted(set(text)))[:_V]
    text = "".join(c for c in text if c in chars)
    return make_get_batch(Corpus("toy", text, int(len(text) * 0.8), chars), _S, batch_size, seed=3)


def _model(kind: str, dropout: float = 0.0, seed: int = 0):
    from xlstm_edu.models import build_model

    torch.manual_seed(seed)
    kw = dict(embedding_dim=16, num_blocks=2, dropout=dropout)
    if kind != "lstm":
        kw["num_heads"] = 2
    return build_model(kind, _V, _S, **kw)


# ------------------------------------------------------------------------------------------ 10.1
def _role(name: str, module) -> str:
    if isinstance(module, torch.nn.Embedding):
        return "an embedding table"
    if "Norm" in type(module).__name__:
        return "a normalisation layer's scale"
    leaf = name.split(".")[-1]
    if leaf.startswith("bias") or leaf == "b":
        return "a bias"
    if leaf == "R":
        return "the sLSTM's recurrent matrix R (the official code does not decay it)"
    if leaf.startswith("weight"):
        return "a layer's weight"
    return "a per-unit vector"


HINT_10_1 = ("decay the `weight*` tensors of the layers; leave out embedding tables (a tied head is the same tensor), "
             "normalisation layers, biases and the other vectors; list every parameter exactly once")


@exercise("10.1")
@_guarded("exercise 10.1 (weight-decay groups)", HINT_10_1)
def check_weight_decay_groups(fn, quiet: bool = False) -> Verdict:
    """``fn(model, weight_decay)`` must return AdamW's two groups like ``xlstm_edu.train.weight_decay_groups``."""
    from xlstm_edu.train import weight_decay_groups

    name = "exercise 10.1 (weight-decay groups)"
    for kind in ("xlstm", "gpt", "lstm"):
        model = _model(kind)
        groups = _call(fn, name, HINT_10_1, model, 0.1)
        owner = {id(p): (f"{mn}.{pn}" if mn else pn, m) for mn, m in model.named_modules()
                 for pn, p in m.named_parameters(recurse=False)}
        try:
            listed = [(id(p), float(g.get("weight_decay", 0.0))) for g in groups for p in g["params"]]
        except (TypeError, KeyError, AttributeError):
            return _wrong(name, "expected a list of dicts like {'params': [...], 'weight_decay': 0.1}", HINT_10_1,
                          quiet)
        seen = {}
        for pid, wd in listed:
            if pid not in owner:
                return _wrong(name, f"{kind}: a group holds a tensor that is not a parameter of the model",
                              HINT_10_1, quiet)
            if pid in seen:
                return _wrong(name, f"{kind}: {owner[pid][0]} is listed twice (AdamW refuses a tensor in two groups; "
                                    "a tied head is the embedding itself)", HINT_10_1, quiet)
            seen[pid] = wd
        missing = [owner[i][0] for i in owner if i not in seen]
        if missing:
            return _wrong(name, f"{kind}: {missing[0]} is in no group (AdamW would not train it)", HINT_10_1, quiet)
        ref = {id(p): g["weight_decay"] for g in weight_decay_groups(model, 0.1) for p in g["params"]}
        for pid, wd in seen.items():
            pname, module = owner[pid]
            if wd != ref[pid]:
                what = "gets weight decay" if wd else "gets no weight decay"
                return _wrong(name, f"{kind}: {pname}, {_role(pname, module)}, {what} ({wd:g}; expected "
                                    f"{ref[pid]:g})", HINT_10_1, quiet)
    return _ok(name, "the same groups as the trainer for xLSTM[1:1], GPT and LSTM", quiet)


# ------------------------------------------------------------------------------------------ 10.2
HINT_10_2 = ("model.eval() (no dropout), torch.no_grad(), the fixed batches get_batch(split, -1), ..., "
             "get_batch(split, -eval_iters) of both splits, then model.train(was_training)")


@exercise("10.2")
@_guarded("exercise 10.2 (evaluation)", HINT_10_2)
def check_evaluate(fn, quiet: bool = False) -> Verdict:
    """``fn(model, get_batch, eval_iters) -> {"train_loss", "val_loss"}`` like ``xlstm_edu.train.evaluate``."""
    from xlstm_edu.train import evaluate

    name = "exercise 10.2 (evaluation)"
    gb = _toy_batches()
    model = _model("gpt", dropout=0.5)
    model.train()
    expected = evaluate(model, gb, 3)
    seen = []
    hook = model.register_forward_pre_hook(lambda m, inp: seen.append((m.training, torch.is_grad_enabled())))
    try:
        got = _call(fn, name, HINT_10_2, model, gb, 3)
    finally:
        hook.remove()
    if not seen:
        return _wrong(name, "the model was never called", HINT_10_2, quiet)
    if any(training for training, _ in seen):
        return _wrong(name, "dropout was on while evaluating: the model was in training mode", HINT_10_2, quiet)
    if any(grad for _, grad in seen):
        return _wrong(name, "autograd recorded the evaluation: wrap it in torch.no_grad()", HINT_10_2, quiet)
    if not model.training:
        return _wrong(name, "the model is left in eval mode: training would continue without dropout", HINT_10_2,
                      quiet)
    if not isinstance(got, dict) or not {"train_loss", "val_loss"} <= set(got):
        return _wrong(name, f"expected a dict with 'train_loss' and 'val_loss', got {got!r:.80}", HINT_10_2, quiet)
    for split in ("train_loss", "val_loss"):
        v = check(f"{name}: {split}", lambda: float(got[split]), expected[split], rtol=1e-5, quiet=True,
                  hint="the same fixed batches as the trainer: steps -1 ... -eval_iters")
        if not v.ok:
            return _say(v, quiet)
    return _ok(name, "eval mode, no gradients, the fixed batches, training mode restored", quiet)


# ------------------------------------------------------------------------------------------ 10.3
HINT_10_3 = ("zero the gradients, loss.backward(), norm = torch.nn.utils.clip_grad_norm_(model.parameters(), "
             "max_norm) (it returns the norm before clipping), optimizer.step(), return float(norm)")


@exercise("10.3")
@_guarded("exercise 10.3 (clipped optimizer step)", HINT_10_3)
def check_clipped_step(fn, quiet: bool = False) -> Verdict:
    """``fn(model, optimizer, loss, max_norm) -> gradient norm before clipping``, like ``clipped_step``, over
    two consecutive steps with the clip active (max_norm 1e-3) and inactive (1e4). The optimizer is plain SGD, whose
    update is proportional to the gradient, so that a clip in the wrong place shows in the weights (Adam divides
    a uniform scale away)."""
    from xlstm_edu.train import clipped_step, default_loss

    name = "exercise 10.3 (clipped optimizer step)"
    gb = _toy_batches()
    for max_norm in (1e-3, 1e4):
        mine = _model("lstm")
        ref = copy.deepcopy(mine)
        opt_mine = torch.optim.SGD(mine.parameters(), lr=0.5)
        opt_ref = torch.optim.SGD(ref.parameters(), lr=0.5)
        for step in range(2):
            x, y = gb("train", step)
            expected = clipped_step(ref, opt_ref, default_loss(ref(x), y), max_norm)
            got = _call(fn, name, HINT_10_3, mine, opt_mine, default_loss(mine(x), y), max_norm)
            try:
                got = float(got)
            except (TypeError, ValueError):
                return _wrong(name, f"expected the gradient norm as a number, got {type(got).__name__}", HINT_10_3,
                              quiet)
            where = f"step {step + 1} with max_norm={max_norm:g}"
            if abs(got - expected) > 1e-4 * expected:
                why = (" -- that is the norm after clipping; return the one before" if abs(got - max_norm) < 1e-4
                       * max_norm else " -- step 1 was right: were step 1's gradients still there? zero them first"
                       if step == 1 else "")
                return _wrong(name, f"{where}: returned gradient norm {got:.6g}, expected {expected:.6g}{why}",
                              HINT_10_3, quiet)
            diff = max(float((a - b).detach().abs().max()) for a, b in zip(mine.parameters(), ref.parameters()))
            if diff > 1e-6:
                why = (" (the gradients of step 1 were added to those of step 2: zero them first)" if step == 1
                       else "")
                return _wrong(name, f"{where}: the weights after the step differ from the trainer's by up to "
                                    f"{diff:.2g}{why}", HINT_10_3, quiet)
    return _ok(name, "the same weights and gradient norms as the trainer, clipped and unclipped", quiet)


# ------------------------------------------------------------------------------------------ 10.4
HINT_10_4 = ("divide the logits by the temperature; keep the top_k largest (the k-th included) and set the others "
             "to -inf; then softmax, so the kept ones sum to 1")


@exercise("10.4")
@_guarded("exercise 10.4 (top-k sampling)", HINT_10_4)
def check_top_k(fn, quiet: bool = False) -> Verdict:
    """``fn(logits, temperature, top_k) -> probabilities (V,)`` like ``xlstm_edu.sample.next_token_probs``."""
    from xlstm_edu.sample import next_token_probs

    name = "exercise 10.4 (top-k sampling)"
    logits = torch.randn(12, generator=torch.Generator().manual_seed(10)) * 2
    for temperature, k in ((1.0, None), (0.5, None), (2.0, 3), (0.7, 1), (1.3, 5), (1.0, 12)):
        got = _call(fn, name, HINT_10_4, logits.clone(), temperature, k)
        v = check(f"{name}: temperature {temperature:g}, top_k {k}", lambda: torch.as_tensor(got).float(),
                  next_token_probs(logits, temperature, k), rtol=1e-5, atol=1e-7, hint=HINT_10_4, quiet=True)
        if not v.ok:
            return _say(v, quiet)
    return _ok(name, "the trainer's sampling distribution for every temperature and top_k tried", quiet)
