"""Chapter 10: right and realistically wrong answers for the training-loop exercises."""

import math

import torch
from checker_cases import Case

from xlstm_edu.sample import next_token_probs
from xlstm_edu.train import clipped_step, evaluate, weight_decay_groups


# ------------------------------------------------------------------------------------------ 10.1
def _groups(decay, no_decay, wd):
    return [{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}]


def by_dims(model, wd):  # nanoGPT's rule: every tensor of 2+ dims (decays embeddings, the sLSTM's R and b)
    ps = list(model.parameters())
    return _groups([p for p in ps if p.dim() >= 2], [p for p in ps if p.dim() < 2], wd)


def everything(model, wd):
    return [{"params": list(model.parameters()), "weight_decay": wd}]


def by_name(model, wd):  # "weight" in the name: norm scales and the embedding get decayed too
    named = list(model.named_parameters())
    return _groups([p for n, p in named if "weight" in n], [p for n, p in named if "weight" not in n], wd)


def tied_twice(model, wd):  # walks the modules without noticing that the head is the embedding
    decay, no_decay = [], []
    for m in model.modules():
        for n, p in m.named_parameters(recurse=False):
            ok = n.startswith("weight") and not isinstance(m, torch.nn.Embedding) and "Norm" not in type(m).__name__
            (decay if ok else no_decay).append(p)
    return _groups(decay, no_decay, wd)


def forgot_norms(model, wd):  # embeddings excluded, but every other "weight" decayed, norm scales included
    emb = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)}
    named = list(model.named_parameters())
    dec = [p for n, p in named if n.split(".")[-1].startswith("weight") and id(p) not in emb]
    return _groups(dec, [p for n, p in named if not any(p is q for q in dec)], wd)


# ------------------------------------------------------------------------------------------ 10.2
def _eval_body(model, get_batch, eval_iters, steps):
    out = {}
    for split in ("train", "val"):
        total = 0.0
        for i in steps(eval_iters):
            x, y = get_batch(split, i)
            logits = model(x).detach()
            total += float(torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1)))
        out[f"{split}_loss"] = total / eval_iters
    return out


def fixed(n):
    return [-(i + 1) for i in range(n)]


def eval_no_eval_mode(model, get_batch, eval_iters):
    with torch.no_grad():
        return _eval_body(model, get_batch, eval_iters, fixed)


def eval_no_no_grad(model, get_batch, eval_iters):  # the graph of every batch is built (and kept) for nothing
    model.eval()
    out = _eval_body(model, get_batch, eval_iters, fixed)
    model.train()
    return out


def eval_not_restored(model, get_batch, eval_iters):
    model.eval()
    with torch.no_grad():
        return _eval_body(model, get_batch, eval_iters, fixed)


def eval_training_batches(model, get_batch, eval_iters):  # steps 0, 1, ...: batches that change as training runs
    model.eval()
    with torch.no_grad():
        out = _eval_body(model, get_batch, eval_iters, lambda n: range(n))
    model.train()
    return out


# ------------------------------------------------------------------------------------------ 10.3
def step_norm_after_clipping(model, optimizer, loss, max_norm):
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    norm = math.sqrt(sum(float((p.grad ** 2).sum()) for p in model.parameters() if p.grad is not None))
    optimizer.step()
    return norm


def step_without_zero_grad(model, optimizer, loss, max_norm):
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    optimizer.step()
    return float(norm)


def step_clip_after_update(model, optimizer, loss, max_norm):
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return float(torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm))


def step_per_tensor_clipping(model, optimizer, loss, max_norm):
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    norm = math.sqrt(sum(float((p.grad ** 2).sum()) for p in model.parameters() if p.grad is not None))
    for p in model.parameters():
        torch.nn.utils.clip_grad_norm_([p], max_norm)
    optimizer.step()
    return norm


# ------------------------------------------------------------------------------------------ 10.4
def probs_temperature_after_softmax(logits, temperature, top_k):
    p = next_token_probs(logits, 1.0, top_k)
    return p / temperature


def probs_keeps_one_too_few(logits, temperature, top_k):
    logits = logits / temperature
    if top_k is not None:
        kth = torch.topk(logits, top_k).values[-1]
        logits = logits.masked_fill(logits <= kth, float("-inf"))
    return torch.softmax(logits, -1)


def probs_masks_with_zero(logits, temperature, top_k):
    logits = logits / temperature
    if top_k is not None:
        kth = torch.topk(logits, top_k).values[-1]
        logits = logits.masked_fill(logits < kth, 0.0)
    return torch.softmax(logits, -1)


def probs_not_renormalised(logits, temperature, top_k):
    p = torch.softmax(logits / temperature, -1)
    if top_k is not None:
        kth = torch.topk(p, top_k).values[-1]
        p = p.masked_fill(p < kth, 0.0)
    return p


CASES = {
    "10.1": Case(good=(weight_decay_groups,), wrong={
        "nanoGPT's rule, 2+ dims": (by_dims,), "everything decayed": (everything,), "'weight' in the name": (by_name,),
        "the tied head listed twice": (tied_twice,), "norm scales decayed": (forgot_norms,)}),
    "10.2": Case(good=(lambda m, gb, n: evaluate(m, gb, n),), wrong={
        "no model.eval()": (eval_no_eval_mode,), "no torch.no_grad()": (eval_no_no_grad,),
        "training mode not restored": (eval_not_restored,), "the training steps' batches": (eval_training_batches,)}),
    "10.3": Case(good=(clipped_step,), wrong={
        "the norm after clipping": (step_norm_after_clipping,), "no zero_grad": (step_without_zero_grad,),
        "clipped after the update": (step_clip_after_update,),
        "each tensor clipped alone": (step_per_tensor_clipping,)}),
    "10.4": Case(good=(next_token_probs,), wrong={
        "temperature after the softmax": (probs_temperature_after_softmax,),
        "one too few kept (<=)": (probs_keeps_one_too_few,), "masked with 0, not -inf": (probs_masks_with_zero,),
        "not renormalised": (probs_not_renormalised,)}),
}
