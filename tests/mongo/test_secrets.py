"""A URI with a password never shows up in output, logs, errors, stored documents or reports."""

from __future__ import annotations

import logging

import pymongo
import pytest
from typer.testing import CliRunner

from mlipflows.cli import app
from mlipflows.store import StoreUnavailableError, connect_store, get_job_store, redact_uri
from tests.mongo.campaigns import assert_no_password
from tests.mongo.server import PASSWORD

SPEC = """\
name: secret-test
model: morse
chunk_size: 8
candidates:
  prototypes:
    - prototype: rocksalt
      sites: {A: [Mg, Ca], B: [O]}
hull:
  mode: mlip
"""


def test_campaign_results_report_never_show_the_password(mongo_uri, tmp_path, caplog):
    spec = tmp_path / "secret.yaml"
    spec.write_text(SPEC)
    runner = CliRunner()
    with caplog.at_level(logging.DEBUG):
        outputs = [
            runner.invoke(app, ["campaign", "run", str(spec), "--uri", mongo_uri]),
            runner.invoke(
                app, ["results", "--uri", mongo_uri, "--campaign", "secret-test", "--format", "json"]
            ),
            runner.invoke(app, ["report", "secret-test", "--uri", mongo_uri, "--out", str(tmp_path / "rep")]),
        ]
    for out in outputs:
        assert out.exit_code == 0, out.output
        assert PASSWORD not in out.output
    assert "screener:****@127.0.0.1" in " ".join(outputs[0].output.split())
    assert caplog.records and PASSWORD not in caplog.text
    page = (tmp_path / "rep" / "index.html").read_text()
    assert "secret-test" in page and "screener:****@" in page and PASSWORD not in page
    for figure in (tmp_path / "rep").glob("*.svg"):
        assert PASSWORD not in figure.read_text()
    client = pymongo.MongoClient(mongo_uri)
    assert_no_password(client.get_default_database())


def test_wrong_password_and_bad_uri_errors_are_redacted(mongo_server):
    wrong = mongo_server.uri("x").replace(PASSWORD, "Wr0ng-guess")
    with pytest.raises(StoreUnavailableError) as err:
        connect_store(get_job_store(wrong))
    assert "Wr0ng-guess" not in str(err.value) and "screener:****@127.0.0.1" in str(err.value)
    assert "authentication failed" in str(err.value).lower()

    out = CliRunner().invoke(app, ["results", "--uri", wrong])
    assert out.exit_code == 2 and "Wr0ng-guess" not in out.output
    assert redact_uri("mongo://u:hunter2@h/x") == "mongo://u:****@h/x"
