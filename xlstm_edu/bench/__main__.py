"""python -m xlstm_edu.bench {numpy,lm} [options]: see each benchmark's --help."""

import importlib
import sys

BENCHMARKS = {
    "numpy": ("xlstm_edu.bench.numpy_mlstm", "numpy mLSTM forms vs the official torch kernels (forward)"),
    "lm": ("xlstm_edu.bench.lm", "training tokens/s of our models, GPT, LSTM and the official xLSTM package"),
    "generate": ("xlstm_edu.bench.generate", "time per generated token and state bytes vs position (KV cache)"),
}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in BENCHMARKS:
        lines = "\n".join(f"  {k:6s} {v[1]}" for k, v in BENCHMARKS.items())
        print(f"usage: python -m xlstm_edu.bench {{{','.join(BENCHMARKS)}}} [options]\n{lines}", file=sys.stderr)
        return 2
    return importlib.import_module(BENCHMARKS[argv[0]][0]).main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
