"""`mlipflows report`: a real (tiny) campaign → HTML page, rendered in headless Chromium."""

from __future__ import annotations

import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread
from typer.testing import CliRunner

from mlipflows.cli import app
from mlipflows.results import find_results
from mlipflows.schemas import BaseDocument
from mlipflows.store import get_job_store, write_results

# Mg-O and Ca-O in two polymorphs each (one above the hull), two titanates, and XeO, which the
# model does not cover: it must appear as a failure with its reason.
SPEC = """\
name: report-test
model: tests.helpers:morse_no_xe
device: cpu
chunk_size: 16
relax: {fmax: 0.05, max_steps: 200, cell_filter: frechet}
candidates:
  prototypes:
    - prototype: rocksalt
      sites: {A: [Mg, Ca, Xe], B: [O]}
    - prototype: cscl
      sites: {A: [Mg, Ca], B: [O]}
    - prototype: perovskite
      sites: {A: [Sr, Ba], B: [Ti], X: [O]}
hull:
  mode: mlip
"""
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


class PhononSummary(BaseDocument):
    """Shaped like phonon results of another task type (BaseDocument subclass)."""

    task_type: str = "phonon"
    max_frequency_thz: float


class Rows(HTMLParser):
    """Cell texts of the body rows of one table (by id)."""

    def __init__(self, table_id: str) -> None:
        super().__init__()
        self.table_id, self.inside, self.in_body, self.rows = table_id, False, False, []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "table" and dict(attrs).get("id") == self.table_id:
            self.inside = True
        elif self.inside and tag == "tbody":
            self.in_body = True
        elif self.in_body and tag == "tr":
            self.rows.append([])
        elif self.in_body and tag == "td":
            self.rows[-1].append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self.inside = self.in_body = False

    def handle_data(self, data: str) -> None:
        if self.in_body and self.rows and self.rows[-1]:
            self.rows[-1][-1] += data


def table_rows(page: str, table_id: str) -> list[list[str]]:
    parser = Rows(table_id)
    parser.feed(page)
    return parser.rows


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory) -> Path:
    """Run the campaign once (embedded store), add phonon summaries, write the report."""
    root = tmp_path_factory.mktemp("report")
    old = os.environ.get("MLIPFLOWS_HOME")
    os.environ["MLIPFLOWS_HOME"] = str(root / "home")
    try:
        (root / "spec.yaml").write_text(SPEC)
        run = CliRunner().invoke(app, ["campaign", "run", str(root / "spec.yaml")])
        assert run.exit_code == 0, run.output
        store = get_job_store()
        stab = find_results(store, campaign="report-test", task_type="stability", state="successful")
        keep = (
            "structure_id",
            "campaign",
            "device",
            "formula_pretty",
            "formula_reduced",
            "chemsys",
            "nsites",
        )
        phonons = [
            PhononSummary(
                **{c: row[c] for c in keep},
                elements=list(row["elements"]),
                composition={},
                model={c.split(".")[1]: row[c] for c in row if c.startswith("model.")},
                state="successful",
                structure={},
                max_frequency_thz=12.5 + k,
            ).model_dump(mode="json")
            for k, row in enumerate(stab.head(2).to_dict("records"))
        ]
        store.connect()
        write_results(store, phonons)
        made = CliRunner().invoke(app, ["report", "report-test", "--out", str(root / "out")])
        assert made.exit_code == 0, made.output
    finally:
        if old is None:
            os.environ.pop("MLIPFLOWS_HOME")
        else:
            os.environ["MLIPFLOWS_HOME"] = old
    return root / "out"


def test_page_content(report_dir):
    page = (report_dir / "index.html").read_text()
    assert "1 × element Xe not supported by morse-no-xe" in page
    rows = table_rows(page, "stable-table")
    assert len(rows) == 6  # 7 candidates, XeO failed
    ids = [r[0] for r in rows]
    assert "XeO-rocksalt" not in ids
    e_hull = [float(r[4]) for r in rows]
    assert e_hull == sorted(e_hull) and e_hull[0] == 0.0 and e_hull[-1] > 0  # a polymorph above the hull
    on_hull, above = rows[0], rows[-1]  # columns: ..., on hull, decomposes to, ...
    assert on_hull[5] == "yes" and on_hull[6] == ""  # a phase on the hull is not decomposed
    assert above[5] == "no" and above[6].endswith("1.00") and above[6] != above[0]
    for chemsys in ("Mg-O", "Ca-O", "O-Sr-Ti", "Ba-O-Ti"):
        png = report_dir / f"hull-{chemsys}.png"
        assert png.stat().st_size > 10_000 and f'src="hull-{chemsys}.png"' in page
    assert (report_dir / "e_above_hull.svg").read_text().lstrip().startswith("<?xml")
    phonon = table_rows(page, "phonon-table")
    assert len(phonon) == 2 and {r[3] for r in phonon} == {"12.5000", "13.5000"}
    assert {r[2] for r in phonon} == {"successful"}  # structure, formula, state, max_frequency_thz
    assert "Phonons (2 structures)" in page
    assert "max_steps 200," in page  # integers as integers (pandas stores 200.0)


def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        if os.environ.get("MLIPFLOWS_REQUIRE_CHROMIUM"):
            pytest.fail("chromium is required here (.ci/run installs it) but is not on PATH")
        pytest.skip("chromium is not installed (apt-get install chromium); CI installs it")
    return exe


def test_page_renders_in_headless_chromium(report_dir, tmp_path):
    exe = _chromium()
    url = (report_dir / "index.html").as_uri()
    flags = [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    shot = tmp_path / "shot.png"
    subprocess.run(
        [exe, *flags, "--window-size=1200,1600", f"--screenshot={shot}", url],
        check=True,
        capture_output=True,
        timeout=120,
    )
    pixels = imread(shot)[..., :3]
    assert pixels.shape[:2] == (1600, 1200)
    non_white = (pixels < 0.9).any(axis=-1).mean()
    assert non_white > 0.05, f"only {non_white:.1%} of the screenshot is not white"
    assert np.unique(pixels.reshape(-1, 3), axis=0).shape[0] > 50  # text, plots, colours

    dom = subprocess.run(
        [exe, *flags, "--dump-dom", url], check=True, capture_output=True, text=True, timeout=120
    ).stdout
    rows = table_rows(dom, "stable-table")
    assert len(rows) == 6 and [float(r[4]) for r in rows] == sorted(float(r[4]) for r in rows)

    # the inline sorter, run by the browser: formation energy (column 3), descending
    dom = subprocess.run(
        [exe, *flags, "--dump-dom", f"{url}#sort=stable-table:3:desc"],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    e_form = [float(r[3]) for r in table_rows(dom, "stable-table")]
    assert len(e_form) == 6 and e_form == sorted(e_form, reverse=True)
    assert e_form != [float(r[3]) for r in rows]  # the page's own order was different


def test_unknown_campaign_is_a_clear_error():
    out = CliRunner().invoke(app, ["report", "no-such-campaign", "--out", "rep"])
    words = " ".join(out.output.split())
    assert out.exit_code == 2 and "no campaign 'no-such-campaign' in this store" in words
    assert not Path("rep").exists()


def test_hull_plots_leave_out_unstable_reference_polymorphs_but_keep_every_candidate():
    from pymatgen.analysis.phase_diagram import PDEntry

    from mlipflows.plots import plotted_diagram

    def entry(formula: str, energy: float, entry_id: str) -> PDEntry:
        e = PDEntry(formula, energy, name=formula)
        e.entry_id = entry_id
        return e

    entries = [
        entry("Ba", -2.0, "ref-Ba-bcc"),
        entry("Ba", -1.95, "ref-Ba-fcc"),  # 0.05 eV/atom above: a crowded corner label
        entry("O2", -9.8, "ref-O-dimer"),
        entry("BaO", -12.0, "BaO-rocksalt"),
        entry("BaO", -11.0, "BaO-zincblende"),  # 0.5 eV/atom above: sets the window
    ]
    diagram, window = plotted_diagram(entries)
    ids = {e.entry_id for e in diagram.all_entries}
    assert "ref-Ba-fcc" not in ids and {"ref-Ba-bcc", "ref-O-dimer", "BaO-zincblende"} <= ids
    assert window == pytest.approx(0.5 + 0.02)
