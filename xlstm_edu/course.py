"""The course as a whole: list the chapters, build the student edition, render an executed HTML copy.

Commands (run from the repository root)::

    python -m xlstm_edu.course list                          # chapters with estimated times
    python -m xlstm_edu.course student --out build/student   # the student edition (solutions replaced by stubs)
    python -m xlstm_edu.course html --out build/html [--fast] [--only 01 02]
                                                             # execute each notebook, render HTML + index.html

Conventions every notebook in ``notebooks/`` follows
----------------------------------------------------
File name
    ``notebooks/NN_short_name.ipynb``; ``NN`` is the chapter number.

Notebook metadata (optional, read by ``list`` and ``html``)
    ``nb.metadata["xlstm_edu"] = {"chapter": 1, "title": "LSTM from scratch", "minutes": 60}``.
    Without it, ``list`` falls back to the number in the file name, the notebook's first markdown heading
    and an unknown time ("?").

Exercises (the student edition depends on this)
    A code cell tagged ``solution`` (``cell.metadata.tags``) wraps the solution in nbgrader-style markers::

        def my_function(x):
            ### BEGIN SOLUTION
            return ...
            ### END SOLUTION

    ``student`` replaces every region between the markers by
    ``raise NotImplementedError("exercise N.k: your code here")`` at the indentation of the ``BEGIN`` marker
    (``N`` the chapter, ``k`` the exercise's position among the notebook's solution cells) and keeps everything
    else, including the ``def`` line and any code after ``END``. A cell may hold several regions.
    The cell after a solution cell is tagged ``checker``; it calls ``xlstm_edu.exercises.check`` /
    ``check_gradient`` (or a chapter checker) and prints ✅ or ❌. ``tests/test_course.py`` holds every notebook
    to: ≥3 ``solution`` cells, each followed by a ``checker`` cell.

Ties to the package (tag ``tie``)
    A notebook builds its functions from scratch; the package ``xlstm_edu`` holds the tested versions. Cells
    tagged ``tie`` tie the two together: taken in notebook order, the ``tie`` cells of a notebook must run on
    their own in a fresh namespace (put the imports they need into a ``tie`` cell; no plotting, a second or
    less), define the from-scratch functions, and compare them with the package's on the same inputs with
    ``xlstm_edu.exercises.check(...)``. ``tests/test_notebook_ties.py`` executes exactly these cells for every
    notebook and fails unless each comparison prints ✅ and none prints ❌; the learner sees the same verdicts
    in the notebook. A ``tie`` cell may also be a ``solution`` cell (the test runs the solution edition).
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
METADATA_KEY = "xlstm_edu"
BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"


def _nbformat():
    import nbformat

    return nbformat


def notebook_paths(directory: Path | str = NOTEBOOK_DIR, only=None) -> list[Path]:
    """The course notebooks ``NN_*.ipynb`` in chapter order; ``only`` keeps those whose name starts with one of
    the given prefixes (e.g. ``["01", "02"]``)."""
    paths = sorted(p for p in Path(directory).glob("*.ipynb") if re.match(r"\d\d_", p.name))
    if only:
        paths = [p for p in paths if any(p.name.startswith(str(o)) for o in only)]
    return paths


def chapter_info(nb, path: Path) -> dict:
    """{"chapter", "title", "minutes", "file"} from the notebook metadata, falling back to the file name's number
    and the first markdown heading."""
    meta = dict(nb.metadata.get(METADATA_KEY, {}))
    number = meta.get("chapter")
    if number is None:
        m = re.match(r"(\d+)_", path.name)
        number = int(m.group(1)) if m else None
    title = meta.get("title")
    if not title:
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                m = re.search(r"^#+\s*(.+?)\s*$", cell.source, flags=re.M)
                if m:
                    title = m.group(1)
                    break
    return {"chapter": number, "title": title or path.stem, "minutes": meta.get("minutes"), "file": path.name}


def chapters(directory: Path | str = NOTEBOOK_DIR) -> list[dict]:
    """chapter_info for every notebook in ``directory``."""
    nbformat = _nbformat()
    return [chapter_info(nbformat.read(p, as_version=4), p) for p in notebook_paths(directory)]


def strip_solution_source(source: str, exercise: str) -> str:
    """Replace every ``### BEGIN SOLUTION`` … ``### END SOLUTION`` region of one cell's source by a stub raising
    ``NotImplementedError`` at the marker's indentation. Raises ValueError on unbalanced markers."""
    out, inside, indent = [], False, ""
    for line in source.splitlines():
        stripped = line.strip()
        if stripped.startswith(BEGIN):
            if inside:
                raise ValueError(f"exercise {exercise}: nested {BEGIN!r}")
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f'{indent}raise NotImplementedError("exercise {exercise}: your code here")')
        elif stripped.startswith(END):
            if not inside:
                raise ValueError(f"exercise {exercise}: {END!r} without {BEGIN!r}")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"exercise {exercise}: {BEGIN!r} without {END!r}")
    return "\n".join(out)


def _solution_preprocessor_class():
    from nbconvert.preprocessors import Preprocessor

    class StripSolutions(Preprocessor):
        """nbconvert preprocessor: stub out the solution regions of cells tagged ``solution``."""

        def preprocess(self, nb, resources):
            self._chapter = (resources or {}).get("chapter", "?")
            self._count = 0
            return super().preprocess(nb, resources)

        def preprocess_cell(self, cell, resources, index):
            if cell.cell_type == "code" and "solution" in cell.get("metadata", {}).get("tags", []):
                self._count += 1
                exercise = f"{self._chapter}.{self._count}"
                if BEGIN not in cell.source:
                    raise ValueError(f"cell {index} is tagged 'solution' but has no {BEGIN!r} marker")
                cell.source = strip_solution_source(cell.source, exercise)
            return cell, resources

    return StripSolutions


def student_notebook(nb, chapter="?"):
    """A copy of ``nb`` with the solutions stubbed and all outputs cleared."""
    from nbconvert.preprocessors import ClearOutputPreprocessor

    nb = copy.deepcopy(nb)
    resources = {"chapter": chapter}
    nb, resources = _solution_preprocessor_class()().preprocess(nb, resources)
    nb, resources = ClearOutputPreprocessor().preprocess(nb, resources)
    return nb


def build_student(out: Path | str, directory: Path | str = NOTEBOOK_DIR) -> list[Path]:
    """Write the student edition of every notebook to ``out``; returns the written paths."""
    nbformat = _nbformat()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in notebook_paths(directory):
        nb = nbformat.read(path, as_version=4)
        info = chapter_info(nb, path)
        student = student_notebook(nb, chapter=info["chapter"] if info["chapter"] is not None else "?")
        target = out / path.name
        nbformat.write(student, target)
        written.append(target)
    return written


def execute(path: Path, *, fast: bool, timeout: int = 900):
    """Execute ``path`` with nbclient in a fresh python3 kernel (cwd = the notebook's folder)."""
    import os

    import nbclient

    nbformat = _nbformat()
    nb = nbformat.read(path, as_version=4)
    old = os.environ.get("XLSTM_EDU_FAST")
    os.environ["XLSTM_EDU_FAST"] = "1" if fast else "0"
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    try:
        nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:
        if old is None:
            os.environ.pop("XLSTM_EDU_FAST", None)
        else:
            os.environ["XLSTM_EDU_FAST"] = old
    return nb


def build_html(out: Path | str, *, fast: bool = False, only=None, directory: Path | str = NOTEBOOK_DIR) -> list[Path]:
    """Execute each notebook and render it with nbconvert's HTMLExporter into ``out``, plus an index.html."""
    import html as html_lib
    import time

    from nbconvert import HTMLExporter

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    exporter = HTMLExporter()
    written, rows = [], []
    for path in notebook_paths(directory, only):
        t0 = time.perf_counter()
        nb = execute(path, fast=fast)
        body, _ = exporter.from_notebook_node(nb)
        target = out / (path.stem + ".html")
        target.write_text(body, encoding="utf-8")
        written.append(target)
        info = chapter_info(nb, path)
        seconds = time.perf_counter() - t0
        rows.append((info, target.name))
        print(f"{path.name}: executed and rendered in {seconds:.1f} s -> {target}")
    items = "\n".join(
        f'<li><a href="{html_lib.escape(name)}">{info["chapter"]}. {html_lib.escape(str(info["title"]))}</a>'
        f'{" (about " + str(info["minutes"]) + " min)" if info["minutes"] else ""}</li>'
        for info, name in rows)
    index = out / "index.html"
    index.write_text(f"<!doctype html><meta charset='utf-8'><title>xlstm-edu</title>"
                     f"<h1>xlstm-edu: the course</h1><ol start='0' style='list-style:none'>{items}</ol>\n",
                     encoding="utf-8")
    return written + [index]


def _cmd_list(args) -> int:
    rows = chapters(args.dir)
    total = 0
    for r in rows:
        minutes = r["minutes"]
        total += minutes or 0
        print(f"{r['chapter']!s:>3}  {str(minutes if minutes else '?'):>4} min  {r['title']}  ({r['file']})")
    print(f"     {total:>4} min  in all (chapters with a known time)")
    return 0


def _cmd_student(args) -> int:
    written = build_student(args.out, args.dir)
    print(f"wrote the student edition of {len(written)} notebooks to {args.out}")
    return 0


def _cmd_html(args) -> int:
    written = build_html(args.out, fast=args.fast, only=args.only, directory=args.dir)
    print(f"wrote {len(written)} files to {args.out} (open {Path(args.out) / 'index.html'})")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m xlstm_edu.course", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", default=str(NOTEBOOK_DIR), help="the notebooks folder (default: notebooks/)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="print the chapters with their estimated times")
    p = sub.add_parser("student", help="write the student edition (solutions replaced by stubs, outputs cleared)")
    p.add_argument("--out", default="build/student")
    p = sub.add_parser("html", help="execute every notebook and render an HTML copy")
    p.add_argument("--out", default="build/html")
    p.add_argument("--fast", action="store_true", help="run with XLSTM_EDU_FAST=1 (small sizes)")
    p.add_argument("--only", nargs="*", help="only notebooks whose file name starts with these (e.g. 00 03)")
    args = parser.parse_args(argv)
    return {"list": _cmd_list, "student": _cmd_student, "html": _cmd_html}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
