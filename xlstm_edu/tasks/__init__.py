"""Synthetic tasks on which the paper tests what a memory can do (its Fig. 4 and Fig. 5).

* :mod:`xlstm_edu.tasks.formal`: formal languages (parity, even pairs, cycle navigation, modular arithmetic
  without brackets, majority), trained on lengths <= 40 and tested on 41-256 (length generalization).
* :mod:`xlstm_edu.tasks.mqar`: multi-query associative recall (store key-value pairs, answer queries).

The experiment runner that trains the course's models on them is ``python -m xlstm_edu.experiments``.
"""

from xlstm_edu.tasks.formal import (
    IGNORE,
    TASKS,
    TEST_LENGTHS,
    TRAIN_LENGTHS,
    CycleNavigation,
    EvenPairs,
    FormalGenerator,
    FormalTask,
    Majority,
    ModularArithmetic,
    Parity,
    class_logits,
    eval_lengths,
    get_task,
    lm_batch,
    sample_length,
    scaled_accuracy,
)
from xlstm_edu.tasks.mqar import MQAR, PAPER_SETTINGS, PAPER_VOCAB_SIZE

__all__ = [
    "IGNORE", "TASKS", "TEST_LENGTHS", "TRAIN_LENGTHS", "CycleNavigation", "EvenPairs", "FormalGenerator",
    "FormalTask", "Majority", "ModularArithmetic", "Parity", "class_logits", "eval_lengths", "get_task",
    "lm_batch", "sample_length", "scaled_accuracy", "MQAR", "PAPER_SETTINGS", "PAPER_VOCAB_SIZE",
]
