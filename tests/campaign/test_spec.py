from __future__ import annotations

import pytest

from mlipflows.campaign import SpecError, load_spec

GOOD = """\
name: t1
model: morse
candidates:
  prototypes:
    - prototype: rocksalt
      sites: {A: [Mg, Ca], B: [O]}
"""
STAGES = """\
stages:
  - name: ph
    kind: phonons
  - name: el
    kind: elastic
"""


def _write(tmp_path, text):
    p = tmp_path / "spec.yaml"
    p.write_text(text)
    return p


def test_valid_spec_has_defaults(tmp_path):
    spec = load_spec(_write(tmp_path, GOOD))
    assert spec.name == "t1" and spec.hull.mode == "mlip" and spec.relax.fmax == 0.05


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (GOOD.replace("[Mg, Ca]", "[Mg, Qq]"), 6, "unknown element 'Qq'"),
        (GOOD.replace("rocksalt", "rocksault"), 5, "unknown prototype 'rocksault'"),
        (GOOD.replace("{A: [Mg, Ca], B: [O]}", "{A: [Mg], X: [O]}"), 6, "has sites"),
        (GOOD + "chunk_size: 0\n", 7, "greater than or equal to 1"),
        (GOOD.replace("model: morse", "model: morse\nmodle: x"), 3, "Extra inputs"),
        (GOOD.replace("[Mg, Ca]", "[No, Ca]"), 6, "quote symbols"),
        (GOOD + STAGES + "    select: {source: phh}\n", 12, "select.source: 'phh' is not an earlier stage"),
        (GOOD + STAGES.replace("name: el", "name: ph"), 10, "stages.1.name: 'ph' is used twice"),
        (GOOD + "stages:\n  - {name: k, kind: kappa, settings: {mesh: [6, 6]}}\n", 8, "at least 3 items"),
        (
            GOOD + STAGES.replace("kind: phonons", 'kind: phonons\n    select: {where: "el.k_vrh > 1"}'),
            10,
            "reads stage 'el', which runs after this one",
        ),
        (
            GOOD + STAGES + "    select: {order_by: -el.k_vrh}\n",
            12,
            "reads stage 'el', which runs as this one",
        ),
        (GOOD + STAGES + "    select: {max: 0}\n", 12, "greater than or equal to 1"),
        (GOOD + "stages:\n  - {name: k, kind: kappa, settings: {temperatures: [-5]}}\n", 8, "greater than 0"),
        (
            GOOD + "stages:\n  - {name: p, kind: phonons, settings: {supercell: [2, 0, 2]}}\n",
            8,
            "greater than or equal to 1",
        ),
    ],
)
def test_errors_name_the_line(tmp_path, text, line, message):
    path = _write(tmp_path, text)
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert f"{path}:{line}:" in str(err.value)
    assert message in str(err.value)


def test_empty_candidate_space(tmp_path):
    with pytest.raises(SpecError, match="candidate space is empty"):
        load_spec(_write(tmp_path, "name: t\ncandidates: {}\n"))


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(SpecError, match="cannot read"):
        load_spec(tmp_path / "nope.yaml")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(_write(tmp_path, "name: [unclosed\n"))


def test_shipped_workflows_are_valid():
    from pathlib import Path

    for path in sorted((Path(__file__).parents[2] / "workflows").glob("*.yaml")):
        if "launchpad" in path.name or path.name.startswith(("mlipflows", "jobflow")):
            continue
        load_spec(path)


def test_stage_settings_take_the_cli_spellings():
    from mlipflows.campaign.stages import KappaStageSettings, PhononStageSettings

    phonons = PhononStageSettings(max_atoms=100, supercell="2 2 2")  # --max-atoms, --supercell '2 2 2'
    assert phonons.max_supercell_atoms == 100 and phonons.supercell == [2, 2, 2]
    assert KappaStageSettings(mesh="6,6,6").mesh == [6, 6, 6]
