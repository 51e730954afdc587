"""The notebooks' from-scratch code equals the package's: run every notebook's cells tagged ``tie``.

Convention (documented in ``xlstm_edu/course.py``): taken in notebook order, a notebook's ``tie`` cells run on
their own in a fresh namespace, define the chapter's from-scratch functions and compare them with ``xlstm_edu`` on
the same inputs through ``xlstm_edu.exercises.check``. Here they run without Jupyter (plain ``exec``, a second or
two per notebook), and every comparison must print ✅ and none ❌. Chapters 1-4 must have ties.
"""

import contextlib
import io
import re
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
MUST_TIE = ("01_", "02_", "03_", "04_")


def tie_cells(path):
    nb = nbformat.read(path, as_version=4)
    return [c.source for c in nb.cells if c.cell_type == "code" and "tie" in c.get("metadata", {}).get("tags", [])]


def run_ties(path) -> str:
    ns = {"__name__": f"tie_{path.stem}"}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for i, src in enumerate(tie_cells(path)):
            exec(compile(src, f"{path.name} [tie cell {i}]", "exec"), ns)
    return out.getvalue()


def test_chapters_1_to_4_have_ties():
    names = [p.name for p in NOTEBOOKS]
    for prefix in MUST_TIE:
        found = [n for n in names if n.startswith(prefix)]
        assert found, f"no notebook {prefix}*"
        assert tie_cells(ROOT / "notebooks" / found[0]), f"{found[0]} has no cell tagged 'tie'"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_code_equals_package(path):
    if not tie_cells(path):
        pytest.skip(f"{path.name} has no cells tagged 'tie'")
    text = run_ties(path)
    verdicts = [ln for ln in text.splitlines() if ln.startswith(("✅", "❌"))]
    assert verdicts, f"{path.name}: the tie cells compared nothing (no check verdict printed)"
    bad = [ln for ln in verdicts if ln.startswith("❌")]
    assert not bad, f"{path.name}: the notebook's code differs from the package's:\n" + "\n".join(bad)


def test_a_drift_is_caught(tmp_path):
    """A tie that compares a wrong from-scratch function fails: the test can fail."""
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(
        "import numpy as np\nimport xlstm_edu.np as xnp\nfrom xlstm_edu.exercises import check\n"
        "wx = np.ones((1, 3, 4, 2)); R = np.zeros((4, 2, 2)); b = np.zeros((4, 2))\n"
        "check('drifted', xnp.lstm_recurrent(wx, R, b)[0] * 1.01, xnp.lstm_recurrent(wx, R, b)[0])")
    cell.metadata["tags"] = ["tie"]
    nb.cells = [cell]
    path = tmp_path / "99_drift.ipynb"
    nbformat.write(nb, path)
    assert re.search(r"^❌ drifted", run_ties(path), flags=re.M)
    with pytest.raises(AssertionError, match="differs from the package"):
        test_notebook_code_equals_package(path)
