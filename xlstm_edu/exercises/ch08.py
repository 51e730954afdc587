"""Checkers of chapter 8 (the bug museum).

8.1 ``check_causality_probe(my_causality_probe)`` — a causality probe: run on models the learner has not seen, it must
    find every future leak (also a faint one, and one from three steps ahead) and report exactly 0 for causal ones;
8.2 ``check_repaired_step(repaired_step)`` — the batched mystery step with its two bugs repaired: a batch of sequences
    run step by step must equal the package's mLSTM;
8.3 ``check_mlstm_test(my_mlstm_test)`` — the test suite that the museum's last exhibit lacks: it must accept correct
    mLSTMs (three forms) and reject every buggy one (the museum's exhibits, as runnable variants).

The models each checker hands to the learner's code are built inside the checker (the learner cannot recognise them
by name); the expected values come from the package (``xlstm_edu.np``).
"""

from __future__ import annotations

import math

import numpy as np

from xlstm_edu.exercises import combine, exercise
from xlstm_edu.exercises._rules import call_learner, refused
from xlstm_edu.exercises.core import Verdict, _emit, compare, raised_verdict


def _mlstm_inputs(rng, S=24, DK=8, DV=8, i_shift=0.0, lead=()):
    return dict(q=rng.standard_normal(lead + (S, DK)), k=rng.standard_normal(lead + (S, DK)),
                v=rng.standard_normal(lead + (S, DV)), i_pre=rng.normal(i_shift, 3, lead + (S,)),
                f_pre=rng.normal(2, 2, lead + (S,)))


# ------------------------------------------------------------------------------------------------------ 8.1
HINT_8_1 = ("a probe goes wrong in three ways: it changes step t itself (or only t + 1), it compares outputs after t, "
            "or it changes the caller's arrays")


def _probe_models():
    """(description, model, causal?) -- models ``fn(q, k, v, i_pre, f_pre) -> h (S, DV)``, built fresh."""
    import xlstm_edu.np as xnp
    from xlstm_edu.np.gating import log_sigmoid

    def recurrent(q, k, v, i_pre, f_pre):
        return xnp.mlstm_recurrent(q, k, v, i_pre, f_pre)[0]

    def parallel(q, k, v, i_pre, f_pre):
        return xnp.mlstm_parallel(q, k, v, i_pre, f_pre)

    def own_step_only(q, k, v, i_pre, f_pre):
        return 2.0 * v + q[:, :1]

    def keys_normalized_over_time(q, k, v, i_pre, f_pre):
        k = (k - k.mean(axis=0)) / k.std(axis=0)
        return xnp.mlstm_recurrent(q, k, v, i_pre, f_pre)[0]

    def zero_mask(q, k, v, i_pre, f_pre):
        b = np.cumsum(log_sigmoid(f_pre))
        log_d = np.tril(b[:, None] - b[None, :] + i_pre[None, :])
        m = log_d.max(axis=1, keepdims=True)
        s = (q / math.sqrt(q.shape[1])) @ k.T * np.exp(log_d - m)
        return s / (np.maximum(np.abs(s.sum(axis=1, keepdims=True)), np.exp(-m)) + 1e-6) @ v

    def three_steps_ahead(q, k, v, i_pre, f_pre):
        h = v.copy()
        h[:-3] += 0.5 * v[3:]
        return h

    def faint_leak(q, k, v, i_pre, f_pre):
        h = xnp.mlstm_recurrent(q, k, v, i_pre, f_pre)[0]
        h[:-1] += 1e-6 * v[1:]
        return h

    return [("the package's recurrent mLSTM", recurrent, True),
            ("the package's parallel mLSTM", parallel, True),
            ("a model whose output at t uses only the inputs at t", own_step_only, True),
            ("keys standardized over time (exhibit IX)", keys_normalized_over_time, False),
            ("a causal mask of zeros in log space (exhibit XI)", zero_mask, False),
            ("a model that reads the value three steps ahead", three_steps_ahead, False),
            ("a faint leak: 1e-6 of the next step's value", faint_leak, False)]


@exercise("8.1")
def check_causality_probe(fn, *, quiet: bool = False):
    """Exercise 8.1: ``fn(model, q, k, v, i_pre, f_pre, t)`` -> the largest change of the outputs at steps 0..t when
    the inputs after t change. Run on fresh models: ≤ 1e-12 for the causal ones, > 1e-12 for the leaky ones; the
    caller's arrays must not change."""
    from xlstm_edu import probes

    name = "exercise 8.1: my_causality_probe"
    rng = np.random.default_rng(81)
    x = _mlstm_inputs(rng)
    S = x["q"].shape[0]
    verdicts = []
    for what, model, causal in _probe_models():
        for t in (0, S // 2, S - 2):
            args = {k: a.copy() for k, a in x.items()}
            with refused(probes.causality_probe, probes.run_check, probes.batch_leak_probe, probes.memory_probe):
                out, bad = call_learner(name, fn, model, args["q"], args["k"], args["v"], args["i_pre"], args["f_pre"],
                                        t, hint=HINT_8_1, forbid=False)
            if bad is not None:
                return _emit(bad, quiet)
            changed = [k for k in x if not np.array_equal(args[k], x[k])]
            if changed:
                return _emit(raised_verdict(name, f"your probe changed its inputs {', '.join(changed)} in place (the "
                                                  f"caller's arrays): perturb copies", HINT_8_1), quiet)
            try:
                leak = float(out)
            except (TypeError, ValueError):
                return _emit(raised_verdict(name, f"expected a number, got {type(out).__name__}", HINT_8_1), quiet)
            if causal and not leak <= 1e-12:
                return _emit(raised_verdict(
                    name, f"your probe reports a leak of {leak:.3g} for {what} at t = {t}, which is causal: do you "
                          f"change step t itself, or compare outputs after t?", HINT_8_1), quiet)
            if not causal and not leak > 1e-12:
                return _emit(raised_verdict(
                    name, f"your probe misses the leak of {what} at t = {t} (it returned {leak:.3g}): do you change "
                          f"every step after t?", HINT_8_1), quiet)
            verdicts.append(Verdict(name, "exact", 0.0, 0.0, f"✅ {what} at t = {t}"))
    n_causal = sum(c for _, _, c in _probe_models())
    return _emit(Verdict(name, "exact", 0.0, 0.0,
                         f"✅ {name}: exactly 0 for the {n_causal} causal models, a leak found in each of the "
                         f"{len(_probe_models()) - n_causal} leaky ones, at t = 0, {S // 2} and {S - 2}"), quiet)


# ------------------------------------------------------------------------------------------------------ 8.2
HINT_8_2 = ("the step works on a batch (C (B, DK, DV), n (B, DK), m (B,)); find the two lines that break the "
            "stabilizer and the independence of the sequences, and keep everything else")


def _batched_reference(x):
    import xlstm_edu.np as xnp

    return xnp.mlstm_recurrent(x["q"], x["k"], x["v"], x["i_pre"], x["f_pre"])[0]


def _mystery_variants(x, *, rescale_f, per_sequence):
    """The mystery step with one of its two bugs repaired (for naming what is left)."""
    from xlstm_edu.np.gating import log_sigmoid

    q, k, v, i_pre, f_pre = x["q"], x["k"], x["v"], x["i_pre"], x["f_pre"]
    B, S, DK = q.shape
    C, n, m = np.zeros((B, DK, v.shape[-1])), np.zeros((B, DK)), np.zeros(B)
    hs = np.zeros(v.shape)
    for t in range(S):
        log_f = log_sigmoid(f_pre[:, t])
        m_new = np.maximum(log_f + m, i_pre[:, t])
        i_s = np.exp(i_pre[:, t] - m_new)
        f_s = np.exp(log_f + m - m_new) if rescale_f else np.exp(log_f)
        C = f_s[:, None, None] * C + i_s[:, None, None] * k[:, t, :, None] * v[:, t, None, :]
        n = f_s[:, None] * n + i_s[:, None] * k[:, t]
        q_hat = q[:, t] / math.sqrt(DK)
        den = np.maximum(np.abs(np.einsum("bk,bk->b", q_hat, n)), np.exp(-m_new))
        den = (den if per_sequence else den.max()) + 1e-6
        hs[:, t] = np.einsum("bk,bkv->bv", q_hat, C) / np.reshape(den, (-1, 1))
        m = m_new
    return hs


@exercise("8.2")
def check_repaired_step(fn, *, quiet: bool = False):
    """Exercise 8.2: ``fn(C, n, m, q, k, v, i_pre, f_pre, eps)`` -> ``(h, (C, n, m))`` for a batch (C (B, DK, DV),
    n (B, DK), m (B,), q, k (B, DK), v (B, DV), i_pre, f_pre (B,)); run step by step over a batch of sequences from
    the zero state it must equal the package's ``mlstm_recurrent``."""
    name = "exercise 8.2: repaired_step"
    rng = np.random.default_rng(82)
    cases = [("a batch of 3 sequences of 16 steps, DK = 5, DV = 4", _mlstm_inputs(rng, 16, 5, 4, lead=(3,))),
             ("a batch of 2 sequences with large input gates (ĩ around 8)",
              _mlstm_inputs(rng, 12, 4, 6, i_shift=8.0, lead=(2,))),
             ("a batch of one sequence", _mlstm_inputs(rng, 9, 3, 3, lead=(1,)))]
    verdicts = []
    for what, x in cases:
        expected = _batched_reference(x)

        def run(q, k, v, i_pre, f_pre):  # the step driven over time for the whole batch, from the zero state
            B, S, DK = q.shape
            C, n, m = np.zeros((B, DK, v.shape[-1])), np.zeros((B, DK)), np.zeros(B)
            hs = []
            for t in range(S):
                h, (C, n, m) = fn(C, n, m, q[:, t], k[:, t], v[:, t], i_pre[:, t], f_pre[:, t], 1e-6)
                hs.append(np.asarray(h))
            return np.stack(hs, axis=1)

        got, bad = call_learner(name, run, *(x[k].copy() for k in ("q", "k", "v", "i_pre", "f_pre")),
                                hint=HINT_8_2)
        if bad is not None:
            if "raised" in bad.message:
                bad.message = bad.message.replace(" -- hint:", " -- is your step written for one sequence? It gets a "
                                                                "batch: (B, DK) keys, (B, DK, DV) memories; hint:")
            return _emit(bad, quiet)
        v = compare(f"{name} ({what})", got, expected, rtol=1e-9, atol=1e-12, hint=HINT_8_2)
        if not v.ok:
            for label, knobs in [("the forget gate is still not rescaled by exp(m_(t-1) - m_t) (exhibit III)",
                                  dict(rescale_f=False, per_sequence=True)),
                                 ("the denominator still takes one maximum over the whole batch, so the sequences "
                                  "leak into each other (exhibit X's kind of bug)", dict(rescale_f=True,
                                                                                         per_sequence=False)),
                                 ("both bugs are still there", dict(rescale_f=False, per_sequence=False))]:
                with np.errstate(all="ignore"):
                    variant = _mystery_variants(x, **knobs)
                if np.shape(got) == variant.shape and np.allclose(got, variant, rtol=1e-9, atol=1e-12):
                    v = compare(f"{name} ({what})", got, expected, rtol=1e-9, atol=1e-12, hint=label)
                    break
            return _emit(v, quiet)
        verdicts.append(v)
    return combine(name, verdicts, quiet=quiet)


# ------------------------------------------------------------------------------------------------------ 8.3
HINT_8_3 = ("compare with the reference on inputs that make each bug visible: several sequences, large input gates, "
            "float32 near ±100, a shut forget gate; accept round-off (a relative tolerance), not only exact equality")


def parallel_cumsum_off_by_one(q, k, v, i_pre, f_pre, eps=1e-6):
    """The parallel mLSTM with exhibit XIII's bug: step s is decayed to t by exp(b_(t-1) - b_s) for s < t, so the
    forget gate of the read-out step t itself is missing."""
    from xlstm_edu.np.gating import log_sigmoid

    q, k, v = (np.asarray(a, dtype=np.float64) for a in (q, k, v))
    log_f = log_sigmoid(np.asarray(f_pre, dtype=np.float64))
    b = np.cumsum(log_f)
    S = len(b)
    decay = (b - log_f)[:, None] - b[None, :]  # b_(t-1) - b_s  (the bug)
    decay[np.diag_indices(S)] = 0.0  # the step's own write
    log_d = np.where(np.tri(S, dtype=bool), decay + np.asarray(i_pre, dtype=np.float64)[None, :], -np.inf)
    m = log_d.max(axis=1, keepdims=True)
    s = (q / math.sqrt(q.shape[1])) @ k.T * np.exp(log_d - m)
    return s / (np.maximum(np.abs(s.sum(axis=1, keepdims=True)), np.exp(-m)) + eps) @ v


def _test_models():
    """(description, model, correct?) -- fresh models ``fn(q, k, v, i_pre, f_pre, eps=1e-6) -> h (S, DV)``."""
    import xlstm_edu.np as xnp
    from xlstm_edu.exercises import bugs

    def recurrent(q, k, v, i_pre, f_pre, eps=1e-6):
        return xnp.mlstm_recurrent(q, k, v, i_pre, f_pre, eps=eps)[0]

    def chunkwise(q, k, v, i_pre, f_pre, eps=1e-6):
        return xnp.mlstm_chunkwise(q, k, v, i_pre, f_pre, chunk_size=3, eps=eps)[0]

    def from_scratch(q, k, v, i_pre, f_pre, eps=1e-6):
        return bugs.mlstm_recurrent(np.asarray(q), np.asarray(k), np.asarray(v), np.asarray(i_pre),
                                    np.asarray(f_pre), eps=eps)[0]

    def recurrent_bug(**knobs):
        def model(q, k, v, i_pre, f_pre, eps=1e-6):
            with np.errstate(all="ignore"):
                return bugs.mlstm_recurrent(np.asarray(q), np.asarray(k), np.asarray(v), np.asarray(i_pre),
                                            np.asarray(f_pre), eps=eps, **knobs)[0]
        return model

    def zero_mask(q, k, v, i_pre, f_pre, eps=1e-6):
        with np.errstate(all="ignore"):
            return bugs.mlstm_parallel(np.asarray(q), np.asarray(k), np.asarray(v), np.asarray(i_pre),
                                       np.asarray(f_pre), eps=eps, zero_mask=True)

    def off_by_one_parallel(q, k, v, i_pre, f_pre, eps=1e-6):
        with np.errstate(all="ignore"):
            return parallel_cumsum_off_by_one(q, k, v, i_pre, f_pre, eps).astype(np.result_type(q, np.float32))

    return [("the package's recurrent form", recurrent, True),
            ("the package's chunkwise form (chunks of 3 steps)", chunkwise, True),
            ("a correct from-scratch loop", from_scratch, True),
            ("exhibit I: the missing stabilizer", recurrent_bug(stabilize=False), False),
            ("exhibit II: the exponential taken before the max", recurrent_bug(exp_first=True), False),
            ("exhibit III: the forget gate not rescaled", recurrent_bug(rescale_f=False), False),
            ("exhibit IV: the missing normalizer", recurrent_bug(normalize=False), False),
            ("exhibit V: the bound 1 on stabilized states", recurrent_bug(bound_one=True), False),
            ("exhibit VI: the missing absolute value", recurrent_bug(use_abs=False), False),
            ("exhibit VII: element-wise k * v", recurrent_bug(outer=False), False),
            ("exhibit IX: keys standardized over time", recurrent_bug(time_norm=True), False),
            ("exhibit XI: a causal mask of zeros in log space", zero_mask, False),
            ("exhibit XII: every step from the initial state", recurrent_bug(reset=True), False),
            ("exhibit XIII: the read-out step's own forget gate missing from the cumulative sum", off_by_one_parallel,
             False),
            ("the forget gate also applied to the step's own write (the other off-by-one)",
             recurrent_bug(forget_own_write=True), False)]


@exercise("8.3")
def check_mlstm_test(fn, *, quiet: bool = False):
    """Exercise 8.3: ``fn(model) -> bool`` (True: "a correct mLSTM"), where ``model(q, k, v, i_pre, f_pre, eps=1e-6)``
    returns h (S, DV) for one sequence. It must return True for three correct forms and False for every bug."""
    name = "exercise 8.3: my_mlstm_test"
    models = _test_models()
    accepted, rejected = 0, 0
    for what, model, correct in models:
        with np.errstate(all="ignore"):
            out, bad = call_learner(name, fn, model, hint=HINT_8_3, forbid=False)
        if bad is not None:
            if bad.status == "unsolved" or correct:
                if correct and bad.status != "unsolved":
                    bad.message = bad.message.replace(f"❌ {name}: ", f"❌ {name}: on a correct implementation "
                                                                       f"({what}), ", 1)
                return _emit(bad, quiet)
            rejected += 1  # a test that raises on a buggy implementation fails it, as pytest would
            continue
        if not isinstance(out, (bool, np.bool_)):
            return _emit(raised_verdict(name, f"expected True or False, got {type(out).__name__}", HINT_8_3), quiet)
        if correct and not out:
            return _emit(raised_verdict(name, f"your test rejects a correct implementation: {what}. Different correct "
                                              f"forms agree only to round-off", HINT_8_3), quiet)
        if not correct and out:
            return _emit(raised_verdict(name, f"your test passes a buggy implementation -- {what}. Which inputs make "
                                              f"that bug visible?", HINT_8_3), quiet)
        accepted += bool(correct)
        rejected += not correct
    return _emit(Verdict(name, "exact", 0.0, 0.0,
                         f"✅ {name}: accepts the {accepted} correct implementations and rejects all {rejected} buggy "
                         f"ones"), quiet)
