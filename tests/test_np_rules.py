"""One rule set for the inputs of both engines (``xlstm_edu._validate``): every bad input that the numpy engine
rejects, the torch cells reject with the *same* message, before any work. Each case starts from good numpy
arguments, breaks one thing, and calls the numpy function and its torch twin on the same values."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import xlstm_edu.nn as xnn  # noqa: E402
import xlstm_edu.np as xnp  # noqa: E402


def _mlstm_good(step=False):
    rng = np.random.default_rng(0)
    t = () if step else (5,)
    return dict(q=rng.normal(size=(2, *t, 3)), k=rng.normal(size=(2, *t, 3)), v=rng.normal(size=(2, *t, 4)),
                i_pre=rng.normal(size=(2, *t)), f_pre=rng.normal(size=(2, *t)))


def _mlstm_state():
    return (np.zeros((2, 3, 4)), np.zeros((2, 3)), np.zeros(2))


def _set(name, index, value):
    def change(a):
        a[name] = a[name].copy()
        a[name][index] = value
    return change


MLSTM_BAD = {  # case: (change of the arguments, words the message must contain)
    "DK = 0": (lambda a: a.update(q=np.zeros((2, 5, 0)), k=np.zeros((2, 5, 0))), "DK, DV >= 1, got DK=0"),
    "DV = 0": (lambda a: a.update(v=np.zeros((2, 5, 0))), "DK, DV >= 1, got DK=3, DV=0"),
    "no time steps": (lambda a: a.update(q=np.zeros((2, 0, 3)), k=np.zeros((2, 0, 3)), v=np.zeros((2, 0, 4)),
                                         i_pre=np.zeros((2, 0)), f_pre=np.zeros((2, 0))), "S >= 1"),
    "q without time axis": (lambda a: a.update(q=np.zeros(3)), "q: expected shape (..., S, DK)"),
    "k shape": (lambda a: a.update(k=np.zeros((2, 5, 2))), "k: expected shape"),
    "v leading dims": (lambda a: a.update(v=np.zeros((2, 6, 4))), "v: expected shape"),
    "i_pre shape": (lambda a: a.update(i_pre=np.zeros((2, 4))), "i_pre: expected shape"),
    "f_pre shape": (lambda a: a.update(f_pre=np.zeros(5)), "f_pre: expected shape"),
    "q NaN": (_set("q", (0, 1, 2), np.nan), "q: expected finite values"),
    "i_pre inf": (_set("i_pre", (1, 3), np.inf), "i_pre: expected finite values"),
    "f_pre -inf": (_set("f_pre", (0, 0), -np.inf), "f_pre: expected finite values"),
    "eps inf": (lambda a: a.update(eps=float("inf")), "eps: expected a finite number >= 0"),
    "eps NaN": (lambda a: a.update(eps=float("nan")), "eps: expected a finite number >= 0"),
    "eps < 0": (lambda a: a.update(eps=-1e-6), "eps: expected a finite number >= 0"),
    "eps a string": (lambda a: a.update(eps="1e-6"), "eps: expected a finite number >= 0"),
    "eps a bool": (lambda a: a.update(eps=True), "eps: expected a finite number >= 0"),
    "forget_gate": (lambda a: a.update(forget_gate="tanh"), "forget_gate: expected one of ['exp', 'sigmoid']"),
}
MLSTM_STATE_BAD = {
    "state a pair": (lambda: _mlstm_state()[:2], "state: expected a tuple (C, n, m) of 3 arrays"),
    "state C shape": (lambda: (np.zeros((2, 4, 3)),) + _mlstm_state()[1:], "state C: expected shape"),
    "state n shape": (lambda: (np.zeros((2, 3, 4)), np.zeros((2, 4)), np.zeros(2)), "state n: expected shape"),
    "state m shape": (lambda: _mlstm_state()[:2] + (np.zeros((2, 1)),), "state m: expected shape"),
    "state m inf": (lambda: _mlstm_state()[:2] + (np.array([0.0, np.inf]),), "state m: expected finite"),
    "state C NaN": (lambda: (np.full((2, 3, 4), np.nan),) + _mlstm_state()[1:], "state C: expected finite"),
}
MLSTM_FUNCS = {
    "parallel": (xnp.mlstm_parallel, xnn.mlstm_parallel),
    "recurrent": (xnp.mlstm_recurrent, xnn.mlstm_recurrent),
    "chunkwise": (xnp.mlstm_chunkwise, xnn.mlstm_chunkwise),
}


def _to_torch(x):
    if isinstance(x, np.ndarray):
        return torch.from_numpy(x)
    if isinstance(x, tuple):
        return tuple(_to_torch(s) for s in x)
    return x


def _messages(np_fn, nn_fn, kwargs):
    """The ValueError messages of the numpy and the torch function on the same arguments."""
    msgs = []
    for fn, args in ((np_fn, kwargs), (nn_fn, {k: _to_torch(v) for k, v in kwargs.items()})):
        with pytest.raises(ValueError) as info:
            fn(**args)
        msgs.append(str(info.value))
    return msgs


@pytest.mark.parametrize("func", sorted(MLSTM_FUNCS))
@pytest.mark.parametrize("case", sorted(MLSTM_BAD))
def test_mlstm_same_rule_same_message(func, case):
    change, words = MLSTM_BAD[case]
    kwargs = _mlstm_good()
    change(kwargs)
    np_msg, nn_msg = _messages(*MLSTM_FUNCS[func], kwargs)
    assert np_msg == nn_msg
    assert words in np_msg


@pytest.mark.parametrize("func", ["recurrent", "chunkwise", "step"])
@pytest.mark.parametrize("case", sorted(MLSTM_STATE_BAD))
def test_mlstm_state_same_rule_same_message(func, case):
    make, words = MLSTM_STATE_BAD[case]
    fns = dict(MLSTM_FUNCS, step=(xnp.mlstm_step, xnn.mlstm_step))[func]
    np_msg, nn_msg = _messages(*fns, dict(_mlstm_good(step=func == "step"), state=make()))
    assert np_msg == nn_msg
    assert words in np_msg


@pytest.mark.parametrize("chunk_size", [0, -3, 2.5, True, "8"])
def test_chunk_size_same_rule(chunk_size):
    np_msg, nn_msg = _messages(xnp.mlstm_chunkwise, xnn.mlstm_chunkwise, dict(_mlstm_good(), chunk_size=chunk_size))
    assert np_msg == nn_msg == f"chunk_size: expected an integer >= 1, got {chunk_size!r}"


def test_mlstm_step_dk_zero():
    kwargs = dict(_mlstm_good(step=True), q=np.zeros((2, 0)), k=np.zeros((2, 0)))
    np_msg, nn_msg = _messages(xnp.mlstm_step, xnn.mlstm_step, kwargs)
    assert np_msg == nn_msg and "DK=0" in np_msg


# ----------------------------------------------------------------------------------------------- sLSTM
def _slstm_good():
    rng = np.random.default_rng(1)
    return dict(wx=rng.normal(size=(2, 4, 4, 6)), R=rng.normal(size=(4, 2, 3, 3)), b=rng.normal(size=(4, 6)))


def _slstm_state(**entries):
    """A possible state (h, c, n, m), each (2, 6), with some entries replaced."""
    st = dict(h=np.zeros((2, 6)), c=np.full((2, 6), 0.5), n=np.ones((2, 6)), m=np.zeros((2, 6)))
    st.update(entries)
    return tuple(st[k] for k in "hcnm")


SLSTM_BAD = {
    "3 gates": (lambda a: a.update(wx=a["wx"][..., :3, :]), "wx: expected shape (..., S, 4, H) with 4 gates"),
    "no time steps": (lambda a: a.update(wx=a["wx"][:, :0]), "S >= 1"),
    "H = 0": (lambda a: a.update(wx=np.zeros((2, 4, 4, 0))), "H >= 1"),
    "R not 4-d": (lambda a: a.update(R=a["R"][0]), "R: expected shape (4, NH, DH, DH)"),
    "R heads do not fit H": (lambda a: a.update(R=a["R"][:, :1]), "R: expected NH * DH = H = 6"),
    "b shape": (lambda a: a.update(b=a["b"][:, :5]), "b: expected shape (4, H) = (4, 6), got (4, 5)"),
    "wx inf": (_set("wx", (0, 0, 2, 3), np.inf), "wx: expected finite values"),
    "R NaN": (_set("R", (0, 0, 0, 0), np.nan), "R: expected finite values"),
    "forget_gate": (lambda a: a.update(forget_gate="relu"), "forget_gate: expected one of ['exp', 'sigmoid']"),
    "state a triple": (lambda a: a.update(state=_slstm_state()[:3]), "state: expected a tuple (h, c, n, m)"),
    "state h shape": (lambda a: a.update(state=_slstm_state(h=np.zeros((3, 6)))), "state h: expected shape"),
    "state with NaN": (lambda a: a.update(state=_slstm_state(h=np.full((2, 6), np.nan))), "state h: expected finite"),
    "state m inf": (lambda a: a.update(state=_slstm_state(m=np.full((2, 6), np.inf))), "state m: expected finite"),
    "state n < 0": (lambda a: a.update(state=_slstm_state(n=-np.ones((2, 6)))), "state n: expected n >= 0"),
    "state c != 0 where n = 0": (lambda a: a.update(state=_slstm_state(n=np.zeros((2, 6)))),
                                 "state c: expected c = 0 wherever n = 0"),
}


@pytest.mark.parametrize("case,step", [(c, s) for c in sorted(SLSTM_BAD) for s in (False, True)
                                       if not (s and c == "no time steps")],  # a step has no time axis
                         ids=[f"{c}-{'step' if s else 'recurrent'}" for c in sorted(SLSTM_BAD) for s in (False, True)
                              if not (s and c == "no time steps")])
def test_slstm_same_rule_same_message(case, step):
    change, words = SLSTM_BAD[case]
    kwargs = _slstm_good()
    change(kwargs)
    fns = (xnp.slstm_recurrent, xnn.slstm_recurrent)
    if step:
        kwargs["wx_t"] = kwargs.pop("wx")[:, 0]
        words = words.replace("wx:", "wx_t:").replace("(..., S, 4, H)", "(..., 4, H)")
        fns = (xnp.slstm_step, xnn.slstm_step)
    np_msg, nn_msg = _messages(*fns, kwargs)
    assert np_msg == nn_msg
    assert words in np_msg


def test_a_possible_state_passes_both():
    """The state rules reject only impossible states: a valid one (n >= 0, c = 0 where n = 0) runs in both."""
    kwargs = dict(_slstm_good(), state=_slstm_state(c=np.where(np.arange(6) < 3, 0.0, 0.3) * np.ones((2, 1)),
                                                     n=np.where(np.arange(6) < 3, 0.0, 2.0) * np.ones((2, 1))))
    h_np = xnp.slstm_recurrent(**kwargs)[0]
    h_nn = xnn.slstm_recurrent(**{k: _to_torch(v) for k, v in kwargs.items()})[0]
    np.testing.assert_allclose(h_nn.numpy(), h_np, rtol=1e-12, atol=1e-14)


# ----------------------------------------------------------------------------------------------- types
def test_each_engine_names_a_wrong_type():
    """The one place where the engines differ: what counts as an array (numpy: array-likes; torch: tensors)."""
    a = _mlstm_good()
    with pytest.raises(ValueError, match="v: expected dtype float16, float32 or float64, got int64"):
        xnp.mlstm_parallel(**dict(a, v=np.zeros((2, 5, 4), dtype=np.int64)))
    with pytest.raises(ValueError, match="q: expected a torch.Tensor, got ndarray"):
        xnn.mlstm_parallel(**dict({k: _to_torch(v) for k, v in a.items()}, q=a["q"]))
    with pytest.raises(ValueError, match="v: expected a floating-point tensor .* got torch.int64"):
        xnn.mlstm_parallel(**dict({k: _to_torch(v) for k, v in a.items()}, v=torch.zeros(2, 5, 4, dtype=torch.long)))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_torch_tensors_on_two_devices_are_rejected():
    a = {k: _to_torch(v) for k, v in _mlstm_good().items()}
    with pytest.raises(ValueError, match="k: expected a tensor on the device of q"):
        xnn.mlstm_parallel(**dict(a, k=a["k"].cuda()))


def test_torch_value_checks_small_and_large_tensors():
    """The torch checks take two routes (numpy views for small CPU tensors, one sum per tensor for large ones):
    both find a NaN, and a large tensor whose sum overflows although every entry is finite is let through."""
    S = 1100  # q of 2 x 8 x 1100 x 4 = 70,400 entries: above the small-tensor limit
    g = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(2, 8, S, 4, generator=g) for _ in range(3))
    i, f = torch.randn(2, 8, S, generator=g), torch.randn(2, 8, S, generator=g) + 3
    for big in (True, False):
        qq = q if big else q[:, :1, :10]
        args = [t if big else t[:, :1, :10] for t in (k, v, i, f)]
        bad = qq.clone()
        bad[0, 0, 5, 1] = float("nan")
        with pytest.raises(ValueError, match=r"q: expected finite values, got NaN or inf \(first at index \(0, 0, 5, 1\)\)"):
            xnn.mlstm_chunkwise(bad, *args, chunk_size=16)
    huge = torch.full_like(q, 3e38)  # finite, but its float32 sum is inf
    h, _ = xnn.mlstm_chunkwise(huge, k, v, i, f, chunk_size=64)
    assert h.shape == v.shape
