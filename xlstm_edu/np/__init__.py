from xlstm_edu.np.lstm import lstm_recurrent, lstm_recurrent_backward, lstm_step  # noqa: F401
from xlstm_edu.np.slstm import (  # noqa: F401
    slstm_recurrent,
    slstm_recurrent_backward,
    slstm_recurrent_unstabilized,
    slstm_step,
)
