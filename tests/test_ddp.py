"""The trainer's command line under ``torchrun --nproc_per_node=2`` (DistributedDataParallel, gloo on CPU):
both processes must end with identical weights although each trained on different batches."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]

WORKER = """
import os, sys, torch
torch.set_num_threads(1)
from xlstm_edu import runs
captured = {}
_train = runs.train
def spy(model, get_batch, cfg, *a, **k):
    captured["batch0"] = get_batch("train", 0)[0]
    r = _train(model, get_batch, cfg, *a, **k)
    captured["params"] = {n: p.detach().clone() for n, p in r["model"].state_dict().items()}
    captured["world"] = torch.distributed.get_world_size()
    return r
runs.train = spy
rc = runs.main(sys.argv[1:])
rank = int(os.environ["RANK"])
torch.save(captured, os.path.join(os.environ["DDP_TEST_OUT"], f"rank{rank}.pt"))
sys.exit(rc)
"""


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed not available")
def test_two_cpu_processes_stay_in_sync(tmp_path):
    text = ("ROMEO:\nBut soft, what light through yonder window breaks?\n\n" * 40)
    (tmp_path / "text.txt").write_text(text, encoding="utf-8")
    (tmp_path / "worker.py").write_text(WORKER)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "DDP_TEST_OUT": str(tmp_path), "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(tmp_path / "worker.py"), "--model", "gpt", "--preset", "cpu-tiny", "--out", str(tmp_path / "run"),
           "--corpus", str(tmp_path / "text.txt"), "--data-dir", str(tmp_path), "--max-iters", "4",
           "--eval_interval", "2", "--eval_iters", "1", "--embedding_dim", "16", "--context_length", "16",
           "--dropout", "0.1", "--device", "cpu", "--no-progress"]
    r = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=90)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    a, b = (torch.load(tmp_path / f"rank{i}.pt", weights_only=True) for i in (0, 1))
    assert a["world"] == b["world"] == 2
    assert not torch.equal(a["batch0"], b["batch0"])  # each process trains on its own batches...
    for name in a["params"]:  # ...and the averaged gradients keep the weights identical
        assert torch.equal(a["params"][name], b["params"][name]), name
    assert (tmp_path / "run" / "ckpt.pt").exists()
    from xlstm_edu.checkpoint import load_checkpoint, read_metrics

    assert [m["step"] for m in read_metrics(tmp_path / "run")] == [0, 2, 4]
    # rank 0 wrote one checkpoint holding both processes' RNG states; tokens count both processes' batches
    ck = load_checkpoint(tmp_path / "run")
    assert len(ck["rng"]) == 2 and ck["step"] == 4 and ck["history"][-1]["tokens"] == 4 * 2 * 16 * 16
