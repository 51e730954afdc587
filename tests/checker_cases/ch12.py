"""Good and wrong answers for the checkers of chapter 12 (xlstm_edu.exercises.ch12)."""

import numpy as np
from checker_cases import Case


# ---- 12.1 running parity
def parity_good(bits):
    return np.cumsum(bits, axis=1) % 2


def parity_no_mod(bits):
    return np.cumsum(bits, axis=1)


def parity_wrong_axis(bits):
    return np.cumsum(bits, axis=0) % 2


def parity_whole_string(bits):
    return np.broadcast_to((bits.sum(axis=1) % 2)[:, None], bits.shape)


# ---- 12.2 scaled accuracy
def scaled_good(acc, chance):
    return (np.asarray(acc, dtype=float) - chance) / (1 - chance)


def scaled_not_divided(acc, chance):
    return np.asarray(acc, dtype=float) - chance


def scaled_by_chance(acc, chance):
    return (np.asarray(acc, dtype=float) - chance) / chance


def scaled_clipped(acc, chance):
    return np.clip(scaled_good(acc, chance), 0, None)


# ---- 12.3 where does a formal run fail
def kind_good(row):
    inside, beyond = row["train_range_scaled"], row["scaled_accuracy"]
    if inside < 0.5:
        return "not learned"
    if inside < 0.9:
        return "partly learned"
    return "generalizes" if beyond >= 0.9 else "fails beyond the training lengths"


def kind_test_only(row):  # never looks inside the training range
    return "generalizes" if row["scaled_accuracy"] >= 0.9 else "fails beyond the training lengths"


def kind_strict(row):  # > where the definition says >=
    inside, beyond = row["train_range_scaled"], row["scaled_accuracy"]
    if inside <= 0.5:
        return "not learned"
    if inside <= 0.9:
        return "partly learned"
    return "generalizes" if beyond > 0.9 else "fails beyond the training lengths"


def kind_swapped(row):  # reads the two accuracies the wrong way round
    return kind_good({"train_range_scaled": row["scaled_accuracy"], "scaled_accuracy": row["train_range_scaled"]})


# ---- 12.4 what did an MQAR run learn
def outcome_good(row):
    if row["accuracy"] >= 0.9:
        return "recalls"
    if row["in_context"] < (1 + row["in_context_chance"]) / 2:
        return "format not learned"
    if row["accuracy"] < 2 * row["stored_value_level"]:
        return "guesses a stored value"
    return "partial recall"


def outcome_vs_fixed_quarter(row):  # compares with 1/4 whatever the number of pairs
    return outcome_good({**row, "stored_value_level": 0.25})


def outcome_fixed_half(row):  # "half of the answers are stored values" whatever the number of pairs
    return outcome_good({**row, "in_context_chance": 0.0})


def outcome_ignores_format(row):
    if row["accuracy"] >= 0.9:
        return "recalls"
    return "guesses a stored value" if row["accuracy"] < 2 * row["stored_value_level"] else "partial recall"


# ---- 12.5 steps to a level
def steps_good(curve, threshold):
    for step, _, acc, _ in curve:
        if acc >= threshold:
            return step
    return None


def steps_index(curve, threshold):  # the row index, not the step
    for i, (_, _, acc, _) in enumerate(curve):
        if acc >= threshold:
            return i
    return None


def steps_strict(curve, threshold):
    for step, _, acc, _ in curve:
        if acc > threshold:
            return step
    return None


def steps_last_not_none(curve, threshold):
    for step, _, acc, _ in curve:
        if acc >= threshold:
            return step
    return curve[-1][0]


def steps_reads_time(curve, threshold):  # the training time column instead of the step
    for _, t, acc, _ in curve:
        if acc >= threshold:
            return t
    return None


CASES = {
    "12.1": Case(good=(parity_good,), wrong={"cumulative count without mod 2": (parity_no_mod,),
                                             "cumsum over the batch axis": (parity_wrong_axis,),
                                             "parity of the whole string at every position": (parity_whole_string,)}),
    "12.2": Case(good=(scaled_good,), wrong={"not divided by 1 - chance": (scaled_not_divided,),
                                             "divided by chance": (scaled_by_chance,),
                                             "below chance clipped to 0": (scaled_clipped,)}),
    "12.3": Case(good=(kind_good,), wrong={"looks only at the test lengths": (kind_test_only,),
                                           "strict inequalities at the thresholds": (kind_strict,),
                                           "training range and test lengths swapped": (kind_swapped,)}),
    "12.4": Case(good=(outcome_good,), wrong={"guessing level 1/4 for every number of pairs": (outcome_vs_fixed_quarter,),
                                              "ignores whether the answers are stored values": (outcome_ignores_format,),
                                              "in_context compared with 0.5 for every number of pairs": (outcome_fixed_half,)}),
    "12.5": Case(good=(steps_good,), wrong={"returns the row index": (steps_index,),
                                            "strict inequality": (steps_strict,),
                                            "last step instead of None": (steps_last_not_none,),
                                            "training time instead of the step": (steps_reads_time,)}),
}
