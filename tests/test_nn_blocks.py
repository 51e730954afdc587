"""The xLSTM blocks and language model: causality, generation == full forward, prefill + step == forward and
streaming in pieces == one pass (any length), the gate records, parameter counts by formula, config validation,
DDP-friendly gradient layouts, and (when the official package is installed) the same parameter count as
xLSTMLMModel."""

import math

import pytest
import torch

from xlstm_edu.nn.xlstm_lm import XLSTMConfig, XLSTMLM


def tiny(**kw):
    base = dict(vocab_size=11, context_length=24, embedding_dim=32, num_blocks=3, num_heads=2, chunk_size=4,
                slstm_at=(1,))
    base.update(kw)
    return XLSTMConfig(**base)


def randomize(model, std=0.3, seed=0):
    """Non-trivial weights everywhere (the official init zeroes gate and recurrent weights)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(std * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return model


@pytest.mark.parametrize("slstm_at", [(), (1,), (0, 1, 2)])
def test_model_is_causal(slstm_at):
    torch.manual_seed(0)
    model = randomize(XLSTMLM(tiny(slstm_at=slstm_at)).double())
    idx = torch.randint(0, 11, (2, 20))
    logits = model(idx)
    assert logits.shape == (2, 20, 11)
    t0 = 9
    idx2 = idx.clone()
    idx2[:, t0:] = (idx2[:, t0:] + 1) % 11
    logits2 = model(idx2)
    assert torch.equal(logits[:, :t0], logits2[:, :t0])  # changing token t0.. leaves logits before t0 alone
    assert not torch.allclose(logits[:, t0:], logits2[:, t0:])
    # and the gradient of an early logit does not reach later tokens' embeddings
    emb = model.embedding.weight
    g = torch.autograd.grad(model(idx)[:, 3].sum(), emb)[0]
    later_only = set(idx[:, 4:].flatten().tolist()) - set(idx[:, :4].flatten().tolist())
    for tok in later_only:
        assert torch.all(g[tok] == 0)


@pytest.mark.parametrize("slstm_at", [(), (1,), "all"])
@pytest.mark.parametrize("forget_gate", ["sigmoid", "exp"])
def test_step_generation_equals_full_forward(slstm_at, forget_gate):
    torch.manual_seed(1)
    model = randomize(XLSTMLM(tiny(slstm_at=slstm_at, forget_gate=forget_gate)).double(), std=0.2)
    if forget_gate == "exp":  # keep exp forget gates below 1 so activations stay tame
        for blk in model.blocks:
            if hasattr(blk, "gates"):
                with torch.no_grad():
                    blk.gates.bias[blk.num_heads:] = -0.5
    model.eval()
    idx = torch.randint(0, 11, (3, 14))  # 14 = 3 chunks of 4 + a shorter one
    full = model(idx)
    state = model.init_state(3)
    for t in range(idx.shape[1]):
        logits_t, state = model.step(idx[:, t], state)
        assert torch.allclose(logits_t, full[:, t], rtol=0, atol=1e-10), t


def expected_params(cfg: XLSTMConfig) -> int:
    """The parameter count written out from the official layer shapes (xlstm 2.0.6), independently of the code."""
    E, V, K, NH = cfg.embedding_dim, cfg.vocab_size, cfg.conv1d_kernel_size, cfg.num_heads
    inner = math.ceil(cfg.mlstm_proj_factor * E / 64) * 64
    ffn = math.ceil(cfg.ffn_proj_factor * E / 64) * 64
    bs = cfg.qkv_proj_blocksize
    snh = cfg.slstm_num_heads or NH
    mlstm = (E  # pre-LayerNorm (weight only)
             + E * 2 * inner  # up-projection to x_m and z
             + inner * K + inner  # depthwise causal conv (weights + bias)
             + 3 * (inner // bs) * bs * bs  # block-diagonal q, k, v
             + 2 * (3 * inner * NH + NH)  # input and forget gate from [q; k; v], one scalar per head
             + inner  # head-wise GroupNorm scale
             + inner  # learnable skip
             + inner * E)  # down-projection
    slstm = (E  # pre-LayerNorm
             + (E * K + E if K > 0 else 0)  # conv feeding i, f
             + 4 * snh * (E // snh) ** 2  # head-wise W for i, f, z, o
             + 4 * snh * (E // snh) ** 2  # block-diagonal R for i, f, z, o
             + 4 * E  # biases
             + E  # head-wise GroupNorm
             + E  # FFN pre-LayerNorm
             + E * 2 * ffn + ffn * E)  # gated MLP
    n_s = len(cfg.slstm_at)
    head = 0 if cfg.tie_weights else V * E
    return V * E + (cfg.num_blocks - n_s) * mlstm + n_s * slstm + E + head


@pytest.mark.parametrize("kw", [dict(), dict(slstm_at=()), dict(slstm_at="all"), dict(tie_weights=True),
                                dict(embedding_dim=48, num_heads=4, slstm_num_heads=2, slstm_at=(0, 2)),
                                dict(embedding_dim=48, slstm_num_heads=3, conv1d_kernel_size=0, slstm_at="all"),
                                dict(embedding_dim=128, num_blocks=4, num_heads=4, slstm_at=(1, 3), vocab_size=65)])
def test_parameter_count_matches_formula(kw, capsys):
    cfg = tiny(**kw)
    model = XLSTMLM(cfg)
    print(model.summary())
    printed = capsys.readouterr().out
    want = expected_params(cfg)
    assert model.num_params() == want
    assert f"total {want:>18,}".split()[-1] in printed.split()  # the printed total is the same number
    assert model.num_params(non_embedding=True) == want - cfg.vocab_size * cfg.embedding_dim


@pytest.mark.oracle
@pytest.mark.parametrize("slstm_at", [(1, 3), ()])
def test_same_parameter_count_as_official_xlstm(slstm_at):
    pytest.importorskip("xlstm")
    import argparse

    from xlstm_edu.bench.lm import build_official

    a = argparse.Namespace(embedding_dim=64, num_blocks=4, num_heads=4, context_length=32, vocab_size=17)
    official = build_official("official-xlstm" if slstm_at else "official-mlstm", a)
    ours = XLSTMLM(XLSTMConfig(vocab_size=17, context_length=32, embedding_dim=64, num_blocks=4, num_heads=4,
                               slstm_at=slstm_at))
    assert ours.num_params() == sum(p.numel() for p in official.parameters())


def test_bad_config_raises_value_error():
    with pytest.raises(ValueError, match="valid keys"):
        XLSTMConfig.from_dict(dict(vocab_size=11, embeding_dim=32))  # typo
    with pytest.raises(ValueError, match="slstm_at"):
        tiny(slstm_at=(3,))
    with pytest.raises(ValueError, match="num_heads"):
        tiny(num_heads=0)
    with pytest.raises(ValueError, match="num_heads"):
        tiny(num_heads=5)  # inner 64 is not a multiple of 5
    with pytest.raises(ValueError, match="conv1d_kernel_size"):
        tiny(conv1d_kernel_size=0)  # the mLSTM block needs its conv
    with pytest.raises(ValueError, match="dropout"):
        tiny(dropout=1.5)
    with pytest.raises(ValueError, match="forget_gate"):
        tiny(forget_gate="relu")
    model = XLSTMLM(tiny())
    with pytest.raises(ValueError, match="idx"):
        model(torch.zeros(1, 5))
    with pytest.raises(ValueError, match="idx"):
        model.step(torch.zeros(1, 5, dtype=torch.long))


def test_build_model_kinds():
    models = pytest.importorskip("xlstm_edu.models")
    m = models.build_model("xlstm", vocab_size=11, context_length=16, embedding_dim=32, num_blocks=4, num_heads=2)
    assert m.cfg.slstm_at == (1, 3) and m.cfg.ratio == "xLSTM[1:1]"
    assert models.build_model("mlstm", 11, 16, embedding_dim=32, num_heads=2).cfg.slstm_at == ()
    with pytest.raises(ValueError, match="valid keys"):
        models.build_model("xlstm", 11, 16, embeding_dim=32)


def test_training_step_reduces_loss():
    torch.manual_seed(0)
    model = XLSTMLM(tiny(slstm_at=(1,)))
    idx = torch.randint(0, 11, (4, 17))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(15):
        logits = model(idx[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 11), idx[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.3
    for p in model.parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all()


def test_gate_projection_split_equals_concat():
    from xlstm_edu.nn.blocks import GateProjection

    g = GateProjection(inner=8, num_heads=2).double()
    torch.nn.init.normal_(g.weight)
    q, k, v = (torch.randn(3, 5, 8, dtype=torch.float64) for _ in range(3))
    assert torch.allclose(g.apply_split(q, k, v), g(torch.cat([q, k, v], dim=-1)), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("S", [1, 2, 3, 9])
def test_causal_conv_equals_conv1d_forward_and_backward(S):
    """The causal conv from zeros (shifted multiply-adds with a hand-written backward) equals torch's conv1d with
    left zero padding, values and gradients, and equals the same conv continued from a zero buffer."""
    from xlstm_edu.nn.blocks import CausalConv1d

    torch.manual_seed(0)
    conv = CausalConv1d(6, kernel_size=4).double()
    x = torch.randn(3, S, 6, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, S, 6, dtype=torch.float64)
    y = conv(x)
    gx, gw, gb = torch.autograd.grad((y * w).sum(), [x, conv.conv.weight, conv.conv.bias])
    ref = torch.nn.functional.conv1d(torch.nn.functional.pad(x.transpose(1, 2), (3, 0)), conv.conv.weight,
                                     conv.conv.bias, groups=6).transpose(1, 2)
    rx, rw, rb = torch.autograd.grad((ref * w).sum(), [x, conv.conv.weight, conv.conv.bias])
    for a, b in [(y, ref), (gx, rx), (gw, rw), (gb, rb)]:
        torch.testing.assert_close(a, b, rtol=0, atol=1e-13)
    assert gw.stride() == conv.conv.weight.stride()
    y_buf, _ = conv(x, conv.init_state(3, dtype=torch.float64))
    torch.testing.assert_close(y, y_buf, rtol=0, atol=1e-13)


def test_folded_gates_equal_the_gates_from_q_k_v():
    """The block computes its gates from x_c and x_m through the folded maps (W_q Q + W_k K) and W_v V: equal
    to W_q q + W_k k + W_v v + b from q, k, v, values and gradients of every weight."""
    from xlstm_edu.nn.blocks import GateProjection, HeadwiseLinear

    torch.manual_seed(0)
    qk, vp, gp = HeadwiseLinear(16, 4, num_outputs=2).double(), HeadwiseLinear(16, 4).double(), \
        GateProjection(16, num_heads=2).double()
    torch.nn.init.normal_(gp.weight)
    x_c, x_m = (torch.randn(2, 5, 16, dtype=torch.float64) for _ in range(2))
    w = torch.randn(2, 5, 4, dtype=torch.float64)
    params = [qk.weight, vp.weight, gp.weight, gp.bias]
    folded = gp.apply_folded(x_c, x_m, qk, vp)
    q, k = qk.outputs(x_c)
    (v,) = vp.outputs(x_m)
    split = gp.apply_split(q, k, v)
    torch.testing.assert_close(folded, split, rtol=0, atol=1e-13)
    for a, b in zip(torch.autograd.grad((folded * w).sum(), params), torch.autograd.grad((split * w).sum(), params)):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def test_bf16_autocast_runs_cells_in_float32():
    """Under bf16 autocast (the trainer's GPU setting) the cells still run in float32: the logits stay close to the
    float32 model's and every gradient is finite."""
    torch.manual_seed(0)
    model = XLSTMLM(tiny(slstm_at=(1,)))
    idx = torch.randint(0, 11, (2, 20))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(idx)
    out.float().logsumexp(-1).mean().backward()
    assert out.dtype == torch.bfloat16
    assert torch.allclose(out.float(), model(idx), atol=0.1)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


# ------------------------------------------------------------------------------------------ state across calls
def model64(slstm_at=(1,), seed=3, **kw):
    torch.manual_seed(seed)
    return randomize(XLSTMLM(tiny(slstm_at=slstm_at, **kw)).double(), std=0.2, seed=seed).eval()


@pytest.mark.parametrize("slstm_at", [(), (1,), "all"])
def test_forward_takes_any_length(slstm_at):
    """No positional table: a sequence 3x context_length runs, and is causal (its first part is unchanged)."""
    model = model64(slstm_at)
    idx = torch.randint(0, 11, (2, 3 * model.cfg.context_length + 5))
    out = model(idx)
    assert out.shape == (2, idx.shape[1], 11) and torch.isfinite(out).all()
    torch.testing.assert_close(out[:, :20], model(idx[:, :20]), rtol=0, atol=1e-10)


@pytest.mark.parametrize("slstm_at", [(), (1,), "all"])
@pytest.mark.parametrize("t", [1, 3, 4, 8, 9, 13])  # chunk_size 4: at chunk borders (4, 8) and between them
def test_prefill_then_step_equals_forward(slstm_at, t):
    model = model64(slstm_at)
    idx = torch.randint(0, 11, (2, 17), generator=torch.Generator().manual_seed(t))
    full = model(idx)
    logits, state = model.prefill(idx[:, :t])
    torch.testing.assert_close(logits, full[:, :t], rtol=0, atol=1e-10)
    for s in range(t, idx.shape[1]):
        logits_s, state = model.step(idx[:, s], state)
        torch.testing.assert_close(logits_s, full[:, s], rtol=0, atol=1e-10)


@pytest.mark.parametrize("slstm_at", [(), (0, 2), "all"])
def test_prefill_state_equals_the_stepped_state(slstm_at):
    """The state after a multi-token chunk is the state after stepping through it token by token."""
    model = model64(slstm_at)
    idx = torch.randint(0, 11, (3, 11), generator=torch.Generator().manual_seed(0))
    _, state = model.prefill(idx)
    stepped = model.init_state(3)
    for s in range(idx.shape[1]):
        _, stepped = model.step(idx[:, s], stepped)
    for a, b in zip(state, stepped):
        for x, y in zip(a, b):
            torch.testing.assert_close(x, y, rtol=0, atol=1e-10)


@pytest.mark.parametrize("slstm_at", [(), (1,), "all"])
@pytest.mark.parametrize("pieces", [[1, 2, 3, 20], [10, 10, 6], [4, 4, 4, 4, 10], [26]])
def test_streaming_in_pieces_equals_one_pass(slstm_at, pieces):
    """forward(x[a:b], state) continues forward(x[:a]): the pieces' logits, concatenated, are one pass's."""
    model = model64(slstm_at)
    idx = torch.randint(0, 11, (2, sum(pieces)), generator=torch.Generator().manual_seed(len(pieces)))
    full = model(idx)
    state, outs, a = model.init_state(2), [], 0
    for n in pieces:
        logits, state = model(idx[:, a:a + n], state, return_state=True)
        outs.append(logits)
        a += n
    torch.testing.assert_close(torch.cat(outs, 1), full, rtol=0, atol=1e-10)


def test_state_size_does_not_grow_and_matches_the_formula():
    from xlstm_edu.nn.xlstm_lm import state_nbytes

    model = model64((1,))
    _, s10 = model.prefill(torch.randint(0, 11, (1, 10)))
    _, s200 = model.prefill(torch.randint(0, 11, (1, 200)))
    cfg, E = model.cfg, model.cfg.embedding_dim
    inner, NH = 64, cfg.num_heads  # round_up(2 * 32, 64)
    DH = inner // NH
    mlstm = (3 * inner + NH * DH * DH + NH * DH + NH)  # conv buffer (K-1 = 3 inputs), C, n, m
    slstm = 3 * E + 4 * E  # conv buffer, h, c, n, m
    want = 8 * ((cfg.num_blocks - 1) * mlstm + slstm)  # float64
    assert state_nbytes(s10) == state_nbytes(s200) == want == state_nbytes(model.init_state(1))


def test_bad_state_is_a_value_error():
    model = model64((1,))
    idx = torch.zeros(2, 5, dtype=torch.long)
    with pytest.raises(ValueError, match="list of 3 block states"):
        model(idx, [None])
    with pytest.raises(ValueError, match="list of 3 block states"):
        model.step(idx[:, 0], "state")
    state = model.init_state(2)
    state[0] = state[0][:3]
    with pytest.raises(ValueError, match="mLSTM block state"):
        model.prefill(idx, state)
    state = model.init_state(3)  # batch 3 for a batch of 2
    with pytest.raises(ValueError, match="state"):
        model.prefill(idx, state)


# ---------------------------------------------------------------------------------------------- gate records
@pytest.mark.parametrize("slstm_at", [(1,), ()])
def test_gate_records_of_forward_equal_those_of_step(slstm_at):
    """Blocks report their gates: the records of one forward pass equal those of stepping token by token, and
    the last record is the returned state."""
    model = model64(slstm_at)
    idx = torch.randint(0, 11, (2, 10), generator=torch.Generator().manual_seed(5))
    t0 = 3
    _, state0 = model.prefill(idx[:, :t0])
    logits, state, gates = model.prefill(idx[:, t0:], state0, return_gates=True)  # from a non-zero state
    assert [g["kind"] for g in gates] == ["sLSTM" if i in model.cfg.slstm_at else "mLSTM" for i in range(3)]
    st = state0
    for s in range(t0, idx.shape[1]):
        _, st, g_step = model.step(idx[:, s], st, return_gates=True)
        for b, (gf, gs) in enumerate(zip(gates, g_step)):
            assert gf.keys() == gs.keys()
            for key in gf:
                if key != "kind":
                    torch.testing.assert_close(gf[key][:, s - t0], gs[key], rtol=0, atol=1e-10, msg=f"{b} {key}")
    for b, g in enumerate(gates):
        if g["kind"] == "mLSTM":
            _, C, n, m = state[b]
            torch.testing.assert_close(g["n"][:, -1], n, rtol=0, atol=1e-12)
            torch.testing.assert_close(g["m"][:, -1], m, rtol=0, atol=1e-12)
            assert g["i_pre"].shape == (2, 7, 2) and g["q"].shape == g["o"].shape == (2, 7, 2, 32)
        else:
            _, h, c, n, m = state[b]
            for key, want in (("h", h), ("c", c), ("n", n), ("m", m)):
                torch.testing.assert_close(g[key][:, -1].flatten(-2), want, rtol=0, atol=1e-12)
            torch.testing.assert_close(g["o"] * g["c"] / g["n"], g["h"], rtol=0, atol=1e-12)  # eq. 10
            torch.testing.assert_close(g["log_f"], torch.nn.functional.logsigmoid(g["f_pre"]), rtol=0, atol=0)


def test_gate_records_from_the_first_token():
    """From a zero state the sLSTM starts with an empty memory (m_1 = ĩ_1) and the mLSTM with m_0 = 0."""
    model = model64((1,))
    idx = torch.randint(0, 11, (1, 6))
    _, gates = model(idx, return_gates=True)
    g = gates[1]
    torch.testing.assert_close(g["m"][:, 0], g["i_pre"][:, 0], rtol=0, atol=0)
    torch.testing.assert_close(g["n"][:, 0], torch.ones_like(g["n"][:, 0]), rtol=0, atol=1e-15)  # n_1 = i'_1 = 1
    g = gates[0]
    torch.testing.assert_close(g["m"][:, 0], torch.maximum(g["log_f"][:, 0], g["i_pre"][:, 0]), rtol=0, atol=0)


# ----------------------------------------------------------------------------------------- DDP and gradients
@pytest.mark.parametrize("slstm_at", [(), (1,)])
def test_gradients_have_the_parameters_strides(slstm_at):
    """DistributedDataParallel copies gradients into buckets laid out like the parameters; a gradient with other
    strides costs a copy and a warning per process ("Grad strides do not match bucket view strides")."""
    model = XLSTMLM(tiny(slstm_at=slstm_at))
    model(torch.randint(0, 11, (2, 9))).sum().backward()
    for name, p in model.named_parameters():
        assert p.grad.stride() == p.stride(), name


def test_ddp_wrapped_model_emits_no_stride_warning(tmp_path):
    """One gloo process, the tiny xLSTM wrapped in DDP, one backward: no "Grad strides" warning (it is printed
    once per process, so this runs in a fresh one)."""
    import subprocess
    import sys

    if not torch.distributed.is_available():
        pytest.skip("torch.distributed not available")
    script = tmp_path / "ddp_strides.py"
    script.write_text(
        "import torch, torch.distributed as dist\n"
        "from torch.nn.parallel import DistributedDataParallel as DDP\n"
        "from xlstm_edu.models import build_model\n"
        f"dist.init_process_group('gloo', init_method='file://{tmp_path / 'store'}', rank=0, world_size=1)\n"
        "torch.manual_seed(0)\n"
        "m = DDP(build_model('xlstm', 11, 16, embedding_dim=32, num_blocks=2, num_heads=2))\n"
        "m(torch.randint(0, 11, (2, 16))).sum().backward()\n"
        "print('backward done')\n"
        "dist.destroy_process_group()\n")
    r = subprocess.run([sys.executable, "-W", "always", str(script)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "backward done" in r.stdout, r.stderr[-2000:]
    assert "Grad strides" not in r.stderr + r.stdout


def test_readme_quotes_the_cpu_small_state_size():
    """The README's state size of the cpu-small xLSTM[1:1] is what the model holds (a fact of the code, not a
    measurement: it must follow the code)."""
    from pathlib import Path

    from xlstm_edu.models import build_model
    from xlstm_edu.presets import get_preset

    model = build_model("xlstm", 75, 128, **get_preset("cpu-small")["models"]["xlstm"])
    n = model.state_nbytes(model.init_state(1))
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert f"{n:,} bytes for the `cpu-small` xLSTM[1:1]" in readme
