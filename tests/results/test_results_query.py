"""`results`: --join filters, sorts and limits the joined rows (checked against pandas), and
every mistake gets a message naming the nearest valid field and a nonzero exit."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from mlipflows.cli import app
from mlipflows.results import find_results, join_tasks
from mlipflows.selection import QueryError, select_results
from mlipflows.store import connect_store, get_job_store, write_results
from tests.results.test_results_api import _documents

runner = CliRunner()


@pytest.fixture
def store():
    store = connect_store(get_job_store())
    write_results(store, _documents("q"))
    return store


def _pandas_join(store) -> pd.DataFrame:
    return join_tasks(find_results(store, campaign="q"))


def test_join_then_where_sort_limit_equals_pandas(store):
    expected = _pandas_join(store)
    expected = expected[expected["stability.e_above_hull"] < 0.05]
    expected = expected.sort_values("stability.e_above_hull", kind="stable").head(2)
    for where, sort in (
        ("e_above_hull < 0.05", "e_above_hull"),
        ("stability.e_above_hull < 0.05", "stability.e_above_hull"),
    ):
        got = select_results(store, campaign="q", join=True, where=where, sort=sort, limit=2)
        assert list(got.frame["structure_id"]) == list(expected["structure_id"])
        assert got.total == 3  # before the limit
        assert "phonon.max_frequency_thz" in got.frame  # the joined columns survive
    desc = select_results(store, campaign="q", join=True, sort="-phonon.max_frequency_thz", limit=1)
    assert desc.frame["structure_id"].iloc[0] == "TiO2_rutile"


def test_flat_queries_accept_task_dot_field(store):
    got = select_results(store, campaign="q", where="stability.e_above_hull < 0.05", sort="e_above_hull")
    assert set(got.frame["task_type"]) == {"stability"} and len(got.frame) == 3
    assert list(got.frame["e_above_hull"]) == sorted(got.frame["e_above_hull"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"where": "e_abve_hull < 0.05"}, "did you mean e_above_hull"),
        ({"where": "e_above_hull < abc"}, "not a number"),
        ({"where": "e_above_hull => 0.1"}, "unknown operator"),
        ({"sort": "e_above_hul"}, "did you mean e_above_hull"),
        ({"join": True, "sort": "stabilty.e_above_hull"}, "did you mean stability.e_above_hull"),
        ({"join": True, "where": "state == successful"}, "ambiguous"),
    ],
)
def test_mistakes_name_the_nearest_valid_field(store, kwargs, message):
    with pytest.raises(QueryError, match=message):
        select_results(store, campaign="q", **kwargs)


def test_cli_exits_nonzero_with_one_line(store):
    bad = runner.invoke(app, ["results", "--campaign", "q", "--where", "e_abve_hull < 0.05"])
    assert bad.exit_code == 2 and "did you mean e_above_hull" in bad.output
    assert "Traceback" not in bad.output
    unknown = runner.invoke(app, ["results", "--campaign", "kiltest"])
    assert unknown.exit_code == 2 and "no campaign 'kiltest'" in unknown.output
    nothing = runner.invoke(app, ["results", "--campaign", "q", "--where", "e_above_hull < -1"])
    assert nothing.exit_code == 1 and "no results match" in nothing.output


def test_cli_join_sort_limit_and_footer(store):
    res = runner.invoke(
        app,
        [
            "results",
            "--campaign",
            "q",
            "--join",
            "--sort",
            "e_above_hull",
            "--limit",
            "2",
            "--format",
            "json",
        ],
    )
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    assert [r["structure_id"] for r in rows] == ["MgO_rocksalt", "TiO2_rutile"]
    table = runner.invoke(app, ["results", "--campaign", "q", "--limit", "3"])
    assert "showing 3 of 8" in table.output


def test_structures_out(store, tmp_path):
    res = runner.invoke(
        app,
        [
            "results",
            "--campaign",
            "q",
            "--task",
            "stability",
            "--where",
            "e_above_hull < 0.05",
            "--export-structures",
            str(tmp_path / "hits"),
        ],
    )
    assert res.exit_code == 0, res.output
    files = sorted(p.name for p in (tmp_path / "hits").iterdir())
    assert files == ["MgO_rocksalt.cif", "SrTiO3_perovskite.cif", "TiO2_rutile.cif"]
    xyz = runner.invoke(
        app,
        [
            "results",
            "--campaign",
            "q",
            "--join",
            "--export-structures",
            str(tmp_path / "x"),
            "--structure-format",
            "extxyz",
        ],
    )
    assert xyz.exit_code == 0, xyz.output
    assert len(list((tmp_path / "x").glob("*.extxyz"))) == 5


def test_structures_to_one_extxyz_keep_their_fields(store, tmp_path):
    from ase.io import read
    from pymatgen.core import Composition

    args = ["results", "--campaign", "q", "--task", "stability", "--sort", "e_above_hull"]
    out = tmp_path / "hits.extxyz"
    res = runner.invoke(app, [*args, "--export-structures", str(out)])
    assert res.exit_code == 0, res.output
    frames = read(out, index=":")
    table = json.loads(runner.invoke(app, [*args, "--format", "json"]).output)
    assert [f.info["structure_id"] for f in frames] == [r["structure_id"] for r in table]
    for atoms, row in zip(frames, table, strict=True):
        assert atoms.info["e_above_hull"] == pytest.approx(row["e_above_hull"])
        assert Composition(atoms.get_chemical_formula()).reduced_formula == row["formula_pretty"]
        assert json.loads(atoms.info["elements"]) == row["elements"]
    bad = runner.invoke(app, [*args, "--export-structures", str(out), "--structure-format", "cif"])
    words = " ".join(bad.output.replace("│", " ").split())  # typer's error box wraps the line
    assert bad.exit_code == 2 and "drop --structure-format cif" in words
    # the export reads back: the frames' fields (dotted keys) are not carried into the jobs
    again = runner.invoke(
        app, ["relax", str(out), "--model", "morse", "--tag", "reread", "--json", str(tmp_path / "r.json")]
    )
    assert again.exit_code == 0, again.output
    docs = json.loads((tmp_path / "r.json").read_text())["results"]
    assert [d["structure_id"] for d in docs] == [r["structure_id"] for r in table]
    assert all(d["forces"] and not d["structure"].get("properties") for d in docs)


def test_parquet_keeps_arrays_as_arrays(store, tmp_path):
    from mlipflows.results import export_frame

    path = export_frame(find_results(store, campaign="q", task_type="stability"), tmp_path / "s.parquet")
    back = pd.read_parquet(path)
    assert list(back["elements"].iloc[0]) == ["Mg", "O"]  # a list, not the text '["Mg", "O"]'


def test_unstable_rows_name_the_phases_below_them():
    from mlipflows.results import summary_table

    anatase = {"formula": "TiO2", "fraction": 1.0, "entry_id": "TiO2-anatase"}
    frame = pd.DataFrame(
        [
            {"structure_id": "TiO2-rutile", "is_stable": False, "decomposition": [anatase]},
            {"structure_id": "TiO2-anatase", "is_stable": True, "decomposition": [anatase]},
            {
                "structure_id": "TiO",
                "is_stable": False,
                "decomposition": [
                    {"formula": "Ti", "fraction": 0.5, "entry_id": "mp-72"},
                    {"formula": "TiO2", "fraction": 0.5, "entry_id": None},
                    {"formula": "Ti", "fraction": 0.0, "entry_id": "TiO2_set-2"},
                ],
            },
        ]
    )
    table = summary_table(frame)
    assert list(table["decomposes to"]) == [
        "TiO2-anatase 1.00",
        "",
        "Ti (mp-72) 0.50, TiO2 0.50, Ti (TiO2_set-2) 0.00",  # an id that only starts like the formula
    ]


def test_extxyz_frame_info_survives_multi_line_errors_and_numpy_values(tmp_path):
    import numpy as np
    from ase.build import bulk
    from ase.io import read, write

    from mlipflows.commands.results import _info

    info = _info(
        {"error": "phonopy failed:\n  Traceback line", "e": np.float64(-1.5), "n": float("nan"),
         "elements": np.array(["Mg", "O"]), "structure": {"sites": []}, "ok": np.bool_(True)}
    )  # fmt: skip
    assert info == {
        "error": "phonopy failed: Traceback line",
        "e": -1.5,
        "elements": '["Mg", "O"]',
        "ok": True,
    }
    atoms = bulk("Cu")
    atoms.info = info
    write(tmp_path / "x.extxyz", [atoms, atoms], format="extxyz")
    assert [f.info["error"] for f in read(tmp_path / "x.extxyz", index=":")] == [info["error"]] * 2


def test_exported_structures_are_every_match_not_the_tables_rows(store, tmp_path, monkeypatch):
    monkeypatch.setattr("mlipflows.commands.results.TABLE_ROWS", 2)
    out = tmp_path / "all.extxyz"
    res = runner.invoke(
        app, ["results", "--campaign", "q", "--task", "stability", "--export-structures", str(out)]
    )
    assert res.exit_code == 0, res.output
    n_rows = len(json.loads(runner.invoke(app, ["results", "--campaign", "q", "--task", "stability",
                                                 "--format", "json"]).output))  # fmt: skip
    assert n_rows > 2 and f"wrote {n_rows} structures" in res.output and "showing 2 of" in res.output


def test_a_join_shows_each_stage_under_its_current_settings_only():
    """Stage settings changed and changed back: the row shows the results the funnel stands on."""
    from mlipflows.results import join_tasks

    def doc(task, stage, digest, t, **fields):
        return {"structure_id": "LiF", "campaign": "f", "model.name": "m", "task_type": task,
                "stage": stage, "settings_digest": digest, "created_at": t, **fields}  # fmt: skip

    frame = pd.DataFrame(
        [
            doc("relax", "relax", "r", "2026-01-01", state="successful"),
            doc("phonon", "phonons", "A", "2026-01-02", state="successful", min_frequency=0.1),
            doc("manifest", "phonons", "A", "2026-01-02"),
            doc("phonon", "phonons", "B", "2026-01-03", state="failed", min_frequency=None),
            doc("manifest", "phonons", "B", "2026-01-03"),
            doc("kappa", "kappa", "K", "2026-01-03", state="successful"),  # its stage ran once
            doc("manifest", "phonons", "A", "2026-01-04"),  # back to A: its results are reused
            {
                "structure_id": "LiF",
                "campaign": None,
                "model.name": "m",
                "task_type": "elastic",
                "created_at": "2026-01-05",
                "state": "successful",
            },
        ]
    )
    row = join_tasks(frame[frame["campaign"].notna()]).iloc[0]
    assert row["phonons.state"] == "successful" and row["phonons.settings_digest"] == "A"
    assert row["kappa.state"] == "successful" and row["relax.state"] == "successful"
    plain = join_tasks(frame[frame["campaign"].isna()])  # outside campaigns: as before
    assert plain.iloc[0]["elastic.state"] == "successful"


def test_a_list_field_filters_the_same_joined_or_not():
    from mlipflows.selection import _matches

    assert _matches([217.6, 150.0], "$gt", 200) and not _matches([17.6, 15.0], "$gt", 200)
    assert _matches(["Mg", "O"], "$eq", "O") and not _matches([], "$gt", 0)


def test_phonon_and_kappa_rows_show_their_physics():
    from mlipflows.results import summary_table

    frame = pd.DataFrame(
        [
            {"structure_id": "a", "task_type": "phonon", "min_frequency": -0.2, "has_imaginary_modes": True},
            {
                "structure_id": "b",
                "task_type": "kappa",
                "kappa_tot_avg": [217.6],
                "has_imaginary_modes": False,
            },
        ]
    )
    table = summary_table(frame)
    assert {"min THz", "imaginary", "κ (W/m·K)"} <= set(table.columns)
