"""`mlipflows bench elastic` on tiny copies of both data formats (Morse: fast, not science)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from pymatgen.analysis.elasticity import ElasticTensor
from typer.testing import CliRunner

from mlipflows.bench.elastic import load_elastic_data
from mlipflows.cli import app

REFS = json.loads((Path(__file__).parents[1] / "data" / "elastic" / "mp-si-mgo-elastic.json").read_text())


def _mp_file(tmp_path: Path) -> Path:
    si = REFS["Si"]
    cols = {
        "material_id": {si["material_id"]: si["material_id"]},
        "nsites": {si["material_id"]: "1"},
        "cif": {si["material_id"]: si["cif"]},
        "elasticity.elastic_tensor": {si["material_id"]: json.dumps(si["elastic_tensor_gpa"])},
    }
    path = tmp_path / "mp_val_clean.json.gz"
    with gzip.open(path, "wt") as f:
        json.dump(cols, f)
    return path


def _matcalc_file(tmp_path: Path) -> Path:
    m = REFS["MgO"]
    rows = [
        {
            "mp_id": m["material_id"],
            "formula": "MgO",
            "structure": str(m["structure"]),  # the matcalc file stores the dict's repr
            "bulk_modulus_vrh": str(m["k_vrh_gpa"]),
            "shear_modulus_vrh": str(m["g_vrh_gpa"]),
        }
    ]
    path = tmp_path / "mp-binary-pbe-elasticity-2025.1.json.gz"
    with gzip.open(path, "wt") as f:
        json.dump(rows, f)
    return path


def test_loaders_read_both_formats(tmp_path):
    name, (si,) = load_elastic_data(_mp_file(tmp_path))
    assert name == "mp-elastic-tensors" and si.material_id == "mp-34" and len(si.structure) == 1
    # K_VRH from the DFT tensor: Voigt bound ≥ VRH ≥ Reuss bound, Voigt bound as in the file
    et = ElasticTensor.from_voigt(np.array(REFS["Si"]["elastic_tensor_gpa"]))
    assert et.k_voigt == pytest.approx(REFS["Si"]["k_voigt_gpa"], abs=0.5)
    assert si.k_vrh == pytest.approx(et.k_vrh)
    name, (mgo,) = load_elastic_data(_matcalc_file(tmp_path))
    assert name == "matcalc-mp-binary" and mgo.g_vrh == pytest.approx(118.82) and mgo.tensor is None


def test_bench_elastic_writes_metrics_consistent_with_its_table(tmp_path):
    data = _mp_file(tmp_path)
    out = tmp_path / "analysis"
    args = ["bench", "elastic", "--model", "morse", "--data", str(data), "--out", str(out)]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    metrics = json.loads((out / "morse-mp-elastic-tensors-n1-metrics.json").read_text())
    import pandas as pd

    row = pd.read_csv(out / "morse-mp-elastic-tensors-n1.csv").iloc[0]
    assert metrics["mae_k_vrh_gpa"] == pytest.approx(abs(row["mlip_k_vrh"] - row["dft_k_vrh"]))
    assert metrics["mae_cij_gpa"] == pytest.approx(row["cij_mae"]) and metrics["n_failed"] == 0
    assert (out / "morse-mp-elastic-tensors-n1-parity.png").stat().st_size > 0


def test_bench_elastic_stored_only_computes_nothing(tmp_path):
    args = ["bench", "elastic", "--model", "morse", "--data", str(_mp_file(tmp_path)), "--stored-only"]
    res = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "a")])
    assert res.exit_code == 0, res.output
    metrics = json.loads((tmp_path / "a" / "morse-mp-elastic-tensors-n1-metrics.json").read_text())
    assert metrics["n_not_run"] == 1 and metrics["n_failed"] == 0 and metrics["mae_k_vrh_gpa"] is None


def test_bench_elastic_names_missing_data(tmp_path):
    res = CliRunner().invoke(app, ["bench", "elastic", "--model", "morse", "--data", str(tmp_path / "none")])
    assert res.exit_code == 2 and "mp_val_clean.json.gz" in res.output
