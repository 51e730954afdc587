"""``python -m xlstm_edu.bench numpy``: its output file is checked before minutes of timing (issue 9, defect 5)."""

import pytest

from xlstm_edu.bench import numpy_mlstm


def test_json_path_is_checked_before_any_timing(tmp_path, monkeypatch, capsys):
    def boom(a):
        raise AssertionError("the benchmark ran before its output path was checked")

    monkeypatch.setattr(numpy_mlstm, "run", boom)
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    for bad in (str(tmp_path) + "/", str(tmp_path), str(a_file / "out.json")):
        with pytest.raises(SystemExit) as e:
            numpy_mlstm.main(["--lengths", "64", "--json", bad])
        assert e.value.code == 2
        assert "--json" in capsys.readouterr().err
    assert a_file.read_text() == "x"


def test_tiny_benchmark_writes_its_json(tmp_path):
    import json

    out = tmp_path / "new" / "bench.json"
    assert numpy_mlstm.main(["--lengths", "64", "--repeats", "1", "--no-rss", "--heads", "1", "--head-dim", "8",
                             "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert [r["S"] for r in data["results"]] == [64] and "load_average" in data
    assert set(data["results"][0]["time_s"]) >= {"np chunkwise", "torch chunkwise"}
