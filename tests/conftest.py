import os

# On a shared 2-core machine torch with several threads can run 100x slower: one thread in tests.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

try:
    import torch

    torch.set_num_threads(1)
except ImportError:  # the numpy tests do not need torch
    pass
