"""The trainer: bit-exact resume on CPU, the schedule, weight decay, the gradient norm, metrics and checkpoint
contents, safe and atomic run files, and the sampler's loading."""

import copy
import json
import math

import pytest
import torch

from xlstm_edu import checkpoint
from xlstm_edu.checkpoint import load_checkpoint, load_run, read_metrics
from xlstm_edu.data import Corpus, make_get_batch
from xlstm_edu.models import build_model
from xlstm_edu.sample import generate, sample_text
from xlstm_edu.train import TrainConfig, clipped_step, evaluate, lr_at, train, weight_decay_groups

torch.set_num_threads(1)
TEXT = ("ROMEO:\nBut soft, what light through yonder window breaks?\n\n"
        "JULIET:\nO Romeo, Romeo, wherefore art thou Romeo?\n\n") * 30


def toy_corpus():
    return Corpus("toy", TEXT, int(len(TEXT) * 0.9), "".join(sorted(set(TEXT))))


def make(kind="gpt", dropout=0.1):
    torch.manual_seed(0)
    c = toy_corpus()
    kw = dict(embedding_dim=16, num_blocks=2, dropout=dropout)
    if kind != "lstm":
        kw["num_heads"] = 2
    return build_model(kind, c.vocab_size, 16, **kw), make_get_batch(c, 16, 4, seed=5)


def cfg(**kw):
    base = dict(max_iters=8, lr=1e-2, min_lr=1e-3, warmup_iters=2, lr_decay_iters=8, eval_interval=4,
                eval_iters=2, device="cpu")
    return TrainConfig(**{**base, **kw})


@pytest.mark.parametrize("kind", ["gpt", "lstm", "xlstm"])
def test_resume_is_bit_exact(tmp_path, kind):
    """2N steps in one go == N steps, then a fresh process-like restart resumed for N more (dropout on)."""
    model, gb = make(kind)
    full = train(model, gb, cfg(), tmp_path / "full", progress=False)
    model, gb = make(kind)
    first = train(model, gb, cfg(max_iters=4), tmp_path / "split", progress=False)
    torch.manual_seed(123)  # a different global RNG and fresh weights: the checkpoint must restore everything
    model, gb = make(kind)
    second = train(model, gb, cfg(), tmp_path / "split", resume=True, progress=False)
    assert first["losses"] + second["losses"] == full["losses"]
    assert first["grad_norms"] + second["grad_norms"] == full["grad_norms"]
    assert len(full["losses"]) == 8 and len(second["losses"]) == 4
    timing = ("elapsed_s", "train_time_s", "cpu_time_s", "tokens_per_s")
    strip = lambda recs: [{k: v for k, v in r.items() if k not in timing} for r in recs]  # noqa: E731
    assert strip(read_metrics(tmp_path / "split")) == strip(full["history"])
    for a, b in zip(full["model"].state_dict().values(), second["model"].state_dict().values()):
        assert torch.equal(a, b)


def test_metrics_and_checkpoint_contents(tmp_path):
    model, gb = make("gpt")
    res = train(model, gb, cfg(), tmp_path, meta={"note": "x"}, progress=False)
    recs = read_metrics(tmp_path)
    assert [r["step"] for r in recs] == [0, 4, 8]
    assert [r["tokens"] for r in recs] == [0, 4 * 4 * 16, 8 * 4 * 16]  # steps x batch x context
    for r in recs:
        assert {"step", "tokens", "train_loss", "val_loss", "tokens_per_s", "elapsed_s", "train_time_s",
                "cpu_time_s", "lr", "grad_norm"} <= set(r)
    assert recs[0]["tokens_per_s"] is None and recs[0]["grad_norm"] is None
    assert recs[-1]["tokens_per_s"] > 0 and recs[-1]["grad_norm"] > 0
    assert recs[-1]["grad_norm"] == pytest.approx(sum(res["grad_norms"][4:]) / 4)
    # an untrained model predicts ~uniformly: loss ~ ln(V)
    assert abs(recs[0]["val_loss"] - math.log(toy_corpus().vocab_size)) < 0.2
    assert recs[-1]["train_loss"] < recs[0]["train_loss"]
    ck = load_checkpoint(tmp_path)
    assert set(checkpoint.REQUIRED) <= set(ck) and "scheduler" not in ck  # the lr is a function of the step
    assert ck["step"] == 8 and ck["meta"] == {"note": "x"} and ck["train_config"]["max_iters"] == 8
    assert ck["history"] == recs and res["step"] == 8


def test_lr_schedule():
    c = cfg(max_iters=100, lr=1.0, min_lr=0.1, warmup_iters=10, lr_decay_iters=None)
    assert lr_at(0, c) == pytest.approx(1 / 11)
    assert lr_at(9, c) == pytest.approx(10 / 11)
    assert lr_at(10, c) == pytest.approx(1.0)
    assert lr_at(55, c) == pytest.approx(0.55)  # half-way through the cosine: (lr + min_lr) / 2
    assert lr_at(100, c) == pytest.approx(0.1) and lr_at(500, c) == pytest.approx(0.1)


def test_the_optimizer_uses_the_schedule(tmp_path):
    """Every step's learning rate is lr_at(step), also with a time budget (no hand-made override)."""
    model, gb = make("lstm", dropout=0.0)
    seen = []
    orig = torch.optim.AdamW.step

    def spy(self, *a, **k):
        seen.append(self.param_groups[0]["lr"])
        return orig(self, *a, **k)

    c = cfg(max_iters=6, time_budget_s=1e6)
    try:
        torch.optim.AdamW.step = spy
        train(model, gb, c, progress=False)
    finally:
        torch.optim.AdamW.step = orig
    assert seen == [lr_at(s, c) for s in range(6)]


def test_time_budget_stops_early():
    model, gb = make("gpt")
    res = train(model, gb, cfg(max_iters=10_000, time_budget_s=1e-9), progress=False)
    assert res["step"] == 1 and [r["step"] for r in res["history"]] == [0, 1]


def test_custom_loss_and_eval_fn():
    """The hooks the formal-language chapter uses: a masked loss (targets -100 ignored) and extra metrics."""
    model, gb = make("lstm", dropout=0.0)

    def last_token_only(split, step):
        x, y = gb(split, step)
        y = y.clone()
        y[:, :-1] = -100
        return x, y

    calls = []

    def eval_fn(m, step):
        calls.append((step, m.training, torch.is_grad_enabled()))
        return {"answer": 42.0}

    res = train(model, last_token_only, cfg(max_iters=4, eval_interval=2), eval_fn=eval_fn, progress=False)
    assert [r["answer"] for r in res["history"]] == [42.0] * 3
    assert calls == [(0, False, False), (2, False, False), (4, False, False)]


@pytest.mark.parametrize("bad, match", [
    (dict(max_iters=0), "max_iters"), (dict(lr=1e-3, min_lr=1e-2), "min_lr"),
    (dict(time_budget_s=-1), "time_budget_s"), (dict(time_budget_s=float("nan")), "time_budget_s"),
    (dict(lr_decay_iters=-5), "lr_decay_iters"), (dict(grad_clip=float("nan")), "grad_clip"),
    (dict(grad_clip=-1.0), "grad_clip"), (dict(lr=float("inf")), "lr"), (dict(beta2=1.0), "beta2"),
    (dict(weight_decay=-0.1), "weight_decay"), (dict(eval_iters=2.5), "eval_iters"), (dict(dtype="fp8"), "dtype"),
])
def test_bad_config(bad, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**bad)


def test_meta_must_be_plain_data():
    model, gb = make("lstm")
    with pytest.raises(ValueError, match="meta"):
        train(model, gb, cfg(max_iters=1), meta={"x": object()}, progress=False)


# ------------------------------------------------------------------------------------------ the loop's parts
@pytest.mark.parametrize("kind", ["xlstm", "gpt", "lstm"])
def test_weight_decay_groups(kind):
    """Decay on weight matrices only: never on embeddings (a tied head is the embedding), norms or biases."""
    model, _ = make(kind)
    decay, no_decay = weight_decay_groups(model, 0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    names = {id(p): n for n, p in model.named_parameters()}
    d = {names[id(p)] for p in decay["params"]}
    nd = {names[id(p)] for p in no_decay["params"]}
    assert d | nd == set(names.values()) and not d & nd and len(decay["params"]) == len(d)
    assert all(model.get_parameter(n).dim() >= 2 and n.split(".")[-1].startswith("weight") for n in d)
    assert all("embedding" not in n and "wte" not in n and "wpe" not in n for n in d)
    assert all(("norm" not in n and "ln_" not in n and "bias" not in n) for n in d)
    emb = {"xlstm": "embedding.weight", "gpt": "wte.weight", "lstm": "embedding.weight"}[kind]
    assert emb in nd
    if kind == "gpt":
        assert "wpe.weight" in nd and "blocks.0.attn.c_attn.weight" in d
    if kind == "xlstm":
        assert {"head.weight", "blocks.0.proj_up.weight", "blocks.0.gates.weight", "blocks.1.if_proj.weight"} <= d
        # as in the official code: not the sLSTM's recurrent matrix R and bias b (2-D, but no "weight")
        assert {"blocks.0.skip", "blocks.1.R", "blocks.1.b", "blocks.0.gates.bias", "norm.weight"} <= nd
    if kind == "lstm":
        assert {"lstm.weight_ih_l0", "lstm.weight_hh_l1"} <= d and "lstm.bias_ih_l0" in nd


def test_clipped_step_returns_the_norm_before_clipping():
    model, gb = make("gpt", dropout=0.0)
    ref = copy.deepcopy(model)
    x, y = gb("train", 0)
    loss = torch.nn.functional.cross_entropy(ref(x).reshape(-1, ref(x).shape[-1]), y.reshape(-1))
    loss.backward()
    expected = math.sqrt(sum(float((p.grad ** 2).sum()) for p in ref.parameters() if p.grad is not None))
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    before = [p.detach().clone() for p in model.parameters()]
    out = model(x)
    norm = clipped_step(model, opt, torch.nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]),
                                                                      y.reshape(-1)), max_norm=1e-3)
    assert norm == pytest.approx(expected, rel=1e-5) and norm > 1e-3
    moved = math.sqrt(sum(float(((p.detach() - b) ** 2).sum()) for p, b in zip(model.parameters(), before)))
    assert moved == pytest.approx(1e-3, rel=1e-3)  # SGD with lr 1 moves by the clipped gradient


def test_evaluate_uses_fixed_batches_in_eval_mode():
    model, gb = make("gpt", dropout=0.5)
    calls = []

    def spy(split, step):
        calls.append((split, step))
        return gb(split, step)

    model.train()
    a = evaluate(model, spy, 3)
    assert model.training and calls == [("train", -1), ("train", -2), ("train", -3), ("val", -1), ("val", -2),
                                        ("val", -3)]
    assert evaluate(model, gb, 3) == a  # no dropout: the same batches give the same numbers


# ------------------------------------------------------------------------------------------ run files
class Payload:
    """Unpickling this creates a file: harmless, and visible."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        from pathlib import Path

        return (Path.touch, (Path(self.marker),))


def test_loading_a_checkpoint_never_runs_code(tmp_path):
    model, gb = make("lstm")
    train(model, gb, cfg(max_iters=2, eval_interval=2), tmp_path, progress=False)
    ck = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    marker = tmp_path / "payload_ran"
    ck["meta"]["evil"] = Payload(str(marker))
    torch.save(ck, tmp_path / "ckpt.pt")
    with pytest.raises(ValueError, match="refusing to load.*arbitrary code"):
        load_checkpoint(tmp_path)
    with pytest.raises(ValueError, match="refusing"):
        load_run(tmp_path)
    with pytest.raises(ValueError, match="refusing"):
        train(model, gb, cfg(max_iters=4), tmp_path, resume=True, progress=False)
    from xlstm_edu import runs, sample  # the command lines: one error line each, nothing run

    assert sample.main(["--run", str(tmp_path)]) == 2
    assert runs.main(["--out", str(tmp_path), "--resume", "--max-iters", "4", "--no-progress"]) == 2
    assert not marker.exists()


@pytest.mark.parametrize("content, match", [(b"", "empty"), (b"PK\x03\x04garbage", "not a readable checkpoint"),
                                            (b"garbage\n", "not a readable checkpoint"),
                                            (None, "not a checkpoint of xlstm_edu.train")])
def test_broken_checkpoints_give_clear_errors(tmp_path, content, match):
    if content is None:
        torch.save({"weights": torch.zeros(2)}, tmp_path / "ckpt.pt")
    else:
        (tmp_path / "ckpt.pt").write_bytes(content)
    with pytest.raises(ValueError, match=match):
        load_checkpoint(tmp_path)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path / "elsewhere")


def test_metrics_survive_a_kill_during_their_write(tmp_path, monkeypatch):
    """A kill while metrics.jsonl is written leaves the previous file; the run resumes from its checkpoint."""
    model, gb = make("lstm")
    train(model, gb, cfg(max_iters=4, eval_interval=2), tmp_path, progress=False)
    real_dumps = json.dumps

    def killed(obj, *a, **k):
        if isinstance(obj, dict) and obj.get("step") == 6:
            raise KeyboardInterrupt
        return real_dumps(obj, *a, **k)

    monkeypatch.setattr(json, "dumps", killed)
    model, gb = make("lstm")
    with pytest.raises(KeyboardInterrupt):
        train(model, gb, cfg(max_iters=8, eval_interval=2), tmp_path, resume=True, progress=False)
    monkeypatch.setattr(json, "dumps", real_dumps)
    assert [r["step"] for r in read_metrics(tmp_path)] == [0, 2, 4]  # complete, not half-written
    assert load_checkpoint(tmp_path)["step"] == 6
    model, gb = make("lstm")
    train(model, gb, cfg(max_iters=8, eval_interval=2), tmp_path, resume=True, progress=False)
    assert [r["step"] for r in read_metrics(tmp_path)] == [0, 2, 4, 6, 8]


def test_read_metrics_skips_a_partial_last_line(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"step": 0, "val_loss": 4.2}\n{"step": 10, "val_lo', encoding="utf-8")
    assert read_metrics(tmp_path) == [{"step": 0, "val_loss": 4.2}]
    (tmp_path / "metrics.jsonl").write_text('{"step": 0\n{"step": 10}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="line 1"):
        read_metrics(tmp_path)


# ------------------------------------------------------------------------------------------ the sampler
def test_generate_checks_and_greedy_is_deterministic():
    model, _ = make("gpt", dropout=0.0)
    a = generate(model, [1, 2, 3], 10, temperature=0)
    assert a == generate(model, [1, 2, 3], 10, temperature=0) and len(a) == 10
    with pytest.raises(ValueError, match="prompt"):
        generate(model, [], 5)
    with pytest.raises(ValueError, match="top_k"):
        generate(model, [1], 5, top_k=0)


def test_sample_text_is_deterministic_for_a_seed():
    model, _ = make("lstm", dropout=0.0)
    chars = toy_corpus().chars
    s1 = sample_text(model, chars, "ROMEO:", 30, seed=1)
    assert s1.startswith("ROMEO:") and len(s1) == 36 and set(s1) <= set(chars)
    assert sample_text(model, chars, "ROMEO:", 30, seed=1) == s1
