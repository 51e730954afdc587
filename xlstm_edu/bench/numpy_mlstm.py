"""Forward time and peak memory of the numpy mLSTM forms next to the official torch kernels, on one CPU.

    python -m xlstm_edu.bench numpy [--lengths 256,512,1024,2048,4096,8192] [--repeats 5] [--threads 1]
                                    [--chunk-size 64] [--max-parallel 4096] [--dtype float32] [--no-rss]

Shapes: B = 1, NH = 4, DK = DV = 64 (override with --heads, --head-dim), gates i ~ N(0, 1), f ~ N(3, 1).
Forms: numpy ``mlstm_recurrent``, ``mlstm_parallel``, ``mlstm_chunkwise``; official ``mlstm_kernels``
``parallel.native.fw.mlstm_parallel_fw`` and ``chunkwise.native.fw.mlstm_chunkwise_fw`` (torch, no_grad).

* Time: after one warm-up call of every form, --repeats rounds; each round times every form once, in turn
  (interleaved, so load from other processes hits all forms alike), and the table shows the median over the
  rounds. A call faster than 20 ms is repeated within a round until the round spends ≥ 20 ms on it (the mean
  per call counts), so that timer resolution and scheduling jitter matter less. Forms whose warm-up call took
  more than 1 s (the recurrent form at long S, the parallel forms at S ≥ 4096) are timed in --slow-repeats
  rounds only.
* Memory, two methods:
  - ``np … (tm)``: tracemalloc's peak of the bytes numpy allocates during one call (inputs excluded);
  - ``(rss)``: the increase of the peak resident set size (VmHWM, reset through /proc/self/clear_refs) during one
    call in a fresh Python process, inputs already in place, after one warm-up call on a tiny input. This is the only method that sees torch's CPU
    allocations, so the torch columns and the numpy chunkwise ``(rss)`` column use it (same method, fair
    ratio). Linux only; elsewhere the rss columns read n/a.
* The parallel forms are O(S²) in memory: above --max-parallel they are skipped (and the table says so).

Threads: numpy's BLAS reads its thread count when it is loaded, so ``--threads T`` re-runs the benchmark in a
child process with OMP_NUM_THREADS = OPENBLAS_NUM_THREADS = MKL_NUM_THREADS = T; torch gets
``torch.set_num_threads(T)``. On a shared machine the numbers are noisy: compare ratios from one run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import tracemalloc

_CHILD = "XLSTM_EDU_BENCH_THREADS_SET"
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m xlstm_edu.bench numpy", description=__doc__.split("\n\n")[0])
    p.add_argument("--lengths", default="256,512,1024,2048,4096,8192", help="comma-separated sequence lengths S")
    p.add_argument("--repeats", type=int, default=5, help="timed rounds per length (median reported, default 5)")
    p.add_argument("--slow-repeats", type=int, default=1,
                   help="rounds for forms whose warm-up call took > 1 s (default 1)")
    p.add_argument("--threads", type=int, default=None,
                   help="threads for numpy's BLAS and torch (default: OMP_NUM_THREADS, which the bench sets to 1)")
    p.add_argument("--chunk-size", type=int, default=64, help="chunk size of both chunkwise forms (default 64)")
    p.add_argument("--max-parallel", type=int, default=4096,
                   help="largest S for the O(S²)-memory parallel forms (default 4096)")
    p.add_argument("--max-recurrent", type=int, default=8192, help="largest S for the numpy recurrent form")
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--head-dim", type=int, default=64)
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--no-rss", action="store_true", help="skip the fresh-process memory measurements")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    a = p.parse_args(argv)
    try:
        a.lengths = [int(s) for s in a.lengths.split(",") if s.strip()]
    except ValueError:
        p.error(f"--lengths: expected comma-separated integers, got {a.lengths!r}")
    for name in ("repeats", "slow_repeats", "chunk_size", "heads", "head_dim"):
        if getattr(a, name) < 1:
            p.error(f"--{name.replace('_', '-')}: expected an integer >= 1, got {getattr(a, name)}")
    if a.threads is not None and a.threads < 1:
        p.error(f"--threads: expected an integer >= 1, got {a.threads}")
    if not a.lengths or min(a.lengths) < 1:
        p.error(f"--lengths: expected positive integers, got {a.lengths}")
    if a.json is not None:  # before minutes of timing, not after
        from xlstm_edu.outfiles import check_output_file

        try:
            check_output_file(a.json, "--json")
        except ValueError as e:
            p.error(str(e))
    return a


def make_inputs(S, heads, head_dim, dtype, seed=0):
    import numpy as np

    rng = np.random.default_rng(seed)
    q, k, v = (rng.standard_normal((1, heads, S, head_dim)).astype(dtype) for _ in range(3))
    i_pre = rng.standard_normal((1, heads, S)).astype(dtype)
    f_pre = (3.0 + rng.standard_normal((1, heads, S))).astype(dtype)
    return q, k, v, i_pre, f_pre


def forms(chunk_size):
    """name -> (library, builder(args) -> zero-argument callable)."""
    import torch

    from mlstm_kernels.torch.chunkwise.native.fw import mlstm_chunkwise_fw
    from mlstm_kernels.torch.parallel.native.fw import mlstm_parallel_fw
    from xlstm_edu.np import mlstm_chunkwise, mlstm_parallel, mlstm_recurrent

    def torch_call(fn, **kw):
        def build(args):
            ts = [torch.from_numpy(a) for a in args]

            def run():
                with torch.no_grad():
                    return fn(*ts, **kw)[0]
            return run
        return build

    return {
        "np recurrent": ("numpy", lambda args: lambda: mlstm_recurrent(*args)[0]),
        "np parallel": ("numpy", lambda args: lambda: mlstm_parallel(*args)),
        "np chunkwise": ("numpy", lambda args: lambda: mlstm_chunkwise(*args, chunk_size=chunk_size)[0]),
        "torch parallel": ("torch", torch_call(mlstm_parallel_fw)),
        "torch chunkwise": ("torch", torch_call(mlstm_chunkwise_fw, chunk_size=chunk_size)),
    }


def skip_reason(name, S, a):
    if "parallel" in name and S > a.max_parallel:
        gb = 2 * a.heads * S * S * (4 if a.dtype == "float32" else 8) / 1e9
        return f"skipped: S > --max-parallel (S² memory, ≥{gb:.1f} GB)"
    if name == "np recurrent" and S > a.max_recurrent:
        return "skipped: S > --max-recurrent"
    if name == "torch chunkwise" and S % a.chunk_size:
        return "skipped: official kernel needs S % chunk_size == 0"
    return None


def time_once(fn, inner):
    """Mean seconds per call over ``inner`` back-to-back calls."""
    t0 = time.perf_counter()
    for _ in range(inner):
        fn()
    return (time.perf_counter() - t0) / inner


def time_interleaved(fns: dict, repeats: int, slow_repeats: int):
    """Warm up every form, then time them in interleaved rounds; returns name -> list of seconds per call."""
    warm = {name: time_once(fn, 1) for name, fn in fns.items()}
    inner = {name: max(1, int(0.02 / max(w, 1e-6))) for name, w in warm.items()}
    times = {name: [] for name in fns}
    for r in range(repeats):
        for name, fn in fns.items():
            if warm[name] > 1.0 and r >= slow_repeats:
                continue
            times[name].append(time_once(fn, inner[name]))
    return times


def tracemalloc_peak(fn):
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    out = fn()
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    del out
    return peak


def _read_status(key):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def rss_child(name, S, heads, head_dim, dtype, chunk_size, threads):
    """Run in a fresh process: print the peak-RSS increase (bytes) during one call of form ``name``."""
    import gc

    if threads:
        import torch

        torch.set_num_threads(threads)
    build = forms(chunk_size)[name][1]
    build(make_inputs(chunk_size, heads, head_dim, dtype))()  # one-time set-up (lazy imports, ...) on a tiny input
    args = make_inputs(S, heads, head_dim, dtype)
    fn = build(args)
    gc.collect()
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # reset VmHWM, the peak resident set size, to the current RSS
    base = _read_status("VmRSS")
    out = fn()
    peak = _read_status("VmHWM")
    del out
    print(json.dumps({"rss_peak_bytes": peak - base}))


def rss_peak(name, S, a):
    if a.no_rss or not os.path.exists("/proc/self/clear_refs"):
        return None
    code = ("from xlstm_edu.bench.numpy_mlstm import rss_child; "
            f"rss_child({name!r}, {S}, {a.heads}, {a.head_dim}, {a.dtype!r}, {a.chunk_size}, {a.threads})")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ.copy())
    for line in reversed(r.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)["rss_peak_bytes"]
    print(f"  (rss measurement of {name} at S={S} failed: {r.stderr.strip()[-300:]})", file=sys.stderr)
    return None


def fmt_ms(x):
    return "—" if x is None else (f"{x * 1e3:9.1f}" if x < 100 else f"{x * 1e3:9.0f}")


def fmt_mb(x):
    return "—" if x is None else f"{x / 2**20:9.1f}"


def fmt_ratio(a, b):
    return "—" if a is None or b is None or b == 0 else f"{a / b:6.2f}×"


def run(a):
    import numpy as np
    import torch

    threads = a.threads or int(os.environ.get("OMP_NUM_THREADS", "0") or 0) or None
    if threads:
        torch.set_num_threads(threads)
    dtype = np.float32 if a.dtype == "float32" else np.float64
    F = forms(a.chunk_size)
    names = list(F)
    print("mLSTM forward: numpy (xlstm_edu.np) vs official torch kernels (mlstm_kernels 'native'), one CPU")
    print(f"B=1, NH={a.heads}, DK=DV={a.head_dim}, {a.dtype}, chunk size {a.chunk_size}, "
          f"median of {a.repeats} interleaved rounds ({a.slow_repeats} for calls slower than 1 s)")
    print(f"threads: numpy BLAS via " + ", ".join(f"{v}={os.environ.get(v, 'unset')}" for v in _THREAD_VARS)
          + f"; torch.get_num_threads()={torch.get_num_threads()}")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs, "
          f"numpy {np.__version__}, torch {torch.__version__}, python {platform.python_version()}")
    print("memory: np (tm) = tracemalloc peak during one call; (rss) = peak-RSS increase during one call in a fresh "
          "process (the only method that sees torch's allocations)\n")

    results = []
    for S in a.lengths:
        args = make_inputs(S, a.heads, a.head_dim, dtype)
        row = {"S": S, "time_s": {}, "times_s": {}, "mem_tm_bytes": {}, "mem_rss_bytes": {}, "skipped": {}}
        fns = {}
        for name in names:
            why = skip_reason(name, S, a)
            if why:
                row["skipped"][name] = why
            else:
                fns[name] = F[name][1](args)
        times = time_interleaved(fns, a.repeats, a.slow_repeats)
        outs = {}
        for name, fn in fns.items():
            row["time_s"][name], row["times_s"][name] = statistics.median(times[name]), times[name]
            outs[name] = np.asarray(fn())
            if F[name][0] == "numpy":
                row["mem_tm_bytes"][name] = tracemalloc_peak(fn)
            if name in ("np chunkwise", "torch chunkwise", "torch parallel"):
                row["mem_rss_bytes"][name] = rss_peak(name, S, a)
            print(f"  S={S:5d} {name:16s} {row['time_s'][name] * 1e3:10.1f} ms  ({len(times[name])} rounds)",
                  file=sys.stderr, flush=True)
        # the forms must compute the same thing (parallel differs from the rest by the eps/m_0 effect, ~1e-6)
        ref = outs.get("np chunkwise")
        row["max_rel_diff_vs_np_chunkwise"] = {
            n: float(np.max(np.abs(o - ref)) / np.max(np.abs(ref))) for n, o in outs.items() if ref is not None
        }
        results.append(row)

    # ---- tables
    def cell_t(row, name):
        return row["skipped"].get(name) and "skip" or fmt_ms(row["time_s"].get(name))

    head = f"{'S':>6} |" + "|".join(f"{n:>16} " for n in names)
    print("time per forward call [ms]")
    print(head + f"| {'chunk np/torch':>14} | {'par np/torch':>12}")
    print("-" * len(head) + "-" * 34)
    for row in results:
        t = row["time_s"]
        print(f"{row['S']:>6} |" + "|".join(f"{cell_t(row, n):>16} " for n in names)
              + f"| {fmt_ratio(t.get('np chunkwise'), t.get('torch chunkwise')):>14} "
              f"| {fmt_ratio(t.get('np parallel'), t.get('torch parallel')):>12}")

    mem_cols = [("np recurrent", "tm"), ("np parallel", "tm"), ("np chunkwise", "tm"), ("np chunkwise", "rss"),
                ("torch parallel", "rss"), ("torch chunkwise", "rss")]
    print("\npeak memory during one call [MiB]")
    head = f"{'S':>6} |" + "|".join(f"{n + ' (' + m + ')':>20} " for n, m in mem_cols)
    print(head + f"| {'chunk np/torch (rss)':>20}")
    print("-" * len(head) + "-" * 23)
    for row in results:
        cells = []
        for n, m in mem_cols:
            if n in row["skipped"]:
                cells.append("skip")
            else:
                cells.append(fmt_mb((row["mem_tm_bytes"] if m == "tm" else row["mem_rss_bytes"]).get(n)))
        r = row["mem_rss_bytes"]
        print(f"{row['S']:>6} |" + "|".join(f"{c:>20} " for c in cells)
              + f"| {fmt_ratio(r.get('np chunkwise'), r.get('torch chunkwise')):>20}")

    notes = sorted({f"{n}: {w}" for row in results for n, w in row["skipped"].items()})
    if notes:
        print("\nskip: " + "; ".join(notes))
    per_token = [(row["S"], row["mem_tm_bytes"]["np chunkwise"] / row["S"]) for row in results
                 if "np chunkwise" in row["mem_tm_bytes"]]
    if len(per_token) > 1:
        print("numpy chunkwise memory per token (tracemalloc): "
              + ", ".join(f"S={S}: {b / 1024:.1f} KiB" for S, b in per_token)
              + "  (flat = linear in S)")
    worst = max((d for row in results for n, d in row["max_rel_diff_vs_np_chunkwise"].items()
                 if "parallel" not in n), default=0.0)
    worst_p = max((d for row in results for n, d in row["max_rel_diff_vs_np_chunkwise"].items()
                   if "parallel" in n), default=0.0)
    print(f"agreement with np chunkwise (max |Δh| / max |h|): recurrent & torch chunkwise {worst:.1e}, "
          f"parallel forms {worst_p:.1e} (eps/m_0 effect plus {a.dtype} round-off)")
    if a.json:
        from xlstm_edu.outfiles import write_json_atomic

        write_json_atomic(a.json, dict(args=vars(a), results=results, torch_threads=torch.get_num_threads(),
                                       env={v: os.environ.get(v) for v in _THREAD_VARS},
                                       load_average=list(os.getloadavg()) if hasattr(os, "getloadavg") else None))
    return 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    a = parse_args(argv)
    if a.threads is not None and os.environ.get(_CHILD) != str(a.threads):
        # numpy's BLAS fixed its thread count when it was imported: start again with the variables set
        env = os.environ.copy()
        env.update({v: str(a.threads) for v in _THREAD_VARS})
        env[_CHILD] = str(a.threads)
        return subprocess.call([sys.executable, "-m", "xlstm_edu.bench", "numpy", *argv], env=env)
    return run(a)


if __name__ == "__main__":
    sys.exit(main())
