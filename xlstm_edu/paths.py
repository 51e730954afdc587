"""Where the course keeps its files: one documented rule instead of paths relative to the package.

The *course folder* is

1. ``$XLSTM_EDU_HOME`` when that environment variable is set;
2. otherwise the working directory, or its parent when the working directory is a folder named ``notebooks``
   (Jupyter starts a notebook's kernel in the notebook's own folder, so a notebook in ``notebooks/`` and a command
   run from the repository root agree).

Inside it: ``data/`` (the converted corpora, git-ignored), ``runs/`` (training runs, git-ignored), ``results/``
(committed result files) and ``notebooks/``. Nothing is looked up next to the installed package, which after a
normal ``pip install`` lives in site-packages.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "XLSTM_EDU_HOME"


def home() -> Path:
    """The course folder (see the module docstring), resolved at call time."""
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return Path(env).expanduser().resolve()
    cwd = Path.cwd().resolve()
    return cwd.parent if cwd.name == "notebooks" else cwd


def data_dir() -> Path:
    """``<home>/data``: converted corpora and downloads (git-ignored)."""
    return home() / "data"


def runs_dir() -> Path:
    """``<home>/runs``: training runs, one folder each (git-ignored)."""
    return home() / "runs"


def results_dir() -> Path:
    """``<home>/results``: committed result files (JSON and plots) that the notebooks load."""
    return home() / "results"


def notebooks_dir() -> Path:
    """``<home>/notebooks``: the course's chapters."""
    return home() / "notebooks"
