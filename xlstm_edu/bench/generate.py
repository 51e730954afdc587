"""Generation cost: time per generated token and bytes of state, at growing positions in the text.

    python -m xlstm_edu.bench generate [--json PATH] [--update-readme] [--positions 64,256,1024,4096,16384]
                                       [--repeats 5]

For every model and every position P, the model first reads P tokens (``prefill``), then generates ``--tokens``
tokens one ``step`` at a time (greedy); the time of those steps divided by their number is the time per token at
position P. Every repeat measures every (model, position) pair once, in turn (interleaved, so machine noise hits
all of them alike); the table reports medians. One torch thread unless ``--threads`` says otherwise.

Models, at the sizes of one preset of ``xlstm_edu.presets`` (``cpu-small``: about 1M parameters each):

* ``xlstm`` (xLSTM[1:1]) and ``mlstm`` (mLSTM only): the state is per block a conv buffer and (C, n, m) or
  (h, c, n, m); it does not grow, and a step costs the same at every position.
* ``gpt`` with its key/value cache (``GPT.prefill``/``GPT.step``): a step attends over all P cached positions
  and the cache holds 2 · blocks · P · d numbers. Its positional table is made long enough for the largest
  position (that adds parameters to its embedding only). To keep the benchmark short, the cache at position P
  holds the real keys and values of the first min(P, 256) tokens repeated up to length P: the cost of a step
  depends on the cache's length, not on what is in it.
* ``gpt-window``: the same GPT with the preset's positional table (its training length); past it the GPT
  recomputes a sliding window of that many tokens at every step (see ``xlstm_edu.nn.baselines``).
* ``lstm``: ``torch.nn.LSTM``'s (h, c).

``state_bytes`` is what the state holds at position P: every tensor of the xLSTM's and LSTM's state, the filled
part of GPT's cache plus its token window. Positions whose GPT cache would not fit in half the available memory
are skipped. The summary checks the targets of the course: the xLSTM's time per token at 4096 within 1.2x of
its time at 64, its state independent of the position, and the position where it overtakes GPT's KV cache.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from xlstm_edu.outfiles import check_output_file, replace_marked_block

MODELS = ("xlstm", "mlstm", "gpt", "gpt-window", "lstm")
README_BEGIN = ("<!-- bench-generate:begin (python -m xlstm_edu.bench generate --json results/bench_generate.json "
                "--update-readme) -->")
README_END = "<!-- bench-generate:end -->"
GPT_REAL_TOKENS = 256  # the GPT cache holds the real keys/values of this many tokens, repeated up to P


def parse(argv):
    p = argparse.ArgumentParser(prog="python -m xlstm_edu.bench generate", description=__doc__.split("\n\n")[0])
    p.add_argument("--json", metavar="PATH", help="also write the results (rows + header) as JSON to PATH")
    p.add_argument("--positions", default="64,256,1024,4096,16384", help="comma-separated positions")
    p.add_argument("--models", default=",".join(MODELS), help=f"comma-separated subset of {','.join(MODELS)}")
    p.add_argument("--preset", default="cpu-small", help="model sizes from this preset (default cpu-small)")
    p.add_argument("--tokens", type=int, default=16, help="generated tokens per measurement (default 16)")
    p.add_argument("--repeats", type=int, default=5, help="interleaved repeats (median reported; default 5)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--vocab-size", type=int, default=65)
    p.add_argument("--update-readme", action="store_true", help="rewrite the README's table from the result")
    a = p.parse_args(argv)
    for name in ("tokens", "repeats", "threads", "vocab_size"):
        if getattr(a, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(a, name)}")
    try:
        a.positions = sorted({int(x) for x in a.positions.split(",") if x.strip()})
    except ValueError:
        p.error(f"--positions: expected comma-separated integers, got {a.positions!r}")
    if not a.positions or a.positions[0] < 1:
        p.error(f"--positions: expected integers >= 1, got {a.positions}")
    a.models = [m.strip() for m in a.models.split(",") if m.strip()]
    bad = [m for m in a.models if m not in MODELS]
    if bad or not a.models:
        p.error(f"--models: unknown or no model(s) {bad}; choose from {list(MODELS)}")
    from xlstm_edu.presets import PRESETS

    if a.preset not in PRESETS:
        p.error(f"--preset: expected one of {list(PRESETS)}, got {a.preset!r}")
    return a




def provenance(argv) -> dict:
    """The header every result file carries: command, code version, load average, threads, versions, date."""
    from xlstm_edu.outfiles import code_version

    return {"command": "python -m xlstm_edu.bench generate " + " ".join(argv), "commit": code_version(),
            "load_average_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
            "threads": torch.get_num_threads(), "torch": torch.__version__,
            "machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
            "date": time.strftime("%Y-%m-%d %H:%M:%S %z")}


def mem_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def build(kind: str, a, max_position: int):
    """The model of ``kind`` at the preset's size, in eval mode."""
    from xlstm_edu.models import build_model
    from xlstm_edu.presets import get_preset

    preset = get_preset(a.preset)
    base = "gpt" if kind == "gpt-window" else kind
    ctx = preset["context_length"]
    if kind == "gpt":  # a positional table long enough for every measured position (and the generated tokens)
        ctx = max(ctx, max_position + a.tokens + 1)
    torch.manual_seed(0)
    return build_model(base, a.vocab_size, ctx, **preset["models"][base]).eval()


@torch.no_grad()
def state_at(model, kind: str, P: int, a, g: torch.Generator):
    """(logits of the last read token (1, V), the state after reading P tokens)."""
    if kind != "gpt":
        idx = torch.randint(0, a.vocab_size, (1, P), generator=g)
        if kind == "gpt-window" and P > model.cfg.context_length:  # the window: only the last tokens matter
            logits, state = model.prefill(idx[:, -model.cfg.context_length:])
            state["seen"] = P  # past the table: the next step recomputes the window, no cache is kept
            state["caches"] = [{"k": None, "v": None, "len": 0, "max_len": model.cfg.context_length}
                               for _ in state["caches"]]
        else:
            logits, state = model.prefill(idx)
        return logits[:, -1], state
    n = min(P, GPT_REAL_TOKENS)
    idx = torch.randint(0, a.vocab_size, (1, n), generator=g)
    logits, state = model.prefill(idx)
    reps = -(-P // n)
    for c in state["caches"]:  # the real keys/values, repeated to length P, in a buffer with room for the steps
        for key in ("k", "v"):
            real = c[key][:, :, :n]
            buf = real.new_empty(*real.shape[:2], P + a.tokens, real.shape[3])
            buf[:, :, :P] = real.repeat(1, 1, reps, 1)[:, :, :P]
            c[key] = buf
        c["len"] = P
    state["seen"] = P
    state["tokens"] = idx.repeat(1, reps)[:, :P]
    return logits[:, -1], state


def time_steps(model, logits, state, n: int) -> float:
    """Seconds per token for ``n`` greedy steps from ``state`` (the state itself is not changed for the xLSTM and
    the LSTM; GPT's steps write into the cache's spare room, which the next measurement overwrites)."""
    with torch.no_grad():
        t0 = time.perf_counter()
        for _ in range(n):
            logits, state = model.step(logits.argmax(-1), state)
        return (time.perf_counter() - t0) / n


def crossover(rows, fast: str, slow: str = "gpt"):
    """Where ``fast`` (constant per token) overtakes ``slow`` (growing with P): the first measured position
    where it is faster, and the position where a straight-line fit of ``slow``'s time meets ``fast``'s median."""
    f = {r["position"]: r["ms_per_token"] for r in rows if r["model"] == fast}
    s = {r["position"]: r["ms_per_token"] for r in rows if r["model"] == slow}
    both = sorted(set(f) & set(s))
    if len(both) < 2:
        return None
    first = next((P for P in both if f[P] < s[P]), None)
    xs, ys = both, [s[P] for P in both]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    a0 = my - b * mx
    t_fast = statistics.median(f.values())
    fit = (t_fast - a0) / b if b > 0 else None
    return {"first_measured_position_faster": first,
            "fit_position": None if fit is None else round(max(fit, 0.0)),
            "gpt_fit_ms": {"intercept": round(a0, 4), "per_1000_positions": round(1000 * b, 4)},
            f"{fast}_median_ms": round(t_fast, 4)}


def readme_block(result) -> str:
    """The README's table of a ``--json`` result (None: the line that says there is none yet)."""
    if not result:
        return ("*Not measured yet on a quiet machine: `python -m xlstm_edu.bench generate --json "
                "results/bench_generate.json --update-readme` writes this table.*")
    h, rows = result["header"], result["rows"]
    positions = sorted({r["position"] for r in rows})
    kinds = list(dict.fromkeys(r["model"] for r in rows))
    at = {(r["model"], r["position"]): r for r in rows}
    load = h.get("load_average_start") or []
    lines = [f"`{h['command']}` (commit `{h['commit']}`, torch {h['torch']}, {h['threads']} thread(s), "
             f"median of {h['repeats']} interleaved repeats of {h['tokens_per_measurement']} tokens; load average "
             f"{'/'.join(f'{v:.2f}' for v in load)} at the start). Milliseconds per generated token after the model "
             "has read P tokens, and the bytes of its state or cache at P:", "",
             "| model | " + " | ".join(f"P = {P:,}" for P in positions) + " |",
             "|---|" + "---:|" * len(positions)]
    for k in kinds:
        cells = [f"{at[k, P]['ms_per_token']:.2f} ms · {at[k, P]['state_bytes'] / 1024:,.0f} KiB" if (k, P) in at
                 else "skipped" for P in positions]
        lines.append(f"| `{k}` | " + " | ".join(cells) + " |")
    lines.append("")
    for kind, s in result.get("summary", {}).items():
        tr, cx = s["time_ratio"], s.get("overtakes_gpt_kv_cache") or {}
        first, fit = cx.get("first_measured_position_faster"), cx.get("fit_position")
        lines.append(f"- `{kind}`: time per token at P = {tr['positions'][1]:,} / at P = {tr['positions'][0]:,} = "
                     f"{tr['ratio']:.2f}× (target at most 1.2×: {'met' if tr['target_1.2x_met'] else '**not met**'});"
                     f" state {'the same' if s['state_bytes_constant'] else '**not the same**'} at every position; "
                     + (f"faster than GPT's KV cache from P = {first:,} on (measured)" if first is not None
                        else "faster than GPT's KV cache at no measured position")
                     + (f", where a straight-line fit of GPT's time meets it: P ≈ {fit:,}" if fit is not None
                        else "") + ".")
    return "\n".join(lines)


def update_readme(readme, result) -> bool:
    """Replace the text between the markers in ``readme``; False if the markers are missing."""
    return replace_marked_block(readme, README_BEGIN, README_END, readme_block(result))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    a = parse(argv)
    try:
        out = check_output_file(a.json, "--json") if a.json else None
        if a.update_readme:  # checked before any work, like every output
            from xlstm_edu.paths import home

            readme = home() / "README.md"
            if not readme.is_file() or README_BEGIN not in readme.read_text(encoding="utf-8"):
                raise ValueError(f"--update-readme: {readme} has no bench-generate block")
            check_output_file(readme, "--update-readme")
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    torch.set_num_threads(a.threads)
    header = provenance(argv)
    header.update(preset=a.preset, tokens_per_measurement=a.tokens, repeats=a.repeats, vocab_size=a.vocab_size,
                  gpt_cache_note=f"the GPT cache at position P holds the real keys/values of the first "
                                 f"min(P, {GPT_REAL_TOKENS}) tokens, repeated to length P")
    print(f"bench generate: torch {torch.__version__}, {header['machine']}, torch threads = "
          f"{torch.get_num_threads()}, load average {header['load_average_start']}")

    g = torch.Generator().manual_seed(0)
    avail = mem_available()
    models, cases, skipped = {}, [], []
    for kind in a.models:
        model = models[kind] = build(kind, a, max(a.positions))
        for P in a.positions:
            if kind == "gpt" and avail is not None:
                d, L = model.cfg.embedding_dim, model.cfg.num_blocks
                need = 2 * L * (P + a.tokens) * d * 4
                if need > avail / 2:
                    skipped.append(f"gpt at {P}: its cache needs {need / 2**20:.0f} MiB")
                    continue
            logits, state = state_at(model, kind, P, a, g)
            time_steps(model, logits, state, 1)  # warm-up
            cases.append(dict(kind=kind, P=P, logits=logits, state=state, nbytes=model.state_nbytes(state),
                              times=[]))
        print(f"  {kind}: {model.num_params():,} parameters, ready at positions "
              f"{[c['P'] for c in cases if c['kind'] == kind]}", file=sys.stderr, flush=True)
    for s in skipped:
        print(f"skipped {s}")

    for _ in range(a.repeats):
        for c in cases:  # interleaved: every repeat measures every (model, position) once
            c["times"].append(time_steps(models[c["kind"]], c["logits"], c["state"], a.tokens))

    rows = []
    for c in cases:
        m = models[c["kind"]]
        rows.append(dict(model=c["kind"], position=c["P"], ms_per_token=round(1e3 * statistics.median(c["times"]), 4),
                         state_bytes=int(c["nbytes"]), ms_all=[round(1e3 * t, 4) for t in c["times"]],
                         params=m.num_params(), non_embedding_params=m.num_params(non_embedding=True),
                         context_length=m.cfg.context_length))

    print(f"\n{'model':11s} " + " ".join(f"{'P=' + str(P):>20s}" for P in a.positions) + "   (ms/token | state)")
    for kind in a.models:
        cells = []
        for P in a.positions:
            r = next((r for r in rows if r["model"] == kind and r["position"] == P), None)
            cells.append(f"{r['ms_per_token']:8.3f} | {r['state_bytes'] / 1024:7.1f}K" if r else "skipped")
        print(f"{kind:11s} " + " ".join(f"{c:>20s}" for c in cells))

    summary = {}
    for kind in ("xlstm", "mlstm"):
        mine = {r["position"]: r for r in rows if r["model"] == kind}
        if not mine:
            continue
        s = summary[kind] = {"state_bytes_constant": len({r["state_bytes"] for r in mine.values()}) == 1}
        lo, hi = min(mine), (4096 if 4096 in mine else max(mine))
        ratio = round(mine[hi]["ms_per_token"] / mine[lo]["ms_per_token"], 3)
        s["time_ratio"] = {"positions": [lo, hi], "ratio": ratio, "target_1.2x_met": ratio <= 1.2}
        line = (f"{kind}: time per token at {hi} / at {lo} = {ratio:.2f}x (target <= 1.2x: "
                f"{'met' if ratio <= 1.2 else 'NOT met'}); state "
                f"{'the same' if s['state_bytes_constant'] else 'NOT the same'} at every position")
        cx = crossover(rows, kind)
        if cx:
            s["overtakes_gpt_kv_cache"] = cx
            first, fit = cx["first_measured_position_faster"], cx["fit_position"]
            line += (f"; faster than GPT's KV cache from P = {first} on (measured)" if first is not None
                     else "; not faster than GPT's KV cache at any measured position")
            line += f"; straight-line fit of GPT's time: P ≈ {fit}" if fit is not None else ""
        print(line)
    header["load_average_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    result = {"header": header, "rows": rows, "summary": summary, "skipped": skipped}
    if out is not None:
        out.write_text(json.dumps(result, indent=1))
        print(f"wrote {out}")
    if a.update_readme:
        update_readme(readme, result)
        print(f"updated the generation table in {readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
