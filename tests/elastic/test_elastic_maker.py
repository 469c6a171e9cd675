"""ElasticMaker through jobflow: documents, the flat results store, failed strains, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from jobflow import run_locally
from pymatgen.core import Lattice, Structure

from mlipflows.makers.base import ChunkSettings
from mlipflows.makers.elastic import ElasticMaker, ElasticSettings, compute_elastic, elastic_flow
from mlipflows.results import build_criteria, query_results
from mlipflows.store import get_job_store
from tests.helpers import NaNAboveVolume

SETTINGS = ElasticSettings.with_fmax(1e-3)


def _nacl() -> Structure:
    s = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.0), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    return s.get_primitive_structure()


def _cu() -> Structure:
    return Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(3.5), ["Cu"], [[0, 0, 0]]
    ).get_primitive_structure()


def test_maker_stores_moduli_and_keeps_bad_input_out_of_the_way():
    xenon = Structure.from_spacegroup("Fm-3m", Lattice.cubic(6.2), ["Xe"], [[0, 0, 0]])
    maker = ElasticMaker(
        chunk=ChunkSettings(model="tests.helpers:morse_no_xe", campaign="el"), settings=SETTINGS
    )
    flow = elastic_flow([_cu(), _nacl(), xenon], ["cu", "nacl", "xe"], chunk_size=8, maker=maker)
    store = get_job_store()
    run_locally(flow, store=store, log=False, ensure_success=True)

    rows = query_results(store, build_criteria(campaign="el", task_type="elastic")).set_index("structure_id")
    assert rows.loc["cu", "state"] == "successful" and rows.loc["cu", "born_stable"]
    assert rows.loc["cu", "k_vrh"] > 0 and rows.loc["cu", "n_strains_used"] == 24
    assert list(rows.loc["cu", "warnings"]) == []
    # rocksalt held together by central pairs only is shear-unstable (C44 < 0): stored, with a warning
    assert rows.loc["nacl", "state"] == "successful" and not rows.loc["nacl", "born_stable"]
    assert any("not positive definite" in w for w in rows.loc["nacl", "warnings"])
    assert rows.loc["xe", "state"] == "failed"
    assert "Xe not supported" in rows.loc["xe", "error"]
    assert "fitting_data" not in rows  # strain/stress data live in the data store

    store.connect()
    docs = {d["structure_id"]: d for d in store.get_output(flow.jobs[0].uuid, load=True)}
    assert np.array(docs["nacl"]["elastic_tensor"])[3, 3] < 0
    cu = docs["cu"]
    c = np.array(cu["elastic_tensor"])
    assert c.shape == (6, 6) and np.allclose(c, c.T)
    assert len(cu["fitting_data"]["cauchy_stresses"]) == 24
    # relations the document must satisfy
    k, g = cu["k_vrh"], cu["g_vrh"]
    assert cu["youngs_modulus"] == pytest.approx(9 * k * g / (3 * k + g))
    assert cu["poisson_ratio"] == pytest.approx((3 * k - 2 * g) / (6 * k + 2 * g))
    assert k == pytest.approx((c[0, 0] + 2 * c[0, 1]) / 3, rel=1e-6)  # cubic
    assert cu["eigenvalues"] == pytest.approx(sorted(np.linalg.eigvalsh(c)), rel=1e-6)


def test_failed_strained_cells_are_recorded_and_the_fit_says_how_many_it_used():
    pot = NaNAboveVolume()
    reference = compute_elastic([_cu()], pot, SETTINGS)[0]
    relaxed = reference.relaxed.structure  # start there: the input cell itself is larger than v0
    v0 = relaxed.volume
    pot.max_volume = v0 * 1.007  # the three +1 % normal strains (+1 % volume) fail, nothing else
    out = compute_elastic([relaxed], pot, SETTINGS)[0]
    assert out.error is None
    assert len(out.failed) == 3 and all(
        "non-finite" in f.reason.lower() or "nan" in f.reason.lower() for f in out.failed
    )
    assert sorted(max(f.strain_voigt) for f in out.failed) == pytest.approx([0.01] * 3)
    assert out.fit.n_strains_used == 21
    assert any("3 of 24 strained cells failed; fit used 21" in w for w in out.fit.warnings)
    assert np.allclose(out.fit.tensor, reference.fit.tensor, rtol=0.05, atol=0.5)

    pot.max_volume = v0 * 1.003  # every positive normal strain fails: still two points per mode
    assert compute_elastic([relaxed], pot, SETTINGS)[0].fit.n_strains_used == 18
    pot.max_volume = v0 * 0.9  # every cell fails → a clear reason, no exception
    dead = compute_elastic([relaxed], pot, SETTINGS)[0]
    assert dead.fit is None and dead.error is not None


def test_cli_elastic_prints_tensor_and_stores_results(tmp_path):
    from typer.testing import CliRunner

    from mlipflows.cli import app

    path = tmp_path / "Cu.cif"
    _cu().to(filename=str(path))
    runner = CliRunner()
    res = runner.invoke(
        app, ["elastic", str(path), "--model", "morse", "--fmax", "0.005", "--json", "out.json"]
    )
    assert res.exit_code == 0, res.output
    assert "K_VRH" in res.output and "Born stable: yes" in res.output
    doc = json.loads((tmp_path / "out.json").read_text())[0]
    assert doc["task_type"] == "elastic" and len(doc["elastic_tensor"]) == 6
    res = runner.invoke(app, ["results", "--task", "elastic", "--format", "csv"])
    assert "K_VRH" in res.output or "k_vrh" in res.output

    missing = runner.invoke(app, ["elastic", str(tmp_path / "nope.cif"), "--model", "morse"])
    assert missing.exit_code == 1


def test_cli_elastic_says_a_symmetry_change_once_and_in_true_words(tmp_path, caplog):
    """A rattled (P1) input relaxes without constraints: the note says so, once, by its tensor."""
    from typer.testing import CliRunner

    from mlipflows.cli import app

    rattled = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.0), ["Na", "Cl"], [[0, 0, 0], [0.5] * 3])
    rattled.perturb(0.02, 0.01, seed=0)
    path = tmp_path / "rattled.cif"
    rattled.to(filename=str(path))
    with caplog.at_level("WARNING"):
        res = CliRunner().invoke(app, ["elastic", str(path), "--model", "morse"])
    assert res.exit_code in (0, 1), res.output
    text = " ".join(res.output.split())
    assert "during the relaxation: 1 →" in text, text
    assert "symmetrized relaxation" not in text
    assert text.index("C_ij") < text.index("during the relaxation")  # printed with its tensor
    # … and not a second time as a log line while the job runs
    assert not [r for r in caplog.records if r.name == "mlipflows.makers.elastic"], caplog.text
