"""The course folder rule of ``xlstm_edu.paths``: env var, else the working directory (its parent in notebooks/)."""

from pathlib import Path

from xlstm_edu import paths


def test_env_var_wins(tmp_path, monkeypatch):
    monkeypatch.setenv(paths.ENV_VAR, str(tmp_path))
    monkeypatch.chdir("/")
    assert paths.home() == tmp_path.resolve()
    assert paths.runs_dir() == tmp_path.resolve() / "runs"
    assert paths.data_dir() == tmp_path.resolve() / "data"


def test_working_directory_or_its_parent_in_notebooks(tmp_path, monkeypatch):
    monkeypatch.delenv(paths.ENV_VAR, raising=False)
    monkeypatch.chdir(tmp_path)
    assert paths.home() == tmp_path.resolve()
    nb = tmp_path / "notebooks"
    nb.mkdir()
    monkeypatch.chdir(nb)
    assert paths.home() == tmp_path.resolve()
    assert paths.results_dir() == tmp_path.resolve() / "results"


def test_nothing_is_found_next_to_the_package(tmp_path, monkeypatch):
    monkeypatch.delenv(paths.ENV_VAR, raising=False)
    monkeypatch.chdir(tmp_path)
    package_root = Path(paths.__file__).resolve().parents[1]
    assert package_root not in paths.home().parents and paths.home() != package_root
