"""The experiment runner: its evaluation path gives 1 to a model that is known to solve the task (the hand-set
parity sLSTM of ``xlstm_edu.handcrafted``) and about 0 to models that cannot, and the CLI writes its JSON.

The runner test uses the ``smoke`` preset (a few training steps per model, documented in
``xlstm_edu.experiments.PRESETS``) so that it stays well under a minute; ``quick`` and ``cpu`` differ only in
sizes and budgets."""

import json

import numpy as np
import pytest

from xlstm_edu import experiments as ex
from xlstm_edu.tasks import IGNORE, MQAR, eval_lengths, get_task


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


def test_mqar_evaluation_oracle_and_wrong_answers():
    task = MQAR(64, 4, vocab_size=32)

    def oracle(x, shift=0):
        logits = np.zeros(x.shape + (task.vocab_size,))
        for b, row in enumerate(x):
            memory = dict(zip(row[0:8:2], row[1:8:2]))
            for p in range(8, x.shape[1]):
                if row[p]:
                    v = memory[row[p]] - task.value_offset
                    logits[b, p, task.value_offset + (v + shift) % task.num_values] = 1.0
        return logits

    assert ex.evaluate_mqar(oracle, task, num=20, seed=0)["accuracy"] == 1.0
    wrong = ex.evaluate_mqar(lambda x: oracle(x, shift=1), task, num=20, seed=0)
    assert wrong["accuracy"] == 0.0 and wrong["scaled_accuracy"] < 0


def test_batches_for_the_trainer_are_seeded_and_masked():
    gb = ex._formal_batches(get_task("majority"), 4, seed=1)
    x, y = gb("train", 0)
    assert x.dtype == y.dtype and x.shape == y.shape and x.shape[1] <= 40
    assert (y[:, :-1] == IGNORE).all() and (y[:, -1] >= 4).all()
    x2, _ = ex._formal_batches(get_task("majority"), 4, seed=1)("train", 0)
    assert (x2 == x).all()
    xm, ym = ex._mqar_batches(MQAR(64, 4, 32), 3, seed=0)("train", 0)
    assert xm.shape == (3, 64) and int((ym != IGNORE).sum()) == 12


def test_runner_smoke_writes_json_for_all_models(tmp_path, capsys):
    path = tmp_path / "r.json"
    rc = ex.main(["all", "--task", "parity", "--models", "lstm,slstm,mlstm,xlstm,gpt", "--preset", "smoke",
                  "--json", str(path)])
    assert rc == 0
    rows = json.loads(path.read_text())
    assert len(rows) == 10
    assert {r["model"] for r in rows} == set(ex.MODEL_KINDS)
    assert {r["task"] for r in rows} == {"parity", "mqar_32_4"}
    for r in rows:
        for key in ("task", "model", "seed", "accuracy", "scaled_accuracy", "chance", "params", "code_version"):
            assert key in r
        assert 0 <= r["accuracy"] <= 1
        assert np.isclose(r["scaled_accuracy"], (r["accuracy"] - r["chance"]) / (1 - r["chance"]))
    out = capsys.readouterr().out
    assert "== formal" in out and "== mqar" in out and "xlstm" in out


def test_comparable_sizes_in_the_real_presets():
    # every kind at the cpu preset's widths: parameter counts within a factor 1.5 of each other
    counts = {k: ex.build(k, 8, 256, ex.PRESETS["cpu"], 0).num_params() for k in ex.MODEL_KINDS}
    assert max(counts.values()) / min(counts.values()) < 1.5, counts


def test_lstm_embedding_reinitialised_as_documented():
    m = ex.build("lstm", 8, 256, ex.PRESETS["cpu"], 0)
    assert 0.8 < m.embedding.weight.std().item() < 1.2
    from dataclasses import replace

    m = ex.build("lstm", 8, 256, replace(ex.PRESETS["cpu"], lstm_embedding_std=None), 0)
    assert m.embedding.weight.std().item() < 0.05  # the baseline's own nanoGPT-style init


def test_format_table():
    rows = [{"task": "parity", "model": m, "seed": s, "scaled_accuracy": v, "accuracy": (v + 1) / 2, "params": 10}
            for m, s, v in [("slstm", 0, 1.0), ("slstm", 1, 0.5), ("gpt", 0, 0.0)]]
    text = ex.format_table(rows)
    assert "0.75 [0.50, 1.00]" in text and "0 = chance" in text
    assert "fraction right" in ex.format_table(rows, key="accuracy")


def test_bad_input():
    with pytest.raises(ValueError, match="model"):
        ex.run("formal", models=["rnn"], preset="smoke")
    with pytest.raises(ValueError, match="task"):
        ex.run("formal", tasks=["palindrome"], preset="smoke")
    with pytest.raises(ValueError, match="experiment"):
        ex.run("lm", preset="smoke")
    assert ex.main(["formal", "--models", "rnn", "--preset", "smoke"]) == 2
    with pytest.raises(ValueError, match="task"):
        ex.evaluate_mqar(lambda x: x, get_task("parity"))
