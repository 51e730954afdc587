"""Answers for the chapter-13 checkers (format: tests/checker_cases/__init__.py)."""

import torch
import torch.nn.functional as F

from checker_cases import Case
from xlstm_edu.nn.blocks import round_up


# ------------------------------------------------------------------------------------------------- 13.1
def _size(cfg, *, conv=True, c_full=False, nbytes=4, rounded=True, nm=True):
    E, K = cfg.embedding_dim, cfg.conv1d_kernel_size
    inner = round_up(cfg.mlstm_proj_factor * E) if rounded else int(cfg.mlstm_proj_factor * E)
    NH = cfg.num_heads
    DH = inner // NH
    mlstm = (K - 1) * inner * conv + (inner * inner if c_full else NH * DH * DH) + (NH * DH + NH) * nm
    slstm = (K - 1) * E * conv + (4 if nm else 2) * E
    n_s = len(cfg.slstm_at)
    return nbytes * ((cfg.num_blocks - n_s) * mlstm + n_s * slstm)


def state_good(cfg):
    return _size(cfg)


def unsolved(*args, **kwargs):
    raise NotImplementedError("exercise: your code here")


# ------------------------------------------------------------------------------------------------- 13.2
def prefill_then_step_good(model, idx, t):
    logits, state = model.prefill(idx[:, :t])
    out = [logits]
    for s in range(t, idx.shape[1]):
        lt, state = model.step(idx[:, s], state)
        out.append(lt[:, None])
    return torch.cat(out, 1)


def prefill_then_step_fresh_state(model, idx, t):  # steps start from zeros instead of the prefill's state
    logits, _ = model.prefill(idx[:, :t])
    state, out = model.init_state(idx.shape[0]), [logits]
    for s in range(t, idx.shape[1]):
        lt, state = model.step(idx[:, s], state)
        out.append(lt[:, None])
    return torch.cat(out, 1)


def prefill_then_step_refeeds_last(model, idx, t):  # feeds the prompt's last token again before the rest
    logits, state = model.prefill(idx[:, :t])
    _, state = model.step(idx[:, t - 1], state)
    out = [logits]
    for s in range(t, idx.shape[1]):
        lt, state = model.step(idx[:, s], state)
        out.append(lt[:, None])
    return torch.cat(out, 1)


def prefill_then_step_forward_only(model, idx, t):  # right numbers, but breaks the rule
    return model(idx)


# ------------------------------------------------------------------------------------------------- 13.3
def streamed_good(model, ids, chunk=100):
    x, y = ids[:, :-1], ids[:, 1:]
    state, total = None, 0.0
    for a in range(0, x.shape[1], chunk):
        logits, state = model.prefill(x[:, a:a + chunk], state)
        total += F.cross_entropy(logits.transpose(1, 2), y[:, a:a + chunk], reduction="sum").item()
    return total / y.numel()


def streamed_reset(model, ids, chunk=100):  # every chunk from an empty state
    x, y = ids[:, :-1], ids[:, 1:]
    total = 0.0
    for a in range(0, x.shape[1], chunk):
        logits = model(x[:, a:a + chunk])
        total += F.cross_entropy(logits.transpose(1, 2), y[:, a:a + chunk], reduction="sum").item()
    return total / y.numel()


def streamed_mean_of_means(model, ids, chunk=100):  # the shorter last chunk weighs as much as the others
    x, y = ids[:, :-1], ids[:, 1:]
    state, means = None, []
    for a in range(0, x.shape[1], chunk):
        logits, state = model.prefill(x[:, a:a + chunk], state)
        means.append(F.cross_entropy(logits.transpose(1, 2), y[:, a:a + chunk]).item())
    return sum(means) / len(means)


def streamed_drops_boundaries(model, ids, chunk=100):  # each chunk predicts only inside itself
    state, total, n = None, 0.0, 0
    for a in range(0, ids.shape[1], chunk):
        piece = ids[:, a:a + chunk]
        logits, state = model.prefill(piece, state)
        total += F.cross_entropy(logits[:, :-1].transpose(1, 2), piece[:, 1:], reduction="sum").item()
        n += piece.shape[1] - 1
    return total / n


def streamed_one_call(model, ids, chunk=100):  # right number, but one call over everything
    logits = model(ids[:, :-1])
    return F.cross_entropy(logits.transpose(1, 2), ids[:, 1:]).item()


CASES = {
    "13.1": Case(good=(state_good,),
                 wrong={"conv buffers forgotten": (lambda cfg: _size(cfg, conv=False),),
                        "C as one inner x inner matrix (not per head)": (lambda cfg: _size(cfg, c_full=True),),
                        "numbers, not bytes": (lambda cfg: _size(cfg, nbytes=1),),
                        "inner not rounded up to 64": (lambda cfg: _size(cfg, rounded=False),),
                        "n and m forgotten": (lambda cfg: _size(cfg, nm=False),), "not solved yet": (unsolved,)}),
    "13.2": Case(good=(prefill_then_step_good,),
                 wrong={"steps from an empty state": (prefill_then_step_fresh_state,),
                        "the prompt's last token fed twice": (prefill_then_step_refeeds_last,),
                        "one forward over everything": (prefill_then_step_forward_only,),
                        "not solved yet": (unsolved,)}),
    "13.3": Case(good=(streamed_good,),
                 wrong={"state reset at every chunk": (streamed_reset,),
                        "mean of the chunks' means": (streamed_mean_of_means,),
                        "targets across chunk borders dropped": (streamed_drops_boundaries,),
                        "one call over the whole text": (streamed_one_call,), "not solved yet": (unsolved,)}),
}
