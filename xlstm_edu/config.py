"""Course-wide switches read from the environment.

``XLSTM_EDU_FAST=1`` shrinks every notebook's sizes (sequence lengths, training steps, sweeps) so that the
whole course runs in a few minutes; CI runs the notebooks this way.
"""

import os


def fast_mode() -> bool:
    """True when the environment variable XLSTM_EDU_FAST is set to 1 (or true/yes)."""
    return os.environ.get("XLSTM_EDU_FAST", "").strip().lower() in {"1", "true", "yes"}


FAST = fast_mode()


def pick(full, fast):
    """Return ``fast`` in fast mode and ``full`` otherwise: ``steps = pick(2000, 200)``."""
    return fast if FAST else full
