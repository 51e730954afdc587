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
    for _ in range(50):
        xa, ya, la = a.batch(4)
        xb, yb, lb = b.batch(4)
        assert np.array_equal(xa, xb) and np.array_equal(ya, yb)
        lengths.add(xa.shape[1])
    assert lengths <= set(range(3, 10)) and len(lengths) > 3
    c = FormalGenerator("parity", (3, 9), seed=8)
    assert any(not np.array_equal(a.batch(4)[0], c.batch(4)[0]) for _ in range(5))


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


# ---- MQAR ----
@pytest.mark.parametrize("L,N", PAPER_SETTINGS)
def test_mqar_answers_recomputed_with_a_dict(L, N):
    task = MQAR(L, N, vocab_size=64)
    x, y = task.sample(np.random.default_rng(L), 32, )
    assert x.shape == y.shape == (32, L)
    for row, tgt in zip(x, y):
        pairs = row[: 2 * N]
        keys, values = pairs[0::2], pairs[1::2]
        assert len(set(keys)) == N and len(set(values)) == N
        assert all(1 <= k <= task.num_keys for k in keys)
        assert all(task.value_offset <= v < task.vocab_size for v in values)
        memory = dict(zip(keys.tolist(), values.tolist()))
        asked = [(p, int(row[p])) for p in range(2 * N, L) if row[p] != 0]
        assert sorted(k for _, k in asked) == sorted(memory)  # every key asked exactly once
        for p in range(L):
            expected = memory[int(row[p])] if p >= 2 * N and row[p] != 0 else IGNORE
            assert tgt[p] == expected
    # value_logits picks the value slice: a perfect scorer is read back as the right answer
    logits = np.zeros((32, L, task.vocab_size))
    mask = y != IGNORE
    logits[mask, y[mask]] = 1.0
    pred = task.value_logits(logits).argmax(-1) + task.value_offset
    assert np.array_equal(pred[mask], y[mask])


def test_mqar_seeded_and_bad_input():
    t = MQAR(64, 4, 32)
    assert np.array_equal(t.sample(np.random.default_rng(3), 5)[0], t.sample(np.random.default_rng(3), 5)[0])
    assert abs(t.chance - 1 / t.num_values) < 1e-12 and t.num_keys + t.num_values == 31
    with pytest.raises(ValueError, match="context_length"):
        MQAR(10, 4, 64)
    with pytest.raises(ValueError, match="vocab_size"):
        MQAR(64, 16, 20)
    with pytest.raises(ValueError, match="num_pairs"):
        MQAR(64, 0, 64)
