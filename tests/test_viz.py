"""The chapter-11 explorers, headless: build each one, move a control, check the data behind the figure.

The data functions are pure (numpy in, dataclass out), so most checks call them directly; the widget tests check
that a control change reaches them (``explorer.data`` is what the figure on screen was drawn from).
"""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("ipywidgets")

from xlstm_edu.viz import (  # noqa: E402
    GateLab, MatrixMemory, ParallelForm, draw_gate_lab, draw_matrix_memory, draw_parallel_form, gate_inputs,
    gate_lab_data, matrix_memory_data, overflow_threshold, parallel_form_data,
)
from xlstm_edu.viz.gate_lab import PRESETS, T_WRITE  # noqa: E402


# ------------------------------------------------------------------------------------------------ gate lab
@pytest.mark.parametrize("dtype, delta", [("float16", 0.02), ("float32", 0.01), ("float64", 0.01)])
def test_unstabilized_overflows_exactly_past_log_max(dtype, delta):
    """Overflow appears at the write step exactly when ĩ exceeds log(finfo(dtype).max); never when stabilized."""
    thr = overflow_threshold(dtype)
    assert thr == pytest.approx(float(np.log(float(np.finfo(dtype).max))))
    kw = dict(t_overwrite=0, t_forget=0, dtype=dtype, stabilized=False)
    below = gate_lab_data(i_write=thr - delta, **kw)
    above = gate_lab_data(i_write=thr + delta, **kw)
    assert below.overflow_step is None and below.i_overflow_step is None
    assert np.all(np.isfinite(below.raw["h"]))
    assert above.i_overflow_step == T_WRITE and above.overflow_step == T_WRITE
    assert np.isinf(above.raw["i"][T_WRITE]) and np.isnan(above.raw["h"][T_WRITE])
    assert np.all(np.isfinite(above.raw["h"][:T_WRITE]))
    # the stabilized cell is fine on the same input, and the same as the unstabilized one below the threshold
    assert np.all(np.isfinite(above.slstm["h"])) and np.all(above.slstm["i_prime"] <= 1)
    tol = 5e-3 if dtype == "float16" else 1e-5
    np.testing.assert_allclose(below.raw["h"].astype(float), below.slstm["h"].astype(float), atol=tol)


def test_overflow_by_accumulation_is_reported_where_n_overflows():
    """ĩ = 10.5 < 11.09 each time, but two writes push n past 65504 in float16: flagged at the second write."""
    d = gate_lab_data(i_write=10.5, i_overwrite=10.5, t_overwrite=6, t_forget=0, dtype="float16", stabilized=False)
    assert d.i_overflow_step is None
    assert d.overflow_step == 6 and not np.isfinite(d.raw["n"][6])


def test_stabilized_states_are_scaled_unstabilized_ones():
    """c·e^m and n·e^m of the stabilized cell are the raw c and n (eq. 15-17), in float64."""
    d = gate_lab_data(dtype="float64")
    scale = np.exp(d.slstm["m"])
    np.testing.assert_allclose(d.slstm["c"] * scale, d.raw["c"], rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(d.slstm["n"] * scale, d.raw["n"], rtol=1e-12)
    np.testing.assert_allclose(d.slstm["h"], d.raw["h"], rtol=1e-12, atol=1e-15)
    assert np.all(d.slstm["f_prime"] <= 1) and np.all(d.slstm["i_prime"] <= 1)


def test_presets_tell_their_stories():
    T = 40
    rem = gate_lab_data(**{k: v for k, v in PRESETS["remember"].items()})
    fgt = gate_lab_data(**PRESETS["forget everything"])
    ovw = gate_lab_data(**PRESETS["overwrite"])
    # remember: both cells keep the written value to the end
    assert rem.slstm["h"][T - 1] > 0.7 and rem.lstm["h"][T - 1] > 0.5
    # forget everything: both are near zero after the forget step
    assert abs(fgt.slstm["h"][25]) < 0.1 and abs(fgt.lstm["c"][25]) < 0.05
    # overwrite: the exponential input gate flips sLSTM's output; LSTM's sigmoid gate cannot
    assert ovw.slstm["h"][25] < -0.6 and ovw.lstm["h"][25] > -0.4
    assert gate_inputs(T, t_overwrite=0)["z"][20] == 0


def test_gate_lab_widget_slider_and_presets():
    lab = GateLab()
    assert lab.data is not None and lab.data.overflow_step is None  # default: overwrite, float32, stabilized
    n0 = lab.redraws
    lab.controls["preset"].value = "overflow"  # one preset = one redraw
    assert lab.redraws == n0 + 1
    assert lab.data.dtype == "float16" and not lab.data.stabilized and lab.data.overflow_step == T_WRITE
    lab.controls["i_write"].value = 11.0  # below log(65504) = 11.09
    assert lab.data.overflow_step is None
    lab.controls["i_write"].value = 11.2
    assert lab.data.overflow_step == T_WRITE
    lab.controls["dtype"].value = "float64"  # the ĩ slider now reaches past 709.78
    assert lab.controls["i_write"].max > overflow_threshold("float64")
    assert lab.data.overflow_step is None
    lab.controls["classroom"].value = True
    assert "1.35em" in lab.help.value
    w0 = lab.figure.get_size_inches()[0]
    lab.controls["classroom"].value = False
    assert lab.figure.get_size_inches()[0] < w0


def test_bad_slider_combination_is_a_value_error():
    with pytest.raises(ValueError, match="t_forget"):
        gate_lab_data(t_forget=99)
    with pytest.raises(ValueError, match="dtype"):
        gate_lab_data(dtype="int8")


# ------------------------------------------------------------------------------------------ matrix memory
def test_orthogonal_keys_are_exact_up_to_key_dim():
    d = matrix_memory_data(n_pairs=12, key_dim=8, keys="orthogonal", f_pre=10.0, i_pre=0.0)
    assert np.all(d.error_after[:8] < 1e-6)
    assert np.all(d.error_after[8:] > 0.05)
    # C is the sum of the weighted outer products, Σ_j w_j k_j v_jᵀ (eq. 19, official orientation)
    C = np.einsum("j,jk,jv->kv", d.weights, d.keys, d.values)
    np.testing.assert_allclose(d.C, C, rtol=1e-10, atol=1e-12)


def test_random_keys_interfere_and_forgetting_favours_recent_pairs():
    rnd = matrix_memory_data(n_pairs=12, key_dim=8, keys="random")
    assert rnd.error_after[1] > 1e-3
    fade = matrix_memory_data(n_pairs=16, key_dim=16, keys="orthogonal", f_pre=1.0, i_pre=0.0)
    err = fade.final_errors
    assert err[0] > 0.5 and err[-1] < 1e-6  # the oldest pair has faded below the normalizer's bound


def test_matrix_memory_widget_controls_change_the_data():
    mm = MatrixMemory()
    assert mm.data.C.shape == (16, 8)
    mm.controls["key_dim"].value = 32
    assert mm.data.C.shape == (32, 8) and mm.data.error_after.max() < 1e-6  # 24 pairs now fit
    mm.controls["query"].value = 5
    assert mm.data.query == 4
    mm.controls["n_pairs"].value = 3  # the query slider follows the number of pairs
    assert mm.controls["query"].max == 3 and mm.data.query == 2
    mm.controls["keys"].value = "random"
    assert mm.data.keys_kind == "random" and mm.data.n_orthogonal == 0


# ------------------------------------------------------------------------------------------ parallel form
def test_parallel_parts_match_definition_and_recurrent_form():
    d = parallel_form_data()
    x, p = d.inputs, d.parts
    b = np.cumsum(-np.logaddexp(0, -x["f_pre"]))  # b_t = Σ log σ(f̃)
    S = len(b)
    t, s = np.tril_indices(S)
    np.testing.assert_allclose(p["log_D"][t, s], b[t] - b[s] + x["i_pre"][s], atol=1e-12)
    assert np.all(np.isneginf(p["log_D"][np.triu_indices(S, 1)]))
    np.testing.assert_allclose(p["D_prime"].max(axis=1), 1.0)  # m is the row maximum
    assert d.max_diff_eps0 < 1e-12  # parallel == recurrent up to round-off without eps
    assert d.max_diff < 1e-5  # and at the eps level with it


def test_parallel_form_widget_moves_the_spike_column():
    pf = ParallelForm()
    col = int(np.argmax(pf.data.parts["log_D"][9]))  # row 9: before the forget step at t = 10
    assert col == pf.controls["t_spike"].value == 5
    pf.controls["t_spike"].value = 2
    assert int(np.argmax(pf.data.parts["log_D"][9])) == 2
    pf.controls["S"].value = 6  # the event sliders follow S
    assert pf.data.parts["log_D"].shape == (6, 6) and pf.controls["t_forget"].max == 5
    pf.controls["eps"].value = 0.0
    assert pf.data.max_diff < 1e-12


# ------------------------------------------------------------------------------------------------ drawing
def test_figures_have_titles_and_labels():
    import matplotlib.pyplot as plt

    for fig, n_panels in ((draw_gate_lab(gate_lab_data(**PRESETS["overflow"])), 7),
                          (draw_gate_lab(gate_lab_data(), classroom=True), 7),
                          (draw_matrix_memory(matrix_memory_data()), 3), (draw_parallel_form(parallel_form_data()), 4)):
        titled = [a for a in fig.axes if a.get_title()]
        assert len(titled) == n_panels, [a.get_title() for a in fig.axes]
        assert all(a.get_xlabel() or a.get_ylabel() for a in titled)
        assert fig.get_suptitle()
        plt.close(fig)


# ----------------------------------------------------------------------------------------- trained model
@pytest.fixture(scope="module")
def tiny_model():
    torch = pytest.importorskip("torch")
    from xlstm_edu.models import build_model

    torch.manual_seed(0)
    chars = "\n !',.:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    model = build_model("xlstm", len(chars), 64, embedding_dim=32, num_blocks=2, num_heads=2)
    with torch.no_grad():  # non-zero recurrent weights and gate weights, so the check below means something
        for blk in model.blocks:
            if hasattr(blk, "R"):
                blk.R.normal_(0, 0.3)
            if hasattr(blk, "gates"):
                blk.gates.weight.normal_(0, 0.2)
    return model.eval(), chars


def test_gate_traces_reproduce_the_cells(tiny_model):
    """The recorded sLSTM pre-activations, fed to the numpy cell, give the model's own h at every step; the
    recorded mLSTM q, k, v and gates, fed to the numpy cell, end in the model's own state."""
    from xlstm_edu.np.mlstm_recurrent import mlstm_recurrent
    from xlstm_edu.np.slstm import slstm_recurrent
    from xlstm_edu.viz import gate_traces

    model, chars = tiny_model
    tr = gate_traces(model, chars, "To be, or not to be:\nthat is the question.", n_generate=10)
    assert len(tr.text) == len("To be, or not to be:\nthat is the question.") + 10
    assert tr.kinds == ["mLSTM", "sLSTM"]
    pre, h = tr.raw[1]["pre"].astype(np.float64), tr.raw[1]["h"].astype(np.float64)
    blk = model.blocks[1]
    H = pre.shape[-1]
    h_np, _ = slstm_recurrent(pre, np.zeros((4, blk.num_heads, H // blk.num_heads, H // blk.num_heads)),
                              np.zeros((4, H)))
    np.testing.assert_allclose(h_np, h, rtol=1e-4, atol=1e-5)
    # mLSTM: the recorded q, k, v and gates, run through the numpy cell, end in the model's own state (C, n, m)
    r = tr.raw[0]
    sw = lambda a: np.swapaxes(a, 0, 1).astype(np.float64)  # noqa: E731  (S, NH, ...) -> (NH, S, ...)
    _, (C, n, m) = mlstm_recurrent(sw(r["q"]), sw(r["k"]), sw(r["v"]), sw(r["i_pre"]), sw(r["f_pre"]))
    for got, want in zip((C, n, m), r["state"]):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    f = tr.values[0]["forget"]
    np.testing.assert_allclose(f, 1 / (1 + np.exp(-tr.raw[0]["f_pre"])), rtol=1e-5)
    assert f.shape == (len(tr.text), 2) and np.all((f > 0) & (f < 1))


def test_trained_model_widget(tiny_model):
    from xlstm_edu.viz import TrainedModel

    model, chars = tiny_model
    ex = TrainedModel(model=model, chars=chars, text="Hello there.\n", n_generate=5, note="test model")
    assert ex.data.kind == "mLSTM" and len(ex.data.values) == len("Hello there.\n") + 5
    first = ex.data.values.copy()
    ex.controls["layer"].value = 1
    assert ex.data.kind == "sLSTM"
    ex.controls["gate"].value = "input gate ĩ = log i"
    assert not np.allclose(ex.data.values, first)
    ex.controls["head"].value = 1
    assert ex.data.head == 1
    ex.controls["text"].value = "Bye.\n"
    assert ex.data.text.startswith("Bye.\n") and ex.data.n_prompt == 5
    ex.controls["text"].value = "Bye {}"  # not in the vocabulary: a message, no exception
    assert ex.data is None


def test_load_or_train_in_fast_mode(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    from xlstm_edu.viz.trained_model import load_or_train

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    model, chars, run_dir, how = load_or_train(fast=True, max_iters=2)
    assert how == "trained 2 steps" and (run_dir / "ckpt.pt").exists() and len(chars) > 30
    model2, _, _, how2 = load_or_train(run_dir)
    assert how2 == "loaded"


def test_gate_traces_are_the_blocks_own_reports(tiny_model, monkeypatch):
    """No hooks: the explorer's values are what the blocks report, the same as stepping token by token with
    ``return_gates=True``."""
    import torch

    from xlstm_edu.viz import gate_traces

    def no_hooks(*a, **k):
        raise AssertionError("the gate explorer must not attach forward hooks")

    monkeypatch.setattr(torch.nn.Module, "register_forward_hook", no_hooks)
    model, chars = tiny_model
    text = "Hello, world.\n"
    tr = gate_traces(model, chars, text)
    state = model.init_state(1)
    with torch.no_grad():
        for t, ch in enumerate(text):
            _, state, g = model.step(torch.tensor([chars.index(ch)]), state, return_gates=True)
            np.testing.assert_allclose(tr.values[0]["input"][t], g[0]["i_pre"][0].numpy(), rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(tr.values[0]["forget"][t], torch.sigmoid(g[0]["f_pre"][0]).numpy(),
                                       rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(tr.values[1]["output"][t], g[1]["o"][0].mean(-1).numpy(), rtol=1e-5,
                                       atol=1e-6)


def test_find_run_looks_in_the_course_folder(tmp_path, monkeypatch):
    import json

    from xlstm_edu.viz.trained_model import find_run

    monkeypatch.setenv("XLSTM_EDU_HOME", str(tmp_path))
    assert find_run() is None
    for name, kind in (("a_gpt", "gpt"), ("b_xlstm", "xlstm")):
        d = tmp_path / "runs" / name
        d.mkdir(parents=True)
        (d / "ckpt.pt").write_bytes(b"")
        (d / "config.json").write_text(json.dumps({"kind": kind}))
    assert find_run() == tmp_path / "runs" / "b_xlstm"  # GPT runs are not xLSTM runs
