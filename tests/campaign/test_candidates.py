from __future__ import annotations

import pytest

from mlipflows.campaign import CampaignSpec, SpecError
from mlipflows.campaign.candidates import generate_candidates, is_charge_balanced
from mlipflows.elements import elemental_references


def _spec(tmp_path, **candidates):
    return CampaignSpec(name="t", model="morse", candidates=candidates, base_dir=tmp_path)


def test_product_of_site_choices_and_charge_balance(tmp_path):
    sites = {"A": ["Sr", "Ba", "Na"], "B": ["Ti", "Zr"], "X": ["O"]}
    all_c = generate_candidates(
        _spec(tmp_path, prototypes=[{"prototype": "perovskite", "sites": sites}])
    ).candidates
    assert len(all_c) == 6
    balanced = generate_candidates(
        _spec(tmp_path, prototypes=[{"prototype": "perovskite", "sites": sites}], charge_balance=True)
    ).candidates
    assert {c.structure_id for c in balanced} == {
        "SrTiO3-perovskite",
        "BaTiO3-perovskite",
        "SrZrO3-perovskite",
        "BaZrO3-perovskite",
    }
    assert is_charge_balanced(balanced[0].structure.composition)


def test_charge_balance_that_removes_everything_is_an_error(tmp_path):
    sites = {"A": ["Na"], "B": ["Mg"]}  # NaMg: no neutral oxidation-state assignment
    with pytest.raises(SpecError, match="charge_balance removed all"):
        generate_candidates(
            _spec(tmp_path, prototypes=[{"prototype": "rocksalt", "sites": sites}], charge_balance=True)
        )


def test_substitutions_from_a_cif(tmp_path):
    from tests.conftest import EXAMPLES

    spec = _spec(
        tmp_path,
        structures=[{"file": str(EXAMPLES / "SrTiO3_perovskite.cif"), "substitutions": {"Sr": ["Ba", "Ca"]}}],
    )
    ids = {c.structure_id for c in generate_candidates(spec).candidates}
    assert ids == {"SrTiO3_perovskite", "SrTiO3_perovskite[Sr>Ba]", "SrTiO3_perovskite[Sr>Ca]"}


def test_missing_file_and_absent_substitution_fail_before_compute(tmp_path):
    with pytest.raises(SpecError, match=r"candidates.structures.0.file: .*nosuch.cif: no such file"):
        generate_candidates(_spec(tmp_path, structures=[{"file": "nosuch.cif"}]))
    from tests.conftest import EXAMPLES

    with pytest.raises(SpecError, match="none of"):
        generate_candidates(
            _spec(
                tmp_path, structures=[{"file": str(EXAMPLES / "Cu_fcc.cif"), "substitutions": {"Ag": ["Au"]}}]
            )
        )


def test_duplicates_are_merged(tmp_path):
    from tests.conftest import EXAMPLES

    spec = _spec(
        tmp_path,
        prototypes=[{"prototype": "fcc", "sites": {"A": ["Cu"]}}],
        structures=[{"file": str(EXAMPLES / "Cu_fcc.cif")}],
    )
    assert len(generate_candidates(spec).candidates) == 1


def test_too_many_candidates_is_refused(tmp_path):
    spec = _spec(
        tmp_path, prototypes=[{"prototype": "rocksalt", "sites": {"A": ["Mg", "Ca"], "B": ["O", "S"]}}]
    )
    spec.max_candidates = 3
    with pytest.raises(SpecError, match="max_candidates"):
        generate_candidates(spec)


def test_elemental_references():
    bulk, dimers = elemental_references({"Ti", "O"})
    assert {c.structure_id for c in dimers} == {"ref-O-dimer"}
    assert {c.structure_id for c in bulk} == {"ref-Ti-fcc", "ref-Ti-bcc", "ref-Ti-hcp", "ref-Ti-diamond"}


def test_folders_and_globs_with_malformed_files_record_them_and_go_on(tmp_path):
    """A database export: good CIFs, a malformed one, an empty one, a non-structure file."""
    import shutil

    from tests.conftest import EXAMPLES

    export = tmp_path / "export"
    export.mkdir()
    for name in ("Cu_fcc.cif", "NaCl_rocksalt.cif", "MgO_rocksalt.cif"):
        shutil.copy(EXAMPLES / name, export / name)
    (export / "broken.cif").write_text("data_x\n_cell_length_a 3.0\nnot a loop\n")
    (export / "empty.cif").write_text("")
    (export / "README.txt").write_text("not a structure")  # not a structure name: not read

    pool = generate_candidates(_spec(tmp_path, structures=[{"file": "export"}]))
    assert {c.structure_id for c in pool.candidates} == {"Cu_fcc", "NaCl_rocksalt", "MgO_rocksalt"}
    assert set(pool.unreadable) == {str(export / "broken.cif"), str(export / "empty.cif")}
    assert all("broken.cif" in r or "empty.cif" in r for r in pool.unreadable.values())
    assert pool.unreadable[str(export / "empty.cif")].endswith("empty.cif: the file is empty")

    globbed = generate_candidates(_spec(tmp_path, structures=[{"file": "export/*_rocksalt.cif"}]))
    assert {c.structure_id for c in globbed.candidates} == {"NaCl_rocksalt", "MgO_rocksalt"}
    assert not globbed.unreadable
    with pytest.raises(SpecError, match=r"broken\.cif"):
        generate_candidates(_spec(tmp_path, structures=[{"file": "export"}]), strict=True)
    with pytest.raises(SpecError, match="matches no structure file"):
        generate_candidates(_spec(tmp_path, structures=[{"file": "export/*.vasp"}]))


def test_an_unreadable_frame_gets_the_id_its_readable_self_would_have():
    from mlipflows.campaign.run import unreadable_id

    assert unreadable_id("/x/set.extxyz frame 3") == "set-3"
    assert unreadable_id("/x/broken.cif") == "broken"
