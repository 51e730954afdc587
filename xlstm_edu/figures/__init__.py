"""Teaching figures drawn from code with matplotlib (no image files): one module per topic.

    from xlstm_edu.figures.cells import cell_diagram
    cell_diagram("lstm")     # the data flow of one LSTM step: what enters, which gates, which state

Each function returns a matplotlib Figure and uses the course style (``xlstm_edu.style``).
"""
