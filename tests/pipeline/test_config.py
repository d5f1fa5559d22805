"""The run configuration file: the shipped paper configuration, and one clear line for
each kind of bad file (unknown table or key, wrong type, out of range, no selection)."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from gaiarvs_cnn.cli import main
from gaiarvs_cnn.pipeline import RunConfigError, load_run_config, paper_config_path

GOOD = """
[run]
output = "out"
[observed]
query = "SELECT source_id FROM gaiadr3.gaia_source"
"""


def _write(tmp_path, text):
    path = tmp_path / "run.toml"
    path.write_text(text)
    return path


def test_paper_config_describes_the_paper_run():
    config = load_run_config(paper_config_path())
    assert (config.network.config, config.network.splits, config.network.models) == (
        "paper", 7, 4)
    assert config.training.sample == "apogee" and config.training.cuts
    assert config.observed.kind == "query" and "has_rvs = 'true'" in config.observed.query
    assert config.observed.cuts
    assert {"galah", "seismic", "clusters", "gsp-spec", "published"} <= set(
        config.references.kinds)
    assert config.references.gsp_good_flags and config.references.against == ["all"]


def test_defaults_fill_missing_tables(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_run_config(_write(tmp_path, GOOD))
    assert config.output == tmp_path / "out"
    assert config.network.splits * config.network.models == 28
    assert config.catalogue.formats == ["fits", "votable"]
    assert config.executor.kind == "local"


@pytest.mark.parametrize("text, key, words", [
    (GOOD + "[network]\nsplit = 7\n", "network.split", "unknown key"),
    (GOOD + "[networks]\nsplits = 7\n", "networks", "unknown table"),
    (GOOD + "[network]\nsplits = \"seven\"\n", "network.splits", "must be an integer"),
    (GOOD + "[network]\nsplits = 0\n", "network.splits", "at least 1"),
    (GOOD + "[network]\ntsne = 1\n", "network.tsne", "must be true or false"),
    (GOOD + "[catalogue]\nformats = \"fits\"\n", "catalogue.formats", "list of strings"),
    (GOOD + "[catalogue]\nformats = [\"fits\", \"xls\"]\n", "catalogue.formats", "xls"),
    (GOOD + "[executor]\nkind = \"slurm\"\n", "executor.kind", "local, dask"),
    (GOOD + "[references]\nkinds = [\"galah\", \"lamost\"]\n", "references.kinds", "lamost"),
    (GOOD + "[references]\nagainst = [\"gala\"]\n", "references.against", "gala"),
    (GOOD + "[references]\nkinds = [\"galah\"]\nagainst = [\"seismic\"]\n",
     "references.against", "needs reference(s) ['seismic']"),
    (GOOD + "[training]\ncalibration_fraction = 1.5\n", "training.calibration_fraction",
     "[0, 1)"),
    ("[run]\noutput = \"out\"\n", "observed", "exactly one selection"),
    (GOOD + "source_ids = \"ids.txt\"\n", "observed", "exactly one selection"),
    ("[observed]\nquery = \"SELECT source_id FROM t\"\n", "run.output", "missing"),
    ("[run]\noutput = \"out\"\n[observed]\nsource_ids = \"nope.txt\"\n",
     "observed.source_ids", "no file"),
    ("[run\noutput = 1\n", "", "not valid TOML"),
])
def test_bad_config_is_one_line_naming_the_key(tmp_path, monkeypatch, text, key, words):
    monkeypatch.chdir(tmp_path)
    path = _write(tmp_path, text)
    with pytest.raises(RunConfigError) as err:
        load_run_config(path)
    assert err.value.key == key
    assert words in str(err.value) and "\n" not in str(err.value)
    assert str(err.value).startswith(f"{path}: {key}" if key else str(path))


def test_cli_bad_config_exits_1_with_one_line_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = _write(tmp_path, GOOD + "[network]\nepoch = 3\n")
    result = CliRunner().invoke(main, ["run", str(path), "--quiet"])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "network.epoch: unknown key" in lines[0], result.output
    assert not (tmp_path / "out").exists()


def test_cli_example_prints_the_paper_config():
    result = CliRunner().invoke(main, ["run", "--example"])
    assert result.exit_code == 0
    assert result.output == paper_config_path().read_text()
