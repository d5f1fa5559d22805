"""The stages of ``gaiarvs-cnn run`` one at a time, on files laid out as a run leaves them
(the whole chain is `test_run_rehearsal`)."""
from __future__ import annotations

import warnings

import pytest
from astropy.utils.exceptions import AstropyUserWarning

from gaiarvs_cnn.pipeline import load_run_config
from gaiarvs_cnn.pipeline.stages import STAGES, RunFolder
from gaiarvs_cnn.validation.synthetic import (
    synthetic_catalog,
    synthetic_reference,
    synthetic_store,
    synthetic_truth,
)


@pytest.fixture
def validated_run(tmp_path):
    """A run folder up to ``fetch-references``: the catalogue, the observed store and the
    GALAH reference file (synthetic stars, GALAH offset by -20 K in Teff)."""
    path = tmp_path / "run.toml"
    path.write_text(f"""
[run]
output = "{tmp_path / 'run'}"
[observed]
query = "SELECT source_id FROM gaiadr3.gaia_source"
[references]
kinds = ["galah"]
figure_formats = ["png"]
[catalogue]
formats = ["fits"]
""")
    config = load_run_config(path)
    folder = RunFolder(config.output)
    truth = synthetic_truth(300, seed=5)
    folder.observed.parent.mkdir(parents=True)
    synthetic_store(folder.observed, truth)
    folder.catalogue.mkdir(parents=True)
    with warnings.catch_warnings():   # FITS has no dex units
        warnings.simplefilter("ignore", AstropyUserWarning)
        synthetic_catalog(truth, seed=6).write(folder.catalogue_files(config)[0])
    folder.references.mkdir(parents=True)
    synthetic_reference(truth, "galah", seed=7, offset={"teff": -20.0}).write(
        folder.references / "galah.ecsv")
    return config, folder


def test_validate_stage_runs_validate_catalog_with_the_fetched_references(
        validated_run, monkeypatch):
    from gaiarvs_cnn.validation import pipeline

    config, folder = validated_run
    calls = []
    real = pipeline.validate_catalog

    def recording(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "validate_catalog", recording)
    record = STAGES["validate"](config, folder, False)
    assert len(calls) == 1   # one orchestration: the library's, not a copy in the stage
    assert calls[0]["source"] is None and set(calls[0]["references"]) == {"galah"}
    assert record == {"comparisons": ["galah", "precision", "bimodality"],
                      "summary": "summary.md",
                      "html": "summary.html"}
    assert (folder.validation / "galah_stats.ecsv").exists()
    html = (folder.validation / "summary.html").read_text()
    assert ".png" in html and "galah: archive" in html and "run.toml" in html
