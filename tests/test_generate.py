"""Generation for every model of the course: ``sample.generate`` = prefill + steps, equal to re-running the whole
text through ``forward`` at every token; and ``python -m xlstm_edu.bench generate`` on a tiny setting."""

import json

import pytest
import torch

import xlstm_edu.bench.generate as bg
from xlstm_edu.models import KINDS, build_model
from xlstm_edu.sample import generate

torch.set_num_threads(1)
V = 13


def tiny(kind, context_length=24):
    torch.manual_seed(0)
    kw = dict(embedding_dim=16, num_blocks=2)
    if kind != "lstm":
        kw["num_heads"] = 2
    if kind in ("xlstm", "mlstm", "slstm"):
        kw["chunk_size"] = 4
    model = build_model(kind, V, context_length, **kw).double().eval()
    with torch.no_grad():  # non-trivial gates and recurrent weights (the official init zeroes some of them)
        for name, p in model.named_parameters():
            if name.endswith((".R", "gates.weight")):
                p.normal_(0, 0.3)
    return model


@pytest.mark.parametrize("kind", KINDS)
def test_greedy_generation_equals_forward_on_the_growing_text(kind):
    """Token by token, greedy generation picks argmax of forward(prompt + generated so far)[-1]. The xLSTM kinds
    and the LSTM go past their training length; GPT stays inside its positional table here."""
    model = tiny(kind, context_length=24)
    prompt = [1, 5, 2, 7, 3, 3, 9]
    n = 17 if kind == "gpt" else 30  # 7 + 30 > context_length: any length for the recurrent models
    got = generate(model, prompt, n, temperature=0)
    seq = list(prompt)
    with torch.no_grad():
        for _ in range(n):
            seq.append(int(model(torch.tensor([seq]))[0, -1].argmax()))
    assert got == seq[len(prompt):]


@pytest.mark.parametrize("kind", KINDS)
def test_generate_is_prefill_then_steps(kind, monkeypatch):
    model = tiny(kind)
    calls = []
    for name in ("prefill", "step"):
        orig = getattr(model, name)
        monkeypatch.setattr(model, name, lambda *a, _o=orig, _n=name, **k: (calls.append(_n), _o(*a, **k))[1])
    g = torch.Generator().manual_seed(3)
    out = generate(model, [1, 2, 3, 4], 5, temperature=0.8, top_k=4, generator=g)
    assert calls == ["prefill"] + ["step"] * 4 and len(out) == 5 and all(0 <= t < V for t in out)
    g = torch.Generator().manual_seed(3)
    assert generate(model, [1, 2, 3, 4], 5, temperature=0.8, top_k=4, generator=g) == out  # reproducible


def test_gpt_generation_past_its_table_uses_the_window():
    """Past context_length the GPT slides its window: greedy generation then equals argmax of forward over the
    last context_length tokens."""
    model = tiny("gpt", context_length=10)
    prompt = [1, 5, 2, 7]
    got = generate(model, prompt, 15, temperature=0)
    seq = list(prompt)
    with torch.no_grad():
        for _ in range(15):
            seq.append(int(model(torch.tensor([seq[-10:]]))[0, -1].argmax()))
    assert got == seq[len(prompt):]


# ------------------------------------------------------------------------------------------- bench generate
def test_bench_generate_tiny(tmp_path, capsys):
    from xlstm_edu.bench.__main__ import main

    out = tmp_path / "sub" / "bench.json"
    rc = main(["generate", "--preset", "cpu-tiny", "--positions", "8,100", "--tokens", "2", "--repeats", "2",
               "--json", str(out)])
    assert rc == 0
    d = json.loads(out.read_text())
    assert {"command", "commit", "load_average_start", "threads"} <= set(d["header"])
    assert d["header"]["threads"] == 1 and d["header"]["command"].startswith("python -m xlstm_edu.bench generate")
    rows = {(r["model"], r["position"]): r for r in d["rows"]}
    assert set(rows) == {(m, P) for m in ("xlstm", "mlstm", "gpt", "gpt-window", "lstm") for P in (8, 100)}
    for r in d["rows"]:
        assert {"model", "position", "ms_per_token", "state_bytes"} <= set(r) and r["ms_per_token"] > 0
    for kind in ("xlstm", "mlstm", "lstm"):  # fixed-size states
        assert rows[kind, 8]["state_bytes"] == rows[kind, 100]["state_bytes"]
    d_gpt = rows["gpt", 8]["context_length"]
    assert d_gpt > 100
    g8, g100 = rows["gpt", 8]["state_bytes"], rows["gpt", 100]["state_bytes"]
    assert g100 - g8 == 92 * (g8 // 8)  # the KV cache (and token window) grows linearly with the position
    assert rows["gpt-window", 100]["state_bytes"] == 64 * 8  # past its table (64): only the token window
    assert d["summary"]["xlstm"]["state_bytes_constant"] is True
    assert "ms/token" in capsys.readouterr().out
    block = bg.readme_block(d)  # the README's table: a line per model, the targets per xLSTM model
    assert all(f"| `{m}` |" in block for m in ("xlstm", "mlstm", "gpt", "gpt-window", "lstm"))
    assert "- `xlstm`: time per token at P = 100 / at P = 8" in block and "P = 8 | P = 100 |" in block


def test_bench_generate_checks_the_output_before_any_work(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(bg, "build", lambda *a, **k: pytest.fail("built a model before checking --json"))
    assert bg.main(["--json", str(tmp_path)]) == 2  # a folder
    assert "is a folder" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert bg.main(["--json", str(blocker / "out.json")]) == 2  # parent is a file
    assert "cannot write" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bg.main(["--positions", "0,5"])
    with pytest.raises(SystemExit):
        bg.main(["--models", "gpt,rwkv"])
    from xlstm_edu import paths

    monkeypatch.setenv(paths.ENV_VAR, str(tmp_path))  # a course folder whose README has no block
    assert bg.main(["--update-readme"]) == 2
    assert "no bench-generate block" in capsys.readouterr().err
