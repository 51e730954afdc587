"""The student edition runs: built into a temporary folder and executed top to bottom in fast mode, every
notebook finishes without an error output anywhere, and every exercise checker cell prints ❌ (not solved yet)
and no ✅ — the learner really has to write the code, and an unsolved exercise never stops "Run All".
"""

import os

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")

from xlstm_edu import course  # noqa: E402
from xlstm_edu.paths import notebooks_dir  # noqa: E402

NOTEBOOKS = course.notebook_paths(notebooks_dir())
# Chapters not yet converted by their owners to the exercise framework (an unsolved exercise still raises, or a
# checker passes without the learner's code). Expected to fail; strict, so a chapter that lands must be removed
# from this list. The lead empties it as the chapters land.
NOT_YET_CONVERTED: set = set()


@pytest.fixture(scope="module")
def student_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("student")
    course.build_student(out, notebooks_dir())
    return out


def _tags(cell):
    return cell.get("metadata", {}).get("tags", [])


@pytest.mark.notebook
@pytest.mark.skipif(os.environ.get("XLSTM_EDU_SKIP_NOTEBOOKS") == "1", reason="XLSTM_EDU_SKIP_NOTEBOOKS=1")
@pytest.mark.parametrize("path", [pytest.param(p, marks=pytest.mark.xfail(
    p.stem in NOT_YET_CONVERTED, strict=True, reason="chapter not yet converted to the exercise framework"))
    for p in NOTEBOOKS], ids=[p.stem for p in NOTEBOOKS])
def test_student_edition_runs_and_fails_every_checker(path, student_dir):
    student = student_dir / path.name
    # run in the course's notebooks folder, so that data/ and results/ are found as in the real course
    nb = course.execute(student, fast=True, allow_errors=True, cwd=path.parent)
    problems = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        for o in cell.get("outputs", []):
            if o.output_type == "error":
                problems.append(f"cell {i}: {o['ename']}: {o['evalue']}")
        if "checker" in _tags(cell):
            text = "".join(o.get("text", "") for o in cell.get("outputs", []) if o.output_type == "stream")
            if "❌" not in text or "✅" in text:
                problems.append(f"cell {i} (checker): expected ❌ and no ✅, got:\n{text or '(nothing printed)'}")
    assert not problems, f"{path.name}, student edition:\n" + "\n".join(problems)
