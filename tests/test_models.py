"""The model registry (``xlstm_edu.models``): one list of kinds and one table of sizes, which every command line
and the presets use."""

import pytest

from xlstm_edu import models, presets
from xlstm_edu.models import KIND_NAMES, KINDS, PRESET_NAMES, SIZES, XLSTM_KINDS


def test_every_preset_sizes_every_kind():
    assert tuple(presets.TRAINING) == PRESET_NAMES and set(presets.PRESETS) == set(PRESET_NAMES)
    for preset in PRESET_NAMES:
        assert tuple(SIZES[preset]) == KIND_NAMES, preset
        p = presets.get_preset(preset)
        assert p["models"] == SIZES[preset] and p["models"] is not SIZES[preset]  # a copy
    assert len({k.label for k in KINDS.values()}) == len(KINDS)
    assert XLSTM_KINDS == ("slstm", "mlstm", "xlstm")


def test_the_command_lines_take_their_choices_from_the_registry():
    from xlstm_edu import compare, runs

    actions = {a.dest: a for a in runs.build_parser()._actions}
    assert tuple(actions["model"].choices) == KIND_NAMES and tuple(actions["preset"].choices) == PRESET_NAMES
    assert set(compare.MODELS) <= set(KIND_NAMES) and set(compare.PROTOCOLS) == set(PRESET_NAMES)


def test_bad_names_are_refused():
    with pytest.raises(ValueError, match="model kind"):
        models.sizes("cpu-tiny", "bert")
    with pytest.raises(ValueError, match="preset"):
        models.sizes("tpu-huge", "xlstm")
    with pytest.raises(ValueError, match="model kind"):
        models.build_model("transformer", 10, 8)
    assert models.label("mlstm") == "xLSTM[1:0]"
