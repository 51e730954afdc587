"""Check an output file before the work that fills it: a long run must not end by failing to write its result.

``check_output_file(path, option)`` creates the missing folders, makes sure that ``path`` names a file (not a
folder, not a path through a file) and that the file can be opened for writing, and raises ``ValueError`` with
a message that names the command-line option otherwise. A file that did not exist is removed again, so a run
that fails later leaves nothing behind. ``write_json_atomic`` replaces a result file in one step, so a run
killed while writing keeps the previous version whole. ``code_version`` is the commit every result file records.
``replace_marked_block`` rewrites the part of a text file (the README) between two marker lines, which is how
every README table made from a result file is written.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


def check_output_file(path, option: str = "output") -> Path:
    """``path`` as a ``Path`` once it is known to be writable; ``ValueError`` (naming ``option``) if not."""
    if path is None or str(path).strip() == "":
        raise ValueError(f"{option}: expected a file name, got {path!r}")
    text = str(path)
    p = Path(text).expanduser()
    if text.endswith(("/", os.sep)) or p.is_dir():
        raise ValueError(f"{option}: {text!r} is a folder; expected a file name (add one, "
                         f"e.g. {os.path.join(text, 'results.json')!r})")
    parent = p.parent
    for ancestor in [parent, *parent.parents]:  # a path through a file can never be created
        if ancestor.exists():
            if not ancestor.is_dir():
                raise ValueError(f"{option}: cannot write {text!r}: {str(ancestor)!r} is a file, not a folder")
            break
    try:
        parent.mkdir(parents=True, exist_ok=True)
        existed = p.exists()
        with open(p, "a"):
            pass
        if not existed:
            p.unlink()
    except OSError as e:
        raise ValueError(f"{option}: cannot write {text!r} ({e.strerror or e})") from None
    return p


def code_version() -> str | None:
    """``git``-style id of the package code a result comes from: the commit, plus ``-dirty`` when ``xlstm_edu/``
    has uncommitted changes (results of small models depend on every detail of the code, even on the order in
    which weights are drawn). None outside a git checkout."""
    import subprocess

    package = Path(__file__).resolve().parent  # the code's own version, wherever the course folder is
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=package, capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "."], cwd=package, capture_output=True,
                               text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("-dirty" if dirty else "") if commit else None


def write_json_atomic(path, obj) -> None:
    """Write ``obj`` as indented JSON to ``path`` through a temporary file and a rename."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1) + "\n")
    tmp.replace(path)


def replace_marked_block(path, begin: str, end: str, body: str) -> bool:
    """Put ``body`` between the lines ``begin`` and ``end`` of the text file ``path`` (the rest unchanged).
    False, and nothing written, when a marker is missing."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if begin not in text or end not in text:
        return False
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    path.write_text(f"{head}{begin}\n{body}\n{end}{tail}", encoding="utf-8")
    return True
