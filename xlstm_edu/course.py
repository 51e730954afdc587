"""The course as a whole: list the chapters, build the student edition, render an executed, offline HTML copy.

Commands (run from the course folder, see ``xlstm_edu.paths``)::

    python -m xlstm_edu.course list                          # chapters with estimated times
    python -m xlstm_edu.course student --out build/student   # the student edition (solutions and answers hidden)
    python -m xlstm_edu.course html --out build/html [--fast] [--only 01 02] [--cell-timeout S]
                                                             # execute each notebook, render HTML + index.html

A problem (a missing folder, no notebook matching ``--only``, an output folder inside the notebooks folder)
is reported as ``error: ...`` with exit status 2, before any work.

Conventions every notebook in ``notebooks/`` follows
----------------------------------------------------
File name
    ``notebooks/NN_short_name.ipynb``; ``NN`` is the chapter number.

Notebook metadata (read by ``list`` and ``html``)
    ``nb.metadata["xlstm_edu"] = {"chapter": 1, "title": "LSTM from scratch", "minutes": 60}``.
    Without it, ``list`` falls back to the number in the file name, the notebook's first markdown heading
    and an unknown time ("?").

Exercises (the student edition depends on this)
    Exercise N.k (chapter N, k-th exercise) has a markdown heading ``### Exercise N.k — title`` and exactly one
    code cell tagged ``solution``: the k-th solution cell of the notebook, so headings and solution cells agree
    in number and order. The learner's part sits between nbgrader-style markers::

        def my_function(x):
            ### BEGIN SOLUTION
            return ...
            ### END SOLUTION

        answer = None  # your answer
        ### BEGIN SOLUTION
        answer = 42
        ### END SOLUTION

    ``student`` replaces a region *inside a function* by ``raise NotImplementedError("exercise N.k: your code
    here")`` at the marker's indentation, and a region *at the top level* of the cell by the comment
    ``# exercise N.k: your code here`` (``pass  # ...`` inside a top-level ``for``/``if``/``with`` block); so put a
    placeholder (``answer = None``) before a top-level region. Everything outside the markers is kept. The cell
    after a solution cell is tagged ``checker`` and calls the chapter's registered checker
    (``xlstm_edu.exercises.chNN``), which prints ✅ or ❌ — and ❌ "not solved yet", never a traceback, for an
    unsolved exercise.

Inline questions
    A markdown cell tagged ``question`` (``**Question N.a** — why ...?``) is followed by a markdown cell tagged
    ``answer`` with the model answer; ``student`` replaces the answer by a blank "*Your answer:*".

Ties to the package (tag ``tie``)
    A notebook builds its functions from scratch; the package ``xlstm_edu`` holds the tested versions. Cells
    tagged ``tie`` tie the two together: taken in notebook order, the ``tie`` cells of a notebook must run on
    their own in a fresh namespace (put the imports they need into a ``tie`` cell; no plotting, a second or
    less), define the from-scratch functions, and compare them with the package's on the same inputs with
    ``xlstm_edu.exercises.check(...)``. ``tests/test_notebook_ties.py`` executes exactly these cells for every
    notebook and fails unless each comparison prints ✅ and none prints ❌; the learner sees the same verdicts
    in the notebook. A ``tie`` cell may also be a ``solution`` cell (the test runs the solution edition).

The HTML edition works offline
    ``html`` copies MathJax from the installed package ``jupyter-server-mathjax`` next to the pages and points the
    pages at it (without that package it falls back to the MathJax CDN, and says so). It loads no other script
    from the network: interactive widgets (chapter 11) are rendered as what they showed when the notebook ran —
    their output (the plot) and their controls' values — since moving a control needs a running kernel anyway.
"""

from __future__ import annotations

import argparse
import copy
import html as html_lib
import os
import re
import shutil
import sys
import time
from pathlib import Path

METADATA_KEY = "xlstm_edu"
BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
ANSWER_STUB = "*Your answer:*\n\n"
EXERCISE_HEADING = re.compile(r"^#{2,4}\s*Exercise\s+(\d+(?:\.\d+)?)\b", flags=re.M)
FAST_CELL_TIMEOUT = 300  # seconds per cell in fast mode: a hang becomes an error
FULL_CELL_TIMEOUT = 3600  # full mode: some cells train for many minutes
MATHJAX_CDN = "https://cdnjs.cloudflare.com/ajax/libs/mathjax/2.7.7/latest.js?config=TeX-AMS_CHTML-full,Safe"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


class CourseError(ValueError):
    """A problem with the command's arguments or the course folder (reported as ``error: ...``, exit 2)."""


class NotebookFailed(RuntimeError):
    """A notebook raised or timed out while ``html`` ran it (reported as ``error: ...``, exit 1)."""


def _nbformat():
    import nbformat

    return nbformat


def default_notebooks_dir() -> Path:
    from xlstm_edu.paths import notebooks_dir

    return notebooks_dir()


def _tags(cell) -> list:
    return cell.get("metadata", {}).get("tags", [])


def notebook_paths(directory: Path | str | None = None, only=None) -> list[Path]:
    """The course notebooks ``NN_*.ipynb`` in chapter order; ``only`` keeps those whose name starts with one of
    the given prefixes (e.g. ``["01", "02"]``). Raises CourseError when the folder is missing, holds no course
    notebook, or ``only`` matches none."""
    directory = Path(directory) if directory is not None else default_notebooks_dir()
    if not directory.is_dir():
        raise CourseError(f"the notebooks folder {directory} does not exist (give it with --dir)")
    paths = sorted(p for p in directory.glob("*.ipynb") if re.match(r"\d\d_", p.name))
    if not paths:
        raise CourseError(f"no course notebooks (NN_name.ipynb) in {directory}")
    if only:
        kept = [p for p in paths if any(p.name.startswith(str(o)) for o in only)]
        if not kept:
            raise CourseError(f"--only {' '.join(map(str, only))} matches no notebook in {directory} "
                              f"(there are {', '.join(p.name[:2] for p in paths)})")
        paths = kept
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
    return {"chapter": number, "title": title or path.stem, "minutes": meta.get("minutes"), "file": path.name,
            "summary": meta.get("summary")}


def markdown_table(rows: list[dict]) -> str:
    """The README's chapter table (``course list --markdown``), built from the notebooks' metadata."""
    lines = ["| # | chapter | what you do | time |", "|---|---|---|---|"]
    for r in rows:
        minutes = f"{r['minutes']} min" if r["minutes"] else "?"
        lines.append(f"| {r['chapter']} | {r['title']} | {r['summary'] or ''} | {minutes} |")
    return "\n".join(lines)


def chapters(directory: Path | str | None = None) -> list[dict]:
    """chapter_info for every notebook in ``directory``."""
    nbformat = _nbformat()
    return [chapter_info(nbformat.read(p, as_version=4), p) for p in notebook_paths(directory)]


def exercise_headings(nb) -> list[str]:
    """The numbers of the notebook's ``### Exercise N.k`` headings, in order."""
    return [m for c in nb.cells if c.cell_type == "markdown" for m in EXERCISE_HEADING.findall(c.source)]


def solution_numbers(nb, chapter) -> list[str]:
    """``["N.1", "N.2", ...]``: the numbers the student edition gives the notebook's solution cells."""
    n = sum(1 for c in nb.cells if c.cell_type == "code" and "solution" in _tags(c))
    return [f"{chapter}.{k}" for k in range(1, n + 1)]


# ------------------------------------------------------------------------------------------- the student edition
_BLOCK_HEADER = re.compile(r"^\s*(async\s+def|def|class|for|while|if|elif|else|try|except|finally|with|match|case)\b")
_DEF = re.compile(r"^\s*(async\s+)?def\b")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _region_context(lines: list, i: int) -> str:
    """Where the BEGIN marker at line ``i`` sits: "def" (inside a function, at any depth), "block" (inside a
    top-level for/if/with/... block), or "top" (top level of the cell)."""
    level = _indent(lines[i])
    if level == 0:
        return "top"
    for line in reversed(lines[:i]):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        w = _indent(line)
        if w < level:
            if _DEF.match(line):
                return "def"
            level = w
            if level == 0:
                break
    return "block"


def strip_solution_source(source: str, exercise: str) -> str:
    """Replace every ``### BEGIN SOLUTION`` … ``### END SOLUTION`` region of one cell's source by its stub:
    ``raise NotImplementedError("exercise N.k: your code here")`` inside a function, the comment
    ``# exercise N.k: your code here`` at the top level (``pass  # ...`` inside a top-level block). Raises
    ValueError on unbalanced markers."""
    lines = source.splitlines()
    out, inside = [], False
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith(BEGIN):
            if inside:
                raise ValueError(f"exercise {exercise}: nested {BEGIN!r}")
            inside = True
            indent = line[: _indent(line)]
            where = _region_context(lines, i)
            if where == "def":
                out.append(f'{indent}raise NotImplementedError("exercise {exercise}: your code here")')
            elif where == "block":
                out.append(f"{indent}pass  # exercise {exercise}: your code here")
            else:
                out.append(f"# exercise {exercise}: your code here")
        elif stripped.startswith(END):
            if not inside:
                raise ValueError(f"exercise {exercise}: {END!r} without {BEGIN!r}")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"exercise {exercise}: {BEGIN!r} without {END!r}")
    return "\n".join(out)


def student_notebook(nb, chapter="?"):
    """A copy of ``nb`` with the solutions stubbed, the model answers blanked and all outputs cleared."""
    nb = copy.deepcopy(nb)
    count = 0
    for index, cell in enumerate(nb.cells):
        tags = _tags(cell)
        if cell.cell_type == "code":
            if "solution" in tags:
                count += 1
                if BEGIN not in cell.source:
                    raise ValueError(f"cell {index} is tagged 'solution' but has no {BEGIN!r} marker")
                cell.source = strip_solution_source(cell.source, f"{chapter}.{count}")
            cell.outputs = []
            cell.execution_count = None
            cell.metadata.pop("execution", None)
        elif cell.cell_type == "markdown" and "answer" in tags:
            cell.source = ANSWER_STUB
    nb.metadata.pop("widgets", None)
    return nb


def _check_out_of(out: Path, directory: Path):
    o, d = out.resolve(), directory.resolve()
    if o == d or d in o.parents:
        raise CourseError(f"--out {out} is the notebooks folder {directory} or inside it: the student edition "
                          f"would overwrite the course (choose another folder, e.g. build/student)")


def build_student(out: Path | str, directory: Path | str | None = None) -> list[Path]:
    """Write the student edition of every notebook to ``out``; returns the written paths. Refuses (CourseError)
    an ``out`` that is the notebooks folder or inside it."""
    nbformat = _nbformat()
    directory = Path(directory) if directory is not None else default_notebooks_dir()
    out = Path(out)
    paths = notebook_paths(directory)
    _check_out_of(out, directory)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        info = chapter_info(nb, path)
        student = student_notebook(nb, chapter=info["chapter"] if info["chapter"] is not None else "?")
        target = out / path.name
        nbformat.write(student, target)
        written.append(target)
    return written


# ----------------------------------------------------------------------------------------------------- running
def execute(path: Path | str, *, fast: bool, cell_timeout: int | None = None, nb=None, allow_errors: bool = False,
            cwd: Path | str | None = None):
    """Execute a notebook with nbclient in a fresh python3 kernel (working directory: the notebook's folder, or
    ``cwd``) and return it. ``fast`` sets ``XLSTM_EDU_FAST``; every cell must finish within ``cell_timeout``
    seconds (default 300 in fast mode, 3600 otherwise), so a hang becomes a clear error. ``nb``: run this
    notebook object instead of reading ``path``. This is the one runner of the course: ``html`` and
    ``tests/test_notebooks.py`` use it."""
    import nbclient

    path = Path(path)
    nb = _nbformat().read(path, as_version=4) if nb is None else nb
    if cell_timeout is None:
        cell_timeout = FAST_CELL_TIMEOUT if fast else FULL_CELL_TIMEOUT
    old = os.environ.get("XLSTM_EDU_FAST")
    os.environ["XLSTM_EDU_FAST"] = "1" if fast else "0"
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    try:
        nbclient.NotebookClient(nb, timeout=cell_timeout, kernel_name="python3", allow_errors=allow_errors,
                                store_widget_state=True,
                                resources={"metadata": {"path": str(cwd or path.parent)}}).execute()
    finally:
        if old is None:
            os.environ.pop("XLSTM_EDU_FAST", None)
        else:
            os.environ["XLSTM_EDU_FAST"] = old
    return nb


# ----------------------------------------------------------------------------------------------- the HTML edition
def mathjax_source() -> Path | None:
    """The folder of an installed MathJax (the ``jupyter-server-mathjax`` package), or None."""
    try:
        import jupyter_server_mathjax
    except ImportError:
        return None
    static = Path(jupyter_server_mathjax.__file__).parent / "static"
    return static if (static / "MathJax.js").exists() else None


def _mathjax_config(static: Path) -> str:
    configs = sorted(p.stem for p in (static / "config").glob("TeX-*.js"))
    for preferred in ("TeX-AMS_CHTML-full", "TeX-AMS-MML_HTMLorMML-full", "TeX-AMS_HTML-full"):
        if preferred in configs:
            return preferred
    return configs[0] if configs else "TeX-AMS-MML_HTMLorMML-full"


OFFLINE_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js_mathjax -%}
<script type="text/x-mathjax-config">
  // SVG output draws the glyphs itself: no web fonts to load, which a page opened from disk may be refused
  MathJax.Hub.Register.StartupHook("End Jax", function () { MathJax.Hub.setRenderer("SVG"); });
</script>
{{ super() }}
{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
"""


def _widget_models(nb) -> dict:
    return nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})


def _widget_snapshot(model_id: str, models: dict, seen: set) -> tuple[list, list]:
    """(outputs captured by the Output widgets under ``model_id``, "description = value" of its controls)."""
    if model_id in seen or model_id not in models:
        return [], []
    seen.add(model_id)
    state = models[model_id].get("state", {})
    outputs, controls = list(state.get("outputs", [])), []
    desc, value = state.get("description"), state.get("value", state.get("index"))
    if desc and value is not None and not isinstance(value, (dict, list)):
        options = state.get("_options_labels")
        if options and isinstance(value, int) and "index" in state and 0 <= value < len(options):
            value = options[value]
        controls.append(f"{desc.rstrip(':')} = {value}")
    for child in state.get("children", []):
        if isinstance(child, str) and child.startswith("IPY_MODEL_"):
            o, c = _widget_snapshot(child[len("IPY_MODEL_"):], models, seen)
            outputs += o
            controls += c
    return outputs, controls


def static_widgets(nb):
    """Replace every widget view output by what it showed when the notebook ran: a one-line note with the
    controls' values, then the outputs its Output widgets captured (plots, text). Drops the widget state, so the
    page loads no widget manager from the network. Returns the number of views replaced."""
    nbformat = _nbformat()
    models = _widget_models(nb)
    replaced = 0

    def convert(outputs):
        nonlocal replaced
        new = []
        for out in outputs:
            view = out.get("data", {}).get(WIDGET_VIEW) if out.get("output_type") in ("display_data",
                                                                                      "execute_result") else None
            if not view:
                new.append(out)
                continue
            replaced += 1
            captured, controls = _widget_snapshot(view.get("model_id", ""), models, set())
            values = f" (as run: {', '.join(controls)})" if controls else ""
            note = (f"<p style='font-style:italic;color:#555'>Interactive controls{html_lib.escape(values)}: "
                    f"open the notebook in Jupyter to move them. Below, what they showed when it ran.</p>")
            new.append(nbformat.v4.new_output("display_data", data={"text/html": note}))
            new += convert([nbformat.from_dict(o) for o in captured])
        return new

    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = convert(cell.outputs)
    nb.metadata.pop("widgets", None)
    return replaced


def html_exporter(mathjax_url: str):
    """nbconvert's HTMLExporter (lab template) that loads MathJax from ``mathjax_url`` and no other script from
    the network (no require.js, mermaid or widget manager)."""
    import jinja2
    from nbconvert import HTMLExporter

    return HTMLExporter(template_name="lab", extra_loaders=[jinja2.DictLoader({"xlstm_edu_offline.html.j2":
                                                                                OFFLINE_TEMPLATE})],
                        template_file="xlstm_edu_offline.html.j2", mathjax_url=mathjax_url)


def render_html(nb, out_dir: Path, mathjax_url: str) -> str:
    """The HTML page of an executed notebook (widgets made static, see ``static_widgets``)."""
    nb = copy.deepcopy(nb)
    static_widgets(nb)
    body, _ = html_exporter(mathjax_url).from_notebook_node(nb)
    return body


def prepare_html_folder(out: Path) -> str:
    """Create ``out`` with a copy of MathJax in ``out/_static/mathjax``; returns the MathJax URL for the pages
    (relative), or the CDN URL with a printed warning when no installed MathJax is found."""
    out.mkdir(parents=True, exist_ok=True)
    src = mathjax_source()
    if src is None:
        print("warning: the package jupyter-server-mathjax is not installed: the pages load MathJax from the "
              "network (pip install jupyter-server-mathjax for an offline copy)", file=sys.stderr)
        return MATHJAX_CDN
    target = out / "_static" / "mathjax"
    if not (target / "MathJax.js").exists():
        shutil.copytree(src, target, dirs_exist_ok=True)
    return f"_static/mathjax/MathJax.js?config={_mathjax_config(src)},Safe"


def build_html(out: Path | str, *, fast: bool = False, only=None, directory: Path | str | None = None,
               cell_timeout: int | None = None) -> list[Path]:
    """Execute each notebook and render it with nbconvert into ``out``, plus an index.html; MathJax is copied
    into ``out`` so that the pages work offline. A notebook that fails is reported and skipped; CourseError at
    the end names the failures."""
    directory = Path(directory) if directory is not None else default_notebooks_dir()
    paths = notebook_paths(directory, only)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise CourseError(f"--out {out} is a file, not a folder")
    mathjax_url = prepare_html_folder(out)
    written, rows, failed = [], [], []
    for path in paths:
        t0 = time.perf_counter()
        try:
            nb = execute(path, fast=fast, cell_timeout=cell_timeout)
        except Exception as exc:  # noqa: BLE001 -- report it and go on with the next notebook
            first = str(exc).strip().splitlines()
            failed.append(path.name)
            print(f"{path.name}: FAILED ({type(exc).__name__}: {first[-1] if first else ''})", file=sys.stderr)
            continue
        target = out / (path.stem + ".html")
        target.write_text(render_html(nb, out, mathjax_url), encoding="utf-8")
        written.append(target)
        rows.append((chapter_info(nb, path), target.name))
        print(f"{path.name}: executed and rendered in {time.perf_counter() - t0:.1f} s -> {target}")
    items = "\n".join(
        f'<li><a href="{html_lib.escape(name)}">{info["chapter"]}. {html_lib.escape(str(info["title"]))}</a>'
        f'{" (about " + str(info["minutes"]) + " min)" if info["minutes"] else ""}</li>'
        for info, name in rows)
    index = out / "index.html"
    index.write_text(f"<!doctype html><meta charset='utf-8'><title>xlstm-edu</title>"
                     f"<h1>xlstm-edu: the course</h1><ol start='0' style='list-style:none'>{items}</ol>\n",
                     encoding="utf-8")
    if failed:
        raise NotebookFailed(f"{len(failed)} notebook(s) failed to run: {', '.join(failed)} "
                             f"(the others are in {out})")
    return written + [index]


# ---------------------------------------------------------------------------------------------------------- CLI
def _cmd_list(args) -> int:
    rows = chapters(args.dir)
    if args.markdown:
        print(markdown_table(rows))
        return 0
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
    written = build_html(args.out, fast=args.fast, only=args.only, directory=args.dir,
                         cell_timeout=args.cell_timeout)
    print(f"wrote {len(written)} files to {args.out} (open {Path(args.out) / 'index.html'})")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m xlstm_edu.course", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", default=None, help="the notebooks folder (default: notebooks/ of the course "
                                                    "folder, see xlstm_edu.paths)")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("list", help="print the chapters with their estimated times")
    p.add_argument("--markdown", action="store_true", help="as the README's table (number, title, summary, time)")
    p = sub.add_parser("student", help="write the student edition (solutions and model answers hidden, "
                                       "outputs cleared)")
    p.add_argument("--out", default="build/student")
    p = sub.add_parser("html", help="execute every notebook and render an offline HTML copy")
    p.add_argument("--out", default="build/html")
    p.add_argument("--fast", action="store_true", help="run with XLSTM_EDU_FAST=1 (small sizes)")
    p.add_argument("--only", nargs="+", help="only notebooks whose file name starts with these (e.g. 00 03)")
    p.add_argument("--cell-timeout", type=int, default=None,
                   help=f"seconds one cell may run (default {FAST_CELL_TIMEOUT} with --fast, else "
                        f"{FULL_CELL_TIMEOUT})")
    args = parser.parse_args(argv)
    if args.command == "html" and args.cell_timeout is not None and args.cell_timeout < 1:
        parser.exit(2, f"error: --cell-timeout must be a positive number of seconds, got {args.cell_timeout}\n")
    try:
        return {"list": _cmd_list, "student": _cmd_student, "html": _cmd_html}[args.command](args)
    except CourseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except NotebookFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
