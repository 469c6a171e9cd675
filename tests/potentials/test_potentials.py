"""Every adapter: batched = one-by-one, forces = −∇E, stress = (1/V) ∂E/∂ε, invariances."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure

from mlipflows.engine import Batch
from mlipflows.errors import ModelLoadError
from mlipflows.potentials import REGISTRY, clear_cache, load_potential

FAST = ["morse"]
PRETRAINED = ["sevennet-0", "sevennet-l3i5", "chgnet-0.3.0"]


def _energy(pot, structure: Structure) -> float:
    return float(pot.evaluate(Batch.from_structures([structure])).energy[0])


def _check_batched_equals_single(pot, structures, atol):
    out = pot.evaluate(Batch.from_structures(structures))
    forces = torch.split(out.forces, [len(s) for s in structures])
    for k, s in enumerate(structures):
        one = pot.evaluate(Batch.from_structures([s]))
        assert float(out.energy[k]) == pytest.approx(float(one.energy[0]), abs=atol * len(s))
        np.testing.assert_allclose(forces[k].numpy(), one.forces.numpy(), atol=atol)
        np.testing.assert_allclose(out.stress[k].numpy(), one.stress[0].numpy(), atol=atol)


def _check_finite_differences(pot, structure, h, atol_f, atol_s):
    out = pot.evaluate(Batch.from_structures([structure]))
    for atom, axis in [(0, 0), (1, 2), (len(structure) - 1, 1)]:
        plus, minus = structure.copy(), structure.copy()
        disp = np.zeros(3)
        disp[axis] = h
        plus.translate_sites([atom], disp, frac_coords=False, to_unit_cell=False)
        minus.translate_sites([atom], -disp, frac_coords=False, to_unit_cell=False)
        f_fd = -(_energy(pot, plus) - _energy(pot, minus)) / (2 * h)
        assert float(out.forces[atom, axis]) == pytest.approx(f_fd, abs=atol_f)
    for i, j in [(0, 0), (1, 2), (2, 1)]:
        # symmetric strain with ε_ij = ε_ji = h/2 off the diagonal (ε_ii = h on it), so that in
        # both cases ΔE = V σ_ij h to first order
        eps = np.zeros((3, 3))
        eps[i, j] = eps[j, i] = h if i == j else h / 2
        energies = [
            _energy(
                pot,
                Structure(
                    structure.lattice.matrix @ (np.eye(3) + sign * eps),
                    structure.species,
                    structure.frac_coords,
                ),
            )
            for sign in (1, -1)
        ]
        sigma_fd = (energies[0] - energies[1]) / (2 * h * structure.volume)
        assert float(out.stress[0, i, j]) == pytest.approx(sigma_fd, abs=atol_s)


def _rotated(structure: Structure, seed: int = 0) -> Structure:
    from scipy.spatial.transform import Rotation

    rot = Rotation.random(random_state=seed).as_matrix()
    return Structure(structure.lattice.matrix @ rot.T, structure.species, structure.frac_coords)


@pytest.mark.parametrize("name", FAST)
def test_morse_physics(name, structures):
    pot = load_potential(name, dtype="float64")
    _check_batched_equals_single(pot, structures, 1e-10)
    for s in structures[:3]:
        _check_finite_differences(pot, s, 1e-4, 1e-6, 1e-7)
    e = _energy(pot, structures[0])
    assert _energy(pot, _rotated(structures[0])) == pytest.approx(e, abs=1e-9)
    sc = structures[1] * (2, 1, 1)
    assert _energy(pot, sc) == pytest.approx(2 * _energy(pot, structures[1]), abs=1e-8)


@pytest.mark.slow
@pytest.mark.parametrize("name", PRETRAINED)
def test_pretrained_physics(name, structures):
    pot = load_potential(name)
    small = [s for s in structures if len(s) <= 8][:4]
    _check_batched_equals_single(pot, small, 2e-4)
    # float32 models: finite differences need a large step and a loose tolerance
    _check_finite_differences(pot, small[0], 1e-2, 2e-2, 2e-3)
    e = _energy(pot, small[1])
    assert _energy(pot, _rotated(small[1])) == pytest.approx(e, abs=2e-4 * len(small[1]))


@pytest.mark.slow
def test_sevennet_matches_its_own_calculator(structures):
    from pymatgen.io.ase import AseAtomsAdaptor
    from sevenn.calculator import SevenNetCalculator

    pot = load_potential("sevennet-0")
    calc = SevenNetCalculator("7net-0", device="cpu")
    out = pot.evaluate(Batch.from_structures(structures))
    forces = torch.split(out.forces, [len(s) for s in structures])
    for k, s in enumerate(structures):
        atoms = AseAtomsAdaptor.get_atoms(s)
        atoms.calc = calc
        assert float(out.energy[k]) == pytest.approx(atoms.get_potential_energy(), abs=1e-4)
        np.testing.assert_allclose(forces[k].numpy(), atoms.get_forces(), atol=1e-4)


@pytest.mark.slow
def test_sevennet_in_float64_is_the_same_model_without_float32_noise():
    from ase.build import bulk
    from pymatgen.io.ase import AseAtomsAdaptor

    atoms = bulk("Si", "diamond", 5.43, cubic=True) * (2, 2, 2)
    atoms.rattle(0.02, seed=1)
    si = AseAtomsAdaptor.get_structure(atoms)
    p32, p64 = load_potential("sevennet-0"), load_potential("sevennet-0", dtype=torch.float64)
    assert p64.dtype == torch.float64 and p64.card.checksum != p32.card.checksum
    o32 = p32.evaluate(Batch.from_structures([si]))
    o64 = p64.evaluate(Batch.from_structures([si], dtype=torch.float64))
    assert o64.energy.dtype == torch.float64
    assert float(o64.energy[0]) == pytest.approx(float(o32.energy[0]), abs=1e-3)
    np.testing.assert_allclose(o64.forces.numpy(), o32.forces.double().numpy(), atol=1e-4)
    # central differences of 0.005 Å: float64 energies give the force to 1e-5 eV/Å
    h, fd = 0.005, []
    for sign in (1, -1):
        moved = si.copy()
        moved.translate_sites([0], [sign * h, 0, 0], frac_coords=False)
        fd.append(float(p64.evaluate(Batch.from_structures([moved], dtype=torch.float64)).energy[0]))
    assert float(o64.forces[0, 0]) == pytest.approx(-(fd[0] - fd[1]) / (2 * h), abs=2e-5)


@pytest.mark.slow
def test_chgnet_matches_its_own_calculator(structures):
    from chgnet.model import CHGNet, CHGNetCalculator
    from pymatgen.io.ase import AseAtomsAdaptor

    pot = load_potential("chgnet-0.3.0")
    calc = CHGNetCalculator(CHGNet.load(model_name="0.3.0", verbose=False), use_device="cpu")
    out = pot.evaluate(Batch.from_structures(structures[:4]))
    forces = torch.split(out.forces, [len(s) for s in structures[:4]])
    for k, s in enumerate(structures[:4]):
        atoms = AseAtomsAdaptor.get_atoms(s)
        atoms.calc = calc
        assert float(out.energy[k]) == pytest.approx(atoms.get_potential_energy(), abs=1e-3)
        np.testing.assert_allclose(forces[k].numpy(), atoms.get_forces(), atol=1e-3)
        np.testing.assert_allclose(
            out.stress[k].numpy().ravel()[[0, 4, 8]], atoms.get_stress()[:3], atol=1e-4
        )


def test_cache_is_per_spec_device_dtype():
    clear_cache()
    a = load_potential("morse", dtype="float64")
    assert load_potential("morse", dtype="float64") is a
    assert load_potential("morse", dtype="float32") is not a


def test_model_card_fields():
    pot = load_potential("morse")
    card = pot.card
    assert card.name == "morse" and card.cutoff > 0 and "O" in pot.elements
    assert card.checksum and card.version and card.source


def test_unknown_spec_says_what_is_accepted():
    with pytest.raises(ModelLoadError, match="not a registry name"):
        load_potential("no-such-model")


def test_import_path_factory():
    pot = load_potential("tests.helpers:morse_no_xe")
    assert pot.name == "morse-no-xe"
    assert pot.unsupported_elements({"Xe", "O"}) == ["Xe"]
    with pytest.raises(ModelLoadError, match="not a mlipflows Potential"):
        load_potential("tests.helpers:not_a_potential")
    with pytest.raises(ModelLoadError, match="no attribute"):
        load_potential("tests.helpers:missing_factory")
    with pytest.raises(ModelLoadError, match=r"cannot import.*PYTHONPATH"):
        load_potential("no_such_module.x:factory")
    with pytest.raises(ModelLoadError, match=r"called as factory\(device=..., dtype=...\)"):
        load_potential("os.path:join")  # a function, but not a factory


def test_garbage_checkpoint_is_refused(tmp_path):
    path = tmp_path / "garbage.pt"
    path.write_bytes(b"definitely not a checkpoint")
    with pytest.raises(ModelLoadError, match="cannot be read safely"):
        load_potential(str(path))


@pytest.mark.slow
def test_checkpoint_path_loads_sevennet():
    from mlipflows.potentials.sevennet import pretrained_path

    path = pretrained_path("sevennet-0")
    with pytest.raises(ModelLoadError, match="sevennet:"):
        load_potential(str(path))  # pickled objects: refused without an explicit trust prefix
    pot = load_potential(f"sevennet:{path}")
    assert pot.cutoff == pytest.approx(5.0)
    assert pot.card.checksum == load_potential("sevennet-0").card.checksum


@pytest.mark.slow
def test_checkpoint_path_loads_chgnet_safely():
    from mlipflows.potentials.chgnet import pretrained_path

    pot = load_potential(str(pretrained_path("0.3.0")))  # weights_only=True suffices for CHGNet
    assert pot.cutoff == pytest.approx(load_potential("chgnet-0.3.0").cutoff)
    # the 0.2.0 file (its output layers have biases) loads by path too, and computes
    old = load_potential(str(pretrained_path("0.2.0")))
    mgo = Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.2), ["Mg", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    assert np.isfinite(old.evaluate(Batch.from_structures([mgo])).energy.numpy()).all()


def test_registry_has_the_pretrained_models():
    assert set(PRETRAINED) <= set(REGISTRY)


def test_cuda_request_without_cuda_is_clear():
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    with pytest.raises(ModelLoadError, match="CUDA is not available"):
        load_potential("morse", device="cuda")


def test_ase_calculator_matches_batch(structures):
    from pymatgen.io.ase import AseAtomsAdaptor

    from mlipflows.potentials.ase_calculator import MlipflowsCalculator

    pot = load_potential("morse", dtype="float64")
    atoms = AseAtomsAdaptor.get_atoms(structures[2])
    atoms.calc = MlipflowsCalculator(pot)
    out = pot.evaluate(Batch.from_structures([structures[2]]))
    assert atoms.get_potential_energy() == pytest.approx(float(out.energy[0]))
    np.testing.assert_allclose(atoms.get_forces(), out.forces.numpy())
    assert atoms.get_stress().shape == (6,)


def test_cpu_batch_budget_is_the_models_and_batching_never_changes_forces(structures):
    """SevenNet's CPU batches stop at 4k edges (bigger ones cost more per atom); forces agree to
    float32 rounding whatever the batch, so the budget is a speed choice only."""
    from mlipflows.engine import BatchBudget
    from mlipflows.potentials.repulsion import RepulsiveCore

    sevennet = load_potential("sevennet-0")
    assert BatchBudget.for_potential(sevennet).max_edges == sevennet.cpu_max_edges == 4_000
    assert BatchBudget.for_potential(load_potential("morse")).max_edges == 16_000
    assert BatchBudget.for_potential(RepulsiveCore(sevennet)).max_edges == 4_000  # wrappers keep it

    together = sevennet.evaluate(Batch.from_structures(structures), compute_stress=False).forces
    alone = torch.cat(
        [sevennet.evaluate(Batch.from_structures([s]), compute_stress=False).forces for s in structures]
    )
    # measured: ≤ 2.5e-7 eV/Å (float32 sums in another order), on forces up to 1.6 eV/Å
    torch.testing.assert_close(together, alone, rtol=0, atol=2e-6)


def test_gpu_batch_budget_counts_the_allocators_spare_memory_and_the_dtype(monkeypatch):
    """On a GPU the budget comes from free memory: PyTorch's cached-but-unused blocks count as
    free (else each budget after the first batch shrinks), and float64 needs twice the bytes."""
    from mlipflows.engine import BatchBudget
    from mlipflows.potentials.repulsion import RepulsiveCore

    gib = 2**30
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (10 * gib, 141 * gib))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device=None: 30 * gib)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: 2 * gib)
    pot = load_potential("morse")
    pot.gpu_bytes_per_edge = per_edge = 100_000
    wrapped = RepulsiveCore(pot)  # built on the CPU: it moves its own tensors to the device
    monkeypatch.setattr(pot, "device", torch.device("cuda"))
    monkeypatch.setattr(wrapped, "device", torch.device("cuda"))
    edges = int(38 * gib * 0.6 / per_edge)
    assert BatchBudget.for_potential(pot) == BatchBudget(max_atoms=edges // 20, max_edges=edges)
    monkeypatch.setattr(pot, "dtype", torch.float64)
    assert BatchBudget.for_potential(pot).max_edges == int(38 * gib * 0.6 / (2 * per_edge))
    # a wrapper keeps its model's figure
    assert BatchBudget.for_potential(wrapped).max_edges == edges


def test_exact_qeq_models_cap_their_batches_on_every_device(monkeypatch):
    """NequIP-LR solves one dense (N, N) Qeq system per batch: its budget stops at 8,192 atoms
    even where free GPU memory would allow 36k, and its +zbl wrapper keeps the cap."""
    from mlipflows.engine import BatchBudget
    from mlipflows.potentials.repulsion import RepulsiveCore

    gib = 2**30
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (130 * gib, 141 * gib))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device=None: 0)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: 0)
    nequip, sevennet = load_potential("nequip-lr-si-mlearn"), load_potential("sevennet-0")
    zbl = RepulsiveCore(nequip)
    assert nequip.max_atoms_per_call == zbl.max_atoms_per_call == 8192
    assert sevennet.max_atoms_per_call is None
    for pot in (nequip, zbl, sevennet):
        monkeypatch.setattr(pot, "device", torch.device("cuda"))
    assert BatchBudget.for_potential(nequip).max_atoms == BatchBudget.for_potential(zbl).max_atoms == 8192
    assert BatchBudget.for_potential(sevennet).max_atoms > 30_000
    from mlipflows.makers.base import ChunkSettings

    asked = ChunkSettings(model="nequip-lr-si-mlearn", max_atoms=100_000)
    assert asked.budget(nequip).max_atoms == 8192  # a chunk's own budget cannot lift the cap


def test_a_multi_fidelity_sevennet_checkpoint_takes_its_modal_after_an_at():
    import sevenn

    path = Path(sevenn.__file__).parent / "pretrained_potentials/SevenNet_MF_0/checkpoint_sevennet_mf_0.pth"
    with pytest.raises(ModelLoadError, match="@MODAL"):
        load_potential(f"sevennet:{path}")
    pbe, r2scan = load_potential(f"sevennet:{path}@PBE"), load_potential(f"sevennet:{path}@R2SCAN")
    assert (pbe.name, r2scan.name) == ("checkpoint_sevennet_mf_0@PBE", "checkpoint_sevennet_mf_0@R2SCAN")
    assert pbe.card.checksum != r2scan.card.checksum  # two fidelities' results never mix
    mgo = Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.2), ["Mg", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    batch = Batch.from_structures([mgo])
    assert float(pbe.evaluate(batch).energy[0]) != pytest.approx(float(r2scan.evaluate(batch).energy[0]))
    with pytest.raises(ModelLoadError, match="no modal 'XX'"):
        load_potential(f"sevennet:{path}@XX")
