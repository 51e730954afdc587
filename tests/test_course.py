"""The course machinery: the student edition, the exercise conventions of every notebook, the HTML command.

The solution edition passing every checker is asserted by tests/test_notebooks.py, which executes all notebooks.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbconvert")

from xlstm_edu import course  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = course.notebook_paths(ROOT / "notebooks")
SKIP_NB = pytest.mark.skipif(os.environ.get("XLSTM_EDU_SKIP_NOTEBOOKS") == "1", reason="XLSTM_EDU_SKIP_NOTEBOOKS=1")


def tags(cell):
    return cell.get("metadata", {}).get("tags", [])


# --- the marker replacement -------------------------------------------------------------------------------------

def test_strip_keeps_def_line_and_indentation():
    src = "def f(x):\n    y = 1\n    ### BEGIN SOLUTION\n    return x + y\n    ### END SOLUTION\n"
    out = course.strip_solution_source(src, "1.2")
    assert out == 'def f(x):\n    y = 1\n    raise NotImplementedError("exercise 1.2: your code here")'
    ns = {}
    exec(compile(out, "<cell>", "exec"), ns)
    with pytest.raises(NotImplementedError, match="exercise 1.2"):
        ns["f"](1)


def test_strip_several_regions_and_code_after_end():
    src = ("answer = None\n### BEGIN SOLUTION\nanswer = 42\n### END SOLUTION\n"
           "class A:\n    def g(self):\n        ### BEGIN SOLUTION\n        return 1\n        ### END SOLUTION\n"
           "print('after')")
    out = course.strip_solution_source(src, "3.1")
    assert "42" not in out and "return 1" not in out and "print('after')" in out
    assert out.count("NotImplementedError") == 2
    assert '        raise NotImplementedError("exercise 3.1' in out
    with pytest.raises(NotImplementedError):
        exec(compile(out, "<cell>", "exec"), {})


@pytest.mark.parametrize("src", ["### BEGIN SOLUTION\nx = 1\n",
                                 "x = 1\n### END SOLUTION\n",
                                 "### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n"])
def test_strip_rejects_unbalanced_markers(src):
    with pytest.raises(ValueError, match="SOLUTION"):
        course.strip_solution_source(src, "0.1")


def _toy_notebook():
    nb = nbformat.v4.new_notebook()
    nb.metadata["xlstm_edu"] = {"chapter": 7, "title": "Toy", "minutes": 5}
    sol = nbformat.v4.new_code_cell("def f(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION")
    sol.metadata["tags"] = ["solution"]
    chk = nbformat.v4.new_code_cell("from xlstm_edu.exercises import check\ncheck('f', f(2), 4)")
    chk.metadata["tags"] = ["checker"]
    nb.cells = [nbformat.v4.new_markdown_cell("# A toy chapter\nText."), sol, chk]
    return nb


def test_student_notebook_on_a_toy():
    nb = _toy_notebook()
    nb.cells[2].outputs = [nbformat.v4.new_output("stream", text="✅ f: exact\n")]
    student = course.student_notebook(nb, chapter=7)
    assert "return 2 * x" in nb.cells[1].source  # the original is left alone
    assert student.cells[1].source == 'def f(x):\n    raise NotImplementedError("exercise 7.1: your code here")'
    assert student.cells[0].source == nb.cells[0].source and student.cells[2].source == nb.cells[2].source
    assert student.cells[2].outputs == []


def test_solution_cell_without_marker_is_an_error():
    nb = _toy_notebook()
    nb.cells[1].source = "def f(x):\n    return 2 * x"
    with pytest.raises(ValueError, match="no '### BEGIN SOLUTION'"):
        course.student_notebook(nb)


def test_list_falls_back_to_first_heading(tmp_path):
    nb = _toy_notebook()
    nbformat.write(nb, tmp_path / "07_toy.ipynb")
    del nb.metadata["xlstm_edu"]
    nbformat.write(nb, tmp_path / "08_other.ipynb")
    rows = course.chapters(tmp_path)
    assert rows[0] == {"chapter": 7, "title": "Toy", "minutes": 5, "file": "07_toy.ipynb"}
    assert rows[1] == {"chapter": 8, "title": "A toy chapter", "minutes": None, "file": "08_other.ipynb"}
    out = subprocess.run([sys.executable, "-m", "xlstm_edu.course", "--dir", str(tmp_path), "list"],
                         capture_output=True, text=True, check=True).stdout
    assert "Toy" in out and "A toy chapter" in out and "5 min" in out


# --- every notebook in notebooks/ -------------------------------------------------------------------------------

def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 5, [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_exercise_conventions(path):
    """≥3 solution cells, each with BEGIN/END markers and followed by a checker cell; committed without outputs."""
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), \
        f"{path.name} is committed with outputs: clear them"
    solutions = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "solution" in tags(c)]
    assert len(solutions) >= 3, f"{path.name}: {len(solutions)} solution cells, need at least 3"
    for i in solutions:
        src = nb.cells[i].source
        assert course.BEGIN in src and course.END in src, f"{path.name}, cell {i}: solution markers missing"
        nxt = nb.cells[i + 1] if i + 1 < len(nb.cells) else None
        assert nxt is not None and nxt.cell_type == "code" and "checker" in tags(nxt), \
            f"{path.name}, cell {i}: a solution cell must be followed by a cell tagged 'checker'"
        assert "check" in nxt.source, f"{path.name}, cell {i + 1}: the checker cell calls no checker"


def test_student_edition(tmp_path):
    """No solution is left; stubbed cells compile and raise; every other cell is unchanged; outputs are cleared."""
    out = tmp_path / "student"
    subprocess.run([sys.executable, "-m", "xlstm_edu.course", "student", "--out", str(out)],
                   check=True, capture_output=True, text=True, cwd=ROOT)
    assert sorted(p.name for p in out.glob("*.ipynb")) == [p.name for p in NOTEBOOKS]
    for path in NOTEBOOKS:
        orig = nbformat.read(path, as_version=4)
        stud = nbformat.read(out / path.name, as_version=4)
        assert len(orig.cells) == len(stud.cells), path.name
        for i, (a, b) in enumerate(zip(orig.cells, stud.cells)):
            where = f"{path.name}, cell {i}"
            assert course.BEGIN not in b.source and course.END not in b.source, where
            if b.cell_type == "code":
                assert b.outputs == [], where
            if a.cell_type == "code" and "solution" in tags(a):
                n_regions = a.source.count(course.BEGIN)
                assert b.source.count("raise NotImplementedError(") == n_regions, where
                code = compile(b.source.replace("%matplotlib inline", ""), where, "exec")  # compiles
                assert code is not None
                # everything outside the solution regions is kept, line by line and in order
                kept = [ln for ln in b.source.splitlines() if "raise NotImplementedError(\"exercise" not in ln]
                orig_lines = a.source.splitlines()
                it = iter(orig_lines)
                assert all(any(ln == o for o in it) for ln in kept), f"{where}: lines outside the markers changed"
            else:
                assert a.source == b.source, f"{where}: a non-solution cell changed"


@pytest.mark.notebook
@SKIP_NB
def test_student_edition_of_chapter_0_gives_nothing_away(tmp_path):
    """Executed with errors allowed, the student edition of chapter 0 raises NotImplementedError and no checker
    passes: the learner really has to write the code."""
    import nbclient

    path = ROOT / "notebooks" / "00_start_here.ipynb"
    if not path.exists():
        pytest.skip("chapter 0 not written yet")
    nb = course.student_notebook(nbformat.read(path, as_version=4), chapter=0)
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(path.parent)}}).execute()
    errors = [o["ename"] for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert "NotImplementedError" in errors
    for i, c in enumerate(nb.cells):
        if c.cell_type == "code" and "checker" in tags(c):
            text = "".join(o.get("text", "") for o in c.outputs if o.output_type == "stream")
            assert "✅" not in text, f"cell {i}: a checker passed in the student edition:\n{text}"


def test_html_command_on_a_small_notebook(tmp_path):
    src = tmp_path / "nbs"
    src.mkdir()
    nb = _toy_notebook()
    nbformat.write(nb, src / "07_toy.ipynb")
    out = tmp_path / "html"
    res = subprocess.run([sys.executable, "-m", "xlstm_edu.course", "--dir", str(src), "html", "--out", str(out),
                          "--fast"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    page = (out / "07_toy.html").read_text(encoding="utf-8")
    assert "<html" in page and "A toy chapter" in page
    assert "✅ f: exact" in page  # executed: the checker's output is in the page
    assert "07_toy.html" in (out / "index.html").read_text(encoding="utf-8")
