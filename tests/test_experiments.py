"""The experiment runner: its evaluation path gives 1 to a model that is known to solve the task (the hand-set
parity sLSTM of ``xlstm_edu.handcrafted``) and about 0 to models that cannot, and the CLI writes its JSON.

The runner tests use the ``smoke`` preset (a few training steps per model, documented in
``xlstm_edu.experiments.PRESETS``) so that it stays well under a minute; ``quick`` and ``cpu`` differ only in
sizes and budgets."""

import json

import numpy as np
import pytest

from xlstm_edu import experiments as ex
from xlstm_edu.tasks import IGNORE, MQAR, FormalGenerator, eval_lengths, get_task


def handcrafted_parity_logits(zero_recurrence=False):
    """The hand-set sLSTM (numpy) as a 'language model' over the parity task's vocabulary (0, 1, even, odd):
    its output h ~ +1 means even so far, h ~ -1 odd, so the answer logits are (h, -h)."""
    from xlstm_edu.handcrafted import parity_inputs, parity_weights
    from xlstm_edu.np import slstm_recurrent

    W, R, b = parity_weights()
    if zero_recurrence:
        R = np.zeros_like(R)  # no memory mixing: the cell cannot flip its state

    def model(tokens):
        h, _ = slstm_recurrent(parity_inputs(tokens, W), R, b)
        logits = np.zeros(tokens.shape + (4,))
        logits[..., 2], logits[..., 3] = h[..., 0], -h[..., 0]
        return logits

    return model


def test_handcrafted_parity_slstm_scores_one_on_long_strings():
    task = get_task("parity")
    ev = ex.evaluate_formal(handcrafted_parity_logits(), task, lengths=eval_lengths(4), per_length=32, seed=3)
    assert sorted(ev["per_length"]) == [41, 113, 184, 256]
    assert ev["accuracy"] == 1.0 and ev["scaled_accuracy"] == 1.0 and ev["chance"] == 0.5


def test_evaluation_gives_chance_to_models_that_cannot_solve_parity():
    task = get_task("parity")
    ev = ex.evaluate_formal(handcrafted_parity_logits(zero_recurrence=True), task, lengths=[41, 100],
                            per_length=200, seed=4)
    assert abs(ev["scaled_accuracy"]) < 0.2
    const = ex.evaluate_formal(lambda t: np.broadcast_to(np.arange(4.0), t.shape + (4,)), task,
                               lengths=[50, 60], per_length=400, seed=5)
    assert abs(const["scaled_accuracy"]) < 0.15  # always "odd": right half of the time


def _mqar_oracle(task, shift=0):
    """Knows the answer; ``shift`` answers with another of the sequence's stored values instead."""
    def model(x):
        logits = np.zeros(x.shape + (task.vocab_size,))
        N = task.num_pairs
        for b, row in enumerate(x):
            keys, values = list(row[0:2 * N:2]), list(row[1:2 * N:2])
            for p in range(2 * N, x.shape[1], 2):  # queries open two-token slots; filler may repeat a key
                if row[p] in keys:
                    logits[b, p, values[(keys.index(row[p]) + shift) % N]] = 1.0
        return logits

    return model


def test_mqar_evaluation_oracle_wrong_answers_and_levels():
    task = MQAR(64, 4, vocab_size=32)
    ev = ex.evaluate_mqar(_mqar_oracle(task), task, num=20, seed=0)
    assert ev["accuracy"] == 1.0 and ev["in_context"] == 1.0
    assert ev["chance"] == 1 / 32 and ev["stored_value_level"] == 1 / 4
    wrong = ex.evaluate_mqar(_mqar_oracle(task, shift=1), task, num=20, seed=0)
    assert wrong["accuracy"] == 0.0 and wrong["in_context"] == 1.0 and wrong["scaled_accuracy"] < 0
    never = ex.evaluate_mqar(lambda x: np.broadcast_to(np.eye(32)[0], x.shape + (32,)), task, num=20, seed=0)
    assert never["accuracy"] == 0.0 and never["in_context"] == 0.0  # token 0 is never a value


def test_batches_for_the_trainer_are_seeded_and_masked():
    gb = FormalGenerator(get_task("majority"), seed=1).get_batch(4)
    x, y = gb("train", 0)
    assert x.dtype == y.dtype and x.shape == y.shape and x.shape[1] <= 40
    assert (y[:, :-1] == IGNORE).all() and (y[:, -1] >= 4).all()
    assert (FormalGenerator(get_task("majority"), seed=1).get_batch(4)("train", 0)[0] == x).all()


ROW_KEYS = ("experiment", "task", "model", "seed", "accuracy", "scaled_accuracy", "chance", "params",
            "code_version", "command", "load_average")


def test_runner_smoke_writes_json_for_all_models(tmp_path, capsys):
    path = tmp_path / "sub" / "r.json"
    rc = ex.main(["all", "--task", "parity", "--models", "lstm,slstm,mlstm,xlstm,gpt", "--preset", "smoke",
                  "--json", str(path)])
    assert rc == 0
    rows = json.loads(path.read_text())
    formal = [r for r in rows if r["experiment"] == "formal"]
    mqar = [r for r in rows if r["experiment"] == "mqar"]
    # parity twice (every-prefix and the paper's last-position supervision), MQAR once, five models each
    assert len(formal) == 10 and len(mqar) == 5
    assert {r["supervision"] for r in formal} == {"all", "last"}
    assert {r["model"] for r in rows} == set(ex.MODEL_KINDS)
    assert {r["task"] for r in rows} == {"parity", "mqar_32_4"}
    for r in rows:
        for key in ROW_KEYS:
            assert key in r, key
        assert r["command"].startswith("python -m xlstm_edu.experiments all")
        assert 0 <= r["accuracy"] <= 1
        assert np.isclose(r["scaled_accuracy"], (r["accuracy"] - r["chance"]) / (1 - r["chance"]))
    for r in formal:
        assert set(r["train_range_per_length"]) == {"10"} and 0 <= r["train_range_accuracy"] <= 1
    for r in mqar:
        for key in ("num_pairs", "context_length", "width", "lr", "in_context", "stored_value_level",
                    "val_accuracy", "curve"):
            assert key in r, key
        assert r["chance"] == 1 / 32 and r["stored_value_level"] == 1 / 4 and r["in_context_chance"] == 4 / 16
        assert [c[0] for c in r["curve"]] == [0, 2, 3]  # every mqar_eval_every steps and at the end
    out = capsys.readouterr().out
    assert "test lengths 41-256" in out and "inside the training range" in out and "MQAR" in out
    assert "parity (last)" in out


def test_two_workers_give_the_same_results_as_one():
    kw = dict(models=["lstm"], seeds=2, preset="smoke", verbose=False)
    one = ex.run("mqar", **kw)
    two = ex.run("mqar", workers=2, **kw)
    assert [(r["seed"], r["accuracy"], r["final_train_loss"]) for r in one] == \
           [(r["seed"], r["accuracy"], r["final_train_loss"]) for r in two]
    assert one[0]["final_train_loss"] != one[1]["final_train_loss"]  # the seeds differ, so the order is tested


def test_learning_rate_sweep_then_the_other_seeds_at_the_best_rate():
    rows = ex.run("mqar", models=["lstm", "gpt"], preset="smoke", seeds=3, verbose=False, mqar_lrs=(1e-3, 3e-2))
    sweep = [r for r in rows if r["seed"] == 0]
    rest = [r for r in rows if r["seed"] > 0]
    assert len(sweep) == 4 and {r["lr"] for r in sweep} == {1e-3, 3e-2}
    best = ex.best_lrs(sweep)
    assert len(rest) == 4 and all(r["lr"] == best[r["model"], 32, 4, 16] for r in rest)
    assert ex.best_lrs(rows) == best  # the choice rests on the seed every rate shares
    full = ex.run("mqar", models=["lstm"], preset="smoke", seeds=2, verbose=False, mqar_lrs=(1e-3, 3e-2),
                  mqar_sweep_seeds=None)
    assert sorted((r["lr"], r["seed"]) for r in full) == [(1e-3, 0), (1e-3, 1), (3e-2, 0), (3e-2, 1)]
    # a grid cell may name the kinds it runs
    cells = ex.run("mqar", models=["lstm", "gpt"], preset="smoke", seeds=2, verbose=False,
                   mqar_grid=((32, 4, 16), (32, 4, 24, ("gpt", "slstm"))))
    assert sorted((r["width"], r["model"], r["seed"]) for r in cells) == [
        (16, "gpt", 0), (16, "gpt", 1), (16, "lstm", 0), (16, "lstm", 1), (24, "gpt", 0), (24, "gpt", 1)]


def _no_training(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("a run started before the inputs were checked")

    monkeypatch.setattr(ex, "run_formal_one", boom)
    monkeypatch.setattr(ex, "run_mqar_one", boom)


def test_output_path_is_checked_before_any_run(tmp_path, monkeypatch, capsys):
    """Issue 9, defect 5: ``--json DIR/`` used to train the first job and then fail, losing the rest."""
    _no_training(monkeypatch)
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    for bad in (str(tmp_path) + "/", str(tmp_path), str(a_file / "r.json")):
        assert ex.main(["formal", "--task", "parity", "--preset", "smoke", "--json", bad]) == 2
        assert "--json" in capsys.readouterr().err
    assert a_file.read_text() == "x"


def test_empty_choices_are_errors(monkeypatch, capsys):
    """Issue 9, defect 7: ``--models ""`` used to run nothing and succeed."""
    _no_training(monkeypatch)
    assert ex.main(["formal", "--models", "", "--preset", "smoke"]) == 2
    assert "models" in capsys.readouterr().err
    assert ex.main(["formal", "--models", " , ", "--preset", "smoke"]) == 2
    assert ex.main(["formal", "--task", "", "--preset", "smoke"]) == 2
    assert "task" in capsys.readouterr().err
    assert ex.main(["mqar", "--steps", "0", "--preset", "smoke"]) == 2
    assert ex.main(["mqar", "--seeds", "0", "--preset", "smoke"]) == 2
    assert ex.main(["mqar", "--workers", "0", "--preset", "smoke"]) == 2


def test_comparable_sizes_in_the_formal_presets():
    # every kind at the formal tasks' widths: parameter counts within a factor 1.5 of each other
    counts = {k: ex.build(k, 8, 256, ex.PRESETS["cpu"], 0).num_params() for k in ex.MODEL_KINDS}
    assert max(counts.values()) / min(counts.values()) < 1.5, counts


def test_model_widths_and_heads_as_documented():
    p = ex.PRESETS["cpu"]
    m = ex.build("lstm", 8, 256, p, 0)
    assert 0.8 < m.embedding.weight.std().item() < 1.2
    from dataclasses import replace

    m = ex.build("lstm", 8, 256, replace(p, lstm_embedding_std=None), 0)
    assert m.embedding.weight.std().item() < 0.05  # the baseline's own nanoGPT-style init
    assert ex.build("slstm", 8, 256, p, 0).cfg.conv1d_kernel_size == 0  # formal: the paper's sLSTM block, no conv
    assert ex.build("slstm", 64, 64, p, 0, width=32).cfg.conv1d_kernel_size == 4  # MQAR: the default block
    g = ex.build("gpt", 64, 64, p, 0, width=64)
    assert g.cfg.embedding_dim == 64 and g.cfg.num_heads == 4
    assert ex.build("mlstm", 64, 64, p, 0, width=48).cfg.embedding_dim == 48


def test_format_tables():
    rows = [{"task": "parity", "model": m, "seed": s, "scaled_accuracy": v, "accuracy": (v + 1) / 2, "params": 10,
             "supervision": sup} for m, s, v, sup in [("slstm", 0, 1.0, "all"), ("slstm", 1, 0.5, "all"),
                                                     ("gpt", 0, 0.0, "all"), ("gpt", 0, 0.1, "last")]]
    text = ex.format_table(rows)
    assert "0.75 [0.50, 1.00]" in text and "0 = chance" in text and "parity (last)" in text
    assert "fraction right" in ex.format_table(rows, key="accuracy")


def test_learning_rate_is_chosen_on_validation_not_test():
    def row(lr, seed, val, test):
        return {"model": "mlstm", "context_length": 64, "num_pairs": 4, "width": 32, "lr": lr, "seed": seed,
                "val_accuracy": val, "accuracy": test, "vocab_size": 64, "final_train_loss": 1.0}

    rows = [row(1e-3, 0, 0.9, 0.1), row(1e-3, 1, 0.8, 0.2), row(1e-2, 0, 0.5, 1.0), row(1e-2, 1, 0.6, 1.0)]
    best = ex.best_lr_rows(rows)
    assert {r["lr"] for r in best} == {1e-3} and len(best) == 2
    text = ex.format_mqar_table(rows)
    assert "0.15 [0.10, 0.20] @1e-03" in text and "1/pairs = 0.250" in text and "1/V = 0.016" in text


def test_bad_input():
    with pytest.raises(ValueError, match="model"):
        ex.run("formal", models=["rnn"], preset="smoke")
    with pytest.raises(ValueError, match="task"):
        ex.run("formal", tasks=["palindrome"], preset="smoke")
    with pytest.raises(ValueError, match="experiment"):
        ex.run("lm", preset="smoke")
    with pytest.raises(ValueError, match="unknown preset field"):
        ex.run("mqar", preset="smoke", mqar_step=3)
    with pytest.raises(ValueError, match="mqar_lrs"):
        ex.run("mqar", preset="smoke", mqar_lrs=())
    with pytest.raises(ValueError, match="context_length"):
        ex.run("mqar", preset="smoke", mqar_grid=((16, 8, 32),))
    with pytest.raises(ValueError, match="mqar_grid"):
        ex.run("mqar", preset="smoke", mqar_grid=((64, 4),))
    with pytest.raises(ValueError, match="mqar_sweep_seeds"):
        ex.run("mqar", preset="smoke", mqar_sweep_seeds=0)
    with pytest.raises(ValueError, match="train_eval_lengths"):
        ex.run("formal", preset="smoke", train_eval_lengths=(0,))
    with pytest.raises(ValueError, match="mqar_grid model"):
        ex.run("mqar", preset="smoke", mqar_grid=((64, 4, 32, ("rnn",)),))
    assert ex.main(["formal", "--models", "rnn", "--preset", "smoke"]) == 2
    with pytest.raises(ValueError, match="task"):
        ex.evaluate_mqar(lambda x: x, get_task("parity"))


# ---- reading the results: the package's reference for the chapter's exercises, and the README's tables
def _formal_row(inside, beyond):
    return {"train_range_scaled": inside, "scaled_accuracy": beyond}


def test_failure_kind():
    assert ex.failure_kind(_formal_row(1.0, 0.97)) == "generalizes"
    assert ex.failure_kind(_formal_row(0.95, 0.1)) == "fails beyond the training lengths"
    assert ex.failure_kind(_formal_row(0.7, 0.1)) == "partly learned"
    assert ex.failure_kind(_formal_row(0.2, 0.0)) == "not learned"


def test_mqar_outcome_and_steps_to():
    def row(acc, inctx, pairs=4):
        return {"accuracy": acc, "in_context": inctx, "stored_value_level": 1 / pairs, "in_context_chance": pairs / 32}

    assert ex.mqar_outcome(row(0.95, 1.0)) == "recalls"
    assert ex.mqar_outcome(row(0.27, 0.99)) == "guesses a stored value"
    assert ex.mqar_outcome(row(0.6, 0.99)) == "partial recall"
    assert ex.mqar_outcome(row(0.1, 0.98, pairs=16)) == "guesses a stored value"
    assert ex.mqar_outcome(row(0.02, 0.1)) == "format not learned"
    # 16 of 32 values are stored: answering with any value lands on a stored one half of the time
    assert ex.mqar_outcome(row(0.03, 0.5, pairs=16)) == "format not learned"
    assert ex.mqar_outcome(row(0.03, 0.6, pairs=4)) == "guesses a stored value"
    curve = [[0, 0.0, 0.01, 4.0], [100, 5.0, 0.5, 2.0], [200, 10.0, 0.93, 0.3], [300, 15.0, 0.99, 0.1]]
    assert ex.steps_to(curve) == 200 and ex.steps_to(curve, 0.4) == 100 and ex.steps_to(curve, 0.999) is None


def test_report_and_readme_block(tmp_path):
    rows = ex.run("all", tasks=["parity"], models=["lstm", "mlstm"], preset="smoke", verbose=False)
    formal_path, mqar_path = tmp_path / "f.json", tmp_path / "m.json"
    formal_path.write_text(json.dumps([r for r in rows if r["experiment"] == "formal"]))
    text = ex.readme_block(formal_path, tmp_path / "absent.json")
    assert "Not yet run: `results/absent.json`" in text and "| parity (last) |" in text
    mqar_path.write_text(json.dumps([r for r in rows if r["experiment"] == "mqar"]))
    text = ex.readme_block(formal_path, mqar_path)
    assert "Not yet run" not in text and "| (32, 4), d=16 | 0.031 / 0.250 |" in text and "code version" in text
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{ex.README_BEGIN}\nold\n{ex.README_END}\noutro\n")
    assert ex.main(["report", "--formal", str(formal_path), "--mqar", str(mqar_path), "--readme", str(readme)]) == 0
    new = readme.read_text()
    assert new.startswith("intro\n") and new.endswith("outro\n") and "old" not in new and text in new
    assert not ex.update_readme(readme, formal_path, mqar_path)  # a second pass changes nothing
    stale = tmp_path / "stale.json"
    stale.write_text(json.dumps([{"experiment": "formal", "task": "parity", "model": "lstm"}]))
    with pytest.raises(ValueError, match="older version"):
        ex.readme_block(stale, mqar_path)
    (tmp_path / "no_markers.md").write_text("nothing\n")
    assert ex.main(["report", "--readme", str(tmp_path / "no_markers.md")]) == 2


def test_readme_block_matches_the_committed_results():
    """The README's chapter-12 tables are the ones the committed result files give (rebuild them with
    ``python -m xlstm_edu.experiments report --readme README.md`` after a new run)."""
    from xlstm_edu.paths import home

    text = (home() / "README.md").read_text()
    block = text.split(ex.README_BEGIN, 1)[1].split(ex.README_END, 1)[0]
    assert block.strip() == ex.readme_block().strip()


def test_plots_draw_every_seed(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from xlstm_edu import experiment_plots as xp

    rng = np.random.default_rng(0)
    formal = [{"task": t, "model": m, "seed": s, "supervision": sup, "scaled_accuracy": float(rng.uniform()),
               "train_range_scaled": 1.0, "per_length": {"41": 0.9, "256": 0.5}, "train_range_per_length": {"10": 1.0},
               "params": 10} for t, sup in [("parity", "all"), ("parity", "last"), ("majority", "all")]
              for m in ex.MODEL_KINDS for s in range(3)]
    fig = xp.plot_formal(formal)
    ax = fig.axes[0]
    dots = [ln for ln in ax.lines if ln.get_marker() == "o"]
    assert sum(len(ln.get_xdata()) for ln in dots) == len(formal)  # one dot per seed
    assert len(ax.patches) == 3 * 5  # one bar per (task, model)
    xp.plot_formal_lengths(formal)
    mqar = []
    for L, N, w in ((64, 4, 32), (64, 16, 32), (64, 16, 64)):
        for m in ex.MODEL_KINDS:
            for s, lr in [(0, 1e-3), (0, 1e-2), (1, 1e-2), (2, 1e-2)]:
                acc = float(rng.uniform())
                mqar.append({"model": m, "seed": s, "lr": lr, "context_length": L, "num_pairs": N, "width": w,
                             "vocab_size": 64, "accuracy": acc, "val_accuracy": acc if lr == 1e-2 else 0.0,
                             "in_context": 1.0, "in_context_chance": 0.1, "final_train_loss": 1.0,
                             "curve": [[0, 0.0, 0.0, 4.0], [100, 5.0, acc, 1.0]]})
    fig = xp.plot_mqar_capacity(mqar)
    assert [a.get_xlabel() for a in fig.axes] == ["key-value pairs", "embedding width"]
    dots = [ln for ln in fig.axes[0].lines if ln.get_marker() == "o"]
    assert sum(len(ln.get_xdata()) for ln in dots) == 2 * 5 * 3  # 2 settings x 5 models x 3 seeds at the best lr
    xp.plot_mqar_curves(mqar, 64, 16, 32)
    import matplotlib.pyplot as plt

    plt.close("all")
