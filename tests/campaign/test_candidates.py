from __future__ import annotations

import pytest

from mlipflows.campaign import CampaignSpec, SpecError
from mlipflows.campaign.candidates import generate_candidates, is_charge_balanced
from mlipflows.elements import elemental_references


def _spec(tmp_path, **candidates):
    return CampaignSpec(name="t", model="morse", candidates=candidates, base_dir=tmp_path)


def test_product_of_site_choices_and_charge_balance(tmp_path):
    sites = {"A": ["Sr", "Ba", "Na"], "B": ["Ti", "Zr"], "X": ["O"]}
    all_c = generate_candidates(_spec(tmp_path, prototypes=[{"prototype": "perovskite", "sites": sites}]))
    assert len(all_c) == 6
    balanced = generate_candidates(
        _spec(tmp_path, prototypes=[{"prototype": "perovskite", "sites": sites}], charge_balance=True)
    )
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
    ids = {c.structure_id for c in generate_candidates(spec)}
    assert ids == {"SrTiO3_perovskite", "SrTiO3_perovskite[Sr>Ba]", "SrTiO3_perovskite[Sr>Ca]"}


def test_malformed_cif_and_absent_substitution_fail_before_compute(tmp_path):
    bad = tmp_path / "bad.cif"
    bad.write_text("garbage\n")
    with pytest.raises(SpecError, match=r"candidates.structures.0.file: .*bad.cif"):
        generate_candidates(_spec(tmp_path, structures=[{"file": "bad.cif"}]))
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
    assert len(generate_candidates(spec)) == 1


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
