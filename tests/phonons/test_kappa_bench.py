"""κ_SRME benchmark plumbing on a two-material subset of the phononDB data (no MLIP)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from mlipflows.bench.kappa import PROTOCOL, TRANSPORT, evaluate, load_phonondb
from mlipflows.cli import app

DATA = Path(__file__).parents[1] / "data" / "kappa"


def _doc_from_reference(record, scale: float = 1.0) -> dict:
    """A stored-document look-alike whose per-mode κ is the DFT one times ``scale``."""
    mode = record.reference.mode_kappa_tot_avg * scale  # (T, q, band)
    voigt = np.concatenate([np.repeat(mode[..., None], 3, axis=-1), np.zeros((*mode.shape, 3))], axis=-1)
    n_q = mode.shape[1]
    weights = np.full(n_q, np.prod(record.q_mesh) / n_q)  # any weights with the right total
    kappa = record.reference.kappa_tot_avg * scale
    return {
        "state": "successful",
        "kappa_tot_avg": kappa.tolist(),
        "kappa_p_rta": [[float(kappa[0])] * 3 + [0.0] * 3],
        "kappa_c": [[0.0] * 6],
        "mode_kappa": voigt.tolist(),
        "mode_weights": weights.tolist(),
        "has_imaginary_modes": False,
        "setup": {
            "spacegroup_before": record.reference.spacegroup,
            "spacegroup_after": record.reference.spacegroup,
        },
    }


def test_load_phonondb_subset():
    records = load_phonondb(DATA)
    assert sorted(r.name for r in records) == ["BN", "SrO"]
    sro = next(r for r in records if r.name == "SrO")
    assert sro.fc3_supercell == np.diag([2, 2, 2]).tolist() and sro.q_mesh == [19, 19, 19]
    assert sro.reference.spacegroup == 225 and len(sro.structure) == 8
    # the reference's per-mode κ already carries the q-point weights: Σ modes / N_q = κ
    n_q = np.prod(sro.q_mesh)
    assert abs(sro.reference.mode_kappa_tot_avg.sum() / n_q - sro.reference.kappa_tot_avg[0]) < 1e-6
    assert [r.material_id for r in load_phonondb(DATA, ids=["BN"])] == ["mp-1639"]
    assert len(load_phonondb(DATA, limit=1)) == 1


def test_evaluate_perfect_scaled_and_missing():
    records = load_phonondb(DATA)
    bn, sro = sorted(records, key=lambda r: r.name)
    docs = {bn.material_id: _doc_from_reference(bn), sro.material_id: _doc_from_reference(sro, 1.5)}
    frame = evaluate(records, docs).set_index("formula")
    assert abs(frame.loc["BN", "srme"]) < 1e-12 and abs(frame.loc["BN", "srd"]) < 1e-12
    # every mode 1.5× too large: SRD = SRME = 2·0.5/2.5 = 0.4
    assert abs(frame.loc["SrO", "srd"] - 0.4) < 1e-9 and abs(frame.loc["SrO", "srme"] - 0.4) < 1e-9
    missing = evaluate(records, {}).set_index("formula")
    assert (missing["srme"] == 2.0).all() and (missing["srd"] == -2.0).all()
    assert missing["srme_reason"].str.contains("not run").all()


def test_bench_kappa_names_missing_data(tmp_path):
    result = CliRunner().invoke(
        app, ["bench", "kappa", "--model", "morse", "--data", str(tmp_path / "nowhere")]
    )
    assert result.exit_code == 2
    assert "phononDB-PBE-structures.extxyz" in result.output and "--data" in result.output
    unknown = CliRunner().invoke(
        app, ["bench", "kappa", "--model", "morse", "--data", str(DATA), "--ids", "mp-149"]
    )
    assert unknown.exit_code == 2 and "matches --ids mp-149" in " ".join(unknown.output.split())


def test_reused_results_are_those_of_the_same_displacement(isolated_home):
    from mlipflows.bench.kappa import CAMPAIGN, stored_documents
    from mlipflows.store import get_job_store

    store = get_job_store()
    store.connect()
    rows = []
    for k, d in enumerate((0.01, 0.03)):
        job_uuid = f"job-{k}"
        doc = {"structure_id": "mp-1639", "kappa_tot_avg": [float(k)], "settings": {"displacement": d}}
        store.docs_store.update({"uuid": job_uuid, "index": 1, "output": [doc]}, key=["uuid", "index"])
        rows.append(
            {
                "uuid": f"r{k}",
                "campaign": CAMPAIGN,
                "model": {"checksum": "abc"},
                "task_type": "kappa",
                "settings": {"displacement": d},
                "structure_id": "mp-1639",
                "job_uuid": job_uuid,
            }
        )
    store.additional_stores["results"].update(rows, key="uuid")
    fresh = get_job_store()  # a new command: nothing connected yet
    assert stored_documents(fresh, "abc", 0.01)["mp-1639"]["kappa_tot_avg"] == [0.0]
    assert stored_documents(fresh, "abc", 0.03)["mp-1639"]["kappa_tot_avg"] == [1.0]
    assert stored_documents(fresh, "abc", 0.02) == {}


def _settings(**changed) -> dict:
    """The settings a `bench kappa` table records, as this machine's run would record them."""
    import phono3py

    return {
        "checksum": "abc",
        "protocol": PROTOCOL,
        "displacement": 0.03,
        "dtype": "float32",
        "phono3py": phono3py.__version__,
        "transport": TRANSPORT,
        **changed,
    }


def _write_table(tmp_path, frame, **changed) -> Path:
    import json

    meta = _settings(**changed)
    path = tmp_path / f"shard-n{len(frame)}.csv"
    frame.to_csv(path, index=False)
    (tmp_path / f"shard-n{len(frame)}-metrics.json").write_text(json.dumps(meta))
    return path


def test_rows_of_an_earlier_table_stand_for_a_run_only_with_the_same_settings(tmp_path):
    import pytest

    from mlipflows.bench.kappa import merge_table_rows, table_rows
    from mlipflows.errors import TableMismatchError

    records = load_phonondb(DATA)
    bn = next(r for r in records if r.name == "BN")
    table = _write_table(tmp_path, evaluate(records, {bn.material_id: _doc_from_reference(bn, 1.5)}))
    settings = _settings()
    reused = table_rows([table], settings)
    assert list(reused) == ["mp-1639"]  # SrO was not run in that table: it must run again
    merged, n_taken = merge_table_rows(evaluate(records, {}), reused)
    merged = merged.set_index("formula")
    assert n_taken == 1
    assert abs(merged.loc["BN", "srme"] - 0.4) < 1e-9 and merged.loc["BN", "kappa_pred"] > 0
    assert merged.loc["SrO", "srme_reason"] == "failed: not run"
    # a material run now wins over the table's row
    now, n_taken = merge_table_rows(evaluate(records, {bn.material_id: _doc_from_reference(bn)}), reused)
    assert n_taken == 0
    assert abs(now.set_index("formula").loc["BN", "srme"]) < 1e-12
    rerun_dir = tmp_path / "rerun"
    rerun_dir.mkdir()
    rerun = _write_table(rerun_dir, evaluate(records, {bn.material_id: _doc_from_reference(bn)}))
    first = table_rows([table, rerun], settings)["mp-1639"]
    assert abs(first["srme"] - 0.4) < 1e-9  # the first table given wins
    for key, other in (("checksum", "xyz"), ("displacement", 0.01), ("phono3py", "3.30.0")):
        with pytest.raises(TableMismatchError, match=key):
            table_rows([table], {**settings, key: other})
    # a failure on another machine (here: an out-of-memory error) is run again, not reused
    failed_dir = tmp_path / "failed"
    failed_dir.mkdir()
    oom = {bn.material_id: {"state": "failed", "error": "CUDA out of memory"}}
    assert table_rows([_write_table(failed_dir, evaluate(records, oom))], settings) == {}
    (tmp_path / "shard-n2.csv").write_text("formula\nBN\n")
    with pytest.raises(TableMismatchError, match="lacks the columns"):
        table_rows([table], settings)
    (tmp_path / "shard-n2-metrics.json").unlink()
    with pytest.raises(TableMismatchError, match="metrics"):
        table_rows([table], settings)


def test_bench_kappa_combines_earlier_tables_without_running(tmp_path, isolated_home):
    import json

    from mlipflows.potentials import load_potential

    records = load_phonondb(DATA)
    bn, sro = sorted(records, key=lambda r: r.name)
    checksum = load_potential("morse").card.checksum
    shards = []
    for k, (record, scale) in enumerate(((bn, 1.0), (sro, 1.5))):
        folder = tmp_path / f"machine{k}"
        folder.mkdir()
        shard = evaluate([record], {record.material_id: _doc_from_reference(record, scale)})
        shards.append(_write_table(folder, shard, checksum=checksum))
    out = tmp_path / "out"
    args = ["bench", "kappa", "--model", "morse", "--data", str(DATA), "--out", str(out)]
    result = CliRunner().invoke(app, [*args, "--stored-only", "--from-table", str(shards[0])])
    assert result.exit_code == 0, result.output
    assert "1 from earlier tables" in result.output and "morse-n1.csv" in result.output
    result = CliRunner().invoke(
        app, [*args, "--stored-only", "--from-table", str(shards[0]), "--from-table", str(shards[1])]
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "morse-n2-metrics.json").read_text())
    assert (out / "morse-n2-parity.png").stat().st_size > 0
    assert metrics["n_materials"] == 2 and metrics["n_from_tables"] == 2
    assert abs(metrics["kappa_srme"] - 0.2) < 1e-9  # (0 + 0.4) / 2
    same = CliRunner().invoke(app, [*args, "--stored-only", "--from-table", str(out / "morse-n2.csv")])
    assert same.exit_code == 2 and "is one of the --from-table inputs" in " ".join(same.output.split())
    clash = CliRunner().invoke(app, [*args, "--displacement", "0.01", "--from-table", str(shards[0])])
    assert clash.exit_code == 2 and "displacement" in clash.output
    empty = CliRunner().invoke(app, [*args, "--stored-only"])
    assert empty.exit_code == 1 and "nothing to write" in empty.output


def test_shards_cover_the_materials_once_and_name_their_tables(tmp_path, isolated_home):
    import pytest

    from mlipflows.bench.kappa import parse_shard, shard_of
    from mlipflows.potentials import load_potential

    records = load_phonondb(DATA)
    parts = [shard_of(records, k, 2) for k in (1, 2)]
    assert sorted(r.material_id for part in parts for r in part) == sorted(r.material_id for r in records)
    assert all(len(part) == 1 for part in parts)
    assert parse_shard("2/4") == (2, 4)
    for bad in ("0/2", "3/2", "2", "a/b"):
        with pytest.raises(ValueError, match="--shard"):
            parse_shard(bad)
    second = parts[1][0]
    doc = {second.material_id: _doc_from_reference(second)}
    table = _write_table(tmp_path, evaluate([second], doc), checksum=load_potential("morse").card.checksum)
    args = ["bench", "kappa", "--model", "morse", "--data", str(DATA), "--out", str(tmp_path / "out")]
    result = CliRunner().invoke(app, [*args, "--shard", "2/2", "--stored-only", "--from-table", str(table)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "morse-n1-shard2of2.csv").is_file()
    assert CliRunner().invoke(app, [*args, "--shard", "3/2"]).exit_code == 2
    too_many = CliRunner().invoke(app, [*args, "--shard", "1/3"])
    assert too_many.exit_code == 2 and "some would be empty" in too_many.output
