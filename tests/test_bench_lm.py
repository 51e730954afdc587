"""`python -m xlstm_edu.bench lm` runs end to end on a tiny configuration and writes the promised JSON."""

import json

import pytest

from xlstm_edu.bench import lm


def test_bench_lm_tiny_run_writes_json(tmp_path, capsys):
    models = "xlstm,mlstm,slstm,gpt,lstm"
    try:
        import xlstm  # noqa: F401

        models += ",official-xlstm,official-mlstm"
    except ImportError:
        pass
    out = tmp_path / "bench.json"
    rc = lm.main(["--embedding-dim", "32", "--num-blocks", "2", "--num-heads", "2", "--context-length", "16",
                  "--batch-size", "2", "--chunk-size", "8", "--repeats", "1", "--steps", "1", "--models", models,
                  "--json", str(out)])
    assert rc == 0
    rows = json.loads(out.read_text())
    assert [r["model"] for r in rows] == models.split(",")
    for r in rows:
        assert r["params"] > 0 and r["train_tokens_per_s"] > 0 and r["threads"] >= 1
    text = capsys.readouterr().out
    assert "torch threads = " in text and "tokens/s" in text


def test_bench_lm_rejects_bad_arguments():
    with pytest.raises(SystemExit):
        lm.main(["--models", "xlstm,transformer"])
    with pytest.raises(SystemExit):
        lm.main(["--repeats", "0"])
