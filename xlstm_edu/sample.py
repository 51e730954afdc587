"""Generate text from a trained run, one character at a time with the model's recurrent ``step``.

::

    python -m xlstm_edu.sample --run runs/tiny --prompt "ROMEO:" --tokens 500 --temperature 0.8 --top-k 20

The prompt goes through ``model.prefill`` in one pass (building the state: xLSTM's conv buffers and C, n, m or
h, c, n, m; the LSTM's h, c; GPT's key/value cache), then each new character is drawn from
``softmax(logits / temperature)``, optionally restricted to the ``top_k`` most likely ones, and fed back with
``model.step``. ``temperature=0`` means greedy decoding.
"""

from __future__ import annotations

import argparse
import math
import sys

import torch

from xlstm_edu.checkpoint import load_run  # noqa: F401  (re-exported: loading a run lives with the checkpoints)


@torch.no_grad()
def generate(model, prompt_ids, n_tokens: int, *, temperature: float = 1.0, top_k: int | None = None,
             generator: torch.Generator | None = None) -> list[int]:
    """``n_tokens`` new token ids after ``prompt_ids`` (a non-empty list): ``model.prefill`` over the prompt,
    then one ``model.step`` per new token (every model of the course has both)."""
    if len(prompt_ids) == 0:
        raise ValueError("prompt: expected at least one character")
    if n_tokens < 0:
        raise ValueError(f"tokens: expected >= 0, got {n_tokens}")
    if temperature < 0:
        raise ValueError(f"temperature: expected >= 0, got {temperature}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k: expected >= 1, got {top_k}")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        logits, state = model.prefill(torch.tensor([list(prompt_ids)], dtype=torch.long, device=device))
        logits = logits[:, -1]
        out = []
        for i in range(n_tokens):
            logits = logits.float()[0]
            if temperature == 0:
                nxt = int(torch.argmax(logits))
            else:
                logits = logits / temperature
                if top_k is not None and top_k < logits.numel():
                    kth = torch.topk(logits, top_k).values[-1]
                    logits = logits.masked_fill(logits < kth, float("-inf"))
                probs = torch.softmax(logits, dim=-1).cpu()
                nxt = int(torch.multinomial(probs, 1, generator=generator))
            out.append(nxt)
            if i + 1 < n_tokens:  # the last token needs no step: nothing comes after it
                logits, state = model.step(torch.tensor([nxt], device=device), state)
    finally:
        model.train(was_training)
    return out


def sample_text(model, chars: str, prompt: str, n_tokens: int, *, temperature: float = 0.8,
                top_k: int | None = None, seed: int = 0) -> str:
    """The prompt followed by ``n_tokens`` generated characters."""
    stoi = {c: i for i, c in enumerate(chars)}
    bad = sorted(set(prompt) - set(stoi))
    if bad:
        raise ValueError(f"prompt: characters {bad!r} are not in the model's vocabulary {chars!r}")
    g = torch.Generator().manual_seed(seed)
    ids = generate(model, [stoi[c] for c in prompt], n_tokens, temperature=temperature, top_k=top_k, generator=g)
    return prompt + "".join(chars[i] for i in ids)


def next_token_probs(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None) -> torch.Tensor:
    """The distribution the next token is drawn from: ``softmax(logits / temperature)`` over the ``top_k`` largest
    logits (all when None), zero elsewhere. ``logits``: (V,); ``temperature`` > 0 (0, greedy, is an argmax and
    needs no distribution). Exercise 10.4 of chapter 10 rebuilds it."""
    if not temperature > 0:
        raise ValueError(f"temperature: expected > 0 (use argmax for greedy decoding), got {temperature}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k: expected >= 1, got {top_k}")
    logits = logits.float() / temperature
    if top_k is not None and top_k < logits.numel():
        kth = torch.topk(logits, top_k).values[-1]  # the k-th largest: it and everything above it stay
        logits = logits.masked_fill(logits < kth, float("-inf"))
    return torch.softmax(logits, dim=-1)


def check_sampling_args(tokens: int, temperature: float, top_k: int | None) -> None:
    """The command line's checks, before a model is loaded."""
    if tokens < 0:
        raise ValueError(f"--tokens: expected >= 0, got {tokens}")
    if not (temperature == 0 or (math.isfinite(temperature) and 0.01 <= temperature <= 100)):
        raise ValueError(f"--temperature: expected 0 (greedy) or a number from 0.01 to 100, got {temperature} (a "
                         "tinier temperature overflows the logits; use 0 for the most likely character)")
    if top_k is not None and top_k < 1:
        raise ValueError(f"--top-k: expected >= 1, got {top_k}")


def main(argv=None) -> int:
    from xlstm_edu.train import pick_device

    p = argparse.ArgumentParser(prog="python -m xlstm_edu.sample", description=__doc__.split("\n\n")[0])
    p.add_argument("--run", required=True, help="a run folder written by xlstm_edu.train")
    p.add_argument("--prompt", default="\n")
    p.add_argument("--tokens", type=int, default=500)
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--top-k", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu (default), auto, cuda, cuda:N or mps")
    args = p.parse_args(argv)
    try:
        check_sampling_args(args.tokens, args.temperature, args.top_k)
        device = pick_device(args.device)
        model, chars, _ = load_run(args.run, device)
        text = sample_text(model, chars, args.prompt, args.tokens, temperature=args.temperature, top_k=args.top_k,
                           seed=args.seed)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
