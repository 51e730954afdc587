"""`python -m xlstm_edu.bench lm` runs end to end on a tiny configuration and writes the promised JSON; its FLOP
formulas count exactly the matrix products torch runs."""

import json

import pytest
import torch

from xlstm_edu.bench import flops, lm

TINY = ["--embedding-dim", "32", "--num-blocks", "2", "--num-heads", "2", "--context-length", "16",
        "--batch-size", "2", "--chunk-size", "8", "--repeats", "1", "--steps", "1", "--peak-size", "128"]


def test_bench_lm_tiny_run_writes_json(tmp_path, capsys):
    models = "xlstm,mlstm,slstm,gpt,lstm,large"
    try:
        import xlstm  # noqa: F401

        models += ",official-xlstm,official-mlstm,official-large"
    except ImportError:
        pass
    out = tmp_path / "bench.json"
    rc = lm.main([*TINY, "--models", models, "--json", str(out)])
    assert rc == 0
    rows = json.loads(out.read_text())
    assert [r["model"] for r in rows] == models.split(",")
    for r in rows:
        assert r["params"] > 0 and r["train_tokens_per_s"] > 0 and r["threads"] >= 1
        assert r["train_flops_per_token"] > 0 and r["matmul_peak_flops"] > 0
        assert r["mfu"] == pytest.approx(r["train_flops_per_token"] * r["train_tokens_per_s"]
                                         / r["matmul_peak_flops"], rel=1e-2, abs=1e-4)
        assert len(r["loadavg_start"]) == 3 and len(r["loadavg_end"]) == 3
        assert r["command"].startswith("python -m xlstm_edu.bench lm")
    by = {r["model"]: r for r in rows}
    for off, ours in lm.TWIN.items():  # an official model is given its twin's FLOPs (the same architecture)
        if off in by:
            assert by[off]["train_flops_per_token"] == by[ours]["train_flops_per_token"]
            assert by[off]["params"] == by[ours]["params"]
            assert "vs_official" in by[ours]
    text = capsys.readouterr().out
    assert "torch threads = " in text and "tokens/s" in text and "MFU" in text and "load average" in text
    block = lm.readme_block(rows)  # the README's table: one line per model, the targets it could check
    assert all(f"| `{r['model']}` | {r['params']:,} |" in block for r in rows)
    assert ("our 7B-style model >= 1x official" in block) == ("official-large" in by)
    # --update-readme rewrites only the block between the markers
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{lm.README_BEGIN}\nold\n{lm.README_END}\nrest\n", encoding="utf-8")
    assert lm.update_readme(readme, rows) and readme.read_text() == (
        f"intro\n{lm.README_BEGIN}\n{block}\n{lm.README_END}\nrest\n")


def test_bench_lm_rejects_bad_arguments(tmp_path):
    with pytest.raises(SystemExit):
        lm.main(["--models", "xlstm,transformer"])
    with pytest.raises(SystemExit):
        lm.main(["--repeats", "0"])
    with pytest.raises(SystemExit):  # the official chunkwise kernel needs context % chunk == 0
        lm.main(["--models", "official-large", "--context-length", "20", "--chunk-size", "8"])
    with pytest.raises(SystemExit):  # --json that is a folder: refused before any work
        lm.main(["--models", "gpt", "--json", str(tmp_path)])
    with pytest.raises(SystemExit):  # --update-readme in a course folder whose README has no block
        from xlstm_edu import paths

        with pytest.MonkeyPatch.context() as mp:
            mp.setenv(paths.ENV_VAR, str(tmp_path))
            lm.main(["--models", "gpt", "--update-readme"])


@pytest.mark.parametrize("kind", ["xlstm", "mlstm", "slstm", "gpt", "lstm", "large"])
@pytest.mark.parametrize("S", [8, 24])
def test_flop_formulas_count_what_torch_runs(kind, S, monkeypatch):
    """The forward FLOPs by formula equal torch's FLOP counter on a forward pass (GPT: attention through the
    math backend, which the counter sees; LSTM: the fused torch.nn.LSTM is invisible to the counter, so its
    formula is checked against its weight matrices: 2 FLOPs per weight per token). The formula counts the
    model's math (the same for the official twin); the mLSTM block's two shortcuts are switched back to the
    products they stand for while counting: the causal conv as a convolution (its fast path is element-wise
    multiply-adds, which the counter does not see) and the gates from q, k and v (the fast path folds the
    block-diagonal maps into the gate weights: fewer products for the same numbers)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    from xlstm_edu.nn.blocks import CausalConv1d, MLSTMBlock

    def gates_from_qkv(self, x_m, x_c):
        q, k = self.qk_proj.outputs(x_c)
        (v,) = self.v_proj.outputs(x_m)
        return (q, k, v, *self.gates.apply_split(q, k, v).split(self.num_heads, dim=-1))

    conv = CausalConv1d.forward
    monkeypatch.setattr(CausalConv1d, "forward", lambda self, x, buf=None: conv(self, x, buf) if buf is not None
                        else conv(self, x, self.init_state(x.shape[0], x.device, x.dtype))[0])
    monkeypatch.setattr(MLSTMBlock, "_qkvif", gates_from_qkv)
    a = lm.parse([*TINY, "--context-length", str(S)])
    model = lm.build_ours(kind, a)
    f = flops.forward_flops(model.cfg, S)
    assert flops.train_flops_per_token(model.cfg, S) == 3 * f["total"]
    idx = torch.randint(0, a.vocab_size, (2, S))
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as fc, torch.no_grad():
        model(idx)
    if kind == "lstm":
        w = sum(p.numel() for n, p in model.lstm.named_parameters() if n.startswith("weight"))
        assert f["lstm"] == 2 * w and fc.get_total_flops() == f["head"] * idx.numel()
    else:
        assert fc.get_total_flops() == f["total"] * idx.numel()


def test_flops_reject_unknown_configs():
    with pytest.raises(ValueError, match="config"):
        flops.forward_flops(object(), 8)
    with pytest.raises(ValueError, match="seq_len"):
        flops.forward_flops(lm.build_ours("gpt", lm.parse(TINY)).cfg, 0)
