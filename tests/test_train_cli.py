"""The command lines of the trainer and the sampler, in-process (one subprocess smoke test), and every error
they must report as one ``error:`` line before any work."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from xlstm_edu import runs, sample
from xlstm_edu.checkpoint import load_checkpoint, load_run, read_metrics
from xlstm_edu.runs import main

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]
TEXT = ("ROMEO:\nBut soft, what light through yonder window breaks?\n\n"
        "JULIET:\nO Romeo, Romeo, wherefore art thou Romeo?\n\n") * 30
SMALL = ["--embedding_dim", "16", "--context_length", "16", "--eval_iters", "1", "--no-progress"]


@pytest.fixture
def corpus(tmp_path):
    p = tmp_path / "text.txt"
    p.write_text(TEXT, encoding="utf-8")
    return p


def new(tmp_path, corpus, out="run", *extra, model="lstm"):
    return main(["--model", model, "--preset", "cpu-tiny", "--out", str(tmp_path / out), "--corpus", str(corpus),
                 "--data-dir", str(tmp_path), *SMALL, *extra])


def test_train_resume_extend_and_sample(tmp_path, corpus, capsys):
    out = tmp_path / "run"
    assert new(tmp_path, corpus, "run", "--max-iters", "4", "--eval_interval", "2") == 0
    assert [m["step"] for m in read_metrics(out)] == [0, 2, 4]
    assert load_checkpoint(out)["train_config"]["lr_decay_iters"] == 4  # stored: an extension keeps it
    assert main(["--out", str(out), "--resume", "--max-iters", "6", "--no-progress"]) == 0
    assert [m["step"] for m in read_metrics(out)] == [0, 2, 4, 6]
    model, chars, meta = load_run(out)
    assert meta["kind"] == "lstm" and meta["model_config"]["embedding_dim"] == 16 and meta["batch_size"] == 16
    capsys.readouterr()
    assert sample.main(["--run", str(out), "--prompt", "ROMEO:", "--tokens", "20", "--top-k", "3"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("ROMEO:") and len(text.rstrip("\n")) >= 26


def test_extending_a_run_keeps_its_schedule_bit_exactly(tmp_path, corpus):
    """4 steps + 4 resumed == one run of 8 steps planned with lr_decay_iters=4 (the README's promise)."""
    assert new(tmp_path, corpus, "a", "--max-iters", "4", "--eval_interval", "4", "--dropout", "0.1") == 0
    assert main(["--out", str(tmp_path / "a"), "--resume", "--max-iters", "8", "--no-progress"]) == 0
    assert new(tmp_path, corpus, "b", "--max-iters", "8", "--eval_interval", "4", "--dropout", "0.1",
               "--lr_decay_iters", "4") == 0
    a, b = load_checkpoint(tmp_path / "a"), load_checkpoint(tmp_path / "b")
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert [r["val_loss"] for r in a["history"]] == [r["val_loss"] for r in b["history"]]


def test_a_relative_corpus_resumes_from_another_folder(tmp_path, monkeypatch):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "text.txt").write_text(TEXT, encoding="utf-8")
    monkeypatch.chdir(tmp_path / "a")
    assert main(["--model", "lstm", "--preset", "cpu-tiny", "--out", str(tmp_path / "run"), "--corpus", "text.txt",
                 "--max-iters", "2", *SMALL]) == 0
    assert load_checkpoint(tmp_path / "run")["meta"]["corpus"] == str((tmp_path / "a" / "text.txt").resolve())
    monkeypatch.chdir(tmp_path / "b")
    assert main(["--out", str(tmp_path / "run"), "--resume", "--max-iters", "3", "--no-progress"]) == 0


def test_new_run_errors(tmp_path, corpus, capsys):
    (tmp_path / "empty.txt").write_text("", encoding="utf-8")
    (tmp_path / "afile").write_text("x")
    cases = [
        (["--corpus", str(tmp_path / "empty.txt")], "empty"),
        (["--corpus", str(tmp_path / "nope.txt")], "not found"),
        (["--corpus", str(corpus), "--context_length", "5000"], "context_length"),
        (["--corpus", str(corpus), "--learning_rate", "1"], "unknown option --learning_rate.*Valid trainer keys"),
        (["--corpus", str(corpus), "--lr", "fast"], "could not read 'fast'"),
        (["--corpus", str(corpus), "--time_budget_s", "-1"], "time_budget_s"),
        (["--corpus", str(corpus), "--lr_decay_iters", "-5"], "lr_decay_iters"),
        (["--corpus", str(corpus), "--grad_clip", "nan"], "grad_clip"),
        (["--corpus", str(corpus), "--batch_size", "0"], "batch_size: expected an integer >= 1"),
        (["--corpus", str(corpus), "--device", "cuda:7"] if not torch.cuda.is_available() else
         ["--corpus", str(corpus), "--device", "tpu"], "device"),
    ]
    for extra, match in cases:
        rc = main(["--model", "gpt", "--preset", "cpu-tiny", "--out", str(tmp_path / "a"), "--data-dir",
                   str(tmp_path), "--no-progress", "--max-iters", "1", *extra])
        err = capsys.readouterr().err
        assert rc == 2 and err.startswith("error:"), (extra, err)
        assert __import__("re").search(match, err), (match, err)
    assert not (tmp_path / "a" / "ckpt.pt").exists()  # nothing was trained
    rc = main(["--model", "gpt", "--preset", "cpu-tiny", "--out", str(tmp_path / "afile"), "--corpus", str(corpus)])
    assert rc == 2 and "is a file" in capsys.readouterr().err
    assert new(tmp_path, corpus, "run", "--max-iters", "1") == 0
    capsys.readouterr()
    assert new(tmp_path, corpus, "run", "--max-iters", "1") == 2
    assert "already holds a run" in capsys.readouterr().err


def test_resume_errors(tmp_path, corpus, capsys):
    out = tmp_path / "run"
    assert new(tmp_path, corpus, "run", "--max-iters", "2", "--eval_interval", "1") == 0
    capsys.readouterr()
    cases = [
        (["--max-iters", "1"], "already trained 2 steps.*nothing to do"),
        ([], "already trained 2 steps"),
        (["--max-iters", "4", "--preset", "cpu-small"], "--preset cpu-small but the run .* was made with cpu-tiny"),
        (["--max-iters", "4", "--corpus", "shakespeare"], "--corpus shakespeare but the run"),
        (["--max-iters", "4", "--model", "gpt"], "--model gpt but the run"),
        (["--max-iters", "4", "--embedding_dim", "32"], "cannot change the model"),
        (["--max-iters", "4", "--batch_size", "3"], "cannot change the model or the batches"),
    ]
    for extra, match in cases:
        rc = main(["--out", str(out), "--resume", "--no-progress", *extra])
        err = capsys.readouterr().err
        assert rc == 2 and err.startswith("error:") and __import__("re").search(match, err), (extra, err)
    assert main(["--out", str(tmp_path / "nothing"), "--resume", "--no-progress"]) == 2
    assert "no such run folder" in capsys.readouterr().err and not (tmp_path / "nothing").exists()
    # the same preset and corpus, given again, are fine
    assert main(["--out", str(out), "--resume", "--max-iters", "3", "--preset", "cpu-tiny", "--corpus", str(corpus),
                 "--no-progress"]) == 0
    corpus.write_text(TEXT + "€", encoding="utf-8")  # one more character: the vocabulary changed
    assert main(["--out", str(out), "--resume", "--max-iters", "4", "--no-progress"]) == 2
    assert "vocabulary mismatch" in capsys.readouterr().err
    assert load_checkpoint(out)["step"] == 3


@pytest.mark.parametrize("damage", ["empty", "corrupt", "mismatch"])
def test_damaged_checkpoints_in_resume_and_sample(tmp_path, corpus, capsys, damage):
    out = tmp_path / "run"
    assert new(tmp_path, corpus, "run", "--max-iters", "2") == 0
    ck = out / "ckpt.pt"
    if damage == "empty":
        ck.write_bytes(b"")
    elif damage == "corrupt":
        ck.write_bytes(ck.read_bytes()[: ck.stat().st_size // 2])
    else:  # metadata that does not match the weights
        state = torch.load(ck, weights_only=True)
        state["meta"]["model_config"]["num_blocks"] = 3  # one more LSTM layer than the weights hold
        torch.save(state, ck)
    capsys.readouterr()
    match = {"empty": "empty", "corrupt": "not a readable checkpoint", "mismatch": "do not match"}[damage]
    assert main(["--out", str(out), "--resume", "--max-iters", "4", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and match in err, err
    assert sample.main(["--run", str(out), "--tokens", "5"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and match in err, err


def test_sample_argument_errors(tmp_path, corpus, capsys):
    assert new(tmp_path, corpus, "run", "--max-iters", "1") == 0
    run = str(tmp_path / "run")
    bad = [["--temperature", "nan"], ["--temperature", "1e-40"], ["--temperature", "-1"], ["--tokens", "-3"],
           ["--top-k", "0"], ["--prompt", "€"], ["--device", "cuda" if not torch.cuda.is_available() else "tpu"]]
    for extra in bad:
        capsys.readouterr()
        assert sample.main(["--run", run, "--tokens", "5", *extra]) == 2, extra
        assert capsys.readouterr().err.startswith("error:"), extra
    assert sample.main(["--run", run, "--tokens", "5", "--temperature", "0"]) == 0
    assert sample.main(["--run", str(tmp_path / "none"), "--tokens", "5"]) == 2
    assert "no checkpoint" in capsys.readouterr().err


def test_ctrl_c_says_which_step_to_resume_from(tmp_path, corpus, capsys, monkeypatch):
    from xlstm_edu import train as T

    calls = {"n": 0}
    real = T.clipped_step

    def interrupted(*a, **k):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(T, "clipped_step", interrupted)
    assert new(tmp_path, corpus, "run", "--max-iters", "8", "--eval_interval", "2") == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "at step 2, safe to resume" in err and "--resume" in err
    monkeypatch.setattr(T, "clipped_step", real)
    assert main(["--out", str(tmp_path / "run"), "--resume", "--no-progress"]) == 0
    assert [m["step"] for m in read_metrics(tmp_path / "run")] == [0, 2, 4, 6, 8]


def test_run_builders_are_the_python_interface(tmp_path, corpus):
    """compare and the gate explorer build runs in Python and call train() themselves."""
    from xlstm_edu.train import train

    run = runs.new_run("xlstm", "cpu-tiny", corpus=corpus, data_dir=tmp_path, train_overrides={"max_iters": 2},
                       model_overrides={"embedding_dim": 16}, data_overrides={"context_length": 16})
    assert run.cfg.lr_decay_iters == 2 and run.meta["context_length"] == 16 and run.meta["kind"] == "xlstm"
    train(run.model, run.get_batch, run.cfg, tmp_path / "py", meta=run.meta, progress=False)
    again = runs.resume_run(tmp_path / "py", data_dir=tmp_path, train_overrides={"max_iters": 3})
    assert again.cfg.max_iters == 3 and again.meta == load_checkpoint(tmp_path / "py")["meta"]


def test_smoke_the_real_command_line(tmp_path, corpus):
    """One real process: `python -m xlstm_edu.train` runs, prints its summary, and leaves a loadable run."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", "xlstm_edu.train", "--model", "lstm", "--preset", "cpu-tiny", "--out",
                        str(tmp_path / "run"), "--corpus", str(corpus), "--data-dir", str(tmp_path),
                        "--max-iters", "2", *SMALL], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                       env=env)
    assert r.returncode == 0, r.stderr
    assert "parameters" in r.stdout and "done: step 2" in r.stdout
    assert load_run(tmp_path / "run")[2]["kind"] == "lstm"
