"""The long-context (extrapolation) script on a tiny setting: training through the trainer's CLI, evaluation at
several contexts on the same characters, GPT's sliding window, the JSON + PNG with their header."""

import json
import random

import pytest
import torch

from xlstm_edu import longctx
from xlstm_edu.models import build_model

torch.set_num_threads(1)


@pytest.fixture()
def course(tmp_path, monkeypatch):
    random.seed(0)
    words = "the king queen lord love death night day sword crown heart blood".split()
    text = "\n".join(random.choice(["ROMEO:", "JULIET:", "KING:"]) + "\n" + " ".join(random.choices(words, k=8)) + "."
                     for _ in range(1500))
    (tmp_path / "text.txt").write_text(text)
    monkeypatch.setenv("XLSTM_EDU_HOME", str(tmp_path))
    return tmp_path


def test_tiny_run_writes_json_and_png(course, capsys):
    argv = ["--preset", "cpu-tiny", "--models", "xlstm,gpt", "--seeds", "1", "--contexts", "32,64,128",
            "--max-tokens", "512", "--max-iters", "2", "--corpus", str(course / "text.txt"),
            "--eval_interval", "2", "--eval_iters", "1"]
    assert longctx.main(argv) == 0
    out = course / "results" / "long_context.json"
    d = json.loads(out.read_text())
    assert (course / "results" / "long_context.png").stat().st_size > 1000
    h = d["header"]
    assert h["command"].startswith("python -m xlstm_edu.longctx") and "commit" in h and h["threads"] == 1
    assert h["trained_context"] == 64 and h["scored_characters"] == 512
    assert {(r["model"], r["context"]) for r in d["rows"]} == {(m, C) for m in ("xlstm", "gpt") for C in (32, 64, 128)}
    assert all(r["loss"] > 0 and r["trained_context"] == 64 for r in d["rows"])
    assert [c["edges"][-1] for c in d["per_position"]] == [128, 128]
    block = longctx.readme_block(d)  # the README's table: one line per model, every context
    assert "| xlstm | 1 |" in block and "| gpt (sliding window) | 1 |" in block and "C = 128 − C = 32 |" in block
    # a second call reuses the runs (no training) and may evaluate other contexts
    def no_training(*a, **k):
        raise AssertionError("trained again")

    old = longctx.train_run
    longctx.train_run = no_training
    try:
        assert longctx.main(argv[:6] + ["--contexts", "64,128", "--max-tokens", "256",
                                        "--corpus", str(course / "text.txt")]) == 0
    finally:
        longctx.train_run = old
    assert "reusing" in capsys.readouterr().out


def test_output_paths_are_checked_before_any_work(course, monkeypatch, capsys):
    monkeypatch.setattr(longctx, "train_run", lambda *a, **k: pytest.fail("trained before checking the output"))
    assert longctx.main(["--json", str(course), "--models", "xlstm"]) == 2
    assert "is a folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        longctx.main(["--contexts", "100,128"])  # 100 does not divide 128
    with pytest.raises(SystemExit):
        longctx.main(["--models", "xlstm,transformer"])


def test_gpt_sliding_window_logits():
    """Past its table the GPT predicts every character from the window that scores it: windows of ctx moved by
    ctx/2, each scoring its last half; inside the table it is the plain forward pass."""
    torch.manual_seed(0)
    ctx = 8
    model = build_model("gpt", 11, ctx, embedding_dim=16, num_blocks=2, num_heads=2).double().eval()
    x = torch.randint(0, 11, (2, 21))
    got = longctx.gpt_sliding_logits(model, x)
    assert got.shape == (2, 21, 11)
    with torch.no_grad():
        torch.testing.assert_close(got[:, :ctx], model(x[:, :ctx]), rtol=0, atol=1e-12)
        for t in range(ctx, 21):
            end = min(ctx + ((t - ctx) // (ctx // 2) + 1) * (ctx // 2), 21)  # the window that scores t
            ref = model(x[:, end - ctx:end])[:, t - (end - ctx)]
            torch.testing.assert_close(got[:, t], ref, rtol=0, atol=1e-12)
            assert ctx // 2 <= t - (end - ctx) + 1 <= ctx  # between ctx/2 and ctx characters of context


def test_every_context_scores_the_same_characters():
    torch.manual_seed(0)
    val = torch.randint(0, 11, (1000,))
    w = longctx.eval_windows(val, 64, 256)
    assert w.shape == (4, 65)
    starts = [int((val.unfold(0, 65, 1) == row).all(1).nonzero()[0]) for row in w]
    assert starts[0] == 0 and starts[-1] == 1000 - 65 and all(b - a >= 65 for a, b in zip(starts, starts[1:]))
    assert longctx.eval_windows(val, 64, 0).shape[0] == 1000 // 65  # the whole split
    model = build_model("xlstm", 11, 16, embedding_dim=32, num_blocks=2, num_heads=2).double().eval()
    losses, per_pos = longctx.evaluate(model, w, [16, 64])
    with torch.no_grad():  # at C = 16 every 16-character piece is read from an empty state
        pieces = w[:, :-1].reshape(-1, 16), w[:, 1:].reshape(-1, 16)
        ref = torch.nn.functional.cross_entropy(model(pieces[0]).transpose(1, 2), pieces[1]).item()
    assert losses[16] == pytest.approx(ref, rel=1e-6)
    assert per_pos.shape == (64,) and float(per_pos.mean()) == pytest.approx(losses[64], rel=1e-6)
    edges, b = longctx.position_buckets(per_pos)
    assert edges == [0, 1, 2, 4, 8, 16, 32, 64] and len(b) == 7


def test_from_compare_evaluates_the_comparisons_final_runs_without_training(course, monkeypatch, capsys):
    """--from-compare trains nothing: it takes the comparison's finished final runs (row.json) of every model."""
    import shutil

    argv = ["--preset", "cpu-tiny", "--models", "xlstm", "--seeds", "1", "--contexts", "32,64", "--max-tokens",
            "128", "--max-iters", "2", "--corpus", str(course / "text.txt"), "--eval_interval", "2",
            "--eval_iters", "1"]
    assert longctx.main(argv) == 0
    trained = longctx.run_dir("cpu-tiny", "xlstm", 0)
    for seed in (1, 3):  # two finished final runs of the comparison, and one unfinished (no row.json)
        d = course / "runs" / "compare_cpu-tiny" / "xlstm" / f"final-lr0.002-seed{seed}-steps2"
        shutil.copytree(trained, d)
        (d / "row.json").write_text(json.dumps({"model": "xlstm", "phase": "final", "seed": seed}))
    shutil.copytree(trained, course / "runs" / "compare_cpu-tiny" / "xlstm" / "final-lr0.002-seed5-steps2")
    monkeypatch.setattr(longctx, "train_run", lambda *a, **k: pytest.fail("--from-compare trained a model"))
    capsys.readouterr()
    base = ["--preset", "cpu-tiny", "--contexts", "32,64", "--max-tokens", "128", "--corpus",
            str(course / "text.txt"), "--from-compare"]
    assert longctx.main(base + ["--models", "xlstm"]) == 0
    d = json.loads((course / "results" / "long_context.json").read_text())
    assert d["header"]["seeds"] == [1, 3] and "compare" in d["header"]["source"]
    assert sorted({r["seed"] for r in d["rows"]}) == [1, 3]
    assert longctx.main(base + ["--models", "gpt"]) == 2  # no comparison runs of gpt: a clear error
    assert "no finished final runs of 'gpt'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        longctx.main(base + ["--models", "xlstm", "--retrain"])
