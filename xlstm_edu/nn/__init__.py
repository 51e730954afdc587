"""The xLSTM in PyTorch: the cells (same API as ``xlstm_edu.np``), the blocks and the language model.

    from xlstm_edu.nn import mlstm_chunkwise, slstm_recurrent, XLSTMConfig, XLSTMLM
"""

from xlstm_edu.nn.mlstm import mlstm_chunkwise, mlstm_parallel, mlstm_recurrent, mlstm_step, mlstm_zero_state
from xlstm_edu.nn.slstm import slstm_recurrent, slstm_step, slstm_zero_state
from xlstm_edu.nn.xlstm_lm import XLSTMConfig, XLSTMLM  # after the cells: the blocks import them
from xlstm_edu.nn.large import XLSTMLarge, XLSTMLargeConfig  # the xLSTM 7B architecture (chapter 15)
from xlstm_edu.nn.linear_rnn import LinearRNNConfig, LinearRNNLM  # DeltaNet / decay linear RNN LM (chapter 14)

__all__ = ["mlstm_parallel", "mlstm_chunkwise", "mlstm_recurrent", "mlstm_step", "mlstm_zero_state",
           "slstm_recurrent", "slstm_step", "slstm_zero_state", "XLSTMConfig", "XLSTMLM", "XLSTMLargeConfig",
           "XLSTMLarge", "LinearRNNConfig", "LinearRNNLM"]
