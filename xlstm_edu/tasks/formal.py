"""Formal-language tasks from the Chomsky hierarchy (the paper's Fig. 4 and App. B.1.1).

The xLSTM paper takes its formal-language tasks from Deletang et al., "Neural Networks and the Chomsky
Hierarchy" (ICLR 2023): a model reads a string and, at the last token, names one of a few classes. Models are
trained on short strings (length <= 40) and tested on longer ones (40-256): a model that learned the *rule*
generalizes in length, one that learned a shortcut for short strings does not.

Every task here is a small object with

* an input alphabet (``task.symbols``) and a set of classes (``task.classes``),
* ``task.sample(rng, batch_size, length) -> (tokens (B, L) int64, labels (B,) int64)``: random strings of one
  length and their classes, drawn from a ``numpy.random.Generator``,
* ``task.chance``: the accuracy of guessing (1 / number of classes; every task here draws its classes evenly,
  or close to it, so that this is also the accuracy of always answering the most frequent class).

A language model sees one vocabulary: tokens ``0 .. len(symbols)-1`` are the input symbols and tokens
``len(symbols) + c`` are the answers (class ``c``); :func:`lm_batch` builds the ``(x, y)`` pair a next-token
trainer wants (``y = IGNORE`` everywhere except the last position, which holds the answer token), and
:func:`class_logits` picks the answer logits back out of a model's output.

Accuracy is rescaled as in the paper so that chance is 0 and perfect is 1:
``scaled = (accuracy - chance) / (1 - chance)`` (:func:`scaled_accuracy`; below-chance models score below 0).

Tasks (Deletang et al.'s definitions; all four are regular languages, majority is a counter language):

===================  =========================  ======================================================
name                 input                      class
===================  =========================  ======================================================
``parity``           bits ``0``/``1``           number of ``1`` s mod 2
``even_pairs``       letters ``a``/``b``        is the number of ``ab`` and ``ba`` pairs even?
``cycle_navigation`` moves ``0`` (stay), ``+``  position on a cycle of 5 after the moves, starting at 0
                     (+1), ``-`` (-1)
``modular_arith``    ``d op d op ... d``, digits  value mod 5, ``*`` before ``+``/``-`` (no brackets)
                     0-4, ops ``+ - *``
``majority``         letters from a small        the most frequent letter (strings with a tie are not
                     alphabet (default 4)        drawn, so exactly one answer is right)
===================  =========================  ======================================================
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xlstm_edu._validate import check_choice, check_positive_int

IGNORE = -100  # the target value PyTorch's cross_entropy skips by default (ignore_index=-100)

TRAIN_LENGTHS = (1, 40)  # the paper trains on strings of length <= 40 ...
TEST_LENGTHS = (41, 256)  # ... and tests length generalization on 40-256


def _check_rng(rng):
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng: expected a numpy.random.Generator (np.random.default_rng(seed)), got {type(rng).__name__}")


@dataclass(frozen=True)
class FormalTask:
    """Base class: subclasses set ``name``, ``symbols``, ``classes`` and implement ``_sample``."""

    name: str = ""
    symbols: tuple = ()
    classes: tuple = ()
    chomsky: str = "regular"

    @property
    def num_symbols(self) -> int:
        return len(self.symbols)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def vocab_size(self) -> int:
        """Input symbols plus one answer token per class."""
        return self.num_symbols + self.num_classes

    @property
    def chance(self) -> float:
        return 1.0 / self.num_classes

    def valid_length(self, length: int) -> int:
        """The string length actually drawn for a requested ``length`` (most tasks: ``length`` itself)."""
        return length

    def sample(self, rng: np.random.Generator, batch_size: int, length: int):
        """``batch_size`` random strings of ``valid_length(length)`` tokens and their classes."""
        _check_rng(rng)
        batch_size = check_positive_int(batch_size, "batch_size")
        length = check_positive_int(length, "length")
        tokens, labels = self._sample(rng, batch_size, self.valid_length(length))
        return tokens.astype(np.int64), labels.astype(np.int64)

    def _sample(self, rng, batch_size, length):  # pragma: no cover - abstract
        raise NotImplementedError

    def prefix_labels(self, tokens) -> np.ndarray:
        """The answer for every prefix: (B, L) int64, ``IGNORE`` where a prefix has no answer (an operator in
        modular arithmetic, a tie in majority). The last column equals the labels ``sample`` returned."""
        tokens = np.asarray(tokens)
        if tokens.ndim != 2 or not np.issubdtype(tokens.dtype, np.integer):
            raise ValueError(f"tokens: expected an integer array (B, L), got {tokens.dtype} {tokens.shape}")
        if tokens.size and (tokens.min() < 0 or tokens.max() >= self.num_symbols):
            raise ValueError(f"tokens: expected symbols in [0, {self.num_symbols}), got [{tokens.min()}, {tokens.max()}]")
        return self._prefix_labels(tokens.astype(np.int64)).astype(np.int64)

    def _prefix_labels(self, tokens):  # pragma: no cover - abstract
        raise NotImplementedError

    def to_string(self, tokens) -> str:
        """Human-readable form of one string of tokens, e.g. ``'0110'`` or ``'3 + 1 * 4'``."""
        sep = " " if max(len(s) for s in self.symbols) > 1 or self.name == "modular_arith" else ""
        return sep.join(self.symbols[int(t)] for t in tokens)


@dataclass(frozen=True)
class Parity(FormalTask):
    """Is the number of 1s even (class 0) or odd (class 1)?  Needs a state that flips: the paper's showcase."""

    name: str = "parity"
    symbols: tuple = ("0", "1")
    classes: tuple = ("even", "odd")

    def _sample(self, rng, batch_size, length):
        bits = rng.integers(0, 2, size=(batch_size, length))
        return bits, bits.sum(axis=1) % 2

    def _prefix_labels(self, tokens):
        return np.cumsum(tokens, axis=1) % 2


@dataclass(frozen=True)
class EvenPairs(FormalTask):
    """Is the number of ``ab`` plus ``ba`` pairs (adjacent, overlapping) even?  (True iff first == last letter.)"""

    name: str = "even_pairs"
    symbols: tuple = ("a", "b")
    classes: tuple = ("odd", "even")

    def _sample(self, rng, batch_size, length):
        s = rng.integers(0, 2, size=(batch_size, length))
        pairs = (s[:, 1:] != s[:, :-1]).sum(axis=1)  # every ab or ba is one change of letter
        return s, (pairs % 2 == 0).astype(np.int64)

    def _prefix_labels(self, tokens):
        return (tokens == tokens[:, :1]).astype(np.int64)  # an even number of changes: back at the first letter


@dataclass(frozen=True)
class CycleNavigation(FormalTask):
    """Walk on a cycle of ``cycle_length`` positions from 0: ``0`` stays, ``+`` steps right, ``-`` steps left."""

    name: str = "cycle_navigation"
    symbols: tuple = ("0", "+", "-")
    classes: tuple = ("0", "1", "2", "3", "4")

    def _sample(self, rng, batch_size, length):
        moves = rng.integers(0, 3, size=(batch_size, length))
        step = np.array([0, 1, -1])[moves]
        return moves, step.sum(axis=1) % len(self.classes)

    def _prefix_labels(self, tokens):
        return np.cumsum(np.array([0, 1, -1])[tokens], axis=1) % len(self.classes)


@dataclass(frozen=True)
class ModularArithmetic(FormalTask):
    """Value of ``d op d op ... d`` modulo 5 with digits 0-4 and ops ``+ - *``; ``*`` binds tighter (no brackets).

    Strings have odd length (digit, op, digit, ...); an even requested length is shortened by one, as in
    Deletang et al.
    """

    name: str = "modular_arith"
    symbols: tuple = ("0", "1", "2", "3", "4", "+", "-", "*")
    classes: tuple = ("0", "1", "2", "3", "4")

    def valid_length(self, length: int) -> int:
        return length if length % 2 == 1 else length - 1

    def _sample(self, rng, batch_size, length):
        mod = len(self.classes)
        n_ops = length // 2
        digits = rng.integers(0, mod, size=(batch_size, n_ops + 1))
        ops = rng.integers(0, 3, size=(batch_size, n_ops))  # 0: +, 1: -, 2: *
        tokens = np.empty((batch_size, length), dtype=np.int64)
        tokens[:, 0::2] = digits
        tokens[:, 1::2] = mod + ops
        # Evaluate with precedence in one left-to-right pass: keep the finished sum and the running product
        # of the current term (with its sign); '*' extends the term, '+'/'-' closes it and starts a new one.
        total = np.zeros(batch_size, dtype=np.int64)
        term = digits[:, 0] % mod
        for j in range(n_ops):
            d = digits[:, j + 1]
            mul = ops[:, j] == 2
            sign = np.where(ops[:, j] == 1, -1, 1)
            total = np.where(mul, total, (total + term) % mod)
            term = np.where(mul, (term * d) % mod, (sign * d) % mod)
        return tokens, (total + term) % mod

    def _prefix_labels(self, tokens):
        # the same left-to-right pass as in _sample, recording the value after every digit
        mod = len(self.classes)
        B, L = tokens.shape
        out = np.full((B, L), IGNORE, dtype=np.int64)
        total = np.zeros(B, dtype=np.int64)
        term = tokens[:, 0] % mod
        out[:, 0] = term
        for p in range(2, L, 2):
            op, d = tokens[:, p - 1] - mod, tokens[:, p]
            mul = op == 2
            sign = np.where(op == 1, -1, 1)
            total = np.where(mul, total, (total + term) % mod)
            term = np.where(mul, (term * d) % mod, (sign * d) % mod)
            out[:, p] = (total + term) % mod
        return out


@dataclass(frozen=True)
class Majority(FormalTask):
    """Which letter occurs most often?  Strings whose top count is shared by two letters are re-drawn."""

    name: str = "majority"
    symbols: tuple = ("a", "b", "c", "d")
    classes: tuple = ("a", "b", "c", "d")
    chomsky: str = "counter"

    def _sample(self, rng, batch_size, length):
        k = len(self.symbols)
        out = np.empty((0, length), dtype=np.int64)
        while len(out) < batch_size:  # rejection sampling keeps every class equally likely (chance = 1/k)
            s = rng.integers(0, k, size=(2 * batch_size, length))
            counts = np.stack([(s == c).sum(axis=1) for c in range(k)], axis=1)
            top = counts.max(axis=1)
            unique = (counts == top[:, None]).sum(axis=1) == 1
            out = np.concatenate([out, s[unique]])
        out = out[:batch_size]
        counts = np.stack([(out == c).sum(axis=1) for c in range(k)], axis=1)
        return out, counts.argmax(axis=1)

    def _prefix_labels(self, tokens):
        k = len(self.symbols)
        counts = np.cumsum(tokens[:, :, None] == np.arange(k), axis=1)  # (B, L, k) counts of every prefix
        unique = (counts == counts.max(axis=2, keepdims=True)).sum(axis=2) == 1
        return np.where(unique, counts.argmax(axis=2), IGNORE)


TASKS = {
    "parity": Parity(),
    "even_pairs": EvenPairs(),
    "cycle_navigation": CycleNavigation(),
    "modular_arith": ModularArithmetic(),
    "majority": Majority(),
}


def get_task(name: str) -> FormalTask:
    """The task called ``name`` (one of ``TASKS``)."""
    check_choice(name, "task", TASKS)
    return TASKS[name]


SUPERVISION = ("last", "all")


def lm_batch(task: FormalTask, rng: np.random.Generator, batch_size: int, length: int, supervision: str = "last"):
    """A batch for a next-token trainer: ``x`` (B, L) the strings and ``y`` (B, L) the answer tokens
    ``num_symbols + class``. Also returns the class labels of the whole strings (B,).

    ``supervision="last"`` (the paper's setting): ``y`` is ``IGNORE`` everywhere except the last position.
    ``supervision="all"``: ``y`` holds the answer for every prefix (``task.prefix_labels``), a denser training
    signal for small budgets; the test is the same (the answer at the end of a longer string).
    """
    check_choice(supervision, "supervision", SUPERVISION)
    tokens, labels = task.sample(rng, batch_size, length)
    if supervision == "last":
        y = np.full_like(tokens, IGNORE)
        y[:, -1] = task.num_symbols + labels
    else:
        pl = task.prefix_labels(tokens)
        y = np.where(pl == IGNORE, IGNORE, task.num_symbols + pl)
    return tokens, y, labels


def sample_length(rng: np.random.Generator, length_range=TRAIN_LENGTHS) -> int:
    """One length drawn uniformly from the closed range ``(lo, hi)``."""
    lo, hi = _check_range(length_range, "length_range")
    return int(rng.integers(lo, hi + 1))


def _check_range(length_range, name):
    try:
        lo, hi = (int(v) for v in length_range)
    except Exception:
        raise ValueError(f"{name}: expected a pair (min_length, max_length), got {length_range!r}") from None
    if lo < 1 or hi < lo:
        raise ValueError(f"{name}: expected 1 <= min_length <= max_length, got {length_range!r}")
    return lo, hi


def batch_rng(seed: int, split: str, step: int) -> np.random.Generator:
    """The generator of one batch, a pure function of ``(seed, split, step)``: what a trainer needs to resume
    bit-exactly and to evaluate on fixed batches (the course's trainer asks for training batches with steps
    0, 1, ... and for evaluation batches with steps -1, -2, ...)."""
    if split not in ("train", "val", "test"):
        raise ValueError(f"split: expected 'train', 'val' or 'test', got {split!r}")
    return np.random.default_rng([int(seed), ("train", "val", "test").index(split), abs(int(step)), int(step < 0)])


class FormalGenerator:
    """Seeded batches of one formal task for a next-token trainer; every batch has one length, drawn uniformly
    from ``length_range``. A batch is a pure function of ``(seed, split, step)``:

    >>> gen = FormalGenerator("parity", length_range=(1, 40), seed=0, supervision="all")
    >>> x, y, labels = gen.batch("train", 0, 32)   # x, y: (32, L) int64 for some 1 <= L <= 40; labels (32,)

    ``x`` holds the strings, ``y`` the answer tokens (see :func:`lm_batch`), ``labels`` the class of each whole
    string. ``get_batch(batch_size)`` gives the trainer's ``get_batch(split, step) -> (x, y)`` (numpy arrays).
    """

    def __init__(self, task, length_range=TRAIN_LENGTHS, seed: int = 0, supervision: str = "last"):
        check_choice(supervision, "supervision", SUPERVISION)
        self.supervision = supervision
        self.task = get_task(task) if isinstance(task, str) else task
        if not isinstance(self.task, FormalTask):
            raise ValueError(f"task: expected a task name or a FormalTask, got {type(task).__name__}")
        self.length_range = _check_range(length_range, "length_range")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed: expected an integer >= 0, got {seed!r}")
        self.seed = int(seed)

    def batch(self, split: str, step: int, batch_size: int):
        """``(x, y, labels)`` of batch ``step`` of ``split`` (the same arguments always give the same batch)."""
        rng = batch_rng(self.seed, split, step)
        return lm_batch(self.task, rng, batch_size, sample_length(rng, self.length_range), self.supervision)

    def get_batch(self, batch_size: int):
        """The trainer's ``get_batch(split, step) -> (x, y)`` with batches of ``batch_size`` strings."""
        batch_size = check_positive_int(batch_size, "batch_size")

        def get_batch(split, step):
            return self.batch(split, step, batch_size)[:2]

        return get_batch


def eval_lengths(num: int, length_range=TEST_LENGTHS) -> list[int]:
    """``num`` evenly spaced test lengths covering ``length_range`` (both ends included)."""
    num = check_positive_int(num, "num")
    lo, hi = _check_range(length_range, "length_range")
    return sorted({int(round(v)) for v in np.linspace(lo, hi, num)})


def scaled_accuracy(accuracy, chance):
    """The paper's rescaling: ``(accuracy - chance) / (1 - chance)``; 0 = chance, 1 = perfect."""
    if not 0 <= chance < 1:
        raise ValueError(f"chance: expected 0 <= chance < 1, got {chance!r}")
    return (np.asarray(accuracy, dtype=np.float64) - chance) / (1.0 - chance)


def class_logits(task: FormalTask, logits):
    """The answer logits at the last position: (B, S, V) -> (B, num_classes); works for numpy and torch."""
    return logits[:, -1, task.num_symbols: task.num_symbols + task.num_classes]
