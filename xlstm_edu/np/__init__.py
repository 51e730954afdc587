from xlstm_edu.np.lstm import lstm_recurrent, lstm_recurrent_backward, lstm_step  # noqa: F401
from xlstm_edu.np.slstm import (  # noqa: F401
    slstm_recurrent,
    slstm_recurrent_backward,
    slstm_recurrent_unstabilized,
    slstm_step,
)
from xlstm_edu.np.mlstm_recurrent import (  # noqa: F401
    mlstm_recurrent,
    mlstm_recurrent_backward,
    mlstm_recurrent_unstabilized,
    mlstm_step,
)
from xlstm_edu.np.mlstm_parallel import mlstm_parallel, mlstm_parallel_backward, mlstm_parallel_parts  # noqa: F401
from xlstm_edu.np.mlstm_chunkwise import mlstm_chunkwise  # noqa: F401
from xlstm_edu.np.linear_rnn import (  # noqa: F401
    deltanet_parallel,
    deltanet_recurrent,
    deltanet_step,
    deltanet_transition,
    gated_deltanet_recurrent,
    gated_parallel,
    gated_recurrent,
    linear_attention_parallel,
    linear_attention_recurrent,
    retnet_parallel,
    retnet_recurrent,
)
