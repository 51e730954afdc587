"""The probes of ``xlstm_edu.probes`` catch every exhibit of the bug museum (notebooks/08_bug_museum.ipynb) and pass
every fix; and they are right about the package's own mLSTM forms (causal, with memory, batch-independent,
column-consistent). Every exhibit says where it was seen.

The exhibits are taken from the notebook itself (its cells tagged ``tie`` and ``exhibit``), so the notebook and
this test cannot drift apart.
"""

import re

from pathlib import Path

import numpy as np
import pytest

import xlstm_edu.np as xnp
from xlstm_edu.probes import (
    MLSTM_TIME_AXES,
    batch_leak_probe,
    causality_probe,
    check_finite,
    column_consistency_probe,
    compare_to_reference,
    memory_probe,
    probe_verdict,
    run_check,
)

ROOT = Path(__file__).resolve().parents[1]
MUSEUM_NB = ROOT / "notebooks" / "08_bug_museum.ipynb"
EXPECTED_EXHIBITS = 14  # I .. XIV; XV (shape-only tests) is the scoreboard itself
NUMERALS = ["I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII", "XIII", "XIV"]


@pytest.fixture(scope="module")
def museum():
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(MUSEUM_NB, as_version=4)
    ns = {}
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if cell.cell_type == "code" and ({"tie", "exhibit"} & set(tags)):
            exec(compile(cell.source, str(MUSEUM_NB), "exec"), ns)
    return ns


def test_museum_has_every_exhibit(museum):
    assert len(museum["MUSEUM"]) == EXPECTED_EXHIBITS
    assert [name.split(".")[0] for name in museum["MUSEUM"]] == NUMERALS  # the numbering the bug bank cites
    assert {ex["check"] for ex in museum["MUSEUM"].values()} == {"finite", "reference", "causality", "memory",
                                                                 "batch", "columns"}


def test_every_exhibit_says_where_it_was_seen(museum):
    """A repository and file at a pinned commit ("owner/repo path @ abc1234"), or an explicit "not pinned"."""
    pinned = re.compile(r"^[\w.-]+/[\w.-]+ \S+ @ [0-9a-f]{7,40}$")
    for name, ex in museum["MUSEUM"].items():
        assert pinned.match(ex["seen"]) or ex["seen"].startswith("not pinned"), (name, ex["seen"])
    assert sum(ex["seen"].startswith("not pinned") for ex in museum["MUSEUM"].values()) <= 1


def _exhibit_names():
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(MUSEUM_NB, as_version=4)
    names = []
    for cell in nb.cells:
        if cell.cell_type == "code" and "exhibit" in cell.get("metadata", {}).get("tags", []):
            for line in cell.source.splitlines():
                if line.startswith("MUSEUM["):
                    names.append(line.split('"')[1])
    return names


@pytest.mark.parametrize("name", _exhibit_names())
def test_check_catches_bug_and_passes_fix(museum, name):
    ex = museum["MUSEUM"][name]
    ref = ex.get("reference", museum["reference"])
    assert not run_check(ex["check"], ex["bug"], ex["inputs"], reference=ref, quiet=True).ok, f"{name}: bug not caught"
    assert run_check(ex["check"], ex["fix"], ex["inputs"], reference=ref, quiet=True).ok, f"{name}: fix rejected"
    # the shape-only test of exhibit XV passes the bug: that is the point of the museum
    with np.errstate(all="ignore"):
        assert np.shape(ex["bug"](**ex["inputs"])) == np.shape(ex["fix"](**ex["inputs"]))


def test_specimen_equals_reference(museum):
    inputs = museum["inputs"]
    np.testing.assert_allclose(museum["good"](**inputs), museum["reference"](**inputs), rtol=1e-10, atol=1e-12)


def test_silent_bugs_pass_the_finite_check(museum):
    """Exhibits III-VII, XIII and XIV give finite numbers: only the reference catches them (the notebook says so);
    exhibit XII is causal and exhibit XIII too: the causality probe passes them."""
    for name, ex in museum["MUSEUM"].items():
        if ex["check"] == "reference":
            assert run_check("finite", ex["bug"], ex["inputs"], quiet=True).ok, name
    for name in ("XII. state not carried through time", "XIII. off by one in the forget cumsum"):
        ex = museum["MUSEUM"][name]
        assert run_check("causality", ex["bug"], ex["inputs"], quiet=True).ok, name


# ---- the probes on the package's own forms -------------------------------------------------------------------

def _inputs(rng, lead=(), S=20, DK=5, DV=4):
    return dict(q=rng.standard_normal(lead + (S, DK)), k=rng.standard_normal(lead + (S, DK)),
                v=rng.standard_normal(lead + (S, DV)), i_pre=rng.normal(0, 3, lead + (S,)),
                f_pre=rng.normal(2, 2, lead + (S,)))


FORMS = {
    "recurrent": lambda **x: xnp.mlstm_recurrent(**x),
    "parallel": lambda **x: xnp.mlstm_parallel(**x),
    "chunkwise": lambda **x: xnp.mlstm_chunkwise(**x, chunk_size=6),
}


@pytest.mark.parametrize("form", sorted(FORMS))
def test_package_forms_pass_every_probe(form):
    fn = FORMS[form]
    rng = np.random.default_rng(1)
    x = _inputs(rng)
    for t in (0, 7, 18):
        assert causality_probe(fn, x, t) <= 1e-12
    assert memory_probe(fn, x) > 1e-3  # the state is carried through time
    xb = _inputs(rng, lead=(3,))
    assert batch_leak_probe(fn, xb) == 0.0
    assert column_consistency_probe(fn, x) <= 1e-12
    assert compare_to_reference(fn, FORMS["recurrent"], x, rtol=1e-5, atol=1e-6, quiet=True).ok
    assert check_finite("h", fn(**x), quiet=True).ok


def test_causality_probe_measures_leak_size():
    """A model that adds a fraction of the next input leaks exactly at the probed boundary and not before."""
    def leaky(q, k, v, i_pre, f_pre):
        h = v.copy()
        h[:-1] += 0.5 * v[1:]  # step t sees step t+1
        return h

    rng = np.random.default_rng(2)
    x = _inputs(rng)
    assert causality_probe(leaky, x, 5) > 0.01
    # with the noise only at times > t + 1 the step-t output would not move; the probe changes all of them
    assert causality_probe(lambda **a: a["v"].copy(), x, 5) == 0.0


def test_memory_probe_sees_a_recurrence_without_memory():
    rng = np.random.default_rng(5)
    x = _inputs(rng)
    assert memory_probe(lambda **a: a["v"] * 2.0, x) == 0.0
    assert not run_check("memory", lambda **a: a["v"] * 2.0, x, quiet=True).ok
    assert run_check("memory", FORMS["parallel"], x, quiet=True).ok


def test_probe_verdict_and_finite_messages(capsys):
    assert probe_verdict("p", 0.0).ok
    assert not probe_verdict("p", 1e-3).ok
    v = check_finite("x", np.array([1.0, np.nan, np.inf]))
    assert not v.ok and "1 NaN and 1 inf" in capsys.readouterr().out


def test_bad_input_raises_value_error():
    rng = np.random.default_rng(3)
    x = _inputs(rng)
    fn = FORMS["recurrent"]
    with pytest.raises(ValueError, match="t: expected"):
        causality_probe(fn, x, x["q"].shape[0] - 1)  # no future after the last step
    with pytest.raises(ValueError, match="t: expected"):
        causality_probe(fn, x, -1)
    with pytest.raises(ValueError, match="inputs: expected a non-empty dict"):
        causality_probe(fn, [x["q"]], 3)
    with pytest.raises(ValueError, match="time_axes"):
        causality_probe(fn, {**x, "extra": x["q"]}, 3)
    bad = dict(x, i_pre=x["i_pre"][:-1])
    with pytest.raises(ValueError, match="one sequence length"):
        causality_probe(fn, bad, 3)
    with pytest.raises(ValueError, match="t: expected"):
        memory_probe(fn, x, t=x["q"].shape[0] - 1)  # no later step
    with pytest.raises(ValueError, match="batch axis"):
        batch_leak_probe(fn, _inputs(rng, lead=(1,)))  # a batch of one: nothing to leak into
    with pytest.raises(ValueError, match="kind"):
        run_check("shapes", fn, x)
    with pytest.raises(ValueError, match="reference"):
        run_check("reference", fn, x)
    with pytest.raises(ValueError, match="value_name"):
        column_consistency_probe(fn, x, value_name="w")
    assert set(MLSTM_TIME_AXES) == {"q", "k", "v", "i_pre", "f_pre"}
