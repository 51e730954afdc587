"""The GPT and LSTM baselines: shapes, causality, step == forward, prefill + step == forward (the GPT's KV cache,
the LSTM's (h, c)), what the GPT does past its positional table, parameter counts, and build_model."""

import dataclasses

import pytest
import torch

from xlstm_edu.models import KINDS, build_model, cfg_from_dict, model_from_config
from xlstm_edu.nn.baselines import GPT, LSTMLM, GPTConfig, LSTMLMConfig

torch.set_num_threads(1)
V, S = 11, 12


def tiny(kind, **kw):
    torch.manual_seed(0)
    base = {"gpt": dict(embedding_dim=16, num_blocks=2, num_heads=2), "lstm": dict(embedding_dim=16, num_blocks=2)}
    return build_model(kind, V, S, **{**base[kind], **kw}).double().eval()


@pytest.mark.parametrize("kind", ["gpt", "lstm"])
def test_shapes_and_causality(kind):
    """Changing token t must not change the logits at positions < t (no look-ahead)."""
    model = tiny(kind)
    idx = torch.randint(0, V, (3, S), generator=torch.Generator().manual_seed(1))
    out = model(idx)
    assert out.shape == (3, S, V)
    for t in (0, 5, S - 1):
        idx2 = idx.clone()
        idx2[:, t] = (idx2[:, t] + 1) % V
        out2 = model(idx2)
        torch.testing.assert_close(out2[:, :t], out[:, :t], rtol=0, atol=1e-12)
        assert (out2[:, t:] - out[:, t:]).abs().max() > 1e-6  # the change is seen from t on


@pytest.mark.parametrize("kind", ["gpt", "lstm"])
def test_step_equals_forward(kind):
    model = tiny(kind)
    idx = torch.randint(0, V, (2, S), generator=torch.Generator().manual_seed(2))
    full = model(idx)
    state = model.init_state(2)
    for t in range(S):
        logits, state = model.step(idx[:, t], state)
        torch.testing.assert_close(logits, full[:, t], rtol=1e-10, atol=1e-10)


def test_gpt_step_slides_past_the_context():
    """Beyond context_length the GPT recomputes the last context_length tokens: equal to forward on that window."""
    model = tiny("gpt")
    idx = torch.randint(0, V, (2, S + 5), generator=torch.Generator().manual_seed(3))
    state = model.init_state(2)
    for t in range(S + 5):
        logits, state = model.step(idx[:, t], state)
        if t >= S:
            ref = model(idx[:, t - S + 1: t + 1])[:, -1]
            torch.testing.assert_close(logits, ref, rtol=1e-10, atol=1e-10)


def test_gpt_param_count_matches_formula():
    """12 d^2 per block (attention 4 d^2, MLP 8 d^2) + LayerNorms + embeddings; the tied head is counted once."""
    d, L, ctx = 16, 2, S
    model = tiny("gpt")
    expected = V * d + ctx * d + L * (12 * d * d + 2 * d) + d
    assert model.num_params() == expected
    assert model.num_params(non_embedding=True) == expected - V * d - ctx * d
    untied = build_model("gpt", V, S, embedding_dim=16, num_blocks=2, num_heads=2, tie_weights=False)
    assert untied.num_params() == expected + V * d


def test_lstm_param_count_matches_formula():
    """torch.nn.LSTM: 4 H (in + H) weights + 8 H biases per layer."""
    d, L = 16, 2
    model = tiny("lstm")
    expected = V * d + L * (4 * d * (d + d) + 8 * d)
    assert model.num_params() == expected
    model = build_model("lstm", V, S, embedding_dim=8, hidden_size=16, num_blocks=1, tie_weights=False)
    assert model.num_params() == V * 8 + (4 * 16 * (8 + 16) + 8 * 16) + 16 * V


def test_lstm_forget_bias_is_one():
    model = tiny("lstm")
    H = model.cfg.hidden_size
    b = model.lstm.bias_ih_l0 + model.lstm.bias_hh_l0
    assert torch.all(b[H:2 * H] == 1) and torch.all(b[:H] == 0)


def test_bad_inputs_and_configs():
    model = tiny("gpt")
    with pytest.raises(ValueError, match="longer than context_length"):
        model(torch.zeros(1, S + 1, dtype=torch.long))
    with pytest.raises(ValueError, match="token ids"):
        model(torch.full((1, 3), V, dtype=torch.long))
    with pytest.raises(ValueError, match="integer"):
        model(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="divisible"):
        GPTConfig(embedding_dim=10, num_heads=3)
    with pytest.raises(ValueError, match="tie_weights"):
        LSTMLMConfig(embedding_dim=8, hidden_size=16, tie_weights=True)
    with pytest.raises(ValueError, match="valid keys"):
        build_model("gpt", V, S, embeding_dim=16)
    with pytest.raises(ValueError, match="kind"):
        build_model("transformer", V, S)
    with pytest.raises(ValueError, match="unknown key"):
        cfg_from_dict(GPTConfig, {"nope": 1})


@pytest.mark.parametrize("kind", ["gpt", "lstm"])
def test_model_from_config_round_trip(kind):
    model = tiny(kind)
    again = model_from_config(kind, dataclasses.asdict(model.cfg))
    assert type(again) is type(model) and again.cfg == model.cfg
    assert isinstance(model, (GPT, LSTMLM)) and set(KINDS) >= {"gpt", "lstm"}


def test_gradients_flow_to_every_parameter():
    for kind in ("gpt", "lstm"):
        model = tiny(kind).train()
        idx = torch.randint(0, V, (2, S))
        model(idx).sum().backward()
        missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
        assert not missing, f"{kind}: no gradient for {missing}"


def test_build_model_xlstm_kinds():
    pytest.importorskip("xlstm_edu.nn.xlstm_lm")
    at = {k: build_model(k, V, S, embedding_dim=32, num_blocks=4).cfg.slstm_at for k in ("xlstm", "mlstm", "slstm")}
    assert at == {"xlstm": (1, 3), "mlstm": (), "slstm": (0, 1, 2, 3)}
    assert build_model("xlstm", V, S, embedding_dim=32, num_blocks=4, slstm_at=(0,)).cfg.slstm_at == (0,)


@pytest.mark.parametrize("preset", ["cpu-tiny", "cpu-small", "gpu-small"])
def test_preset_param_counts_are_comparable(preset):
    """Every model of a preset is within 15% of the xLSTM[1:1]'s parameter count."""
    pytest.importorskip("xlstm_edu.nn.xlstm_lm")
    from xlstm_edu.presets import preset_param_counts

    counts = preset_param_counts(preset)
    ref = counts["xlstm"]
    for kind, n in counts.items():
        assert abs(n - ref) / ref < 0.15, f"{preset}: {kind} has {n:,} parameters, xlstm {ref:,}"


# ------------------------------------------------------------------------------------------ generation state
@pytest.mark.parametrize("kind", ["gpt", "lstm"])
@pytest.mark.parametrize("t", [1, 5, S - 1])
def test_prefill_then_step_equals_forward(kind, t):
    model = tiny(kind)
    idx = torch.randint(0, V, (2, S), generator=torch.Generator().manual_seed(t))
    full = model(idx)
    logits, state = model.prefill(idx[:, :t])
    torch.testing.assert_close(logits, full[:, :t], rtol=0, atol=1e-10)
    for s in range(t, S):
        logits_s, state = model.step(idx[:, s], state)
        torch.testing.assert_close(logits_s, full[:, s], rtol=0, atol=1e-10)


@pytest.mark.parametrize("kind", ["gpt", "lstm"])
def test_prefill_in_chunks_equals_forward(kind):
    """Several prefills, each continuing the last one's state (the GPT attends to its cache plus the new
    chunk under a causal mask), give one pass's logits."""
    model = tiny(kind)
    idx = torch.randint(0, V, (2, S), generator=torch.Generator().manual_seed(7))
    state, outs = None, []
    for a, b in ((0, 3), (3, 4), (4, 9), (9, S)):
        logits, state = model.prefill(idx[:, a:b], state)
        outs.append(logits)
    torch.testing.assert_close(torch.cat(outs, 1), model(idx), rtol=0, atol=1e-10)


def test_gpt_kv_cache_grows_one_position_per_step():
    """Each step appends one key and one value per block: the cache holds 2 · blocks · T · d numbers."""
    model = tiny("gpt")
    d, L = model.cfg.embedding_dim, model.cfg.num_blocks
    idx = torch.randint(0, V, (1, S))
    _, state = model.prefill(idx[:, :4])
    sizes = []
    for t in range(4, 8):
        assert all(c["len"] == t for c in state["caches"])
        sizes.append(model.state_nbytes(state))
        _, state = model.step(idx[:, t], state)
    per_token = 2 * L * d * 8 + 8  # float64 keys and values, plus the int64 token id
    assert sizes == [t * per_token for t in range(4, 8)]


def test_gpt_prefill_past_the_table_slides_the_window():
    """A prompt longer than context_length: the tokens past the table are fed with the sliding window, so the
    logits there equal forward over the last context_length tokens; generation goes on from that state."""
    model = tiny("gpt")
    idx = torch.randint(0, V, (2, S + 6), generator=torch.Generator().manual_seed(4))
    logits, state = model.prefill(idx[:, :S + 3])
    torch.testing.assert_close(logits[:, :S], model(idx[:, :S]), rtol=0, atol=1e-10)
    for t in range(S, S + 6):
        if t >= S + 3:
            lt, state = model.step(idx[:, t], state)
        else:
            lt = logits[:, t]
        torch.testing.assert_close(lt, model(idx[:, t - S + 1:t + 1])[:, -1], rtol=0, atol=1e-10)
    assert state["seen"] == S + 6 and state["tokens"].shape == (2, S)
    assert all(c["k"] is None for c in state["caches"])  # the cache is dropped once the window slides


def test_lstm_state_does_not_grow():
    model = tiny("lstm")
    _, s3 = model.prefill(torch.randint(0, V, (1, 3)))
    _, s50 = model.prefill(torch.randint(0, V, (1, 50)))  # the LSTM, like the xLSTM, takes any length
    assert model.state_nbytes(s3) == model.state_nbytes(s50) == 2 * 2 * 16 * 8


def test_gpt_bad_state_is_a_value_error():
    model = tiny("gpt")
    with pytest.raises(ValueError, match="GPT generation state"):
        model.step(torch.zeros(2, dtype=torch.long), [None])
    _, state = model.prefill(torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="batch of 2"):
        model.step(torch.zeros(3, dtype=torch.long), state)
