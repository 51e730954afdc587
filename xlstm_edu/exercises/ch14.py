"""Checkers for chapter 14, the mLSTM among linear RNNs (``notebooks/14_linear_rnns.ipynb``).

Every checker compares the learner's answer with the package (``xlstm_edu.np.linear_rnn``,
``xlstm_edu.linear_rnn_parity``) on inputs it draws itself, prints ✅ or ❌ with a hint, and returns a ``Verdict``.
"""

from __future__ import annotations

import ast
import inspect
import textwrap

import numpy as np

from xlstm_edu.exercises import Verdict, check, combine, exercise, forbid_package_calls
from xlstm_edu.np import linear_rnn as lr


def _fail(name: str, text: str, hint: str, quiet: bool) -> Verdict:
    """A ❌ verdict with ``text`` and the hint, printed unless ``quiet``."""
    v = Verdict(name, "wrong", np.inf, np.inf, f"❌ {name}: {text} -- hint: {hint}")
    if not quiet:
        print(v.message)
        v.printed = True
    return v


def _unsolved(name: str, fn, hint: str, quiet: bool) -> Verdict | None:
    """The ❌ "not solved yet" verdict of ``check`` for a placeholder (None or ...), else None."""
    if fn is None or fn is Ellipsis:
        return check(name, fn, 0.0, hint=hint, quiet=quiet)
    return None


def _called_names(fn) -> set | None:
    """Names of every function the source of ``fn`` calls (``np.linalg.eigvalsh`` gives 'eigvalsh'); None when
    the source cannot be read."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError, IndentationError):
        return None
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            names.add(f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", None))
    return names


def _broken_rule(fn, *, must_call=(), must_not_call=()) -> str | None:
    """What the source of ``fn`` does against the exercise's rule, or None (also when the source is unreadable)."""
    names = _called_names(fn)
    if names is None:
        return None
    bad = sorted(names & set(must_not_call))
    if bad:
        return f"this exercise asks you not to call {', '.join(bad)}"
    if must_call and not names & set(must_call):
        return f"this exercise asks you to use {' or '.join(must_call)}"
    return None


def _qkv(rng, lead, S, DK, DV, normalize_k=True):
    q, k, v = rng.normal(size=lead + (S, DK)), rng.normal(size=lead + (S, DK)), rng.normal(size=lead + (S, DV))
    if normalize_k:
        k = k / np.linalg.norm(k, axis=-1, keepdims=True)
    return q, k, v


# ----------------------------------------------------------------------------------------------- 14.1
@exercise("14.1")
def check_linear_attention_from_mlstm(fn, *, quiet: bool = False) -> Verdict:
    """``fn(q, k, v) -> h``: linear attention (Q Kᵀ ⊙ M) V computed with the mLSTM (i = 1, f = 1, no
    normalizer). Compared with ``xlstm_edu.np.linear_attention_parallel`` on two shapes."""
    name = "exercise 14.1 (linear attention from the mLSTM)"
    hint = ("which pre-activations make i = exp(ĩ) and f exactly 1? (σ(0) is only 1/2: there is a forget_gate "
            "option); then take the matrix *before* the normalizer, and remember that the mLSTM scales q by 1/√DK")
    v0 = _unsolved(name, fn, hint, quiet)
    if v0 is not None:
        return v0
    broken = _broken_rule(fn, must_call=("mlstm_parallel_parts", "mlstm_recurrent", "mlstm_parallel"),
                          must_not_call=("linear_attention_parallel", "linear_attention_recurrent",
                                         "gated_parallel", "gated_recurrent", "retnet_parallel", "retnet_recurrent"))
    if broken:
        return _fail(name, broken, hint, quiet)
    rng = np.random.default_rng(141)
    verdicts = []
    for lead, S, DK, DV in (((2,), 7, 4, 3), ((), 12, 9, 2)):
        q, k, v = _qkv(rng, lead, S, DK, DV, normalize_k=False)
        ref = lr.linear_attention_parallel(q, k, v)
        verdicts.append(check(f"h (S={S}, DK={DK})", lambda: fn(q, k, v), ref, rtol=1e-8, atol=1e-10, hint=hint,
                              quiet=True))
    return combine(name, verdicts, quiet=quiet)


# ----------------------------------------------------------------------------------------------- 14.2
@exercise("14.2")
def check_deltanet_step(fn, *, quiet: bool = False) -> Verdict:
    """``fn(q, k, v, beta, S) -> (h, S_new)`` for vectors q, k (DK,), v (DV,), a number beta and S (DK, DV):
    one DeltaNet step. Run over random sequences (DK != DV, β in [0, 2], normalized and unnormalized keys) and
    compared with ``xlstm_edu.np.deltanet_recurrent``; the package's implementations refuse while it runs."""
    name = "exercise 14.2 (DeltaNet step)"
    hint = ("first erase what the memory returns for k (S - β k (Sᵀk)ᵀ), then write β k vᵀ; read h = Sᵀq from "
            "the *new* state; S is (DK, DV), so the write is an outer product k vᵀ")
    v0 = _unsolved(name, fn, hint, quiet)
    if v0 is not None:
        return v0
    rng = np.random.default_rng(142)
    verdicts = []
    for S, DK, DV, normalize in ((9, 3, 4, True), (6, 5, 2, False), (12, 4, 4, True)):
        q, k, v = _qkv(rng, (), S, DK, DV, normalize_k=normalize)
        beta = rng.uniform(0.0, 2.0, size=S) if normalize else rng.uniform(0.0, 0.3, size=S)
        h_ref, S_ref = lr.deltanet_recurrent(q, k, v, beta)
        got = {}

        def run(q=q, k=k, v=v, beta=beta, got=got):
            # the learner's step over the sequence; a nested function, because forbid_package_calls() also
            # refuses this module's own functions (they hold reference solutions)
            state = np.zeros((q.shape[-1], v.shape[-1]))
            hs = []
            with forbid_package_calls():
                for t in range(q.shape[0]):
                    out = fn(q[t], k[t], v[t], float(beta[t]), state)
                    if not isinstance(out, tuple) or len(out) != 2:
                        raise ValueError(f"expected a pair (h, S_new), got {type(out).__name__}")
                    hs.append(np.asarray(out[0], dtype=np.float64))
                    state = np.asarray(out[1], dtype=np.float64)
            got["S"] = state
            return np.stack(hs)

        vh = check(f"h over {S} steps (DK={DK}, DV={DV})", run, h_ref, rtol=1e-8, atol=1e-10, hint=hint, quiet=True)
        verdicts.append(vh)
        if vh.ok:
            verdicts.append(check(f"last state (DK={DK}, DV={DV})", got["S"], S_ref, rtol=1e-8, atol=1e-10,
                                  hint=hint, quiet=True))
        else:
            break
    return combine(name, verdicts, quiet=quiet)


# ----------------------------------------------------------------------------------------------- 14.3
EIGEN_SOLVERS = ("eig", "eigh", "eigvals", "eigvalsh", "svd", "deltanet_transition")


@exercise("14.3")
def check_transition_eigenvalues(fn, *, quiet: bool = False) -> Verdict:
    """``fn(k, beta) -> eigenvalues`` of DeltaNet's transition I - β k kᵀ for a key k (DK,) and a number β, in
    ascending order, without an eigen-solver. Compared with ``np.linalg.eigvalsh`` of
    ``xlstm_edu.np.deltanet_transition`` for keys of several lengths and norms."""
    name = "exercise 14.3 (eigenvalues of I - β k kᵀ)"
    hint = ("k itself is an eigenvector: (I - β k kᵀ) k = (1 - β kᵀk) k; every vector orthogonal to k is left "
            "alone (eigenvalue 1, DK - 1 of them); the key is not normalized here")
    v0 = _unsolved(name, fn, hint, quiet)
    if v0 is not None:
        return v0
    broken = _broken_rule(fn, must_not_call=EIGEN_SOLVERS)
    if broken:
        return _fail(name, broken + " (find them by hand)", hint, quiet)
    rng = np.random.default_rng(143)
    verdicts = []
    for DK, beta, scale in ((3, 1.5, 1.0), (1, 0.4, 2.0), (5, 2.0, 0.5), (4, 0.0, 1.3), (2, 0.9, 0.8)):
        k = rng.normal(size=DK) * scale
        ref = np.sort(np.linalg.eigvalsh(lr.deltanet_transition(k, np.array(beta))))
        verdicts.append(check(f"DK={DK}, β={beta}, ‖k‖={np.linalg.norm(k):.2f}",
                              lambda k=k, beta=beta: np.asarray(fn(k, beta), dtype=np.float64), ref, rtol=1e-9,
                              atol=1e-10, hint=hint, quiet=True))
    return combine(name, verdicts, quiet=quiet)


# ----------------------------------------------------------------------------------------------- 14.4
@exercise("14.4")
def check_parity_deltanet(beta_one, v_value, *, quiet: bool = False) -> Verdict:
    """``beta_one`` (β on a 1; β = 0 on a 0) and ``v_value`` (the value written, the same at every step) of a
    one-unit DeltaNet with q = k = 1, such that h_t is exactly the running parity (0 or 1) at every step, for
    random strings and the all-ones string of up to 1024 bits."""
    name = "exercise 14.4 (a one-unit DeltaNet that computes parity)"
    hint = ("on a 1 the state must go from s to 1 - s: compare (1 - β) s + β v with 1 - s term by term; "
            "what must the coefficient of s be?")
    for x in (beta_one, v_value):
        if x is None or x is Ellipsis:
            return check(name, x, 0.0, hint=hint, quiet=quiet)
    try:
        beta_one, v_value = float(beta_one), float(v_value)
    except (TypeError, ValueError):
        return _fail(name, f"expected two numbers, got {beta_one!r} and {v_value!r}", hint, quiet)
    rng = np.random.default_rng(144)
    bits = np.concatenate([rng.integers(0, 2, size=(16, 1024)), np.ones((1, 1024), np.int64)])
    ones = np.ones(bits.shape + (1,))
    h, _ = lr.deltanet_recurrent(ones, ones, v_value * ones, beta_one * bits.astype(np.float64))
    return check(name, h[..., 0], np.cumsum(bits, axis=-1) % 2, rtol=0, atol=1e-9, hint=hint, quiet=quiet)
