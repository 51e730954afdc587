"""Execute every course notebook top to bottom on a fresh kernel, in fast mode (XLSTM_EDU_FAST=1).

A notebook that raises fails the test with the cell's traceback, and every exercise checker cell (tagged
"checker") must print a passing verdict (✅, no ❌) with the solutions in place. Set XLSTM_EDU_SKIP_NOTEBOOKS=1 to skip
them while iterating on the package.
"""

import os
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def execute_notebook(path: Path, *, fast: bool = True, timeout: int = 600):
    """Run ``path`` in a fresh python3 kernel with cwd = notebooks/; return the executed notebook."""
    nb = nbformat.read(path, as_version=4)
    env_fast = os.environ.get("XLSTM_EDU_FAST")
    os.environ["XLSTM_EDU_FAST"] = "1" if fast else "0"
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    try:
        client = nbclient.NotebookClient(
            nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
        )
        client.execute()
    finally:
        if env_fast is None:
            os.environ.pop("XLSTM_EDU_FAST", None)
        else:
            os.environ["XLSTM_EDU_FAST"] = env_fast
    return nb


@pytest.mark.notebook
@pytest.mark.skipif(os.environ.get("XLSTM_EDU_SKIP_NOTEBOOKS") == "1", reason="XLSTM_EDU_SKIP_NOTEBOOKS=1")
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_in_fast_mode(path):
    t0 = time.perf_counter()
    nb = execute_notebook(path, fast=True)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, f"{path.name}: {errors[0]['ename']}: {errors[0]['evalue']}"
    # every exercise checker (a code cell tagged "checker") must give a passing verdict in the solution edition
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and "checker" in cell.get("metadata", {}).get("tags", []):
            text = "".join(o.get("text", "") for o in cell.get("outputs", []) if o.output_type == "stream")
            assert "✅" in text and "❌" not in text, f"{path.name}, cell {i}: checker did not pass:\n{text}"
    print(f"{path.name}: {time.perf_counter() - t0:.1f} s")
