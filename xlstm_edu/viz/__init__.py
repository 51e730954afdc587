"""Interactive explorers for the course (ipywidgets 8 + matplotlib's inline backend; chapter 11).

Each explorer keeps its numbers in a pure function (testable without a browser) and its picture in a drawing
function; the widget class only wires controls to them:

=========================  ===============================  ===================================
explorer                   data                             figure
=========================  ===============================  ===================================
:class:`GateLab`           :func:`gate_lab_data`            :func:`draw_gate_lab`
:class:`MatrixMemory`      :func:`matrix_memory_data`       :func:`draw_matrix_memory`
:class:`ParallelForm`      :func:`parallel_form_data`       :func:`draw_parallel_form`
:class:`TrainedModel`      :func:`trained_model_data`       :func:`draw_trained_model`
=========================  ===============================  ===================================

Display an explorer by making it the last expression of a cell (``GateLab()``) or with ``display(...)``.
"""

from xlstm_edu.viz.gate_lab import GateLab, draw_gate_lab, gate_inputs, gate_lab_data, overflow_threshold
from xlstm_edu.viz.matrix_memory import MatrixMemory, draw_matrix_memory, make_keys, matrix_memory_data
from xlstm_edu.viz.parallel_form import ParallelForm, draw_parallel_form, parallel_form_data, parallel_inputs
from xlstm_edu.viz.trained_model import (
    TrainedModel, draw_trained_model, gate_traces, load_or_train, trained_model_data,
)

__all__ = [
    "GateLab", "gate_lab_data", "draw_gate_lab", "gate_inputs", "overflow_threshold",
    "MatrixMemory", "matrix_memory_data", "draw_matrix_memory", "make_keys",
    "ParallelForm", "parallel_form_data", "draw_parallel_form", "parallel_inputs",
    "TrainedModel", "trained_model_data", "draw_trained_model", "gate_traces", "load_or_train",
]
