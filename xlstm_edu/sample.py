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
import sys
from pathlib import Path

import torch


def load_run(run_dir, device="cpu"):
    """``(model, chars, meta)`` from ``run_dir/ckpt.pt``; the model is in eval mode on ``device``."""
    from xlstm_edu.models import model_from_config
    from xlstm_edu.train import load_checkpoint

    ckpt = load_checkpoint(run_dir)
    meta = ckpt["meta"]
    if "kind" not in meta or "chars" not in meta:
        raise ValueError(f"{Path(run_dir) / 'ckpt.pt'} was not written by xlstm_edu.train's command line "
                         "(no model kind / vocabulary in it)")
    model = model_from_config(meta["kind"], meta["model_config"])
    model.load_state_dict(ckpt["model"])
    return model.to(device).eval(), meta["chars"], meta


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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m xlstm_edu.sample", description=__doc__.split("\n\n")[0])
    p.add_argument("--run", required=True, help="a run folder written by xlstm_edu.train")
    p.add_argument("--prompt", default="\n")
    p.add_argument("--tokens", type=int, default=500)
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--top-k", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    try:
        model, chars, _ = load_run(args.run, args.device)
        print(sample_text(model, chars, args.prompt, args.tokens, temperature=args.temperature, top_k=args.top_k,
                          seed=args.seed))
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
