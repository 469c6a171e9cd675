"""The benchmarks' default data paths resolve from any directory."""

from __future__ import annotations

from pathlib import Path

from mlipflows.home import reference_data


def test_a_default_shared_data_path_is_found_from_any_directory(tmp_path, monkeypatch):
    data = tmp_path / "mydata"
    (data / "phonondb-kappa103").mkdir(parents=True)
    elsewhere = tmp_path / "somewhere" / "deep"
    elsewhere.mkdir(parents=True)
    monkeypatch.chdir(elsewhere)
    default = Path("../shared/data/phonondb-kappa103")
    monkeypatch.setenv("MLIPFLOWS_DATA", str(data))
    assert reference_data(default) == data / "phonondb-kappa103"
    # what the user names is used as given, found or not
    assert reference_data(Path("my/own/file.json")) == Path("my/own/file.json")
    assert reference_data(tmp_path / "missing") == tmp_path / "missing"
    # a default that exists from here wins over $MLIPFLOWS_DATA
    local = tmp_path / "somewhere" / "shared" / "data" / "phonondb-kappa103"
    local.mkdir(parents=True)
    assert reference_data(default) == default
    # nowhere: the default comes back unchanged, for the loader's "not found, pass --data"
    monkeypatch.delenv("MLIPFLOWS_DATA")
    monkeypatch.chdir(tmp_path)
    checkout = Path(__file__).resolve().parents[2] / "shared" / "data" / "no-such-set"
    assert not checkout.exists()
    assert reference_data(Path("../shared/data/no-such-set")) == Path("../shared/data/no-such-set")
