"""The comparison of chapter 10: the whole-split evaluation, the sweep's decisions, a tiny end-to-end run (result
file, figure, README block, resuming), outputs checked before any work, and the README table rebuilt from the
committed result file."""

import json
import math
import re
from pathlib import Path

import pytest
import torch

from xlstm_edu import compare
from xlstm_edu.compare import best_lr, evaluate_split, next_lr, protocol, readme_block

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]
TEXT = ("ROMEO:\nBut soft, what light through yonder window breaks?\n\n"
        "JULIET:\nO Romeo, Romeo, wherefore art thou Romeo?\n\n") * 30
TINY = ["--preset", "cpu-tiny", "--steps", "4", "--sweep-steps", "2", "--warmup", "1", "--eval-interval", "2"]


def test_evaluate_split_reads_every_character_once():
    from xlstm_edu.models import build_model

    torch.manual_seed(0)
    model = build_model("gpt", 11, 8, embedding_dim=16, num_blocks=1, num_heads=2)
    data = torch.randint(0, 11, (8 * 5 + 4,))  # 43 predictions: five full windows of 8 and one of 3
    loss, count = evaluate_split(model, data, 8, batch_size=2)
    assert count == len(data) - 1
    model.eval()
    total = 0.0
    for s in range(0, len(data) - 1, 8):
        w = data[s:min(s + 9, len(data))]
        logits = model(w[None, :-1])[0]
        total += float(torch.nn.functional.cross_entropy(logits.detach(), w[1:], reduction="sum"))
    assert loss == pytest.approx(total / count, rel=1e-6)


def test_the_sweep_grows_the_grid_past_an_edge():
    assert next_lr([1e-3, 2e-3, 4e-3], 4e-3, 0, 2) == 8e-3
    assert next_lr([1e-3, 2e-3, 4e-3], 1e-3, 0, 2) == 5e-4
    assert next_lr([1e-3, 2e-3, 4e-3], 2e-3, 0, 2) is None  # an inner best: done
    assert next_lr([1e-3, 2e-3, 4e-3, 8e-3, 1.6e-2], 1.6e-2, 2, 2) is None  # no more extensions
    rows = [{"model": "gpt", "phase": "sweep", "lr": lr, "final_val_loss": v}
            for lr, v in ((1e-3, 2.0), (2e-3, 1.9), (4e-3, 1.9))]
    assert best_lr(rows + [{"model": "gpt", "phase": "final", "lr": 9.0, "final_val_loss": 0.1}], "gpt") == 2e-3


def test_protocol_validation():
    with pytest.raises(ValueError, match="lrs"):
        protocol("cpu-tiny", lrs=(1e-3, float("nan")))
    with pytest.raises(ValueError, match="seeds"):
        protocol("cpu-tiny", seeds=(1, 1))
    with pytest.raises(ValueError, match="warmup"):
        protocol("cpu-tiny", steps=10, sweep_steps=5, warmup_iters=5)
    p = protocol("cpu-small", steps=40)
    assert (p.sweep_steps, p.warmup_iters, p.eval_interval) == (10, 2, 5)


@pytest.fixture
def corpus(tmp_path):
    p = tmp_path / "text.txt"
    p.write_text(TEXT, encoding="utf-8")
    return p


def test_tiny_comparison_end_to_end_and_resumable(tmp_path, corpus, monkeypatch, capsys):
    out, js = tmp_path / "runs", tmp_path / "results" / "compare_cpu-tiny.json"
    argv = [*TINY, "--models", "gpt,lstm", "--lrs", "1e-3,3e-2", "--seeds", "1,2", "--max-extra-lrs", "1",
            "--corpus", str(corpus), "--data-dir", str(tmp_path), "--out", str(out), "--json", str(js)]
    assert compare.main(argv) == 0
    res = json.loads(js.read_text())
    h, rows = res["header"], res["rows"]
    assert h["command"].startswith("python -m xlstm_edu.compare --preset cpu-tiny") and h["commit"]
    assert h["budget"] == "equal training tokens" and h["threads_per_job"] >= 1 and "load_avg_start" in h
    val_chars = len(TEXT) - int(len(TEXT) * 0.9) - 1
    for r in rows:
        for key in ("model", "seed", "lr", "params", "final_val_loss", "train_tokens", "train_time_s", "cpu_time_s",
                    "curve", "phase"):
            assert key in r, key
        assert r["val_tokens"] == val_chars and math.isfinite(r["final_val_loss"])
    final = [r for r in rows if r["phase"] == "final"]
    assert sorted((r["model"], r["seed"]) for r in final) == [("gpt", 1), ("gpt", 2), ("lstm", 1), ("lstm", 2)]
    assert {r["train_tokens"] for r in final} == {4 * 16 * 64}  # equal tokens for every model
    for m in ("gpt", "lstm"):
        sweep = [r for r in rows if r["model"] == m and r["phase"] == "sweep"]
        assert len(sweep) in (2, 3) and all(r["seed"] == 0 and r["train_tokens"] == 2 * 16 * 64 for r in sweep)
        assert {r["lr"] for r in final if r["model"] == m} == {best_lr(rows, m)}
    assert [p["step"] for p in final[0]["curve"]] == [0, 2, 4]
    assert js.with_suffix(".png").stat().st_size > 1000
    table = compare.table(res)
    assert "| GPT |" in table and "| LSTM |" in table and "(min–max)" in table
    # run again: every finished run is read back, nothing is trained
    from xlstm_edu import train as T

    monkeypatch.setattr(T, "train", lambda *a, **k: pytest.fail("a finished run was trained again"))
    assert compare.main(argv) == 0
    again = json.loads(js.read_text())
    assert [r["final_val_loss"] for r in again["rows"]] == [r["final_val_loss"] for r in rows]
    # the README block comes from the file alone
    readme = tmp_path / "README.md"
    readme.write_text("intro\n" + compare.README_BEGIN.format(preset="cpu-tiny") + "\nold\n"
                      + compare.README_END.format(preset="cpu-tiny") + "\nrest\n", encoding="utf-8")
    assert compare.update_readme(readme, "cpu-tiny", again)
    text = readme.read_text()
    assert table in text and text.startswith("intro\n") and text.endswith("rest\n") and "old" not in text


def test_an_interrupted_run_resumes_from_its_checkpoint(tmp_path, corpus):
    from xlstm_edu.checkpoint import load_checkpoint

    proto = protocol("cpu-tiny", steps=4, sweep_steps=2, warmup_iters=1, eval_interval=2)
    spec = compare.job_spec("lstm", "cpu-tiny", "final", 1e-3, 1, 4, proto, str(corpus), "cpu")
    whole = compare.run_job(spec, str(tmp_path / "a"), tmp_path, threads=None)
    # half a run, as a kill after its step-2 checkpoint leaves it
    half = dict(spec, train=dict(spec["train"], max_iters=2))
    compare.run_job(half, str(tmp_path / "b"), tmp_path, threads=None)
    (tmp_path / "b" / "row.json").unlink()
    (tmp_path / "b" / "spec.json").write_text(json.dumps(spec))
    assert load_checkpoint(tmp_path / "b")["step"] == 2
    resumed = compare.run_job(spec, str(tmp_path / "b"), tmp_path, threads=None)
    assert resumed["final_val_loss"] == whole["final_val_loss"] and resumed["steps"] == 4
    with pytest.raises(ValueError, match="other settings"):
        compare.run_job(dict(spec, lr=5e-3), str(tmp_path / "b"), tmp_path, threads=None)


def test_two_jobs_in_parallel(tmp_path, corpus):
    js = tmp_path / "r.json"
    """--jobs 2: two one-thread processes train the two sweep runs (the one final run trains here)."""
    assert compare.main([*TINY, "--models", "lstm", "--lrs", "1e-3,2e-3", "--seeds", "1", "--max-extra-lrs", "0",
                         "--jobs", "2", "--corpus", str(corpus), "--data-dir", str(tmp_path), "--out",
                         str(tmp_path / "runs"), "--json", str(js)]) == 0
    rows = json.loads(js.read_text())["rows"]
    assert len(rows) == 3 and all(r["threads"] == 1 for r in rows[:2])


@pytest.mark.parametrize("bad, match", [
    (["--json", "{tmp}"], "is a folder"),
    (["--out", "{tmp}/afile"], "is a file"),
    (["--corpus", "{tmp}/missing.txt"], "not found"),
    (["--models", "gpt,bert"], "--models"),
    (["--lrs", "1e-3,-1"], "lrs"),
    (["--jobs", "0"], "--jobs"),
    (["--update-readme"], "no comparison block"),
])
def test_every_output_and_input_is_checked_before_any_work(tmp_path, corpus, capsys, monkeypatch, bad, match):
    from xlstm_edu import paths

    monkeypatch.setenv(paths.ENV_VAR, str(tmp_path))  # a course folder without the README's block
    (tmp_path / "afile").write_text("x")
    bad = [b.replace("{tmp}", str(tmp_path)) for b in bad]
    argv = [*TINY, "--corpus", str(corpus), "--data-dir", str(tmp_path), "--out", str(tmp_path / "runs"), "--json",
            str(tmp_path / "r.json"), *bad]
    assert compare.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and re.search(match, err), err
    assert not (tmp_path / "runs" / "gpt").exists() and not (tmp_path / "r.json").exists()


def test_the_readme_table_is_rebuilt_from_the_committed_results():
    """README and result file cannot disagree: every comparison block equals what the file gives."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"<!-- compare:(\S+):begin[^>]*-->\n(.*?)\n<!-- compare:\1:end -->", readme, re.S)
    assert blocks, "the README has no comparison block"
    for preset, text in blocks:
        results = compare.load_results(ROOT / "results" / f"compare_{preset}.json")
        assert text == readme_block(results, preset), f"rebuild it: python -m xlstm_edu.compare --preset {preset} ..."


def test_the_table_says_when_a_best_rate_is_at_the_edge_of_its_grid():
    def row(model, phase, lr, loss, seed=0):
        return {"model": model, "phase": phase, "lr": lr, "seed": seed, "final_val_loss": loss, "params": 10,
                "train_tokens": 100, "train_time_s": 1.0}

    rows = [row("gpt", "sweep", lr, loss) for lr, loss in ((1e-3, 2.0), (2e-3, 1.9), (4e-3, 2.1))]
    rows += [row("lstm", "sweep", lr, loss) for lr, loss in ((1e-3, 2.0), (2e-3, 1.9), (4e-3, 1.8))]
    rows += [row("gpt", "final", 2e-3, 1.85, 1), row("lstm", "final", 4e-3, 1.75, 1)]
    text = compare.table({"header": {}, "rows": rows})
    assert "edge of the swept grid for LSTM (0.004)" in text and "GPT (" not in text.split("edge")[1]
    inner = [r for r in rows if r["model"] == "gpt"]
    assert "edge" not in compare.table({"header": {}, "rows": inner})
