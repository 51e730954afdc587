"""Synthetic tasks on which the paper tests what a memory can do.

* :mod:`xlstm_edu.tasks.formal`: formal languages (the paper's Fig. 4 and App. B.1.1): parity, even pairs, cycle
  navigation, modular arithmetic without brackets, majority; trained on lengths <= 40 and tested on 41-256
  (length generalization).
* :mod:`xlstm_edu.tasks.mqar`: multi-query associative recall (App. B.1.2, Experiment 1 / Fig. 14): store
  key-value pairs, answer queries, generated as in Zoology (Arora et al. 2023).

The experiment runner that trains the course's models on them is ``python -m xlstm_edu.experiments``.
"""

from xlstm_edu.tasks.formal import (
    IGNORE,
    SUPERVISION,
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
    batch_rng,
    class_logits,
    eval_lengths,
    get_task,
    lm_batch,
    sample_length,
    scaled_accuracy,
)
from xlstm_edu.tasks.mqar import MQAR, PAPER_SETTINGS, PAPER_VOCAB_SIZE, ZOOLOGY_POWER_A

__all__ = [
    "IGNORE", "SUPERVISION", "TASKS", "TEST_LENGTHS", "TRAIN_LENGTHS", "CycleNavigation", "EvenPairs",
    "FormalGenerator", "FormalTask", "Majority", "ModularArithmetic", "Parity", "batch_rng", "class_logits",
    "eval_lengths", "get_task", "lm_batch", "sample_length", "scaled_accuracy", "MQAR", "PAPER_SETTINGS",
    "PAPER_VOCAB_SIZE", "ZOOLOGY_POWER_A",
]
