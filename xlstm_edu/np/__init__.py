from xlstm_edu.np.lstm import lstm_recurrent, lstm_recurrent_backward, lstm_step  # noqa: F401
