"""How equal is ``xlstm_edu.nn.XLSTMLarge`` to the official ``xlstm.xlstm_large`` model? The figures, measured.

    python -m xlstm_edu.large_oracle [--json results/large_equality.json]

An official ``xLSTMLarge`` (small configuration, native torch kernels on the CPU, random weights scaled so that the
gate pre-activations reach beyond the soft cap) is copied into ours with ``XLSTMLarge.from_official``; then, in
float32 and in float64, the largest differences of: the logits of a full forward pass at sequence lengths that are
and are not multiples of the chunk size (the official model in "train" mode for multiples, in "inference" mode
otherwise); the logits of step-by-step generation (the official step kernel); and the gradients of a training
loss with respect to every weight. Relative difference = max |ours − official| / max |official|. Needs ``xlstm``.
The tests (``tests/test_large.py``) assert the same comparisons; this module reports the numbers.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import sys

import torch
import torch.nn.functional as F

from xlstm_edu.nn.large import XLSTMLarge, XLSTMLargeConfig, build_official

CONFIG = dict(vocab_size=23, embedding_dim=32, num_heads=2, num_blocks=2, chunk_size=8, context_length=64)


def stress_(model, scale: float = 4.0, seed: int = 1):
    """Perturb every weight (N(0, 0.3²)), scale the input/forget-gate weights by ``scale`` (pre-activations beyond
    ±15, where the soft cap bends them) and zero the input-gate bias (far from the −10 of initialisation)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=g, dtype=p.dtype).to(p.device))
            if ("igate_preact" in name or "fgate_preact" in name) and name.endswith("weight"):
                p.mul_(scale)
            if name.endswith("igate_preact.bias"):
                p.fill_(0.0)
    return model


def _diff(got, want) -> dict:
    d = (got - want).abs().max().item()
    return {"max_abs": d, "max_rel": d / max(want.abs().max().item(), 1e-300)}


def _worst(a: dict | None, b: dict) -> dict:
    if a is None:
        return b
    return {k: max(a[k], b[k]) for k in b}


def compare_with_official(dtype=torch.float64, *, lengths=(1, 5, 8, 13, 16, 21, 32, 40), gen_steps: int = 20,
                          seed: int = 0) -> dict:
    """The equality figures for one dtype: ``{"forward", "generation", "gradients"}``, each ``{"max_abs",
    "max_rel"}`` (worst over lengths / steps / weights), plus the setting."""
    cfg = XLSTMLargeConfig(**CONFIG)
    torch.manual_seed(seed)
    off = stress_(build_official(cfg, mode="train", dtype=dtype))
    off_inf = build_official(cfg, mode="inference", dtype=dtype)
    off_inf.load_state_dict(off.state_dict())
    ours = XLSTMLarge.from_official(off)
    g = torch.Generator().manual_seed(seed + 5)
    idx = torch.randint(0, cfg.vocab_size, (2, max(max(lengths), gen_steps) + 1), generator=g)
    fwd = gen = grads = None
    with torch.no_grad():
        for S in lengths:
            ref = off(idx[:, :S])[0] if S % cfg.chunk_size == 0 else off_inf(idx[:, :S])[0]
            fwd = _worst(fwd, _diff(ours(idx[:, :S]), ref))
        s_off = s_ours = None
        a, b = [], []
        for t in range(gen_steps):
            lo, s_off = off_inf(idx[:, t:t + 1], s_off)
            lu, s_ours = ours.step(idx[:, t], s_ours)
            a.append(lo[:, 0])
            b.append(lu)
        gen = _diff(torch.stack(b, 1), torch.stack(a, 1))
    S = max(s for s in lengths if s % cfg.chunk_size == 0)
    target = idx[:, 1:S + 1].reshape(-1)
    F.cross_entropy(off(idx[:, :S])[0].reshape(-1, cfg.vocab_size), target).backward()
    F.cross_entropy(ours(idx[:, :S]).reshape(-1, cfg.vocab_size), target).backward()
    theirs = {k.removeprefix("backbone.").replace("lm_head", "head"): p.grad for k, p in off.named_parameters()}
    for name, p in ours.named_parameters():
        grads = _worst(grads, _diff(p.grad, theirs[name]))
    return dict(dtype=str(dtype).removeprefix("torch."), forward=fwd, generation=gen, gradients=grads,
                lengths=list(lengths), generation_steps=gen_steps, gradient_length=S, config=CONFIG)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    p = argparse.ArgumentParser(prog="python -m xlstm_edu.large_oracle", description=__doc__.split("\n\n")[0])
    p.add_argument("--json", default=None, help="also write the figures here (e.g. results/large_equality.json)")
    a = p.parse_args(argv)
    if a.json and os.path.isdir(a.json):
        p.error(f"--json {a.json} is a folder; expected a file path")
    try:
        import xlstm  # noqa: F401
    except ImportError:
        print("error: the official package xlstm is not installed (pip install xlstm==2.0.6)", file=sys.stderr)
        return 2
    from xlstm_edu.outfiles import code_version

    res = {"command": "python -m xlstm_edu.large_oracle " + " ".join(argv), "commit": code_version(),
           "xlstm": importlib.metadata.version("xlstm"),
           "torch": torch.__version__, "loadavg": [round(x, 2) for x in os.getloadavg()],
           "results": [compare_with_official(dt) for dt in (torch.float32, torch.float64)]}
    for r in res["results"]:
        print(f"{r['dtype']:8s} " + "; ".join(f"{k}: max abs {r[k]['max_abs']:.1e}, max rel {r[k]['max_rel']:.1e}"
                                               for k in ("forward", "generation", "gradients")))
    if a.json:
        os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
        with open(a.json, "w") as fh:
            json.dump(res, fh, indent=1)
        print(f"wrote {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
