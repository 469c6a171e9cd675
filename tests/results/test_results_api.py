"""Results API: filters, per-structure joins across task types, exports; embedded and MongoDB."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from pymatgen.core import Structure
from typer.testing import CliRunner

from mlipflows.cli import app
from mlipflows.results import export_frame, find_results, join_tasks
from mlipflows.schemas import BaseDocument, ModelInfo, StabilityDocument, identity_fields
from mlipflows.store import connect_store, get_job_store, write_results

EXAMPLES = Path(__file__).parents[2] / "mlipflows" / "data" / "examples"
MODEL = ModelInfo(name="morse", version="1", checksum="analytic", source="test")
# (example file, e_above_hull eV/atom)
CANDIDATES = [
    ("MgO_rocksalt", 0.0),
    ("SrTiO3_perovskite", 0.021),
    ("TiO2_rutile", 0.0),
    ("ZnO_wurtzite", 0.35),
    ("NaCl_rocksalt", 0.08),
]


class PhononSummary(BaseDocument):
    """Shaped like the phonon documents other task types add: a BaseDocument subclass."""

    task_type: str = "phonon"
    max_frequency_thz: float
    dynamically_stable: bool


def _structure(name: str) -> Structure:
    return Structure.from_file(EXAMPLES / f"{name}.cif")


def _documents(campaign: str) -> list[dict]:
    docs: list[BaseDocument] = []
    for k, (name, e_hull) in enumerate(CANDIDATES):
        s = _structure(name)
        common = {
            "structure_id": name,
            "campaign": campaign,
            "model": MODEL,
            "device": "cpu",
            "structure": s.as_dict(),
            **identity_fields(s),
        }
        docs.append(
            StabilityDocument(
                **common,
                state="successful",
                hull_mode="mlip",
                e_above_hull=e_hull,
                formation_energy_per_atom=-1.0 - 0.1 * k,
                is_stable=e_hull <= 0,
            )
        )
        if k < 3:  # only some structures have phonons
            docs.append(
                PhononSummary(
                    **common, state="successful", max_frequency_thz=10.0 + k, dynamically_stable=k != 1
                )
            )
    return [d.model_dump(mode="json") for d in docs]


@pytest.fixture(params=["embedded", "mongodb"])
def store(request):
    uri = request.getfixturevalue("mongo_uri") if request.param == "mongodb" else None
    store = connect_store(get_job_store(uri))
    write_results(store, _documents("screen-a"))
    write_results(store, _documents("screen-b"))
    return store


def test_filters(store):
    all_a = find_results(store, campaign="screen-a")
    assert len(all_a) == 8 and "structure.lattice.a" not in all_a  # structures stay on the server
    stab = find_results(store, campaign="screen-a", task_type="stability", sort="e_above_hull")
    assert list(stab["e_above_hull"]) == sorted(e for _, e in CANDIDATES)
    ti = find_results(store, campaign="screen-a", task_type="stability", elements=["Ti", "O"])
    assert sorted(ti["structure_id"]) == ["SrTiO3_perovskite", "TiO2_rutile"]
    sys = find_results(store, campaign="screen-a", task_type="stability", chemsys=["Ti-Sr-O", "O-Mg"])
    assert sorted(sys["structure_id"]) == ["MgO_rocksalt", "SrTiO3_perovskite"]
    near = find_results(store, task_type="stability", model="morse", ranges={"e_above_hull": (0.0, 0.05)})
    assert len(near) == 6 and near["e_above_hull"].between(0, 0.05).all()
    where = find_results(store, campaign="screen-b", where="e_above_hull > 0.05 and is_stable == false")
    assert sorted(where["structure_id"]) == ["NaCl_rocksalt", "ZnO_wurtzite"]
    assert find_results(store, campaign="nope").empty
    # a typo is named (the CLI's rule), a query that is merely empty is just empty
    from mlipflows.selection import QueryError

    for typo, hint in (
        ({"task_type": "stabilty"}, "did you mean stability"),
        ({"ranges": {"e_abve_hull": (None, 0.05)}}, "did you mean e_above_hull"),
        ({"where": "e_abve_hull < 0.05"}, "did you mean e_above_hull"),
    ):
        with pytest.raises(QueryError, match=hint):
            find_results(store, campaign="screen-a", **typo)
    assert find_results(store, campaign="screen-a", where="e_above_hull < -5").empty


def test_join_one_row_per_structure_with_prefixed_task_columns(store):
    joined = join_tasks(find_results(store, campaign="screen-a"))
    assert len(joined) == len(CANDIDATES) and joined["structure_id"].is_unique
    row = joined.set_index("structure_id")
    assert row.loc["SrTiO3_perovskite", "stability.e_above_hull"] == pytest.approx(0.021)
    assert row.loc["SrTiO3_perovskite", "phonon.max_frequency_thz"] == pytest.approx(11.0)
    assert math.isnan(row.loc["ZnO_wurtzite", "phonon.max_frequency_thz"])  # no phonon result
    assert row.loc["TiO2_rutile", "chemsys"] == "O-Ti"  # identity columns stay unprefixed
    assert "phonon.task_type" not in joined and "stability.chemsys" not in joined
    both = join_tasks(find_results(store, task_type=None))
    assert len(both) == 2 * len(CANDIDATES)  # campaigns are kept apart


@pytest.mark.parametrize("suffix", [".csv", ".json", ".parquet"])
def test_export_round_trip(store, tmp_path, suffix):
    joined = join_tasks(find_results(store, campaign="screen-b"))
    path = export_frame(joined, tmp_path / f"out{suffix}")
    back = {".csv": pd.read_csv, ".json": pd.read_json, ".parquet": pd.read_parquet}[suffix](path)
    assert len(back) == len(joined) and set(back.columns) == set(joined.columns)
    back = back.set_index("structure_id")
    assert back.loc["ZnO_wurtzite", "stability.e_above_hull"] == pytest.approx(0.35)
    elements = back.loc["SrTiO3_perovskite", "elements"]
    assert list(json.loads(elements) if isinstance(elements, str) else elements) == ["O", "Sr", "Ti"]


def test_cli_results_join_and_export(tmp_path):
    store = connect_store(get_job_store())
    write_results(store, _documents("cli"))
    out = tmp_path / "cli.parquet"
    res = CliRunner().invoke(
        app, ["results", "--campaign", "cli", "--element", "O", "--join", "--export", str(out)]
    )
    assert res.exit_code == 0, res.output
    assert "stability E_hull (eV/atom)" in res.output and "phonon state" in res.output
    frame = pd.read_parquet(out)
    assert sorted(frame["structure_id"]) == [
        "MgO_rocksalt",
        "SrTiO3_perovskite",
        "TiO2_rutile",
        "ZnO_wurtzite",
    ]
    bad = CliRunner().invoke(app, ["results", "--export", str(tmp_path / "x.xlsx")])
    assert bad.exit_code != 0
