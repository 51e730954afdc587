"""Chapter 14's parity claims: the hand-set one-unit DeltaNet with eigenvalue -1 solves parity at every length;
limited to [0, 1] it cannot, and the best one-unit [0, 1] model falls towards chance; the experiment runs."""

import json

import numpy as np
import pytest

from xlstm_edu import linear_rnn_parity as lp

LENGTHS = (1, 2, 3, 7, 40, 41, 100, 256, 513, 1024)


def test_handset_deltanet_solves_parity_at_every_length():
    ev = lp.evaluate_handset(LENGTHS, beta_one=2.0, per_length=64, seed=3)
    assert ev["eigenvalue_on_one"] == -1.0
    assert all(acc == 1.0 for acc in ev["per_length"].values()), ev["per_length"]
    assert all(ev["all_ones_right"].values())
    # the state is the running parity itself, exactly (0 and 1 are exact in floating point)
    bits = np.random.default_rng(0).integers(0, 2, size=(8, 1024))
    np.testing.assert_array_equal(lp.handset_state(bits), np.cumsum(bits, axis=-1) % 2)


def test_handset_limited_to_nonnegative_eigenvalues_fails():
    """β on a 1 limited to 1 (eigenvalue 0): every 1 resets the state to 1/2, so the answer no longer depends on
    how many ones came before. On the all-ones strings it gives one answer for every length."""
    ev = lp.evaluate_handset(LENGTHS, beta_one=1.0, per_length=256, seed=3)
    long = [ev["per_length"][str(n)] for n in LENGTHS if n >= 40]
    assert max(long) < 0.6 and min(long) > 0.4
    answers = {n: lp.handset_state(np.ones((1, n), np.int64), 1.0)[0, -1] for n in range(1, 30)}
    assert len(set(answers.values())) == 1


@pytest.mark.parametrize("seed", range(20))
def test_nonnegative_transitions_give_monotone_states_on_repeated_input(seed):
    """The heart of the argument: with a ∈ [0, 1], s_t = a s_{t-1} + b on a repeated symbol moves
    monotonically, so a threshold read-out changes its answer at most once; a = -1 alternates forever."""
    rng = np.random.default_rng(seed)
    a1, b1 = rng.uniform(0, 1), rng.normal()
    # row t: 200 - t zeros (a no-op with a(0) = 1, b(0) = 0), then t ones: its final state is s after t ones
    bits = (np.arange(200)[None, :] >= 200 - np.arange(1, 201)[:, None]).astype(np.int64)
    s = lp._one_unit_states(bits, np.array([1.0]), np.array([a1]), np.array([0.0]), np.array([b1]))[0]
    d = np.diff(s)
    assert np.all(d >= -1e-12) or np.all(d <= 1e-12)
    theta = rng.normal() * abs(b1)
    answers = s > theta
    assert np.count_nonzero(answers[1:] != answers[:-1]) <= 1


def brute_force_count_rule(n):
    bits = (np.arange(2 ** n)[:, None] >> np.arange(n)) & 1
    k, y = bits.sum(1), bits.sum(1) % 2
    best = 0.0
    for theta in range(-1, n + 1):
        acc = np.mean((k > theta) == (y == 1))
        best = max(best, acc, 1 - acc)
    return best


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8])
def test_count_rule_accuracy(n):
    assert lp.count_rule_accuracy(n) == pytest.approx(brute_force_count_rule(n), abs=1e-12)


def test_count_rule_falls_towards_chance():
    acc = [lp.count_rule_accuracy(n) for n in (1, 2, 10, 100, 1000)]
    assert acc[0] == 1.0 and acc[1] == 0.75
    assert all(x > y for x, y in zip(acc, acc[1:]))
    assert acc[-1] == pytest.approx(0.5 + 1 / np.sqrt(2 * np.pi * 1000), abs=2e-3)


@pytest.mark.parametrize("n", [2, 3, 6])
def test_best_nonnegative_one_unit_model(n):
    """Exact search (all 2^n strings): the best [0, 1] model is no better than counting ones, and below 1;
    the same search allowed to go down to -1 finds a perfect model."""
    best = lp.best_one_unit_accuracy(n, grid=6, angles=8)
    assert best["exact"] and 0.5 < best["accuracy"] < 1.0
    assert best["accuracy"] == pytest.approx(lp.count_rule_accuracy(n), abs=1e-12)
    assert 0.0 <= best["a0"] <= 1.0 and 0.0 <= best["a1"] <= 1.0
    signed = lp.best_one_unit_accuracy(n, lowest=-1.0, grid=3, angles=8)
    assert signed["accuracy"] == 1.0 and -1.0 in (signed["a0"], signed["a1"])


def test_best_one_unit_on_long_strings_is_scored_on_fresh_strings():
    best = lp.best_one_unit_accuracy(64, grid=3, angles=4, num=512)
    assert not best["exact"] and best["accuracy"] < 0.65
    signed = lp.best_one_unit_accuracy(64, lowest=-1.0, grid=3, angles=4, num=512)
    assert signed["accuracy"] == 1.0


def test_bad_input():
    with pytest.raises(ValueError, match="bits: expected values 0 or 1"):
        lp.handset_state(np.array([0, 2, 1]))
    with pytest.raises(ValueError, match=r"beta_one: expected a number in \[0, 2\]"):
        lp.handset_inputs(np.array([0, 1]), beta_one=3)
    with pytest.raises(ValueError, match=r"lowest: expected"):
        lp.best_one_unit_accuracy(4, lowest=-2)
    with pytest.raises(ValueError, match="length: expected an integer >= 1"):
        lp.count_rule_accuracy(0)
    with pytest.raises(ValueError, match="model: expected one of"):
        lp.run(["gru"], preset="smoke", verbose=False)
    with pytest.raises(ValueError, match="unknown setting"):
        lp.run(["mlstm"], preset="smoke", verbose=False, stepz=3)


def test_split_models():
    assert lp.split_models("deltanet[0,1], deltanet[-1,1],mlstm") == ["deltanet[0,1]", "deltanet[-1,1]", "mlstm"]


def test_smoke_run_writes_json_and_png(tmp_path):
    js, png = tmp_path / "r.json", tmp_path / "r.png"
    rc = lp.main(["--preset", "smoke", "--seeds", "1", "--models", "deltanet[-1,1],decay[0,1],mlstm",
                  "--json", str(js), "--png", str(png)])
    assert rc == 0 and png.stat().st_size > 1000
    out = json.loads(js.read_text())
    assert out["command"].startswith("python -m xlstm_edu.linear_rnn_parity --preset smoke")
    assert "code_version" in out and len(out["load_average_start"]) == 3
    assert [r["model"] for r in out["runs"]] == ["deltanet[-1,1]", "decay[0,1]", "mlstm"]
    r = out["runs"][0]
    assert set(r["per_length"]) == {"5", "40", "41", "256"} and r["steps"] == 3
    assert r["eigenvalues"]["min"] >= -1 and out["runs"][2]["eigenvalues"] is None
    assert out["handset"][0]["accuracy"] == 1.0
    assert "DeltaNet [-1, 1]" in lp.format_table(out)


def test_cli_error_exit_code(capsys):
    assert lp.main(["--preset", "smoke", "--models", "gru"]) == 2
    assert "model: expected one of" in capsys.readouterr().err
