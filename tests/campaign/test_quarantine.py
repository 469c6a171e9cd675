"""Model holes never decide the science: close-pair inputs, malformed files, hole candidates."""

from __future__ import annotations

import json
import re
import shutil

import pytest
from pymatgen.core import Lattice, Structure
from typer.testing import CliRunner

from mlipflows.cli import app
from tests.conftest import EXAMPLES

runner = CliRunner()

SPEC = """
name: {name}
model: {model}
chunk_size: 16
relax: {{fmax: 0.05, max_steps: 300}}
candidates:
  prototypes:
    - prototype: rocksalt
      sites: {{A: [{cations}], B: [O, S]}}
  structures:
    - file: inputs
hull:
  mode: mlip
"""


def _close_pair(el: str, d: float = 0.6) -> Structure:
    return Structure(Lattice.cubic(6.0), [el, el], [[0, 0, 0], [d, 0, 0]], coords_are_cartesian=True)


def _campaign(tmp_path, name, model, cations, pairs):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for el in pairs:
        _close_pair(el).to(filename=str(inputs / f"{el}2-close.cif"))
    (inputs / "truncated.cif").write_text("data_cut\n_cell_length_a 4.0\n_cell_length_b\n")
    shutil.copy(EXAMPLES / "MgO_rocksalt.cif", inputs / "MgO_rocksalt.cif")
    spec = tmp_path / f"{name}.yaml"
    spec.write_text(SPEC.format(name=name, model=model, cations=", ".join(cations)))
    return spec


def _rows(name, task):
    res = runner.invoke(app, ["results", "--campaign", name, "--task", task, "--format", "json"])
    assert res.exit_code == 0, res.output
    return {r["structure_id"]: r for r in json.loads(res.output)}


def _check_quarantine(name, pairs):
    relax = _rows(name, "relax")
    stability = _rows(name, "stability")
    for el in pairs:
        bad = relax[f"{el}2-close"]
        assert bad["state"] == "unphysical", bad
        assert "hole" in bad["error"] or "apart" in bad["error"]
        assert stability[f"{el}2-close"]["state"] == "unphysical"
    assert relax["truncated"]["state"] == "failed" and "truncated.cif" in relax["truncated"]["error"]
    good = {k: r for k, r in stability.items() if r["state"] == "successful"}
    assert len(good) >= 5
    # every compound of the poisoned chemistries keeps a sane hull distance
    assert all(-1.0 < r["e_above_hull"] < 2.0 for r in good.values()), {
        k: r["e_above_hull"] for k, r in good.items()
    }
    return relax, stability


def test_close_pair_inputs_and_a_malformed_file_do_not_poison_the_hull(tmp_path):
    spec = _campaign(tmp_path, "holes", "tests.helpers:holey_morse", ["K", "Ba", "Mg"], ["K", "Ba"])
    result = runner.invoke(app, ["campaign", "run", str(spec)])
    assert result.exit_code == 0, result.output
    words = " ".join(result.output.split())
    assert "1 unreadable structure files" in words
    # the plan counts the unreadable file as a candidate, as the stored results do
    planned = re.search(r"(\d+) candidates \(1 unreadable\)", words)
    stored = re.search(r"(\d+) stability results", words)
    assert planned and stored and planned[1] == stored[1], words
    _check_quarantine("holes", ["K", "Ba"])
    strict = runner.invoke(app, ["campaign", "run", str(spec), "--strict"])
    assert strict.exit_code == 2 and "truncated.cif" in strict.output.replace("\n", "")


@pytest.mark.slow
def test_sevennet_close_pairs_of_cs_rb_k_ba_leave_their_chemistries_sane(tmp_path):
    """The issue's scenario: rocksalt binaries plus Cs, Rb, K, Ba pairs 0.6 Å apart."""
    cations = ["Cs", "Rb", "K", "Ba"]
    spec = _campaign(tmp_path, "holes-7net", "sevennet-0", cations, cations)
    result = runner.invoke(app, ["campaign", "run", str(spec)])
    assert result.exit_code == 0, result.output
    _, stability = _check_quarantine("holes-7net", cations)
    # the rocksalt compounds themselves are judged against sane elemental references
    assert all(stability[f"{c}{x}-rocksalt"]["state"] == "successful" for c in ("Cs", "Rb", "K") for x in "S")


@pytest.mark.slow
def test_sevennet_with_the_core_relaxes_the_close_pairs_to_physical_structures():
    from mlipflows.engine import RelaxSettings, relax
    from mlipflows.potentials import load_potential

    pairs = [_close_pair(el) for el in ("Cs", "Rb", "K", "Ba")]
    plain = relax(pairs, load_potential("sevennet-0"), RelaxSettings(max_steps=300))
    assert all(r.state == "unphysical" for r in plain)
    cored = relax(pairs, load_potential("sevennet-0+zbl"), RelaxSettings(max_steps=300))
    for r in cored:
        assert r.state == "successful", r.reason
        assert 3.5 < r.structure.get_distance(0, 1) < 5.5  # a metallic dimer/chain bond
        assert -2.5 < r.energy / 2 < 0


@pytest.mark.slow
@pytest.mark.parametrize(("formula", "expected"), [("Mg", "P6_3/mmc"), ("SnO2", "P4_2/mnm")])
def test_random_holes_never_top_a_ranking(tmp_path, formula, expected):
    """`mlipflows rank Mg|SnO2 --n-random 20` once ranked holes first (−44.8 / −5 × 10⁶ eV/atom)."""
    out = tmp_path / "rank"
    result = runner.invoke(app, ["rank", formula, "--n-random", "20", "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "unphysical candidates (model holes), left out of the ranking" in text
    table = (out / f"{formula}-sevennet-0.csv").read_text().splitlines()
    first = dict(zip(table[0].split(","), table[1].split(","), strict=False))
    assert first["spacegroup"] == expected and first["unphysical"] == ""
