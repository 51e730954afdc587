"""xlstm-edu: the xLSTM paper (Beck et al., NeurIPS 2024), built from scratch.

Subpackages
-----------
xlstm_edu.np   the numpy engine: LSTM, sLSTM, mLSTM (recurrent, parallel, chunkwise), hand-written backward passes
xlstm_edu.nn   the same math in PyTorch, the paper's blocks and language models
"""

__version__ = "0.1.0"
