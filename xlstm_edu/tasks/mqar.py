"""Multi-Query Associative Recall (MQAR; the paper's Fig. 5 and App. B.1.2, after Arora et al.'s "Zoology").

A sequence first lists ``num_pairs`` key-value pairs, then asks for the values of all keys again, in random
order, at random later positions; everything else is a filler token::

    k1 v1 k2 v2 k3 v3 k4 v4 . . k3 . k1 . . k4 . k2 .        (context_length = 20, num_pairs = 4)
                                ^v3   ^v1     ^v4   ^v2       <- the answer is due *at* the query key

A model must store every pair while reading and look one up per query: a test of memory capacity, where
the paper finds that matrix memory (mLSTM) beats a scalar memory (sLSTM, LSTM).  The paper uses a
vocabulary of 8192 tokens and the settings (context length, pairs) = (64, 4), (128, 8), (256, 16); on a CPU
we keep the settings and shrink the vocabulary.

Vocabulary of size V: token 0 is the filler, tokens ``1 .. num_keys`` are keys and the remaining
``V - 1 - num_keys`` tokens are values (``num_keys = (V - 1) // 2``).  Within one sequence the keys are distinct
and so are the values (drawn without replacement, as in Zoology).  Targets ``y`` are ``IGNORE`` everywhere
except at the query positions, where they hold the value; accuracy is the fraction of queries whose
highest-scoring *value* token is the right one, so chance is ``1 / num_values``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xlstm_edu._validate import check_positive_int
from xlstm_edu.tasks.formal import IGNORE, _check_rng

PAPER_SETTINGS = ((64, 4), (128, 8), (256, 16))  # (context length, key-value pairs), Fig. 5
PAPER_VOCAB_SIZE = 8192


@dataclass(frozen=True)
class MQAR:
    """One MQAR setting; ``sample(rng, batch_size)`` draws a batch."""

    context_length: int = 64
    num_pairs: int = 4
    vocab_size: int = 128

    def __post_init__(self):
        check_positive_int(self.context_length, "context_length")
        check_positive_int(self.num_pairs, "num_pairs")
        check_positive_int(self.vocab_size, "vocab_size")
        if 3 * self.num_pairs > self.context_length:
            raise ValueError(
                f"context_length: expected at least 3 * num_pairs = {3 * self.num_pairs} positions "
                f"(pairs, then one query each), got {self.context_length}")
        if min(self.num_keys, self.num_values) < self.num_pairs:
            raise ValueError(
                f"vocab_size: expected room for {self.num_pairs} distinct keys and values "
                f"(vocab_size >= {2 * self.num_pairs + 1}), got {self.vocab_size}")

    @property
    def name(self) -> str:
        return f"mqar_{self.context_length}_{self.num_pairs}"

    @property
    def num_keys(self) -> int:
        return (self.vocab_size - 1) // 2

    @property
    def num_values(self) -> int:
        return self.vocab_size - 1 - self.num_keys

    @property
    def value_offset(self) -> int:
        """Token id of value 0."""
        return 1 + self.num_keys

    @property
    def chance(self) -> float:
        return 1.0 / self.num_values

    def sample(self, rng: np.random.Generator, batch_size: int):
        """``x`` (B, context_length) tokens and ``y`` (B, context_length) targets (``IGNORE`` except at queries)."""
        _check_rng(rng)
        B = check_positive_int(batch_size, "batch_size")
        L, N = self.context_length, self.num_pairs
        rows = np.arange(B)[:, None]
        keys = 1 + rng.random((B, self.num_keys)).argsort(axis=1)[:, :N]  # distinct keys per row
        values = self.value_offset + rng.random((B, self.num_values)).argsort(axis=1)[:, :N]
        x = np.zeros((B, L), dtype=np.int64)
        x[:, 0:2 * N:2] = keys
        x[:, 1:2 * N:2] = values
        # queries: every key once, in random order, at random distinct positions after the pairs
        order = rng.random((B, N)).argsort(axis=1)
        slots = 2 * N + np.sort(rng.random((B, L - 2 * N)).argsort(axis=1)[:, :N], axis=1)
        x[rows, slots] = keys[rows, order]
        y = np.full((B, L), IGNORE, dtype=np.int64)
        y[rows, slots] = values[rows, order]
        return x, y

    def value_logits(self, logits):
        """Scores of the value tokens: (..., V) -> (..., num_values); works for numpy and torch."""
        return logits[..., self.value_offset: self.value_offset + self.num_values]
