"""The task generators: labels recomputed independently (plain Python on the printed strings), shapes,
vocabularies, seeding, the chance rescaling, and clear errors on bad input."""

from collections import Counter

import numpy as np
import pytest

from xlstm_edu.tasks import (
    IGNORE,
    MQAR,
    PAPER_SETTINGS,
    TASKS,
    FormalGenerator,
    class_logits,
    eval_lengths,
    get_task,
    lm_batch,
    scaled_accuracy,
)


# ---- independent reference labels: written from the task definitions, on strings, without numpy ----
def ref_parity(s: str) -> int:
    return s.count("1") % 2


def ref_even_pairs(s: str) -> int:
    pairs = sum(1 for a, b in zip(s, s[1:]) if a + b in ("ab", "ba"))
    return int(pairs % 2 == 0)  # class 1 = "even"


def ref_cycle(s: str) -> int:
    pos = 0
    for c in s:
        pos = (pos + {"0": 0, "+": 1, "-": -1}[c]) % 5
    return pos


def ref_modular(s: str) -> int:
    # Python's own parser gives * precedence over + and -; ints are exact, so reduce at the end
    return eval(s) % 5  # noqa: S307 - the string only holds digits 0-4, '+', '-', '*' and spaces


def ref_majority(s: str) -> int:
    (top, n), *rest = Counter(s).most_common()
    assert not rest or rest[0][1] < n, "the generator must not produce ties"
    return "abcd".index(top)


REFERENCE = {
    "parity": ref_parity,
    "even_pairs": ref_even_pairs,
    "cycle_navigation": ref_cycle,
    "modular_arith": ref_modular,
    "majority": ref_majority,
}


@pytest.mark.parametrize("name", sorted(TASKS))
def test_labels_match_independent_reference(name):
    task = get_task(name)
    rng = np.random.default_rng(123)
    checked = 0
    for length in (1, 2, 3, 7, 40, 41, 100, 256):
        tokens, labels = task.sample(rng, 64, length)
        assert tokens.dtype == np.int64 and labels.dtype == np.int64
        assert tokens.shape == (64, task.valid_length(length))
        assert tokens.min() >= 0 and tokens.max() < task.num_symbols
        for row, lab in zip(tokens, labels):
            assert lab == REFERENCE[name](task.to_string(row)), (name, task.to_string(row))
            checked += 1
    assert checked == 8 * 64


@pytest.mark.parametrize("name", sorted(TASKS))
def test_prefix_labels_match_reference_on_every_prefix(name):
    task = get_task(name)
    rng = np.random.default_rng(5)
    for length in (1, 5, 17, 40):
        tokens, labels = task.sample(rng, 16, length)
        pl = task.prefix_labels(tokens)
        assert pl.shape == tokens.shape and np.array_equal(pl[:, -1], labels)
        for row, prow in zip(tokens, pl):
            for p in range(len(row)):
                prefix = task.to_string(row[: p + 1])
                if name == "modular_arith" and p % 2 == 1:  # ends on an operator: no answer
                    assert prow[p] == IGNORE
                elif name == "majority" and len(Counter(prefix).most_common(2)) == 2 and \
                        Counter(prefix).most_common(2)[0][1] == Counter(prefix).most_common(2)[1][1]:
                    assert prow[p] == IGNORE  # a tie: no single answer
                else:
                    assert prow[p] == REFERENCE[name](prefix), (name, prefix)


@pytest.mark.parametrize("name", sorted(TASKS))
def test_dense_supervision_targets(name):
    task = get_task(name)
    x, y, labels = lm_batch(task, np.random.default_rng(2), 8, 21, supervision="all")
    pl = task.prefix_labels(x)
    assert np.array_equal(y == IGNORE, pl == IGNORE)
    assert np.array_equal(y[pl != IGNORE], task.num_symbols + pl[pl != IGNORE])
    assert np.array_equal(y[:, -1], task.num_symbols + labels)
    with pytest.raises(ValueError, match="supervision"):
        lm_batch(task, np.random.default_rng(2), 8, 21, supervision="some")


def test_modular_arith_examples_from_deletang():
    # the examples in Deletang et al.'s task description (mod 5)
    assert ref_modular("1 + 2 * 3") == 2 and ref_modular("1 - 1 - 1") == 4 and ref_modular("0 * 1 + 4 * 3 - 2") == 0
    task = get_task("modular_arith")
    assert task.valid_length(40) == 39 and task.valid_length(41) == 41
    tokens, _ = task.sample(np.random.default_rng(0), 4, 9)
    assert all(task.to_string(r).split()[0] in "01234" for r in tokens)  # digit, op, digit, ...


@pytest.mark.parametrize("name", sorted(TASKS))
def test_classes_are_balanced_so_chance_is_one_over_k(name):
    task = get_task(name)
    _, labels = task.sample(np.random.default_rng(1), 6000, 33)
    freq = np.bincount(labels, minlength=task.num_classes) / labels.size
    assert abs(task.chance - 1 / task.num_classes) < 1e-12
    assert np.all(np.abs(freq - task.chance) < 0.04), freq


def test_lm_batch_targets_and_class_logits():
    task = get_task("cycle_navigation")
    x, y, labels = lm_batch(task, np.random.default_rng(0), 8, 12)
    assert x.shape == y.shape == (8, 12)
    assert np.all(y[:, :-1] == IGNORE) and np.all(y[:, -1] == task.num_symbols + labels)
    assert y[:, -1].max() < task.vocab_size
    # a "model" that puts its largest logit on the answer token is read back as the right class
    logits = np.zeros((8, 12, task.vocab_size))
    logits[np.arange(8), -1, y[:, -1]] = 5.0
    assert np.array_equal(class_logits(task, logits).argmax(-1), labels)


def test_generator_is_seeded_and_respects_length_range():
    a, b = FormalGenerator("parity", (3, 9), seed=7), FormalGenerator("parity", (3, 9), seed=7)
    lengths = set()
    for step in range(50):
        xa, ya, la = a.batch("train", step, 4)
        xb, yb, lb = b.batch("train", step, 4)
        assert np.array_equal(xa, xb) and np.array_equal(ya, yb) and np.array_equal(la, lb)
        lengths.add(xa.shape[1])
    assert lengths <= set(range(3, 10)) and len(lengths) > 3
    c = FormalGenerator("parity", (3, 9), seed=8)
    assert any(not np.array_equal(a.batch("train", s, 4)[0], c.batch("train", s, 4)[0]) for s in range(5))
    # a batch is a pure function of (seed, split, step): asking again, or out of order, gives the same batch
    x7, _, _ = a.batch("train", 7, 4)
    assert np.array_equal(a.batch("train", 7, 4)[0], x7)
    same = [np.array_equal(a.batch("val", s, 4)[0], a.batch("train", s, 4)[0]) for s in range(10)]
    assert not any(same)  # the validation stream is another stream


def test_generator_get_batch_is_what_the_runner_trains_on():
    gen = FormalGenerator("majority", seed=1, supervision="all")
    get_batch = gen.get_batch(4)
    x, y = get_batch("train", 3)
    assert np.array_equal(x, gen.batch("train", 3, 4)[0]) and x.shape[1] <= 40
    pl = get_task("majority").prefix_labels(x)
    assert np.array_equal(y == IGNORE, pl == IGNORE)  # dense answers where a prefix has one
    x_last, y_last = FormalGenerator("majority", seed=1, supervision="last").get_batch(4)("train", 3)
    assert np.array_equal(x_last, x) and (y_last[:, :-1] == IGNORE).all() and (y_last[:, -1] >= 4).all()
    with pytest.raises(ValueError, match="batch_size"):
        gen.get_batch(0)
    with pytest.raises(ValueError, match="split"):
        gen.batch("dev", 0, 4)
    with pytest.raises(ValueError, match="seed"):
        FormalGenerator("parity", seed=-1)


def test_eval_lengths_and_scaled_accuracy():
    ls = eval_lengths(8)
    assert ls[0] == 41 and ls[-1] == 256 and len(ls) == 8 and ls == sorted(ls)
    assert scaled_accuracy(0.5, 0.5) == 0 and scaled_accuracy(1.0, 0.2) == 1
    assert np.isclose(scaled_accuracy(0.6, 0.2), 0.5)
    assert scaled_accuracy(0.25, 0.5) < 0  # below chance stays visible


def test_formal_bad_input():
    with pytest.raises(ValueError, match="task"):
        get_task("palindrome")
    with pytest.raises(ValueError, match="length_range"):
        FormalGenerator("parity", (10, 5))
    with pytest.raises(ValueError, match="rng"):
        get_task("parity").sample(0, 4, 5)
    with pytest.raises(ValueError, match="length"):
        get_task("parity").sample(np.random.default_rng(0), 4, 0)
    with pytest.raises(ValueError, match="chance"):
        scaled_accuracy(0.5, 1.0)
    with pytest.raises(ValueError, match="tokens"):
        get_task("parity").prefix_labels(np.array([[0, 2]]))


# ---- MQAR (the Zoology layout) ----
@pytest.mark.parametrize("L,N", PAPER_SETTINGS)
@pytest.mark.parametrize("random_filler", [True, False])
def test_mqar_answers_recomputed_with_a_dict(L, N, random_filler):
    task = MQAR(L, N, vocab_size=64, random_filler=random_filler)
    x, y = task.sample(np.random.default_rng(L), 32)
    assert x.shape == y.shape == (32, L) and x.dtype == y.dtype == np.int64
    assert x.min() >= 0 and x.max() < 64
    for row, tgt in zip(x, y):
        keys, values = row[0:2 * N:2], row[1:2 * N:2]
        assert len(set(keys)) == N and len(set(values)) == N
        assert all(1 <= k < 32 for k in keys) and all(32 <= v < 64 for v in values)
        assert np.array_equal(task.stored_values(row[None])[0], values)
        memory = dict(zip(keys.tolist(), values.tolist()))
        asked = [p for p in range(L) if tgt[p] != IGNORE]
        assert len(asked) == N and min(asked) >= 2 * N
        assert all((p - 2 * N) % 2 == 0 for p in asked)  # a query opens a two-token slot
        assert sorted(int(row[p]) for p in asked) == sorted(memory)  # every key asked exactly once
        for p in asked:
            assert tgt[p] == memory[int(row[p])]
        filler = [int(row[p]) for p in range(2 * N, L) if p not in asked]
        if not random_filler:
            assert set(filler) == {0}
    if random_filler:  # Zoology's random_non_queries: the filler draws from the whole vocabulary
        filler = x[:, 2 * N:][y[:, 2 * N:] == IGNORE]
        assert len(np.unique(filler)) > 50


def test_mqar_query_slots_follow_zoology_power_law():
    """The vectorised draw (Gumbel top-k) matches numpy's sequential choice(replace=False, p=...), which is how
    Zoology's generator draws the query slots."""
    task = MQAR(64, 4, 64)
    p = task.slot_probabilities()
    assert len(p) == task.num_slots == 28 and np.isclose(p.sum(), 1) and np.all(np.diff(p) < 0)
    ref_rng = np.random.default_rng(0)
    n = 6000
    ref = np.zeros(task.num_slots)
    for _ in range(n):
        ref[ref_rng.choice(task.num_slots, size=4, replace=False, p=p)] += 1
    x, y = task.sample(np.random.default_rng(1), n)
    rows, cols = np.nonzero(y != IGNORE)
    ours = np.bincount((cols - 8) // 2, minlength=task.num_slots)
    assert np.all(np.abs(ours / n - ref / n) < 0.03), (ours / n, ref / n)
    assert ours[0] / n > 0.3 and ours[-1] / n < 0.15  # most queries early, some late
    uniform = MQAR(64, 4, 64, power_a=1.0)
    assert np.allclose(uniform.slot_probabilities(), 1 / 28)


def test_mqar_levels_and_batches():
    t = MQAR(64, 4, 32)
    assert t.num_keys == 15 and t.num_values == 16 and t.value_offset == 16
    assert t.chance == 1 / 32 and t.stored_value_level == 1 / 4 and t.in_context_chance == 4 / 16
    gb = t.get_batch(3, seed=5)
    x, y = gb("train", 2)
    assert x.shape == (3, 64) and int((y != IGNORE).sum()) == 12
    assert np.array_equal(gb("train", 2)[0], x) and not np.array_equal(gb("train", 3)[0], x)
    assert not np.array_equal(t.get_batch(3, seed=6)("train", 2)[0], x)


def test_mqar_seeded_and_bad_input():
    t = MQAR(64, 4, 32)
    assert np.array_equal(t.sample(np.random.default_rng(3), 5)[0], t.sample(np.random.default_rng(3), 5)[0])
    with pytest.raises(ValueError, match="context_length"):
        MQAR(15, 4, 64)  # 4 pairs need 8 + 4 slots of 2
    with pytest.raises(ValueError, match="vocab_size"):
        MQAR(64, 16, 20)
    with pytest.raises(ValueError, match="num_pairs"):
        MQAR(64, 0, 64)
    with pytest.raises(ValueError, match="power_a"):
        MQAR(64, 4, 64, power_a=0.0)
    with pytest.raises(ValueError, match="rng"):
        t.sample(3, 4)
