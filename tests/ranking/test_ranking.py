"""Polymorph ranking: seeded candidates, skipped space groups, duplicates, physics with Morse, CLI."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from jobflow import run_locally
from pymatgen.core import Lattice, Structure
from typer.testing import CliRunner

from mlipflows.cli import app
from mlipflows.engine import RelaxSettings
from mlipflows.errors import UnsupportedElementError
from mlipflows.makers.base import ChunkSettings
from mlipflows.makers.ranking import RankingMaker
from mlipflows.potentials import load_potential
from mlipflows.ranking import Relaxed, check_elements, generate, merge_duplicates, random_candidates
from mlipflows.store import get_job_store


def test_random_candidates_are_seeded_and_have_the_formula():
    a, _ = random_candidates("NaCl", 4, seed=7)
    b, _ = random_candidates("NaCl", 4, seed=7)
    c, _ = random_candidates("NaCl", 4, seed=8)
    assert [x.structure_id for x in a] == [x.structure_id for x in b]
    assert all(
        np.allclose(x.structure.cart_coords, y.structure.cart_coords) for x, y in zip(a, b, strict=True)
    )
    assert [x.structure_id for x in a] != [x.structure_id for x in c]
    for x in a:
        assert x.structure.composition.reduced_formula == "NaCl" and 2 <= len(x.structure) <= 8


def test_impossible_space_group_is_skipped_with_a_reason():
    # Ia-3d has no Wyckoff position with fewer than 16 sites: 1–4 NaCl units never fit
    cands, skipped = random_candidates("NaCl", 2, seed=0, spacegroups=[230])
    assert cands == [] and len(skipped) == 20
    assert all("space group 230" in s and "compatible" in s for s in skipped)


def test_duplicates_merge_across_cells_and_stay_apart_across_structures():
    fcc_prim = Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(3.6), ["Cu"], [[0, 0, 0]]
    ).get_primitive_structure()
    fcc_conv = Structure.from_spacegroup("Fm-3m", Lattice.cubic(3.6), ["Cu"], [[0, 0, 0]])
    bcc = Structure.from_spacegroup("Im-3m", Lattice.cubic(2.87), ["Cu"], [[0, 0, 0]])
    entries = [
        Relaxed("a", "prototype", fcc_prim, -3.000, True),
        Relaxed("b", "random", fcc_conv, -12.001, True),  # same energy per atom (4 atoms)
        Relaxed("c", "prototype", bcc, -2.9, True),
    ]
    groups = merge_duplicates(entries)
    assert [[e.structure_id for e in g] for g in groups] == [["b", "a"], ["c"]]


def test_unknown_element_is_refused_before_compute():
    pot = load_potential("tests.helpers:morse_no_xe")
    with pytest.raises(UnsupportedElementError, match="Xe"):
        check_elements("XeF2", pot)
    res = CliRunner().invoke(app, ["rank", "XeF2", "--model", "tests.helpers:morse_no_xe", "--n-random", "3"])
    assert res.exit_code == 2 and "does not cover Xe" in res.output


def test_pair_potential_ranks_close_packed_first_and_merges_duplicates(tmp_path):
    """Morse pairs favour 12 neighbours: fcc/hcp below bcc, far below diamond and graphite."""
    user = Structure.from_spacegroup("Fm-3m", Lattice.cubic(3.7), ["Cu"], [[0, 0, 0]])  # fcc again
    user.to(filename=str(tmp_path / "mine.cif"))
    gen = generate("Cu", n_random=3, seed=1, spacegroups=[225, 229], files=[tmp_path / "mine.cif"])
    assert gen.record()["n_candidates"] == {"prototype": 5, "random": 3, "file": 1}
    maker = RankingMaker(
        chunk=ChunkSettings(model="morse", campaign="rank-test"), relax=RelaxSettings(fmax=0.03)
    )
    cands = gen.candidates
    job = maker.make(
        "Cu",
        [c.structure for c in cands],
        [c.structure_id for c in cands],
        [c.source for c in cands],
        gen.record(),
    )
    store = get_job_store()
    run_locally(job, store=store, log=False, ensure_success=True)
    store.connect()
    doc = store.get_output(job.uuid, load=True)
    ranked = doc["ranking"]
    order = [r["spacegroup"] for r in ranked]
    assert order[0] in ("Fm-3m", "P6_3/mmc") and order.index("Im-3m") < order.index("Fd-3m")
    assert ranked[0]["delta_e_mev_per_atom"] == 0
    assert all(a["energy_per_atom"] <= b["energy_per_atom"] for a, b in itertools.pairwise(ranked))
    fcc = next(r for r in ranked if r["spacegroup"] == "Fm-3m")
    assert "file-mine" in [fcc["structure_id"], *fcc["duplicates"]] and fcc["n_duplicates"] >= 1
    assert (
        doc["seed"] == 1 and doc["n_unique"] == len({r["structure_id"] for r in ranked}) < doc["n_candidates"]
    )
    assert set(doc["structures"]) == {r["structure_id"] for r in ranked}


def test_cli_rank_writes_table_and_plot(tmp_path):
    args = [
        "rank",
        "NaCl",
        "--model",
        "morse",
        "--n-random",
        "2",
        "--seed",
        "4",
        "--out",
        str(tmp_path / "o"),
    ]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "NaCl with morse" in res.output
    assert (tmp_path / "o" / "NaCl-morse.csv").is_file() and (tmp_path / "o" / "NaCl-morse-EV.png").is_file()
    ranked = sorted(p.name for p in (tmp_path / "o" / "NaCl-morse-structures").glob("*.cif"))
    assert ranked and ranked[0].startswith("001-")  # the ranked polymorphs, lowest first
    rows = CliRunner().invoke(app, ["results", "--task", "ranking", "--format", "csv"])
    assert "rank-NaCl" in rows.output
    assert (
        CliRunner().invoke(app, ["rank", "NaCl", "--model", "morse", "--spacegroups", "300"]).exit_code == 2
    )


def test_rankings_of_other_formulas_and_pools_keep_their_own_results():
    import json

    def rank(formula, *extra):
        res = CliRunner().invoke(app, ["rank", formula, "--model", "morse", "--seed", "3", *extra])
        assert res.exit_code == 0, res.output

    def stored(task):
        out = CliRunner().invoke(app, ["results", "--task", task, "--format", "json"]).output
        return json.loads(out)

    rank("NaCl", "--n-random", "2")
    rank("KCl", "--n-random", "2")  # the same seed draws the same random ids: stored apart
    relaxed = {(r["structure_id"], r["formula_pretty"]) for r in stored("relax")}
    assert any(sid.startswith("NaCl/random-") for sid, _ in relaxed)
    assert any(sid.startswith("KCl/random-") for sid, _ in relaxed)
    assert all(f == sid.split("/")[0] for sid, f in relaxed)
    rank("NaCl", "--n-random", "0")  # another pool: another ranking, the first one stays
    rankings = [r for r in stored("ranking") if r["formula"] == "NaCl"]
    assert sorted(r["n_candidates"] for r in rankings) == sorted({r["n_candidates"] for r in rankings})
    assert len(rankings) == 2


def test_second_opinion_agrees_with_itself_and_flags_a_disagreeing_model():
    from mlipflows.second_opinion import SecondOpinion

    gen = generate("Cu", n_random=0)
    cands = gen.candidates
    docs = {}
    for b in ("morse", "tests.helpers:deep_morse"):
        maker = RankingMaker(
            chunk=ChunkSettings(model="morse", campaign=f"opinion-{b}"),
            second_opinion=SecondOpinion(b, top=3, threshold=0.01),
        )
        job = maker.make(
            "Cu", [c.structure for c in cands], [c.structure_id for c in cands], ["prototype"] * 5
        )
        store = get_job_store()
        run_locally(job, store=store, log=False, ensure_success=True)
        store.connect()
        docs[b] = store.get_output(job.uuid, load=True)
    same = docs["morse"]["second_opinion"]
    assert len(same) == 3 and not any(o["disagrees"] for o in same)
    assert all(abs(o["difference"]) < 1e-3 for o in same)
    deep = docs["tests.helpers:deep_morse"]
    assert deep["second_opinion_model"] == "tests.helpers:deep_morse"
    flagged = [o for o in deep["second_opinion"] if o["disagrees"]]
    # twice the well depth doubles every energy difference: the far finalist disagrees
    assert flagged and all(o["difference"] == pytest.approx(o["value_a"], rel=0.2) for o in flagged)


def test_cli_lists_unphysical_candidates_below_the_ranking(tmp_path):
    hole = Structure(Lattice.cubic(6.0), ["K", "K"], [[0, 0, 0], [0.1, 0, 0]])  # 0.6 Å apart
    hole.to(filename=str(tmp_path / "hole.cif"))
    args = ["rank", "K", "--model", "tests.helpers:holey_morse", "--n-random", "0", "--cif"]
    res = CliRunner().invoke(app, [*args, str(tmp_path / "hole.cif")])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "1 unphysical candidates (model holes), left out of the ranking" in text
    assert "unphysical file-hole" in text and "below the model's own elemental references" in text
    flagged = CliRunner().invoke(app, [*args, str(tmp_path / "hole.cif"), "--include-unphysical"])
    assert "ranked although unphysical file-hole" in " ".join(flagged.output.split())


@pytest.mark.slow
def test_sevennet_ranks_diamond_first_for_si_and_rocksalt_for_mgo():
    pot = load_potential("sevennet-0")
    from mlipflows.engine import RelaxSettings, relax
    from mlipflows.ranking import Relaxed, prototype_candidates, ranking_table

    for formula, expected in (("Si", "Fd-3m"), ("MgO", "Fm-3m")):
        cands = prototype_candidates(formula)
        results = relax([c.structure for c in cands], pot, RelaxSettings(fmax=0.05, max_steps=500))
        entries = [
            Relaxed(c.structure_id, c.source, r.structure, r.energy, r.converged)
            for c, r in zip(cands, results, strict=True)
            if r.ok
        ]
        table = ranking_table(merge_duplicates(entries))
        assert table.iloc[0]["spacegroup"] == expected, formula


def test_cli_a_wrong_cif_is_an_error_and_random_misses_are_one_line(tmp_path):
    """Your own file left out is a mistake (exit 1, after ranking the rest); PyXtal's misses are
    a normal part of random search (one summary line, not one line per draw)."""
    cu = Structure.from_spacegroup("Fm-3m", Lattice.cubic(3.6), ["Cu"], [[0, 0, 0]])
    cu.to(filename=str(tmp_path / "cu.cif"))
    args = ["rank", "NaCl", "--model", "morse", "--n-random", "5", "--cif", str(tmp_path / "cu.cif")]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 1, res.output
    text = " ".join(res.output.split())
    assert "--cif cu: its composition Cu is not NaCl: not ranked" in text
    assert "NaCl with morse" in text  # the rest is ranked
    assert "15 candidates (10 prototype, 5 random; seed 0)" in text
    assert text.count("random crystals: 5 placed, after") == 1 and "Comp_CompatibilityError" not in text
    assert "skipped" not in text
