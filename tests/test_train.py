"""The trainer: bit-exact resume on CPU, metrics and checkpoint contents, the command line and its errors, and
the sampler."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from xlstm_edu.data import Corpus, make_get_batch
from xlstm_edu.models import build_model
from xlstm_edu.sample import generate, load_run, sample_text
from xlstm_edu.train import TrainConfig, load_checkpoint, lr_at, main, read_metrics, train

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]
TEXT = ("ROMEO:\nBut soft, what light through yonder window breaks?\n\n"
        "JULIET:\nO Romeo, Romeo, wherefore art thou Romeo?\n\n") * 30


def toy_corpus():
    return Corpus("toy", TEXT, int(len(TEXT) * 0.9), "".join(sorted(set(TEXT))))


def make(kind="gpt", dropout=0.1):
    torch.manual_seed(0)
    c = toy_corpus()
    kw = dict(embedding_dim=16, num_blocks=2, dropout=dropout)
    if kind != "lstm":
        kw["num_heads"] = 2
    return build_model(kind, c.vocab_size, 16, **kw), make_get_batch(c, 16, 4, seed=5)


def cfg(**kw):
    base = dict(max_iters=8, lr=1e-2, min_lr=1e-3, warmup_iters=2, lr_decay_iters=8, eval_interval=4,
                eval_iters=2, device="cpu", batch_size=4, context_length=16)
    return TrainConfig(**{**base, **kw})


@pytest.mark.parametrize("kind", ["gpt", "lstm", "xlstm"])
def test_resume_is_bit_exact(tmp_path, kind):
    """2N steps in one go == N steps, then a fresh process-like restart resumed for N more (dropout on)."""
    model, gb = make(kind)
    full = train(model, gb, cfg(), tmp_path / "full", progress=False)
    model, gb = make(kind)
    first = train(model, gb, cfg(max_iters=4), tmp_path / "split", progress=False)
    torch.manual_seed(123)  # a different global RNG and fresh weights: the checkpoint must restore everything
    model, gb = make(kind)
    second = train(model, gb, cfg(), tmp_path / "split", resume=True, progress=False)
    assert first["losses"] + second["losses"] == full["losses"]
    assert len(full["losses"]) == 8 and len(second["losses"]) == 4
    assert read_metrics(tmp_path / "split") == [
        {**r, "elapsed_s": a["elapsed_s"], "train_time_s": a["train_time_s"], "tokens_per_s": a["tokens_per_s"]}
        for r, a in zip(full["history"], read_metrics(tmp_path / "split"))]
    for a, b in zip(full["model"].state_dict().values(), second["model"].state_dict().values()):
        assert torch.equal(a, b)


def test_metrics_and_checkpoint_contents(tmp_path):
    model, gb = make("gpt")
    res = train(model, gb, cfg(), tmp_path, meta={"note": "x"}, progress=False)
    recs = read_metrics(tmp_path)
    assert [r["step"] for r in recs] == [0, 4, 8]
    for r in recs:
        for key in ("step", "train_loss", "val_loss", "tokens_per_s", "elapsed_s", "train_time_s", "lr"):
            assert key in r
    assert recs[0]["tokens_per_s"] is None and recs[-1]["tokens_per_s"] > 0
    # an untrained model predicts ~uniformly: loss ~ ln(V)
    assert abs(recs[0]["val_loss"] - math.log(toy_corpus().vocab_size)) < 0.2
    assert recs[-1]["train_loss"] < recs[0]["train_loss"]
    ck = load_checkpoint(tmp_path)
    assert {"model", "optimizer", "scheduler", "rng", "step", "train_config", "meta"} <= set(ck)
    assert ck["step"] == 8 and ck["meta"] == {"note": "x"} and ck["train_config"]["max_iters"] == 8
    assert res["step"] == 8


def test_lr_schedule():
    c = cfg(max_iters=100, lr=1.0, min_lr=0.1, warmup_iters=10, lr_decay_iters=None)
    assert lr_at(0, c) == pytest.approx(1 / 11)
    assert lr_at(9, c) == pytest.approx(10 / 11)
    assert lr_at(10, c) == pytest.approx(1.0)
    assert lr_at(55, c) == pytest.approx(0.55)  # half-way through the cosine: (lr + min_lr) / 2
    assert lr_at(100, c) == pytest.approx(0.1) and lr_at(500, c) == pytest.approx(0.1)


def test_time_budget_stops_early(tmp_path):
    model, gb = make("gpt")
    res = train(model, gb, cfg(max_iters=10_000, time_budget_s=0.0), tmp_path, progress=False)
    assert res["step"] == 0 and len(res["history"]) == 1


def test_custom_loss_and_eval_fn():
    """The hooks the formal-language chapter uses: a masked loss (targets -100 ignored) and extra metrics."""
    model, gb = make("lstm", dropout=0.0)

    def last_token_only(split, step):
        x, y = gb(split, step)
        y = y.clone()
        y[:, :-1] = -100
        return x, y

    calls = []

    def eval_fn(m, step):
        calls.append((step, m.training))
        return {"answer": 42.0}

    res = train(model, last_token_only, cfg(max_iters=4, eval_interval=2), eval_fn=eval_fn, progress=False)
    assert [r["answer"] for r in res["history"]] == [42.0] * 3
    assert calls == [(0, False), (2, False), (4, False)]


def test_bad_config():
    with pytest.raises(ValueError, match="max_iters"):
        TrainConfig(max_iters=0)
    with pytest.raises(ValueError, match="min_lr"):
        TrainConfig(lr=1e-3, min_lr=1e-2)


# ------------------------------------------------------------------------------------------ command line
def run_cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "xlstm_edu.train", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})


def test_cli_train_resume_and_sample(tmp_path):
    corpus = tmp_path / "text.txt"
    corpus.write_text(TEXT, encoding="utf-8")
    out = tmp_path / "run"
    common = ["--corpus", str(corpus), "--data-dir", str(tmp_path), "--no-progress"]
    r = run_cli("--model", "lstm", "--preset", "cpu-tiny", "--out", str(out), "--max-iters", "4",
                "--eval_interval", "2", "--eval_iters", "1", "--lr_decay_iters", "6", "--embedding_dim", "16",
                "--context_length", "16", *common)
    assert r.returncode == 0, r.stderr
    assert [m["step"] for m in read_metrics(out)] == [0, 2, 4]
    r = run_cli("--out", str(out), "--resume", "--max-iters", "6", *common)
    assert r.returncode == 0, r.stderr
    assert [m["step"] for m in read_metrics(out)] == [0, 2, 4, 6]
    cfg_json = json.loads((out / "config.json").read_text())
    assert cfg_json["kind"] == "lstm" and cfg_json["model_config"]["embedding_dim"] == 16
    # the sampler: prompt + N characters, deterministic for a seed
    model, chars, meta = load_run(out)
    s1 = sample_text(model, chars, "ROMEO:", 30, seed=1)
    assert s1.startswith("ROMEO:") and len(s1) == 36 and set(s1) <= set(chars)
    assert sample_text(model, chars, "ROMEO:", 30, seed=1) == s1
    r = subprocess.run([sys.executable, "-m", "xlstm_edu.sample", "--run", str(out), "--prompt", "ROMEO:",
                        "--tokens", "20", "--top-k", "3"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith("ROMEO:"), r.stderr


def test_cli_errors(tmp_path):
    corpus = tmp_path / "text.txt"
    corpus.write_text(TEXT, encoding="utf-8")
    common = ["--data-dir", str(tmp_path), "--no-progress", "--max-iters", "1"]
    (tmp_path / "empty.txt").write_text("", encoding="utf-8")
    assert main(["--model", "gpt", "--preset", "cpu-tiny", "--out", str(tmp_path / "a"), "--corpus",
                 str(tmp_path / "empty.txt"), *common]) == 2
    assert main(["--model", "gpt", "--preset", "cpu-tiny", "--out", str(tmp_path / "a"), "--corpus",
                 str(tmp_path / "nope.txt"), *common]) == 2
    # context longer than the data
    assert main(["--model", "gpt", "--preset", "cpu-tiny", "--out", str(tmp_path / "a"), "--corpus", str(corpus),
                 "--context_length", "5000", *common]) == 2
    with pytest.raises(ValueError, match="unknown option --learning_rate.*valid"):
        from xlstm_edu.train import TrainConfig as TC, parse_overrides, _fields
        from xlstm_edu.nn.baselines import GPTConfig
        parse_overrides(["--learning_rate", "1"], _fields(TC), _fields(GPTConfig))
    assert not (tmp_path / "a" / "ckpt.pt").exists()  # nothing was trained


def test_cli_vocab_mismatch_on_resume(tmp_path, capsys):
    corpus = tmp_path / "text.txt"
    corpus.write_text(TEXT, encoding="utf-8")
    out = tmp_path / "run"
    common = ["--data-dir", str(tmp_path), "--no-progress", "--corpus", str(corpus)]
    assert main(["--model", "gpt", "--preset", "cpu-tiny", "--out", str(out), "--max-iters", "1",
                 "--context_length", "16", "--embedding_dim", "16", "--eval_iters", "1", *common]) == 0
    corpus.write_text(TEXT + "€", encoding="utf-8")  # one more character: the vocabulary changed
    assert main(["--out", str(out), "--resume", "--max-iters", "2", *common]) == 2
    assert "vocabulary mismatch" in capsys.readouterr().err
    assert load_checkpoint(out)["step"] == 1


def test_generate_checks_and_greedy_is_deterministic():
    model, _ = make("gpt", dropout=0.0)
    a = generate(model, [1, 2, 3], 10, temperature=0)
    assert a == generate(model, [1, 2, 3], 10, temperature=0) and len(a) == 10
    with pytest.raises(ValueError, match="prompt"):
        generate(model, [], 5)
    with pytest.raises(ValueError, match="top_k"):
        generate(model, [1], 5, top_k=0)
