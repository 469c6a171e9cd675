"""First-hour mistakes: each costs one line and never loses or merges a result."""

from __future__ import annotations

import json
import shutil

import pytest
from pymatgen.core import Lattice, Structure
from typer.testing import CliRunner

from mlipflows.cli import app
from tests.conftest import EXAMPLES

runner = CliRunner()


def _ids() -> list[str]:
    out = runner.invoke(app, ["results", "--format", "json"])
    return sorted(row["structure_id"] for row in json.loads(out.output))


def test_same_named_files_in_different_folders_keep_their_own_results(tmp_path):
    for folder, example in (("a", "Cu_fcc"), ("b", "MgO_rocksalt")):
        (tmp_path / folder).mkdir()
        shutil.copy(EXAMPLES / f"{example}.cif", tmp_path / folder / "x.cif")
        Structure.from_file(EXAMPLES / f"{example}.cif").to(filename=str(tmp_path / folder / "POSCAR"))
    files = [str(tmp_path / f) for f in ("a/x.cif", "b/x.cif", "a/POSCAR", "b/POSCAR", "a/x.cif")]
    result = runner.invoke(app, ["relax", *files, "--model", "morse"])
    assert result.exit_code == 0, result.output
    assert _ids() == ["a/POSCAR", "a/x", "b/POSCAR", "b/x"]  # four results, the repeated file once
    rows = json.loads(runner.invoke(app, ["results", "--format", "json"]).output)
    formula = {r["structure_id"]: r["formula_reduced"] for r in rows}
    assert formula["a/x"] == formula["a/POSCAR"] == "Cu" and formula["b/x"] == "MgO"


def test_a_disordered_cif_is_named_and_the_rest_is_stored(tmp_path):
    disordered = Structure(Lattice.cubic(5.65), [{"Ga": 0.5, "In": 0.5}, "As"], [[0, 0, 0], [0.25] * 3])
    disordered.to(filename=str(tmp_path / "GaInAs.cif"))
    result = runner.invoke(
        app, ["relax", str(EXAMPLES / "Cu_fcc.cif"), str(tmp_path / "GaInAs.cif"), "--model", "morse"]
    )
    assert result.exit_code == 1  # an unreadable input, after storing the rest
    assert "partially occupied" in result.output and "OrderDisorderedStructureTransformation" in result.output
    assert "Traceback" not in result.output
    assert _ids() == ["Cu_fcc"]


def test_the_engine_refuses_a_disordered_structure_with_a_reason():
    from mlipflows.engine.validate import check_structure
    from mlipflows.potentials import load_potential

    s = Structure(Lattice.cubic(4.0), [{"Cu": 0.75}], [[0, 0, 0]])  # a vacancy-disordered site
    reason = check_structure(s, load_potential("morse"))
    assert reason is not None and "1 of 1 sites are partially occupied" in reason


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["relax", "CU", "--fmax", "-1"], "must be > 0"),
        (["relax", "CU", "--fmax", "0"], "must be > 0"),
        (["relax", "CU", "--steps", "0"], "--steps"),
        (["relax", "CU", "--chunk-size", "0"], "--chunk-size"),
        (["results", "--limit", "-3"], "--limit"),
        (["elastic", "CU", "--fmax", "-0.1"], "must be > 0"),
        (["phonons", "CU", "--fmax", "0"], "must be > 0"),
        (["phonons", "CU", "--symprec", "0"], "must be > 0"),
        (["phonons", "CU", "--displacement", "-0.01"], "must be > 0"),
        (["phonons", "CU", "--min-length", "0"], "must be > 0"),
        (["phonons", "CU", "--dtype", "float16"], "float32 or float64"),
        (["phonons", "CU", "--batch-atoms", "0"], "--batch-atoms"),
        (["phonons", "CU", "--supercell", "2 0 2"], "integers ≥ 1"),
        (["kappa", "CU", "--temperatures", "-5"], "temperatures are > 0 K"),
        (["kappa", "CU", "--mesh", "0 0 0"], "integers ≥ 1"),
        # where results go is checked before the calculation, not after it
        (["phonons", "CU", "--plot", "/"], "is a folder; give a file name"),
        (["elastic", "CU", "--json", "/"], "is a folder; give a file name"),
        (["rank", "NaCl", "--out", "CU"], "is a file; give a folder"),
        (["rank", "NaCL"], "L is not an element symbol"),
        (["rank", "NaCl", "--spacegroups", "194-190"], "reversed range"),
        (["rank", "NaCl", "--n-random", "-3"], "--n-random"),
    ],
)
def test_impossible_numbers_are_rejected_before_any_work(args, message):
    args = [str(EXAMPLES / "Cu_fcc.cif") if a == "CU" else a for a in args]
    result = runner.invoke(app, [*args, "--model", "morse"] if args[0] != "results" else args)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.replace("│", " ").split())  # typer's box wraps lines


def test_relax_settings_refuse_settings_that_cannot_converge():
    from mlipflows.engine import RelaxSettings

    with pytest.raises(ValueError, match="fmax must be > 0"):
        RelaxSettings(fmax=0.0)
    with pytest.raises(ValueError, match="max_steps"):
        RelaxSettings(max_steps=0)


def test_duplicate_ids_in_one_flow_are_refused():
    from mlipflows.makers import relax_flow

    s = Structure.from_file(EXAMPLES / "Cu_fcc.cif")
    with pytest.raises(ValueError, match="unique; shared: Cu"):
        relax_flow([s, s.copy(), s.copy()], ["Cu", "Ni", "Cu"], chunk_size=1)


def test_an_unreachable_store_fails_before_the_calculation(tmp_path, monkeypatch):
    config = tmp_path / "mlipflows.yaml"
    config.write_text("store:\n  uri: mongodb://alice:s3cret@127.0.0.1:1/x\n  timeout_ms: 300\n")
    monkeypatch.setenv("MLIPFLOWS_CONFIG", str(config))
    result = runner.invoke(app, ["relax", str(EXAMPLES / "Cu_fcc.cif"), "--model", "morse"])
    assert result.exit_code == 1, result.output
    assert "did not answer" in result.output and "alice:****@127.0.0.1:1" in result.output
    assert "s3cret" not in result.output and "structures" not in result.output  # nothing was run


def test_a_missing_or_misspelt_store_configuration_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("MLIPFLOWS_CONFIG", str(tmp_path / "nowhere.yaml"))
    result = runner.invoke(app, ["results"])
    assert result.exit_code != 0 and "nowhere.yaml: no such file" in result.output
    config = tmp_path / "mlipflows.yaml"
    config.write_text("store:\n  databse: screening\n")
    monkeypatch.setenv("MLIPFLOWS_CONFIG", str(config))
    result = runner.invoke(app, ["relax", str(EXAMPLES / "Cu_fcc.cif"), "--model", "morse"])
    assert result.exit_code == 1 and "databse" in result.output and "Traceback" not in result.output


def test_a_misspelt_selection_field_is_an_error_not_an_empty_stage():
    from mlipflows.campaign.funnel import apply_selection
    from mlipflows.campaign.spec import SpecError

    rows = [{"structure_id": "a", "e_above_hull": 0.01}, {"structure_id": "b", "e_above_hull": 0.2}]
    assert [r["structure_id"] for r in apply_selection(rows, {"where": "e_above_hull < 0.05"})] == ["a"]
    typo = r"stages.ph.select.where: .*'e_abve_hull'.*did you mean e_above_hull"
    with pytest.raises(SpecError, match=typo):
        apply_selection(rows, {"where": "e_abve_hull < 0.05"}, "ph")
    with pytest.raises(SpecError, match="order_by"):
        apply_selection(rows, {"order_by": "-e_abov_hull"}, "ph")
    assert apply_selection([], {"where": "e_abve_hull < 0.05"}, "ph") == []  # nothing to check


@pytest.mark.parametrize("width", [60, 100, 200])
def test_tables_never_cut_a_number_short(monkeypatch, width):
    import io

    import pandas as pd
    from rich.console import Console

    from mlipflows.commands import ui

    out = io.StringIO()
    monkeypatch.setattr(ui, "console", Console(file=out, width=width))
    frame = pd.DataFrame(
        {
            "structure_id": ["Al2O3_corundum_with_a_long_name", "Cu"],
            "formula_reduced": ["Al2O3", "Cu"],
            "task_type": ["relax", "relax"],
            "state": ["successful", "successful"],
            "energy_per_atom": [-7.471723, -4.096111],
            "volume": [1987.335612, 46.960612],
            "pressure": [-0.79551, 0.5647],
        }
    )
    ui.print_results(frame, total=2)
    text = out.getvalue()
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= width
    shown = [v for v in ("-7.4717", "1987.3356", "-0.7955") if v in text]
    if width >= 100:
        assert len(shown) == 3
    else:  # what does not fit is named, never truncated
        assert "not shown at 60 columns" in text and len(shown) < 3


def test_results_filters_name_a_value_the_store_does_not_have(tmp_path):
    files = [str(EXAMPLES / f) for f in ("Cu_fcc.cif", "MgO_rocksalt.cif", "NaCl_rocksalt.cif")]
    assert runner.invoke(app, ["relax", *files, "--model", "morse"]).exit_code == 0
    for args, message in (
        (["--task", "relx"], "--task relx: no result in this store has it (did you mean relax?)"),
        (
            ["--state", "sucessful"],
            "--state sucessful: no result in this store has it (did you mean successful?)",
        ),
        (["--model", "mors"], "--model mors: no result in this store has it (did you mean morse?)"),
    ):
        result = runner.invoke(app, ["results", *args])
        assert result.exit_code == 2 and message in result.output, result.output
    result = runner.invoke(app, ["results", "--task", "relax", "--tag", "nothing"])
    assert result.exit_code == 1 and "no results match" in result.output  # known values, no match
    export = tmp_path / "two.csv"
    result = runner.invoke(app, ["results", "--limit", "2", "--export", str(export)])
    assert result.exit_code == 0 and "wrote 2 rows" in result.output
    assert len(export.read_text().strip().splitlines()) == 3  # header + the 2 rows asked for


def test_a_misspelt_campaign_name_is_one_line_with_the_nearest_names():
    files = [str(EXAMPLES / "Cu_fcc.cif")]
    assert runner.invoke(app, ["relax", *files, "--model", "morse", "--campaign", "oxides"]).exit_code == 0
    for args in (["results", "--campaign", "oxide"], ["campaign", "status", "oxide"], ["hull", "oxide"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert "no campaign 'oxide' in this store (did you mean oxides?)" in result.output, args
    result = runner.invoke(app, ["hull", "oxides"])  # it exists: it has no hull yet
    assert result.exit_code == 1 and "no stability results for campaign 'oxides'" in result.output


def test_a_rerun_under_another_tag_stays_in_the_first_tag():
    cu, mgo = str(EXAMPLES / "Cu_fcc.cif"), str(EXAMPLES / "MgO_rocksalt.cif")
    assert runner.invoke(app, ["relax", cu, mgo, "--model", "morse", "--tag", "first"]).exit_code == 0
    assert runner.invoke(app, ["relax", cu, "--model", "morse", "--tag", "second"]).exit_code == 0

    def tagged(tag: str) -> list[str]:
        out = runner.invoke(app, ["results", "--tag", tag, "--format", "json"]).output
        return sorted(r["structure_id"] for r in json.loads(out))

    assert tagged("first") == ["Cu_fcc", "MgO_rocksalt"] and tagged("second") == ["Cu_fcc"]
    assert len(json.loads(runner.invoke(app, ["results", "--format", "json"]).output)) == 2  # replaced


def test_a_folder_stands_for_its_structure_files_and_an_empty_one_is_named(tmp_path):
    (tmp_path / "cells").mkdir()
    (tmp_path / "empty").mkdir()
    for name in ("Cu_fcc", "MgO_rocksalt"):
        shutil.copy(EXAMPLES / f"{name}.cif", tmp_path / "cells" / f"{name}.cif")
    (tmp_path / "cells" / "notes.txt").write_text("not a structure")
    result = runner.invoke(
        app, ["relax", str(tmp_path / "cells"), str(tmp_path / "empty"), "--model", "morse"]
    )
    assert result.exit_code == 1 and "empty: folder holds no structure file" in result.output
    assert _ids() == ["Cu_fcc", "MgO_rocksalt"]


def test_unconverged_relaxations_are_reported_not_only_stored():
    result = runner.invoke(
        app, ["relax", str(EXAMPLES / "Al2O3_corundum.cif"), "--model", "morse", "--steps", "2"]
    )
    assert result.exit_code == 0
    assert "1 of 1 did not converge within 2 steps" in result.output and "converged == true" in result.output


def test_a_structure_file_given_as_the_model_is_named_as_such():
    cu = str(EXAMPLES / "Cu_fcc.cif")
    result = runner.invoke(app, ["relax", cu, "--model", cu])
    assert result.exit_code == 2 and "is a structure file, not a model" in result.output


def test_empty_json_output_is_an_empty_list_and_csv_lists_are_json():
    cu = str(EXAMPLES / "Cu_fcc.cif")
    assert runner.invoke(app, ["relax", cu, "--model", "morse", "--tag", "a"]).exit_code == 0
    empty = runner.invoke(app, ["results", "--tag", "b", "--format", "json"])
    assert empty.exit_code == 2 and empty.stdout.strip() == "[]"  # a tag no result has …
    assert "--tag b: no result in this store has it (here: a)" in empty.stderr  # … and the ones there are
    none = runner.invoke(
        app, ["results", "--tag", "a", "--where", "energy_per_atom > 100", "--format", "json"]
    )
    assert none.exit_code == 1 and none.stdout.strip() == "[]"  # real values that match nothing together
    csv = runner.invoke(app, ["results", "--format", "csv"]).stdout
    assert '"[""a""]"' in csv and "['a']" not in csv


def test_one_molecule_in_an_extxyz_skips_that_frame_only(tmp_path):
    from ase import Atoms
    from ase.build import bulk
    from ase.io import write

    water = Atoms("H2O", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])
    write(tmp_path / "mixed.extxyz", [bulk("Cu", "fcc", 3.6), water, bulk("Ni", "fcc", 3.5)], format="extxyz")
    result = runner.invoke(app, ["relax", str(tmp_path / "mixed.extxyz"), "--model", "morse"])
    assert result.exit_code == 1 and "mixed.extxyz frame 1: not fully periodic" in result.output
    assert "put a molecule or slab in a cell with pbc=True" in " ".join(result.output.split())
    assert _ids() == ["mixed-0", "mixed-2"]


@pytest.mark.parametrize("uri", ["mongo://alice:s3cret@localhost", "/tmp/some/folder"])
def test_a_uri_that_is_not_mongodb_is_named_as_such(uri):
    result = runner.invoke(app, ["results", "--uri", uri])
    assert result.exit_code == 2 and "is not a MongoDB URI" in result.output
    assert "s3cret" not in result.output and "did not answer" not in result.output


def test_an_unreachable_server_message_leaves_out_the_topology_dump(tmp_path, monkeypatch):
    config = tmp_path / "mlipflows.yaml"
    config.write_text("store:\n  uri: mongodb://127.0.0.1:1/x\n  timeout_ms: 300\n")
    monkeypatch.setenv("MLIPFLOWS_CONFIG", str(config))
    result = runner.invoke(app, ["results"])
    assert "did not answer" in result.output and "Topology" not in result.output


_CIF_HEAD = """data_x
_cell_length_a 4.0
_cell_length_b 4.0
_cell_length_c 4.0
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
_symmetry_space_group_name_H-M 'P 1'
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
Na1 Na 0 0 0
"""


@pytest.mark.parametrize(
    ("last_row", "message"),
    [
        ("Cl1 Cl 0.5 0.5", "a loop_ row has a different number of values than the loop has columns"),
        ("Cl1 Cl 0 0 0", "atoms overlap on one site (their occupancies sum to 2.0)"),
    ],
)
def test_a_broken_cif_is_explained_in_cif_terms(tmp_path, last_row, message):
    from mlipflows.errors import StructureReadError
    from mlipflows.io import read_structures

    path = tmp_path / "NaCl.cif"
    path.write_text(_CIF_HEAD + last_row + "\n")
    with pytest.raises(StructureReadError) as err:
        read_structures(path)
    assert message in str(err.value)
    assert "zip()" not in str(err.value) and "Invalid CIF file" not in str(err.value)


@pytest.mark.parametrize("spec", ["morse+ZBL", "morse+d4", "morse+D3"])
def test_a_misspelt_model_suffix_is_named_not_dropped(spec):
    result = runner.invoke(app, ["relax", str(EXAMPLES / "Cu_fcc.cif"), "--model", spec])
    assert result.exit_code == 2
    assert "is not a suffix; write MODEL+d3" in " ".join(result.output.split())


def test_a_results_json_given_as_a_structure_is_named_as_such(tmp_path):
    from mlipflows.errors import StructureReadError
    from mlipflows.io import read_structures

    path = tmp_path / "elastic.json"
    path.write_text('[{"structure_id": "Cu_fcc", "k_vrh": 140.0}]')
    with pytest.raises(StructureReadError, match="not a structure JSON"):
        read_structures(path)


def test_long_failure_reasons_are_cut_at_a_word_not_inside_one():
    from mlipflows.errors import short_reason

    reason = (
        "phonon supercell needs 216 atoms, more than max_supercell_atoms=100; raise max_supercell_atoms " * 3
    )
    short = short_reason(reason)
    assert len(short) <= 162 and short.endswith(" …")
    assert (
        reason.startswith(short.removesuffix(" …")) and short.removesuffix(" …").split()[-1] in reason.split()
    )
    assert short_reason("one\n  line") == "one line" and short_reason(None) == "unknown reason"


def test_a_folder_of_calculation_folders_names_the_glob_and_a_quoted_glob_is_read(tmp_path):
    from mlipflows.io import read_many

    for name, example in (("a", "Cu_fcc.cif"), ("b", "NaCl_rocksalt.cif")):
        (tmp_path / "calcs" / name).mkdir(parents=True)
        poscar = Structure.from_file(EXAMPLES / example).to(fmt="poscar")
        (tmp_path / "calcs" / name / "CONTCAR").write_text(poscar)
    calcs = tmp_path / "calcs"
    loaded, failed = read_many([calcs])
    assert not loaded and f"pass a glob such as '{calcs}/*/CONTCAR'" in failed[str(calcs)]
    loaded, failed = read_many([f"{tmp_path}/calcs/*/CONTCAR"])  # as a quoted shell argument
    assert not failed and sorted(c.structure_id for c in loaded) == ["a/CONTCAR", "b/CONTCAR"]
    loaded, failed = read_many([f"{tmp_path}/calcs/*/POSCAR"])
    assert not loaded and "matches no file" in failed[f"{tmp_path}/calcs/*/POSCAR"]


VASP4 = "{comment}\n1.0\n0.0 2.82 2.82\n2.82 0.0 2.82\n2.82 2.82 0.0\n1 1\nDirect\n0 0 0\n0.5 0.5 0.5\n"


def test_a_vasp4_poscar_is_read_from_its_comment_line_or_refused_never_h_and_he(tmp_path):
    """pymatgen names the species of a POSCAR without a species line H, He, …: never compute those."""
    from mlipflows.errors import StructureReadError
    from mlipflows.io import read_structures

    (tmp_path / "named.vasp").write_text(VASP4.format(comment="Na Cl"))
    (s,) = read_structures(tmp_path / "named.vasp")
    assert [site.specie.symbol for site in s.structure] == ["Na", "Cl"]
    (tmp_path / "POSCAR").write_text(VASP4.format(comment="NaCl rocksalt vasp4 style"))
    with pytest.raises(StructureReadError, match="VASP 4 POSCAR without element symbols"):
        read_structures(tmp_path / "POSCAR")
    res = CliRunner().invoke(app, ["relax", str(tmp_path / "POSCAR"), "--model", "morse"])
    assert res.exit_code == 1 and "species line" in res.output and "HHe" not in res.output


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("morse+zbl+zbl", "+zbl is given twice"),
        ("morse+d3+zbl+d3:pbe", "+d3 is given twice"),
        ("MORSE", "did you mean morse?"),
    ],
)
def test_a_doubled_suffix_or_a_shouted_name_is_one_line(spec, message):
    result = runner.invoke(app, ["relax", str(EXAMPLES / "Cu_fcc.cif"), "--model", spec])
    assert result.exit_code == 2 and message in " ".join(result.output.split())
