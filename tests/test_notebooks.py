"""Execute every course notebook top to bottom on a fresh kernel, in fast mode (XLSTM_EDU_FAST=1).

A notebook that raises fails the test with the cell's error, and every exercise checker cell (tagged "checker")
must print a passing verdict (✅, no ❌) with the solutions in place. The runner is the course's own
(``xlstm_edu.course.execute``, with its per-cell timeout). Set XLSTM_EDU_SKIP_NOTEBOOKS=1 to skip them while
iterating on the package.
"""

import os
import time

import pytest

pytest.importorskip("nbformat")
pytest.importorskip("nbclient")

from xlstm_edu import course  # noqa: E402
from xlstm_edu.paths import notebooks_dir  # noqa: E402

NOTEBOOKS = course.notebook_paths(notebooks_dir())


@pytest.mark.notebook
@pytest.mark.skipif(os.environ.get("XLSTM_EDU_SKIP_NOTEBOOKS") == "1", reason="XLSTM_EDU_SKIP_NOTEBOOKS=1")
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_in_fast_mode(path):
    t0 = time.perf_counter()
    nb = course.execute(path, fast=True)  # a cell that raises or hangs raises here, with the cell and its error
    # every exercise checker (a code cell tagged "checker") must give a passing verdict in the solution edition
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and "checker" in cell.get("metadata", {}).get("tags", []):
            text = "".join(o.get("text", "") for o in cell.get("outputs", []) if o.output_type == "stream")
            assert "✅" in text and "❌" not in text, f"{path.name}, cell {i}: checker did not pass:\n{text}"
    print(f"{path.name}: {time.perf_counter() - t0:.1f} s")
