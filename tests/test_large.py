"""The xLSTM 7B architecture (``xlstm_edu.nn.large``): its forms agree, it is causal, it counts right, and it is the
official ``xlstm.xlstm_large`` model (oracle tests, float32 and float64, every sequence length)."""

import math

import pytest
import torch
import torch.nn.functional as F

from xlstm_edu.nn import large
from xlstm_edu.nn.large import (XLSTM_7B, XLSTMLarge, XLSTMLargeConfig, count_flops, count_params,
                                ffn_hidden_size, soft_cap)
from xlstm_edu.nn.mlstm import mlstm_parallel

V = 23


def tiny(**kw):
    base = dict(vocab_size=V, embedding_dim=32, num_heads=2, num_blocks=2, chunk_size=8, context_length=64)
    base.update(kw)
    return XLSTMLargeConfig(**base)


def stressed(model, scale=4.0):
    """Random weights large enough that gates leave the initial regime (see ``large_oracle.stress_``)."""
    from xlstm_edu.large_oracle import stress_

    return stress_(model, scale)


def model64(**kw):
    torch.manual_seed(0)
    return stressed(XLSTMLarge(tiny(**kw)).double())


# --------------------------------------------------------------------------------------------- pieces
def test_soft_cap_is_bounded_identity_near_zero_and_none_is_off():
    x = torch.linspace(-100, 100, 2001, dtype=torch.float64, requires_grad=True)
    y = soft_cap(x, 15.0)
    assert y.abs().max() < 15.0 and torch.allclose(y[1000], torch.tensor(0.0, dtype=torch.float64))
    y.sum().backward()
    assert abs(x.grad[1000].item() - 1.0) < 1e-12  # slope 1 at 0: small pre-activations pass unchanged
    assert torch.allclose(x.grad, 1 - torch.tanh(x.detach() / 15) ** 2)  # d/dx a·tanh(x/a) = 1 − tanh²(x/a)
    assert soft_cap(x, None) is x


def test_ffn_width_is_rounded_like_the_official_code():
    assert ffn_hidden_size(128, 2.6667, 64) == 384
    assert ffn_hidden_size(4096, 2.667, 64) == 10944  # the 7B feed-forward
    # the official rounding int(((x + m - 1) // m) * m) is not ceil for non-integer x: 128.5 -> 128, not 192
    assert ffn_hidden_size(257, 0.5, 64) == 128 and math.ceil(128.5 / 64) * 64 == 192


def test_initialisation_follows_the_7b_training_code():
    m = XLSTMLarge(tiny(num_heads=4))
    layer = m.blocks[0].mlstm_layer
    assert torch.equal(layer.igate_preact.bias, torch.full((4,), -10.0))
    assert torch.allclose(layer.fgate_preact.bias, torch.tensor([3.0, 4.0, 5.0, 6.0]))
    for lin in (layer.igate_preact, layer.fgate_preact, layer.ogate_preact):
        assert torch.count_nonzero(lin.weight) == 0
    for name, p in m.named_parameters():  # no biases except the two gates
        if name.endswith("bias"):
            assert "igate_preact" in name or "fgate_preact" in name, name
    m0 = XLSTMLarge(tiny(igate_bias_init=0.0, fgate_bias_init=(1.0, 2.0)))
    assert torch.equal(m0.blocks[1].mlstm_layer.igate_preact.bias, torch.zeros(2))
    assert torch.allclose(m0.blocks[1].mlstm_layer.fgate_preact.bias, torch.tensor([1.0, 2.0]))


@pytest.mark.parametrize("kw", [{}, dict(num_heads=4, qk_dim_factor=0.25), dict(v_dim_factor=2.0, add_out_norm=False)])
def test_parameter_count_matches_formula(kw):
    cfg = tiny(**kw)
    m = XLSTMLarge(cfg)
    c = count_params(cfg)
    assert m.num_params() == c["total"]
    assert sum(p.numel() for p in m.blocks[0].parameters()) == c["block"]
    assert m.num_params(non_embedding=True) == c["total"] - cfg.vocab_size * cfg.embedding_dim
    assert f"{c['total']:,}" in m.summary()


def test_7b_configuration_counts_on_the_meta_device():
    """The real 7B model, built without memory on the meta device: about 6.9 billion parameters."""
    with torch.device("meta"):
        m = XLSTMLarge(XLSTM_7B)
    c = count_params(XLSTM_7B)
    assert m.num_params() == c["total"]
    assert 6.8e9 < c["total"] < 7.0e9
    assert XLSTM_7B.qk_dim == 2048 and XLSTM_7B.v_dim == 4096 and XLSTM_7B.ffn_dim == 10944


def test_flop_count_matches_the_matrix_products_torch_runs():
    """``count_flops`` (by formula) equals what torch's FLOP counter sees in one forward pass."""
    from torch.utils.flop_counter import FlopCounterMode

    for S, L in ((32, 8), (8, 8)):  # several chunks; one chunk
        cfg = tiny(chunk_size=L)
        m = XLSTMLarge(cfg)
        idx = torch.randint(0, V, (2, S))
        with FlopCounterMode(display=False) as fc:
            m(idx)
        assert fc.get_total_flops() == count_flops(cfg, S)["forward"] * idx.numel()


def test_bad_config_and_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="num_heads"):
        tiny(num_heads=3)  # q/k width 16 is not a multiple of 3
    with pytest.raises(ValueError, match="gate_soft_cap"):
        tiny(gate_soft_cap=0.0)
    with pytest.raises(ValueError, match="gate_soft_cap"):
        tiny(gate_soft_cap=float("inf"))
    with pytest.raises(ValueError, match="qk_dim_factor"):
        tiny(qk_dim_factor=-1)
    with pytest.raises(ValueError, match="chunk_size"):
        tiny(chunk_size=0)
    with pytest.raises(ValueError, match="fgate_bias_init"):
        tiny(fgate_bias_init=3.0)
    with pytest.raises(ValueError, match="valid keys"):
        XLSTMLargeConfig.from_dict(dict(vocab_size=5, embeding_dim=32))
    with pytest.raises(ValueError, match="XLSTMLargeConfig"):
        XLSTMLarge(dict(vocab_size=5))
    m = XLSTMLarge(tiny())
    with pytest.raises(ValueError, match="idx"):
        m(torch.zeros(1, 5))  # float ids
    with pytest.raises(ValueError, match=r"\[0, 23\)"):
        m(torch.tensor([[1, 23]]))
    with pytest.raises(ValueError, match="idx"):
        m(torch.zeros(1, 0, dtype=torch.long))
    with pytest.raises(ValueError, match="idx"):
        m.step(torch.zeros(1, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="state"):
        m.step(torch.zeros(3, dtype=torch.long), m.init_state(2))  # batch 3 vs a state for 2
    with pytest.raises(ValueError, match="state"):
        m.prefill(torch.zeros(2, 4, dtype=torch.long), m.init_state(2)[:1])
    with pytest.raises(ValueError, match="xLSTMLarge"):
        XLSTMLarge.from_official(torch.nn.Linear(3, 3))


# --------------------------------------------------------------------------------------------- forms agree
@pytest.mark.parametrize("S", [8, 13, 24])
def test_step_by_step_equals_forward(S):
    m = model64()
    idx = torch.randint(0, V, (2, S), generator=torch.Generator().manual_seed(S))
    with torch.no_grad():
        full = m(idx)
        state = m.init_state(2)
        steps = []
        for t in range(S):
            logits, state = m.step(idx[:, t], state)
            steps.append(logits)
    torch.testing.assert_close(torch.stack(steps, 1), full, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("split", [5, 8, 11])
def test_prefill_then_step_equals_forward(split):
    m = model64()
    idx = torch.randint(0, V, (3, 20), generator=torch.Generator().manual_seed(split))
    with torch.no_grad():
        full = m(idx)
        first, state = m.prefill(idx[:, :split])
        rest = []
        for t in range(split, 20):
            logits, state = m.step(idx[:, t], state)
            rest.append(logits)
        again, _ = m.prefill(idx[:, split:], m.prefill(idx[:, :split])[1])  # two prefills chained
    torch.testing.assert_close(first, full[:, :split], rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(torch.stack(rest, 1), full[:, split:], rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(again, full[:, split:], rtol=1e-10, atol=1e-10)


def test_chunkwise_equals_parallel_inside_the_model(monkeypatch):
    """Any chunk size gives the same logits, and so does the quadratic parallel form put in the cell's place
    (eps = 0: with eps > 0 the parallel form differs by design at the eps level)."""
    m = model64(eps=0.0)
    idx = torch.randint(0, V, (2, 24), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        ref = m(idx)
        for L in (1, 5, 8, 24, 64):
            for b in m.blocks:
                b.mlstm_layer.chunk_size = L
            torch.testing.assert_close(m(idx), ref, rtol=1e-10, atol=1e-10)

        def parallel(q, k, v, i_pre, f_pre, chunk_size, state, forget_gate, eps=1e-6):  # block_chunkwise's call
            assert state is None and forget_gate == "sigmoid"
            return mlstm_parallel(q, k, v, i_pre, f_pre, eps=eps), None

        monkeypatch.setattr(large, "block_chunkwise", parallel)
        torch.testing.assert_close(m(idx), ref, rtol=1e-10, atol=1e-10)


def test_causal_a_future_token_changes_no_earlier_logit():
    m = model64()
    idx = torch.randint(0, V, (2, 19), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        ref = m(idx)
        for t in (0, 7, 8, 18):
            changed = idx.clone()
            changed[:, t] = (changed[:, t] + 1) % V
            out = m(changed)
            torch.testing.assert_close(out[:, :t], ref[:, :t], rtol=0, atol=0)
            assert (out[:, t] - ref[:, t]).abs().max() > 1e-6  # ... and it does change its own position


def test_logits_are_capped_and_half_precision_runs():
    m = stressed(XLSTMLarge(tiny(output_logit_soft_cap=2.0)), scale=50.0)
    idx = torch.randint(0, V, (2, 12))
    with torch.no_grad():
        out = m(idx)
        assert out.abs().max() < 2.0
        with torch.autocast("cpu", dtype=torch.bfloat16):
            half = m(idx)
        assert torch.isfinite(half).all()
        mb = XLSTMLarge(tiny()).to(torch.bfloat16)
        logits, state = mb.step(idx[:, 0])
        assert torch.isfinite(logits).all() and state[0][0].dtype == torch.float32  # the cell upcasts


def test_training_reduces_loss_and_gradients_are_finite():
    torch.manual_seed(0)
    m = XLSTMLarge(tiny())
    idx = torch.randint(0, V, (4, 17))
    opt = torch.optim.AdamW(m.parameters(), lr=1e-2)
    losses = []
    for _ in range(15):
        logits = m(idx[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, V), idx[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.5
    for name, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


# --------------------------------------------------------------------------------------------- the official model
def _official_pair(dtype, weight_mode="single", **kw):
    """An official model with random ("stressed") weights, our copy, and an official twin in inference mode."""
    pytest.importorskip("xlstm")
    cfg = tiny(**kw)
    torch.manual_seed(0)
    off = stressed(large.build_official(cfg, mode="train", dtype=dtype, weight_mode=weight_mode))
    off_inf = large.build_official(cfg, mode="inference", dtype=dtype, weight_mode=weight_mode)
    off_inf.load_state_dict(off.state_dict())
    return cfg, off, off_inf, XLSTMLarge.from_official(off)


TOL = {torch.float32: 1e-5, torch.float64: 1e-10}
# the stabilizer m is a running sum of log-gates of size up to 15 (the cap): its float32 round-off is absolute,
# about 1e-7 · 15 per step, so it gets an absolute tolerance of its own
M_TOL = {torch.float32: 1e-4, torch.float64: 1e-10}


def assert_rel(got, want, dtype):
    rel = (got - want).abs().max().item() / want.abs().max().item()
    assert rel <= TOL[dtype], f"max relative difference {rel:.2e} > {TOL[dtype]:.0e}"
    return rel


@pytest.mark.oracle
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_forward_equals_official_at_every_length(dtype):
    cfg, off, off_inf, ours = _official_pair(dtype)
    idx = torch.randint(0, V, (2, 40), generator=torch.Generator().manual_seed(5))
    # the gates really are in the soft cap's bending range (the test would not see a missing cap otherwise)
    pre = off.backbone.blocks[0].mlstm_layer.fgate_preact(off.backbone.blocks[0].norm_mlstm(off.embedding(idx)))
    assert pre.abs().max() > 15
    with torch.no_grad():
        for S in (8, 16, 32):  # multiples of the chunk size: the official train mode (chunkwise kernel)
            assert_rel(ours(idx[:, :S]), off(idx[:, :S])[0], dtype)
        for S in (1, 5, 13, 21, 40):  # any length: the official inference mode (step kernel or padding)
            assert_rel(ours(idx[:, :S]), off_inf(idx[:, :S])[0], dtype)


@pytest.mark.oracle
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_generation_step_by_step_equals_official(dtype):
    cfg, off, off_inf, ours = _official_pair(dtype)
    idx = torch.randint(0, V, (2, 20), generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        s_off, s_ours, a, b = None, None, [], []
        for t in range(20):
            lo, s_off = off_inf(idx[:, t:t + 1], s_off)  # one token: the official step kernel
            lu, s_ours = ours.step(idx[:, t], s_ours)
            a.append(lo[:, 0])
            b.append(lu)
    assert_rel(torch.stack(b, 1), torch.stack(a, 1), dtype)
    for (C, n, m), (Cu, nu, mu) in zip(s_off.values(), s_ours):
        assert_rel(Cu, C, dtype)
        assert_rel(nu, n, dtype)
        torch.testing.assert_close(mu, m[..., 0], rtol=0, atol=M_TOL[dtype])


@pytest.mark.oracle
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("S", [16, 21])
def test_prefill_then_generate_equals_official(dtype, S):
    """Prompt of S tokens, then 6 generated. For S not a multiple of the chunk size (8) the official state has
    passed through pad = 8⌈S/8⌉ − S padded steps: its m is lower by exactly pad·|log σ(25)|."""
    cfg, off, off_inf, ours = _official_pair(dtype)
    idx = torch.randint(0, V, (2, S + 6), generator=torch.Generator().manual_seed(S))
    pad = -S % cfg.chunk_size
    with torch.no_grad():
        lo, s_off = off_inf(idx[:, :S])
        lu, s_ours = ours.prefill(idx[:, :S])
        assert_rel(lu, lo, dtype)
        shift = pad * F.logsigmoid(torch.tensor(25.0, dtype=torch.float64)).item()
        for (C, n, m), (Cu, nu, mu) in zip(s_off.values(), s_ours):
            assert_rel(Cu, C, dtype)
            assert_rel(nu, n, dtype)
            torch.testing.assert_close(m[..., 0] - mu, torch.full_like(mu, shift), rtol=0, atol=M_TOL[dtype])
        a, b = [], []
        for t in range(S, S + 6):
            lo, s_off = off_inf(idx[:, t:t + 1], s_off)
            lu, s_ours = ours.step(idx[:, t], s_ours)
            a.append(lo[:, 0])
            b.append(lu)
    # after padding the official state is off by a relative ~pad·1.4e-11 (see the module docstring)
    tol = TOL[dtype] if pad == 0 or dtype == torch.float32 else 1e-8
    rel = (torch.stack(b, 1) - torch.stack(a, 1)).abs().max().item() / torch.stack(a, 1).abs().max().item()
    assert rel <= tol


@pytest.mark.oracle
def test_gradients_equal_official_float64():
    cfg, off, _, ours = _official_pair(torch.float64)
    idx = torch.randint(0, V, (2, 17), generator=torch.Generator().manual_seed(7))
    F.cross_entropy(off(idx[:, :16])[0].reshape(-1, V), idx[:, 1:].reshape(-1)).backward()
    F.cross_entropy(ours(idx[:, :16]).reshape(-1, V), idx[:, 1:].reshape(-1)).backward()
    theirs = {k.removeprefix("backbone.").replace("lm_head", "head"): p.grad for k, p in off.named_parameters()}
    for name, p in ours.named_parameters():
        assert_rel(p.grad, theirs[name], torch.float64)


@pytest.mark.oracle
def test_equality_report_writes_the_figures(tmp_path):
    import json

    pytest.importorskip("xlstm")
    from xlstm_edu import large_oracle

    out = tmp_path / "eq.json"
    assert large_oracle.main(["--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["command"].startswith("python -m xlstm_edu.large_oracle") and res["xlstm"]
    figures = {r["dtype"]: r for r in res["results"]}
    for dtype, tol in (("float32", 1e-5), ("float64", 1e-10)):
        assert figures[dtype]["forward"]["max_rel"] <= tol and figures[dtype]["generation"]["max_rel"] <= tol
    assert figures["float64"]["gradients"]["max_rel"] <= 1e-10


@pytest.mark.oracle
def test_fused_weight_mode_and_parameter_count_equal_official():
    cfg, off, off_inf, ours = _official_pair(torch.float64, weight_mode="fused")
    assert ours.num_params() == sum(p.numel() for p in off.parameters()) == count_params(cfg)["total"]
    idx = torch.randint(0, V, (2, 16), generator=torch.Generator().manual_seed(8))
    with torch.no_grad():
        assert_rel(ours(idx), off(idx)[0], torch.float64)


# --------------------------------------------------------------------------------------------- the ablation script
def test_grad_norm_recorder_sees_the_norm_before_clipping():
    from xlstm_edu.large_ablation import GradNormRecorder

    torch.manual_seed(0)
    m = XLSTMLarge(tiny())
    rec = GradNormRecorder(m)
    norms = []
    for _ in range(2):
        m.zero_grad(set_to_none=True)
        F.cross_entropy(m(torch.randint(0, V, (2, 9))).reshape(-1, V), torch.randint(0, V, (18,))).backward()
        rec.flush()
        norms.append(float(torch.nn.utils.clip_grad_norm_(m.parameters(), 1e-3)))  # clipping after the record
    rec.close()
    assert rec.norms == pytest.approx(norms, rel=1e-6)


def test_ablation_run_records_curves_and_divergence(tmp_path):
    import json

    from xlstm_edu import large_ablation as la

    out = tmp_path / "abl.json"
    assert la.main(["--fast", "--steps", "3", "--batch-size", "4", "--context-length", "16",
                    "--variants", "7B recipe,no soft caps", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert (tmp_path / "abl.png").stat().st_size > 0
    assert res["command"].startswith("python -m xlstm_edu.large_ablation") and len(res["loadavg_start"]) == 3
    assert [r["variant"] for r in res["runs"]] == ["7B recipe", "no soft caps"]
    for r in res["runs"]:
        assert len(r["loss"]) == len(r["grad_norm"]) == 3 and r["val_loss"] > 0 and r["diverged_at"] is None
    assert set(res["summary"]) == {"7B recipe", "no soft caps"}
    assert la.main(["--replot", str(out), "--png", str(tmp_path / "again.png")]) == 0  # redraw, no training
    assert (tmp_path / "again.png").stat().st_size > 0
    # a learning rate of 1e5 ruins the model within a few steps: the run ends with its curves up to there
    from xlstm_edu.data import load_corpus
    from xlstm_edu.paths import data_dir

    corpus = load_corpus("shakespeare", data_dir())
    r = la.run_one("neither", 0, corpus=corpus, steps=6, lr=1e5, batch_size=4, context_length=16, warmup=0,
                   grad_clip=0.0)
    assert r["diverged_at"] is not None and len(r["loss"]) == r["diverged_at"] + 1
    assert not math.isfinite(r["loss"][-1]) and r["val_loss"] is None


def test_ablation_rejects_bad_arguments(tmp_path):
    from xlstm_edu import large_ablation as la

    for bad in (["--steps", "0"], ["--lr", "-1"], ["--variants", "no caps"], ["--json", str(tmp_path)],
                ["--replot", str(tmp_path / "missing.json")]):
        with pytest.raises(SystemExit):
            la.parse(bad)
