"""The fast-mode switch: `XLSTM_EDU_FAST=1` makes every notebook use small sizes.

Set it before starting Jupyter (or before `python -m xlstm_edu.course html --fast`, which sets it) to shrink
sequence lengths, training steps and sweeps so that the whole course runs in a few minutes; CI runs the notebooks
this way. A notebook reads ``FAST`` once, at import; ``pick(full, fast)`` chooses a size.
"""

import os


def fast_mode() -> bool:
    """True when the environment variable XLSTM_EDU_FAST is set to 1 (or true/yes)."""
    return os.environ.get("XLSTM_EDU_FAST", "").strip().lower() in {"1", "true", "yes"}


FAST = fast_mode()


def pick(full, fast):
    """Return ``fast`` in fast mode and ``full`` otherwise: ``steps = pick(2000, 200)``."""
    return fast if FAST else full
