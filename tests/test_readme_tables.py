"""Every README table written from a result file equals what that file gives (or says that it is not there yet).
The comparison's and the paper-claims tables have their own tests (test_compare.py, test_experiments.py)."""

import json

import pytest

import xlstm_edu.bench.generate as bench_generate
import xlstm_edu.bench.lm as bench_lm
from xlstm_edu import longctx
from xlstm_edu.paths import home

TABLES = [
    (bench_lm, "bench_lm.json", "python -m xlstm_edu.bench lm --json results/bench_lm.json --update-readme"),
    (bench_generate, "bench_generate.json",
     "python -m xlstm_edu.bench generate --json results/bench_generate.json --update-readme"),
    (longctx, "long_context.json", "python -m xlstm_edu.longctx --from-compare ... --update-readme"),
]


@pytest.mark.parametrize("module, name, command", TABLES, ids=[t[1] for t in TABLES])
def test_the_readme_table_is_the_committed_result(module, name, command):
    readme = (home() / "README.md").read_text(encoding="utf-8")
    assert module.README_BEGIN in readme and module.README_END in readme, f"the README lost the block of {name}"
    text = readme.split(module.README_BEGIN, 1)[1].split(module.README_END, 1)[0].strip("\n")
    path = home() / "results" / name
    result = json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
    assert text == module.readme_block(result), f"rebuild it: {command}"
