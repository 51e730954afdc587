"""The exercise checkers: every exercise of every notebook has a registered checker that accepts the good answer
and rejects realistic wrong ones; and the framework itself (check, check_gradient, combine, check_implementation,
the bug bank, forbid_package_calls, learner_or_reference) does what it promises.

Exercise cases live in ``tests/checker_cases/chNN.py`` (format in ``tests/checker_cases/__init__.py``).
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import math
import re
import sys
from pathlib import Path

import numpy as np
import pytest

import xlstm_edu.np as xnp
from xlstm_edu import exercises as ex
from xlstm_edu.exercises import bugs
from xlstm_edu.exercises.implementations import IMPLEMENTATIONS, battery
from xlstm_edu.paths import notebooks_dir

CASES_DIR = Path(__file__).parent / "checker_cases"
if str(CASES_DIR.parent) not in sys.path:
    sys.path.insert(0, str(CASES_DIR.parent))

EXERCISE_HEADING = re.compile(r"^#{2,4}\s*Exercise\s+(\d+\.\d+)\b", flags=re.M)


def _tags(cell):
    return cell.get("metadata", {}).get("tags", [])


def notebook_exercises() -> list:
    """[(notebook name, chapter, "N.k", checker cell source)] for every exercise heading ``### Exercise N.k``."""
    nbformat = pytest.importorskip("nbformat")
    out = []
    for path in sorted(notebooks_dir().glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        chapter = int(nb.metadata.get("xlstm_edu", {}).get("chapter", int(path.name[:2])))
        numbers = [m for c in nb.cells if c.cell_type == "markdown" for m in EXERCISE_HEADING.findall(c.source)]
        sols = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "solution" in _tags(c)]
        for k, number in enumerate(numbers):
            checker_src = ""
            if k < len(sols) and sols[k] + 1 < len(nb.cells) and "checker" in _tags(nb.cells[sols[k] + 1]):
                checker_src = nb.cells[sols[k] + 1].source
            out.append((path.name, chapter, number, checker_src))
    return out


EXERCISE_LIST = notebook_exercises() if importlib.util.find_spec("nbformat") else []


def checker_module(chapter: int):
    """``xlstm_edu.exercises.chNN`` or None when that chapter has none yet."""
    name = f"xlstm_edu.exercises.ch{chapter:02d}"
    if importlib.util.find_spec(name) is None:
        return None
    return importlib.import_module(name)


def case_module(chapter: int):
    path = CASES_DIR / f"ch{chapter:02d}.py"
    if not path.exists():
        return None
    spec = importlib.util.spec_from_file_location(f"checker_cases.ch{chapter:02d}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _parts(case):
    if isinstance(case, dict):
        return case["good"], case["wrong"]
    return case.good, case.wrong


def _call(checker, answer):
    if isinstance(answer, dict):
        return checker(**answer)
    if not isinstance(answer, tuple):
        answer = (answer,)
    return checker(*answer)


# ------------------------------------------------------------------------------------- every notebook exercise
def test_exercises_found():
    assert len(EXERCISE_LIST) >= 20, EXERCISE_LIST


def test_chapters_without_checker_module():
    """Chapters whose checker module does not exist yet are skipped below; this test lists them (and fails only
    for a chapter that has a module but no case file, or a case file but no module)."""
    missing, half = [], []
    for chapter in sorted({c for _, c, _, _ in EXERCISE_LIST}):
        mod, cases = checker_module(chapter), (CASES_DIR / f"ch{chapter:02d}.py").exists()
        if mod is None and not cases:
            missing.append(chapter)
        elif (mod is None) != (not cases):
            half.append(chapter)
    assert not half, f"chapters with a checker module but no tests/checker_cases/chNN.py (or the reverse): {half}"
    if missing:
        pytest.skip(f"chapters not yet converted to registered checkers: {missing}")


@pytest.mark.parametrize("nb_name,chapter,number,checker_src", EXERCISE_LIST,
                         ids=[n for _, _, n, _ in EXERCISE_LIST])
def test_exercise_has_registered_checker_and_cases(nb_name, chapter, number, checker_src, capsys):
    mod = checker_module(chapter)
    if mod is None:
        pytest.skip(f"chapter {chapter} ({nb_name}) has no xlstm_edu/exercises/ch{chapter:02d}.py yet")
    assert number in ex.EXERCISES, f"exercise {number} ({nb_name}) has no checker registered with @exercise"
    checker = ex.EXERCISES[number]
    cases = case_module(chapter)
    assert cases is not None, f"tests/checker_cases/ch{chapter:02d}.py is missing"
    assert number in cases.CASES, f"tests/checker_cases/ch{chapter:02d}.py has no case for exercise {number}"
    good, wrong = _parts(cases.CASES[number])

    v = _call(checker, good)
    out = capsys.readouterr().out
    assert isinstance(v, ex.Verdict) and v.ok, f"exercise {number}: the good answer is rejected:\n{out}"
    assert "✅" in out and "❌" not in out, out
    assert len(wrong) >= 2, f"exercise {number}: at least two wrong answers needed, got {len(wrong)}"
    for what, answer in wrong.items():
        v = _call(checker, answer)
        out = capsys.readouterr().out
        assert isinstance(v, ex.Verdict) and not v.ok, f"exercise {number}: wrong answer accepted ({what}):\n{out}"
        assert "❌" in out, f"exercise {number} ({what}): no ❌ printed:\n{out}"
        assert "Traceback" not in out


@pytest.mark.parametrize("nb_name,chapter,number,checker_src", EXERCISE_LIST,
                         ids=[n for _, _, n, _ in EXERCISE_LIST])
def test_checker_cell_calls_the_registered_checker(nb_name, chapter, number, checker_src):
    mod = checker_module(chapter)
    if mod is None:
        pytest.skip(f"chapter {chapter} ({nb_name}) has no xlstm_edu/exercises/ch{chapter:02d}.py yet")
    assert checker_src, f"{nb_name}: exercise {number} has no checker cell after its solution cell"
    assert number in ex.EXERCISES, f"exercise {number} has no registered checker"
    fname = ex.EXERCISES[number].__name__
    calls = set()
    for node in ast.walk(ast.parse(checker_src)):
        if isinstance(node, ast.Call):
            f = node.func
            calls.add(f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", None))
    assert fname in calls, (f"{nb_name}: the checker cell of exercise {number} does not call its registered "
                            f"checker {mod.__name__}.{fname} (calls: {sorted(c for c in calls if c)})")


# -------------------------------------------------------------------------------------------- check & friends
def test_check_statuses(capsys):
    ref = np.array([1.0, 2.0, 3.0])
    assert ex.check("x", ref.copy(), ref).status == "exact"
    assert ex.check("x", ref + 1e-9, ref).status == "close"
    assert ex.check("x", ref * 2, ref).status == "wrong"
    assert ex.check("x", ref[:2], ref).status == "wrong"
    for placeholder in (None, ...):
        v = ex.check("x", placeholder, ref, hint="look at eq. 2")
        assert v.status == "unsolved" and not v.ok and "not solved yet" in v.message and "eq. 2" in v.message
    out = capsys.readouterr().out
    assert out.count("❌") == 4 and out.count("✅") == 2


def test_check_calls_a_function_itself(capsys):
    def stub():
        raise NotImplementedError("exercise 9.9: your code here")

    def broken():
        return np.ones(3) @ np.ones(4)

    ref = np.ones(3)
    assert ex.check("x", lambda: np.ones(3), ref).ok
    assert ex.check("x", stub, ref, hint="h").status == "unsolved"
    v = ex.check("x", broken, ref)
    assert v.status == "wrong" and "ValueError" in v.message and "in broken" in v.message
    out = capsys.readouterr().out
    assert "Traceback" not in out and "not solved yet" in out


def test_check_gradient_unsolved_and_right(capsys):
    x = np.array([0.3, -1.2])
    f = lambda: float(np.sum(np.sin(x)))  # noqa: E731
    assert ex.check_gradient("g", f, x, np.cos(x)).ok
    assert ex.check_gradient("g", f, x, np.sin(x)).status == "wrong"
    assert ex.check_gradient("g", f, x, None).status == "unsolved"

    def f_stub():
        raise NotImplementedError

    assert ex.check_gradient("g", f_stub, x, np.cos(x)).status == "unsolved"
    assert "Traceback" not in capsys.readouterr().out


def test_combine(capsys):
    a = ex.check("a", 1.0, 1.0, quiet=True)
    b = ex.check("b", 2.0, 1.0, quiet=True)
    c = ex.check("c", None, 1.0, quiet=True)
    assert ex.combine("all", [a, a]).status == "exact"
    v = ex.combine("all", [a, b, c])
    assert not v.ok and v.status == "wrong" and "b: wrong" in v.message and "1 more" in v.message
    assert ex.combine("all", [c, b]).status == "unsolved"
    with pytest.raises(ValueError):
        ex.combine("none", [])


def test_exercise_registry_and_learner_or_reference(capsys):
    @ex.exercise("98.1")
    def check_toy(answer):
        return ex.check("toy", answer, 2.0, quiet=True)

    assert ex.EXERCISES["98.1"] is check_toy and check_toy.exercise == "98.1"
    with pytest.raises(ValueError):
        ex.exercise("1")
    ref = lambda x: 2 * x  # noqa: E731

    def stub(x):
        raise NotImplementedError

    f = ex.learner_or_reference(stub, ref, "98.2")
    assert f(3) == 6 and f(4) == 8
    assert capsys.readouterr().out.count("exercise 98.2 not solved yet") == 1
    assert ex.learner_or_reference(None, ref, "98.2") is ref
    check_toy(3.0)  # wrong: the learner's function is not used
    assert ex.learner_or_reference(lambda x: x, ref, "98.1") is ref
    assert "did not pass" in capsys.readouterr().out
    check_toy(2.0)
    assert ex.learner_or_reference(lambda x: 3 * x, ref, "98.1")(1) == 3
    for key in ("98.1",):
        ex.EXERCISES.pop(key, None)
        ex.RESULTS.pop(key, None)


# ----------------------------------------------------------------------------------- check_implementation
def _sig(x):
    return 0.5 * (1 + np.tanh(0.5 * x))  # never overflows


def _logsig(x):
    return -np.logaddexp(0.0, -x)


def my_lstm(wx, R, b, state=None):
    S, _, H = wx.shape
    h, c = (np.zeros(H, wx.dtype), np.zeros(H, wx.dtype)) if state is None else state
    hs = []
    for t in range(S):
        pre = wx[t] + np.einsum("h,ghk->gk", h, R) + b
        c = _sig(pre[1]) * c + _sig(pre[0]) * np.tanh(pre[2])
        h = _sig(pre[3]) * np.tanh(c)
        hs.append(h)
    return np.array(hs), (h, c)


def my_slstm(wx, R, b, state=None):
    S, _, H = wx.shape
    NH, DH = R.shape[1], R.shape[2]
    h, c, n, m = (np.zeros(H, wx.dtype),) * 4 if state is None else state
    hs = []
    for t in range(S):
        rec = np.einsum("jd,gjde->gje", h.reshape(NH, DH), R).reshape(4, H)
        pre = wx[t] + rec + b
        log_f = _logsig(pre[1])
        m_prev = np.where(n == 0, -np.inf, m)
        m_new = np.maximum(log_f + m_prev, pre[0])
        i_s, f_s = np.exp(pre[0] - m_new), np.exp(log_f + m_prev - m_new)
        c = f_s * c + i_s * np.tanh(pre[2])
        n = f_s * n + i_s
        m = m_new
        h = _sig(pre[3]) * c / n
        hs.append(h)
    return np.array(hs), (h, c, n, m)


def _mlstm_steps(q, k, v, i_pre, f_pre, C, n, m, eps):
    hs = []
    for t in range(len(q)):
        log_f = _logsig(f_pre[t])
        m_new = max(log_f + m, i_pre[t])
        f_s, i_s = np.exp(log_f + m - m_new), np.exp(i_pre[t] - m_new)
        C = f_s * C + i_s * np.outer(k[t], v[t])
        n = f_s * n + i_s * k[t]
        m = m_new
        qh = q[t] / np.sqrt(q.shape[1])
        hs.append(qh @ C / (max(abs(qh @ n), np.exp(-m)) + eps))
    return np.array(hs), (C, n, m)


def my_mlstm_recurrent(q, k, v, i_pre, f_pre, state=None, eps=1e-6):
    C, n, m = (np.zeros((q.shape[1], v.shape[1]), q.dtype), np.zeros(q.shape[1], q.dtype), 0.0) if state is None \
        else state
    return _mlstm_steps(q, k, v, i_pre, f_pre, C, n, float(m), eps)


def my_mlstm_parallel(q, k, v, i_pre, f_pre, eps=1e-6):
    S = len(q)
    b = np.cumsum(_logsig(f_pre.astype(np.float64)))
    logD = np.where(np.tri(S, dtype=bool), b[:, None] - b[None, :] + i_pre[None, :], -np.inf)
    m = logD.max(axis=1)
    St = (q @ k.T / np.sqrt(q.shape[1])) * np.exp(logD - m[:, None])
    with np.errstate(over="ignore"):
        den = np.maximum(np.abs(St.sum(axis=1)), np.exp(-m)) + eps
    return ((St / den[:, None]) @ v).astype(q.dtype)


def my_mlstm_chunkwise(q, k, v, i_pre, f_pre, chunk_size=64, state=None, eps=1e-6):
    """Parallel inside each chunk, the state (C, n, m) carried from chunk to chunk."""
    DK = q.shape[1]
    C, n, m = (np.zeros((DK, v.shape[1]), q.dtype), np.zeros(DK, q.dtype), 0.0) if state is None else state
    m = float(m)
    hs = []
    for a in range(0, len(q), chunk_size):
        Q, K, V = q[a:a + chunk_size] / np.sqrt(DK), k[a:a + chunk_size], v[a:a + chunk_size]
        log_f = _logsig(f_pre[a:a + chunk_size].astype(np.float64))
        b = np.cumsum(log_f)
        x = i_pre[a:a + chunk_size] - b
        L = len(b)
        mu = np.maximum(m, np.maximum.accumulate(x))  # m_t - b_t
        W = np.where(np.tri(L, dtype=bool), np.exp(x[None, :] - mu[:, None]), 0.0)
        Sc = (Q @ K.T) * W
        w_old = np.exp(m - mu)
        num = w_old[:, None] * (Q @ C) + Sc @ V
        qn = w_old * (Q @ n) + Sc.sum(axis=1)
        with np.errstate(over="ignore"):
            hs.append(num / (np.maximum(np.abs(qn), np.exp(-(b + mu))) + eps)[:, None])
        top = max(m, x.max())
        C = np.exp(m - top) * C + (K * np.exp(x - top)[:, None]).T @ V
        n = np.exp(m - top) * n + (K * np.exp(x - top)[:, None]).sum(axis=0)
        m = b[-1] + top
    return np.concatenate(hs).astype(q.dtype), (C.astype(q.dtype), n.astype(q.dtype), m)


MINE = {"lstm_recurrent": my_lstm, "slstm_recurrent": my_slstm, "mlstm_recurrent": my_mlstm_recurrent,
        "mlstm_parallel": my_mlstm_parallel, "mlstm_chunkwise": my_mlstm_chunkwise}


@pytest.mark.parametrize("name", IMPLEMENTATIONS)
def test_a_correct_implementation_passes(name, capsys):
    v = ex.check_implementation(name, MINE[name])
    assert v.ok, v.message


@pytest.mark.parametrize("name", IMPLEMENTATIONS)
def test_the_package_would_pass_if_allowed(name):
    """The battery compares with the package: its own outputs on the battery are the expected ones, and the
    bug bank's correct base agrees with it on every case."""
    from xlstm_edu.exercises.implementations import _compare_case

    for case in battery(name):
        assert _compare_case(name, case, getattr(xnp, name)(*case.args, **case.kwargs)) is None, case.what
        with np.errstate(all="ignore"):
            assert _compare_case(name, case, bugs.CORRECT[name](*case.args, **case.kwargs)) is None, case.what


def test_battery_has_the_promised_cases():
    for name in IMPLEMENTATIONS:
        whats = " ".join(c.what for c in battery(name))
        assert "S = 1)" in whats and "float32" in whats and "±100" in whats, name
        assert any(c.args[0].shape[0] % 2 == 1 and c.args[0].shape[0] > 1 for c in battery(name)), name
        if name.startswith("mlstm"):
            assert {c.kwargs["eps"] for c in battery(name)} >= {0.0, 1e-6}, name
        if name in ("mlstm_recurrent", "mlstm_chunkwise", "slstm_recurrent"):
            assert "m = 20" in whats, name
    sizes = {c.kwargs["chunk_size"] for c in battery("mlstm_chunkwise")}
    S_max = max(c.args[0].shape[0] for c in battery("mlstm_chunkwise"))
    assert {1, 7} <= sizes and max(sizes) > S_max


@pytest.mark.parametrize("bug", bugs.BANK, ids=[b.key for b in bugs.BANK])
def test_every_known_bug_is_rejected_and_named(bug):
    for name in bug.names:
        v = ex.check_implementation(name, bug.fn, quiet=True)
        assert not v.ok, f"{bug.key} passed"
        assert bug.label in v.message, v.message
        assert re.search(r"case \d+ of \d+ \(", v.message), v.message


def test_museum_exhibits_are_in_the_bank():
    labels = " ".join(b.label for b in bugs.BANK)
    for numeral in ("I", "II", "III", "IV", "V", "VI", "VII", "IX", "XI"):
        assert f"exhibit {numeral}:" in labels, numeral


def _torch_parallel(q, k, v, i_pre, f_pre, eps=1e-6):
    import torch

    import xlstm_edu.nn as xnn

    t = lambda a: torch.from_numpy(np.ascontiguousarray(a))[None, None]  # noqa: E731
    return xnn.mlstm_parallel(t(q), t(k), t(v), t(i_pre), t(f_pre), eps=eps)[0, 0].numpy()


def _official_parallel(q, k, v, i_pre, f_pre, eps=1e-6):
    import torch
    from mlstm_kernels.torch.parallel.native import mlstm_parallel__native_autograd

    t = lambda a: torch.from_numpy(np.ascontiguousarray(a))[None, None]  # noqa: E731
    return mlstm_parallel__native_autograd(t(q), t(k), t(v), t(i_pre), t(f_pre), eps=eps)[0, 0].numpy()


def _torch_lstm(wx, R, b, state=None):
    import torch

    H = wx.shape[-1]
    lstm = torch.nn.LSTM(H, H, batch_first=True).double()
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(torch.eye(H).repeat(4, 1))
        lstm.weight_hh_l0.copy_(torch.from_numpy(R.transpose(0, 2, 1).reshape(4 * H, H)))
        lstm.bias_ih_l0.copy_(torch.from_numpy(b.reshape(-1)))
        lstm.bias_hh_l0.zero_()
    h, _ = lstm(torch.from_numpy(wx.sum(axis=1))[None])  # refused: torch.nn.LSTM.forward
    return h[0].detach().numpy(), None


PACKAGE_CALLS = {
    "mlstm_parallel: the package's parallel form": ("mlstm_parallel", lambda q, k, v, i, f, eps=1e-6:
                                                    xnp.mlstm_parallel(q, k, v, i, f, eps=eps)),
    "mlstm_parallel: the package's recurrent form standing in": (
        "mlstm_parallel", lambda q, k, v, i, f, eps=1e-6: xnp.mlstm_recurrent(q, k, v, i, f, eps=eps)[0]),
    "mlstm_parallel: the package's chunkwise form standing in": (
        "mlstm_parallel", lambda q, k, v, i, f, eps=1e-6: xnp.mlstm_chunkwise(q, k, v, i, f, eps=eps)[0]),
    "mlstm_recurrent: the package itself": ("mlstm_recurrent", xnp.mlstm_recurrent),
    "mlstm_chunkwise: the package's step function in a loop": (
        "mlstm_chunkwise", lambda q, k, v, i, f, chunk_size=1, state=None, eps=1e-6: xnp.mlstm_step(
            q[0], k[0], v[0], i[0], f[0], state=state, eps=eps)),
    "lstm_recurrent: the package's step": ("lstm_recurrent", lambda wx, R, b, state=None: xnp.lstm_step(
        wx[0], R, b, state)),
    "slstm_recurrent: the package's stabilizer step": (
        "slstm_recurrent", lambda wx, R, b, state=None: __import__("xlstm_edu.np.gating", fromlist=["x"])
        .stabilizer_step(wx[:, 1], wx[:, 0], np.zeros(wx.shape[-1]))),
    "mlstm_parallel: the torch version": ("mlstm_parallel", _torch_parallel),
    "lstm_recurrent: torch.nn.LSTM": ("lstm_recurrent", _torch_lstm),
}


@pytest.mark.parametrize("what", list(PACKAGE_CALLS))
def test_calling_the_package_is_rejected(what, capsys):
    name, fn = PACKAGE_CALLS[what]
    v = ex.check_implementation(name, fn)
    assert not v.ok and "write it yourself" in v.message, v.message
    # restored afterwards
    q, k, v_, i, f = (np.ones((3, 2)), np.ones((3, 2)), np.ones((3, 2)), np.zeros(3), np.zeros(3))
    assert xnp.mlstm_parallel(q, k, v_, i, f).shape == (3, 2)


@pytest.mark.oracle
def test_calling_the_official_kernels_is_rejected(capsys):
    pytest.importorskip("mlstm_kernels")
    v = ex.check_implementation("mlstm_parallel", _official_parallel)
    assert not v.ok and "write it yourself" in v.message and "mlstm_kernels" in v.message, v.message
    case = battery("mlstm_parallel")[0]
    got = _official_parallel(*case.args, **case.kwargs)  # works again outside the check
    assert np.allclose(got, case.expected, rtol=1e-5, atol=1e-6)


def test_alias_made_before_is_refused_too():
    from xlstm_edu.np import mlstm_recurrent as alias

    with ex.forbid_package_calls() as forbidder:
        with pytest.raises(ex.WriteItYourself, match="write it yourself"):
            alias(np.ones((2, 2)), np.ones((2, 2)), np.ones((2, 2)), np.zeros(2), np.zeros(2))
        assert forbidder.calls == ["xlstm_edu.np.mlstm_recurrent"]
        from xlstm_edu.np.gating import sigmoid

        assert float(sigmoid(np.array(0.0))) == 0.5  # the small helpers stay usable
    assert alias(np.ones((2, 2)), np.ones((2, 2)), np.ones((2, 2)), np.zeros(2), np.zeros(2))[0].shape == (2, 2)


def test_forbid_restores_after_an_exception():
    with pytest.raises(KeyError):
        with ex.forbid_package_calls():
            raise KeyError("boom")
    assert xnp.lstm_recurrent(np.zeros((2, 4, 3)), np.zeros((4, 3, 3)), np.zeros((4, 3)))[0].shape == (2, 3)


def test_caught_refusal_still_fails(capsys):
    def sneaky(q, k, v, i_pre, f_pre, eps=1e-6):
        try:
            return xnp.mlstm_parallel(q, k, v, i_pre, f_pre, eps=eps)
        except Exception:  # noqa: BLE001
            return my_mlstm_parallel(q, k, v, i_pre, f_pre, eps=eps)

    v = ex.check_implementation("mlstm_parallel", sneaky)
    assert not v.ok and "write it yourself" in v.message


def test_unsolved_and_raising_implementations(capsys):
    def stub(wx, R, b, state=None):
        raise NotImplementedError("exercise 1.1: your code here")

    def typo(wx, R, b, state=None):
        return wx @ R  # wrong shapes: raises

    for fn in (None, ..., stub):
        v = ex.check_implementation("lstm_recurrent", fn)
        assert v.status == "unsolved" and "not solved yet" in v.message and "hint" in v.message
    v = ex.check_implementation("lstm_recurrent", typo)
    assert v.status == "wrong" and "ValueError" in v.message and "case 1 of" in v.message
    assert "Traceback" not in capsys.readouterr().out
    with pytest.raises(ValueError, match="expected name in"):
        ex.check_implementation("gru", my_lstm)


def test_wrong_return_form_and_in_place_change(capsys):
    v = ex.check_implementation("lstm_recurrent", lambda wx, R, b, state=None: my_lstm(wx, R, b, state)[0])
    assert not v.ok and "expected (h, (h_last, c_last))" in v.message

    def scales_in_place(q, k, v, i_pre, f_pre, eps=1e-6):
        q /= np.sqrt(q.shape[1])
        return my_mlstm_parallel(q * np.sqrt(q.shape[1]), k, v, i_pre, f_pre, eps)

    v = ex.check_implementation("mlstm_parallel", scales_in_place)
    assert not v.ok and "changed its input q in place" in v.message


def test_naive_float32_mlstm_fails_with_nan():
    def unstabilized(q, k, v, i_pre, f_pre, eps=1e-6):
        return xnp.mlstm_recurrent_unstabilized(q, k, v, i_pre, f_pre, eps=eps)[0]

    # the package's own teaching version is refused too; written out, the same math gives NaN in float32
    v = ex.check_implementation("mlstm_parallel", unstabilized, quiet=True)
    assert not v.ok and "write it yourself" in v.message
    v = ex.check_implementation("mlstm_parallel", bugs.BANK[[b.key for b in bugs.BANK].index(
        "mlstm_parallel.no_stabilizer")].fn, quiet=True)
    assert not v.ok and "exhibit I:" in v.message


def test_m_at_twenty_state_is_dominated_by_the_stabilizer():
    case = next(c for c in battery("mlstm_recurrent") if "m = 20" in c.what)
    assert math.isclose(float(case.kwargs["state"][2]), 20.0)
