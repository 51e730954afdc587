"""The repository stands on its own: no file points to the maintainers' private notes (learners never have them),
and notebooks are committed without outputs."""

import json
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# the private notes the course was built from live outside the repository; nothing may cite them
PRIVATE = re.compile(r"SPEC(\.md|\s*§)|\.\./shared/")


def tracked_files():
    try:
        out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [ROOT / f for f in out.splitlines() if (ROOT / f).is_file()]


def test_no_file_cites_the_private_notes():
    offenders = []
    for path in tracked_files():
        if path == Path(__file__).resolve() or path.suffix in (".png", ".pt"):
            continue
        text = path.read_text(encoding="utf-8", errors="ignore")
        offenders += [f"{path.relative_to(ROOT)}:{text[:m.start()].count(chr(10)) + 1}" for m in PRIVATE.finditer(text)]
    assert not offenders, "write the fact in the repository's own words instead of citing the notes: " + \
        ", ".join(offenders)


def test_the_pattern_finds_a_citation():
    notes, folder = "SP" + "EC", ".." + "/sha" + "red"  # split, so that this file does not cite them itself
    assert PRIVATE.search(f"see {notes}.md §3") and PRIVATE.search(f"({folder}/{notes}.md)") \
        and PRIVATE.search(f"{notes} §2")
    assert not PRIVATE.search("the official spec of the layer")


def test_notebooks_are_committed_without_outputs():
    for path in sorted(ROOT.glob("notebooks/*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        with_output = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code" and c.get("outputs")]
        assert not with_output, f"{path.name}: cells {with_output} have outputs (clear them before committing)"
