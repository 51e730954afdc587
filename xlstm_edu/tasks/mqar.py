"""Multi-Query Associative Recall (MQAR; the paper's App. B.1.2, Experiment 1 / Fig. 14), generated as in
Arora et al.'s "Zoology" (2023), whose protocol the paper follows.

A sequence first lists ``num_pairs`` key-value pairs, then shows every key once more at a later position; the
model must answer *at* that query key with the value stored under it. Everything else is filler::

    k1 v1 k2 v2 k3 v3 k4 v4  k3 .  k1 .  .  .  k4 .  .  .  .  .  k2 .      (context 28, 4 pairs)
                             ^v3   ^v1         ^v4               ^v2      <- answers due at the query keys

The placement follows Zoology's ``multiquery_ar`` generator:

* keys come from tokens ``1 .. V//2 - 1``, values from ``V//2 .. V - 1`` (V = ``vocab_size``); within one
  sequence the keys are distinct and so are the values;
* the query region after the ``2 * num_pairs`` pair tokens is cut into slots of two tokens; each key is asked
  once, in the first token of a slot, and the slots are drawn without replacement with probability
  proportional to ``power_a * g ** (power_a - 1)`` for the g-th slot (``power_a = 0.01``: nearly ``1/g``, so most
  queries come soon after the pairs and a few come late, like repeated bigrams in text);
* every other position (the filler) holds a random token of the whole vocabulary (Zoology's
  ``random_non_queries=True``): the filler may repeat keys and values, and nothing is asked there.
  ``random_filler=False`` puts token 0 there instead.

Targets ``y`` are ``IGNORE`` everywhere except at the query positions, where they hold the value. A model is
scored on the argmax over the whole vocabulary, as in Zoology: chance is ``1 / vocab_size``, while a model that
has learned the format but not the lookup picks one of the sequence's stored values (``1 / num_pairs`` right),
and a model that only learned to answer with *some* value picks a stored one ``num_pairs / num_values`` of the time.

The paper uses a vocabulary of 8192 tokens, settings (context length, pairs) = (64, 4), (128, 8), (256, 16)
(``PAPER_SETTINGS``) and models of several widths; on a CPU we shrink the vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xlstm_edu._validate import check_positive_int
from xlstm_edu.tasks.formal import IGNORE, _check_rng, batch_rng

PAPER_SETTINGS = ((64, 4), (128, 8), (256, 16))  # (context length, key-value pairs), App. B.1.2 Experiment 1
PAPER_VOCAB_SIZE = 8192
ZOOLOGY_POWER_A = 0.01


@dataclass(frozen=True)
class MQAR:
    """One MQAR setting; ``sample(rng, batch_size)`` draws a batch."""

    context_length: int = 64
    num_pairs: int = 4
    vocab_size: int = 256
    power_a: float = ZOOLOGY_POWER_A  # 1.0: every query slot equally likely
    random_filler: bool = True

    def __post_init__(self):
        check_positive_int(self.context_length, "context_length")
        check_positive_int(self.num_pairs, "num_pairs")
        check_positive_int(self.vocab_size, "vocab_size")
        if not (isinstance(self.power_a, (int, float)) and 0 < self.power_a <= 1):
            raise ValueError(f"power_a: expected a number in (0, 1], got {self.power_a!r}")
        if self.num_slots < self.num_pairs:
            raise ValueError(
                f"context_length: expected at least 4 * num_pairs = {4 * self.num_pairs} positions "
                f"(the pairs, then a two-token slot per query), got {self.context_length}")
        if min(self.num_keys, self.num_values) < self.num_pairs:
            raise ValueError(
                f"vocab_size: expected room for {self.num_pairs} distinct keys (tokens 1 .. vocab_size//2 - 1) "
                f"(vocab_size >= {2 * self.num_pairs + 2}), got {self.vocab_size}")

    @property
    def name(self) -> str:
        return f"mqar_{self.context_length}_{self.num_pairs}"

    @property
    def num_keys(self) -> int:
        return self.vocab_size // 2 - 1

    @property
    def num_values(self) -> int:
        return self.vocab_size - self.vocab_size // 2

    @property
    def value_offset(self) -> int:
        """Token id of the first value token."""
        return self.vocab_size // 2

    @property
    def num_slots(self) -> int:
        """Two-token slots after the pairs; each query takes the first token of one."""
        return (self.context_length - 2 * self.num_pairs) // 2

    @property
    def chance(self) -> float:
        """Accuracy of a uniform guess over the vocabulary (the argmax runs over all tokens)."""
        return 1.0 / self.vocab_size

    @property
    def stored_value_level(self) -> float:
        """Accuracy of a model that answers with one of the sequence's stored values, picked at random."""
        return 1.0 / self.num_pairs

    @property
    def in_context_chance(self) -> float:
        """How often an answer is one of the stored values when it is a value token drawn at random:
        ``num_pairs / num_values`` (a model that has learned only "answer with a value" sits here)."""
        return self.num_pairs / self.num_values

    def slot_probabilities(self) -> np.ndarray:
        """Zoology's power law over the query slots: ``p_g ∝ power_a * g ** (power_a - 1)``, g = 1 .. num_slots."""
        g = np.arange(1, self.num_slots + 1, dtype=np.float64)
        p = self.power_a * g ** (self.power_a - 1)
        return p / p.sum()

    def sample(self, rng: np.random.Generator, batch_size: int):
        """``x`` (B, context_length) tokens and ``y`` (B, context_length) targets (``IGNORE`` except at queries)."""
        _check_rng(rng)
        B = check_positive_int(batch_size, "batch_size")
        L, N = self.context_length, self.num_pairs
        rows = np.arange(B)[:, None]
        keys = 1 + rng.random((B, self.num_keys)).argsort(axis=1)[:, :N]  # distinct keys per row
        values = self.value_offset + rng.random((B, self.num_values)).argsort(axis=1)[:, :N]
        if self.random_filler:
            x = rng.integers(0, self.vocab_size, size=(B, L))
        else:
            x = np.zeros((B, L), dtype=np.int64)
        x[:, 0:2 * N:2] = keys
        x[:, 1:2 * N:2] = values
        # N slots without replacement, weighted by the power law: the Gumbel-top-k trick draws exactly what
        # drawing one slot at a time (renormalising the rest, as numpy's choice(replace=False, p=...)) draws
        gumbel = -np.log(-np.log(rng.random((B, self.num_slots))))
        slots = np.argsort(-(np.log(self.slot_probabilities()) + gumbel), axis=1)[:, :N]  # slot of key j
        pos = 2 * N + 2 * slots
        x[rows, pos] = keys
        y = np.full((B, L), IGNORE, dtype=np.int64)
        y[rows, pos] = values
        return x.astype(np.int64), y

    def stored_values(self, x) -> np.ndarray:
        """The values stored in each sequence: (B, num_pairs)."""
        return np.asarray(x)[:, 1:2 * self.num_pairs:2]

    def get_batch(self, batch_size: int, seed: int = 0):
        """The trainer's ``get_batch(split, step) -> (x, y)``: batch ``step`` of ``split`` is a pure function of
        ``(seed, split, step)`` (numpy arrays)."""
        batch_size = check_positive_int(batch_size, "batch_size")

        def get_batch(split, step):
            return self.sample(batch_rng(seed, split, step), batch_size)

        return get_batch
