"""The mLSTM input checks now live in ``xlstm_edu.np._checks`` (one module for every numpy cell); this name is
kept so that code written against it keeps working."""

from xlstm_edu.np._checks import MlstmInputs, check_dh, check_eps, check_mlstm_inputs, check_state  # noqa: F401
